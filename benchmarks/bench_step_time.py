"""Training-step time of every adversarial method, side by side, on SST- and IMDB-shaped batches.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_step_time.py
    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_step_time.py --threads 2 --sst-reps 15 --imdb-reps 7
    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_step_time.py --num-steps 1 3 5

With `--num-steps K ...` the rows are vanilla and every method that accepts `adv_num_steps` at each K (multi-step
adversarial training, default step size) instead of every method.

A step is `AdversarialTrainer.training_step` (forward(s), loss, one backward) plus an Adam step, on the
default-size model (E=300, H=128, vocabulary 16k). `three_pass` is the official code's attention-AT step: a clean
forward, a zero-perturbation probe forward with its own `.backward()` (whose parameter gradients leak into the
update), an adversarial forward, and a backward of L + L_adv. Methods run interleaved, one step each per repetition,
after warm-up; the table gives medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.methods import METHODS, AdversarialMethod
from hf_attn_at.perturbations import gradient_perturbation
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialTrainingArguments

VOCAB_SIZE = 16000
EPSILONS = {name: 1.0 for name, spec in METHODS.items() if spec.target is not None}


def git_sha() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def make_batch(batch_size: int, mean_length: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    spread = max(1, mean_length // 2)
    lengths = torch.randint(mean_length - spread, mean_length + spread + 1, (batch_size,), generator=generator)
    ids = torch.randint(3, VOCAB_SIZE, (batch_size, int(lengths.max())), generator=generator)
    mask = torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return {
        "input_ids": ids.masked_fill(~mask, 0),
        "attention_mask": mask.long(),
        "labels": torch.randint(0, 2, (batch_size,), generator=generator),
    }


def three_pass_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], epsilon: float) -> None:
    clean = model(**batch)
    zero = torch.zeros(batch["input_ids"].shape, requires_grad=True)
    probe = model(**batch, attention_perturbation=zero)
    probe.loss.backward()
    delta = gradient_perturbation(zero.grad, batch["attention_mask"], epsilon).delta
    adversarial = model(**batch, attention_perturbation=delta)
    (clean.loss + adversarial.loss).backward()


def run_shape(
    name: str, mean_length: int, reps: int, warmup: int, output_dir: str, num_steps: list[int] | None = None
) -> dict[str, float]:
    """Median step seconds per row: every method and `three_pass`, or (`num_steps`) vanilla and each multi-step
    method at each K (rows `method K=k`)."""
    generator = torch.Generator().manual_seed(0)
    batches = [make_batch(32, mean_length, generator) for _ in range(4)]
    torch.manual_seed(0)
    model = BiLSTMAttentionForSequenceClassification(BiLSTMAttentionConfig(vocab_size=VOCAB_SIZE, num_labels=2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, amsgrad=True)
    if num_steps is None:
        rows = [(method.value, method, 1) for method in AdversarialMethod]
    else:
        multi_step = [method for method in AdversarialMethod if "adv_num_steps" in method.spec.settings]
        rows = [("vanilla", AdversarialMethod.VANILLA, 1)]
        rows += [(f"{method.value} K={k}", method, k) for method in multi_step for k in num_steps]
    steps = {}
    for key, method, k in rows:
        args = AdversarialTrainingArguments(
            output_dir=output_dir,
            adv_method=method,
            adv_epsilon=EPSILONS.get(method.value),
            adv_num_steps=k,
            per_device_train_batch_size=32,
            use_cpu=True,
            report_to="none",
        )
        trainer = AdversarialTrainer(model=model, args=args)
        trainer.current_gradient_accumulation_steps = 1

        def step(batch, trainer=trainer):
            trainer.training_step(model, batch)

        steps[key] = step
        trainer._metrics["train"].clear()
    if num_steps is None:
        steps["three_pass"] = lambda batch: three_pass_step(model.train(), batch, 1.0)

    times: dict[str, list[float]] = {key: [] for key in steps}
    for rep in range(warmup + reps):
        for key, step in steps.items():
            batch = batches[rep % len(batches)]
            optimizer.zero_grad(set_to_none=True)
            start = time.perf_counter()
            step(batch)
            optimizer.step()
            elapsed = time.perf_counter() - start
            if rep >= warmup:
                times[key].append(elapsed)
    return {key: statistics.median(values) for key, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sst-reps", type=int, default=15)
    parser.add_argument("--imdb-reps", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--num-steps", type=int, nargs="+", default=None, metavar="K",
                        help="time vanilla and the multi-step methods at these adv_num_steps (each >= 1)")
    args = parser.parse_args(argv)
    if args.num_steps is not None and min(args.num_steps) < 1:
        parser.error(f"--num-steps must be integers >= 1, got {args.num_steps}")
    torch.set_num_threads(args.threads)
    print(f"git sha: {git_sha()}  torch {torch.__version__}  threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as output_dir:
        results = {
            "SST (32 x ~24)": run_shape("sst", 24, args.sst_reps, args.warmup, output_dir, args.num_steps),
            "IMDB (32 x ~200)": run_shape("imdb", 200, args.imdb_reps, args.warmup, output_dir, args.num_steps),
        }
    shapes = list(results)
    print("| method | " + " | ".join(f"{s} ms | x vanilla" for s in shapes) + " |")
    print("|---|" + "---:|---:|" * len(shapes))
    for key in results[shapes[0]]:
        cells = []
        for shape in shapes:
            timing = results[shape]
            cells.append(f"{1000 * timing[key]:.1f} | {timing[key] / timing['vanilla']:.2f}")
        print(f"| {key} | " + " | ".join(cells) + " |")
    for shape in shapes:
        timing = results[shape]
        if "three_pass" not in timing:
            continue
        print(f"{shape}: three_pass / attention_at = {timing['three_pass'] / timing['attention_at']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
