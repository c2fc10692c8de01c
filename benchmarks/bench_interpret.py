"""Time gradient importance + Pearson/Kendall agreement over the SST test split (1821 sentences).

Default-size model (E=300, H=128, additive attention), random init with seed 0 (timing does not depend
on training), vocabulary from the SST training split (min_df=1). Run from the project root:

    PYTHONPATH=. python benchmarks/bench_interpret.py --threads 1 2
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import time
from pathlib import Path

import torch

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, build_word_tokenizer
from hf_attn_at.interpret import attention_agreement, explain_model

ROOT = Path(__file__).resolve().parents[1]
# `../shared/data` from the project root (a worktree sits one level deeper).
SST_CSV = next((p / "shared/data/sst/sst_dataset.csv" for p in ROOT.parents if (p / "shared/data/sst").is_dir()),
               ROOT.parent / "shared/data/sst/sst_dataset.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sst_csv", default=str(SST_CSV))
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--batch_size", type=int, default=64)
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

    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"git {sha}  torch {torch.__version__}  SST test: {len(test)} sentences  vocab {len(tokenizer)}  "
          f"E={config.embedding_size} H={config.hidden_size}  batch {args.batch_size}")
    print(f"{'threads':>8}{'total s':>10}{'correlations s':>16}{'pearson mean':>14}{'kendall mean':>14}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        start = time.perf_counter()
        result = explain_model(model, tokenizer, dataset, batch_size=args.batch_size, methods=("gradient",),
                               show_progress=False)
        total = time.perf_counter() - start
        start = time.perf_counter()
        attention_agreement(result["attention"], result["importance"]["gradient"])
        correlations = time.perf_counter() - start
        s = result["summary"]
        print(f"{threads:>8}{total:>10.1f}{correlations:>16.2f}{s['gradient_pearson_mean']:>14.4f}"
              f"{s['gradient_kendall_mean']:>14.4f}")


if __name__ == "__main__":
    main()
