"""Time `evaluate_robustness` over the SST test split: attention-score PGD (K steps at each ε), with and without the
bisection for the smallest flipping ε, and optionally the other attacks.

Default-size model (E=300, H=128, additive attention), random init with seed 0 (timing depends on the shapes, not
on the weights; the accuracies printed are those of an untrained model), vocabulary from the SST training split
(min_df=1). Run from the project root:

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_robustness.py --threads 1 \
        --attacks attention permutation adversarial_attention word
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import time
from pathlib import Path

import torch

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, build_word_tokenizer
from hf_attn_at.robustness import ATTACKS, evaluate_robustness

ROOT = Path(__file__).resolve().parents[1]
# `../shared/data` from the project root (a worktree sits one level deeper).
SST_CSV = next((p / "shared/data/sst/sst_dataset.csv" for p in ROOT.parents if (p / "shared/data/sst").is_dir()),
               ROOT.parent / "shared/data/sst/sst_dataset.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sst_csv", default=str(SST_CSV))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0, 0.5, 1, 2, 4])
    parser.add_argument("--num_steps", type=int, default=10)
    parser.add_argument("--attacks", nargs="+", default=["attention"], choices=ATTACKS,
                        help="timed one at a time (attention: also with bisection)")
    args = parser.parse_args()

    with open(args.sst_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    train = [r["text"] for r in rows if r["exp_split"] == "train"]
    test = [r for r in rows if r["exp_split"] == "test"]
    tokenizer = build_word_tokenizer(train, min_df=1)
    dataset = {"input_ids": tokenizer([r["text"] for r in test])["input_ids"], "label": [int(r["label"]) for r in test]}
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=len(tokenizer), num_labels=2)
    model = BiLSTMAttentionForSequenceClassification(config).eval()
    torch.set_num_threads(args.threads)

    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"git {sha}  torch {torch.__version__}  threads {args.threads}  SST test: {len(test)} sentences  "
          f"vocab {len(tokenizer)}  E={config.embedding_size} H={config.hidden_size}  batch {args.batch_size}  "
          f"K={args.num_steps}  ε={args.epsilons}")
    runs = [(attack, False) for attack in args.attacks]
    if "attention" in args.attacks:
        runs.insert(args.attacks.index("attention") + 1, ("attention", True))
    for attack, bisection in runs:
        start = time.perf_counter()
        report = evaluate_robustness(model, dataset, args.epsilons, attacks=[attack], num_steps=args.num_steps,
                                     bisection=bisection, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        result = {key: value for key, value in report[attack].items() if key != "epsilons"}
        print(f"{attack:<22} bisection={bisection!s:<5} {seconds:7.1f} s  {result}")


if __name__ == "__main__":
    main()
