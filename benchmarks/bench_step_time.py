"""Training-step time of every adversarial method, side by side, on SST- and IMDB-shaped batches.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_step_time.py
    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_step_time.py --threads 2 --sst-reps 15 --imdb-reps 7
    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_step_time.py --num-steps 1 3 5
    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_step_time.py --stream zipf --neighbor-refresh 50 200 \
        --methods word_at word_iat

With `--num-steps K ...` the rows are vanilla and every method that accepts `adv_num_steps` at each K (multi-step
adversarial training, default step size) instead of every method.

A step is `AdversarialTrainer.training_step` (forward(s), loss, one backward) plus an Adam step, on the
default-size model (E=300, H=128, vocabulary 16k). `three_pass` is the official code's attention-AT step: a clean
forward, a zero-perturbation probe forward with its own `.backward()` (whose parameter gradients leak into the
update), an adversarial forward, and a backward of L + L_adv. Methods run interleaved, one step each per repetition,
after warm-up; the table gives medians.

Token ids: `--stream cycled` (default) cycles 4 batches of uniform random ids; `--stream zipf` draws a fresh batch
per repetition from a Zipf distribution over the vocabulary (rank r with probability ∝ 1/r, the usual shape of word
frequencies), with the trainers' optimizer step advancing per repetition, so that word iAT's cached neighbour lists
(`--neighbor-refresh N ...`: rows `word_iat N=n`, `adv_neighbor_refresh_steps=n`) are reused, and searched, as in
training rather than on repeated batches. The `ids searched` lines give each cached row's searched share of the
looked-up ids over the timed repetitions.
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


def make_batch(
    batch_size: int, mean_length: int, generator: torch.Generator, stream: str = "cycled"
) -> dict[str, torch.Tensor]:
    spread = max(1, mean_length // 2)
    lengths = torch.randint(mean_length - spread, mean_length + spread + 1, (batch_size,), generator=generator)
    shape = (batch_size, int(lengths.max()))
    if stream == "zipf":
        weights = 1.0 / torch.arange(1, VOCAB_SIZE - 2, dtype=torch.float64)  # ids 3.. by falling frequency
        ids = 3 + torch.multinomial(weights, shape[0] * shape[1], replacement=True, generator=generator).view(shape)
    else:
        ids = torch.randint(3, VOCAB_SIZE, shape, generator=generator)
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
    name: str,
    mean_length: int,
    reps: int,
    warmup: int,
    output_dir: str,
    num_steps: list[int] | None = None,
    stream: str = "cycled",
    neighbor_refresh: list[int] | None = None,
    methods: list[str] | None = None,
) -> dict[str, float]:
    """Median step seconds per row: every method (or `methods`) and `three_pass`, or (`num_steps`) vanilla and each
    multi-step method at each K (rows `method K=k`); plus word iAT at each `neighbor_refresh` (rows `word_iat N=n`)."""
    generator = torch.Generator().manual_seed(0)
    num_batches = warmup + reps if stream == "zipf" else 4
    batches = [make_batch(32, mean_length, generator, stream) for _ in range(num_batches)]
    torch.manual_seed(0)
    model = BiLSTMAttentionForSequenceClassification(BiLSTMAttentionConfig(vocab_size=VOCAB_SIZE, num_labels=2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, amsgrad=True)
    if num_steps is None:
        rows = [(m.value, m, 1, 1) for m in AdversarialMethod if methods is None or m.value in methods]
    else:
        multi_step = [method for method in AdversarialMethod if "adv_num_steps" in method.spec.settings]
        rows = [("vanilla", AdversarialMethod.VANILLA, 1, 1)]
        rows += [(f"{method.value} K={k}", method, k, 1) for method in multi_step for k in num_steps]
    rows += [(f"word_iat N={n}", AdversarialMethod.WORD_IAT, 1, n) for n in neighbor_refresh or []]
    trainers = {}
    for key, method, k, refresh in rows:
        args = AdversarialTrainingArguments(
            output_dir=output_dir,
            adv_method=method,
            adv_epsilon=EPSILONS.get(method.value),
            adv_num_steps=k,
            adv_neighbor_refresh_steps=refresh,
            per_device_train_batch_size=32,
            use_cpu=True,
            report_to="none",
        )
        trainer = AdversarialTrainer(model=model, args=args)
        trainer.current_gradient_accumulation_steps = 1
        trainer._metrics["train"].clear()
        trainers[key] = trainer
    steps = {key: (lambda batch, trainer=trainer: trainer.training_step(model, batch)) for key, trainer in trainers.items()}
    if num_steps is None and methods is None:
        steps["three_pass"] = lambda batch: three_pass_step(model.train(), batch, 1.0)

    times: dict[str, list[float]] = {key: [] for key in steps}
    for rep in range(warmup + reps):
        if rep == warmup:  # count the cached rows' searches over the timed repetitions only
            for trainer in trainers.values():
                if trainer._neighbor_cache is not None:
                    trainer._neighbor_cache.num_looked_up = trainer._neighbor_cache.num_searched = 0
        for key, step in steps.items():
            if key in trainers:
                trainers[key].state.global_step = rep
            batch = batches[rep % len(batches)]
            optimizer.zero_grad(set_to_none=True)
            start = time.perf_counter()
            step(batch)
            optimizer.step()
            elapsed = time.perf_counter() - start
            if rep >= warmup:
                times[key].append(elapsed)
    for key, trainer in trainers.items():
        cache = trainer._neighbor_cache
        if cache is not None:
            print(f"{name} {key}: ids searched {cache.num_searched} of {cache.num_looked_up} looked up")
    return {key: statistics.median(values) for key, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sst-reps", type=int, default=15)
    parser.add_argument("--imdb-reps", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--num-steps", type=int, nargs="+", default=None, metavar="K",
                        help="time vanilla and the multi-step methods at these adv_num_steps (each >= 1)")
    parser.add_argument("--stream", choices=["cycled", "zipf"], default="cycled",
                        help="token ids: 4 cycled uniform batches, or a fresh Zipf-distributed batch per repetition")
    parser.add_argument("--neighbor-refresh", type=int, nargs="+", default=None, metavar="N",
                        help="add word iAT rows with adv_neighbor_refresh_steps=N (each >= 2)")
    parser.add_argument("--methods", nargs="+", default=None, choices=[m.value for m in AdversarialMethod],
                        help="time only these methods and vanilla (no three_pass row)")
    args = parser.parse_args(argv)
    if args.num_steps is not None and min(args.num_steps) < 1:
        parser.error(f"--num-steps must be integers >= 1, got {args.num_steps}")
    if args.neighbor_refresh is not None and min(args.neighbor_refresh) < 2:
        parser.error(f"--neighbor-refresh must be integers >= 2, got {args.neighbor_refresh}")
    methods = None if args.methods is None else ["vanilla", *args.methods]
    torch.set_num_threads(args.threads)
    print(f"git sha: {git_sha()}  torch {torch.__version__}  threads {torch.get_num_threads()}  stream {args.stream}")
    with tempfile.TemporaryDirectory() as output_dir:
        results = {
            shape: run_shape(
                name, length, reps, args.warmup, output_dir, args.num_steps, args.stream, args.neighbor_refresh, methods
            )
            for shape, name, length, reps in (
                ("SST (32 x ~24)", "sst", 24, args.sst_reps),
                ("IMDB (32 x ~200)", "imdb", 200, args.imdb_reps),
            )
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
    for shape in shapes:
        timing = results[shape]
        if "word_at" in timing:
            for key in [key for key in timing if key.startswith("word_iat")]:
                print(f"{shape}: {key} / word_at = {timing[key] / timing['word_at']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
