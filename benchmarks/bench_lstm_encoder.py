"""BiLSTM encoder on CPU: packed sequence vs the unpacked path the models use there, side by side.

    PYTHONPATH=. python benchmarks/bench_lstm_encoder.py
    PYTHONPATH=. python benchmarks/bench_lstm_encoder.py --threads 1 --reps 5

One repetition is a vanilla training step's model work (forward, loss, backward) of the default-size single-sequence
model (E=300, H=128, vocabulary 16k, batch 32), once with `_run_lstm_packed` patched in and once with the default
CPU path (`_run_lstm_unpacked`), interleaved, after one warm-up; the table gives medians. Shapes: lengths drawn
within ±10 % of a mean (batches of similar lengths, as `train_sampling_strategy="group_by_length"` gives) or ±50 %
(random batches), plus the largest difference between the two paths' logits.
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import torch

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.models.bilstm_attention import modeling_bilstm_attention as modeling

SHAPES = [  # (name, mean length, relative spread)
    ("SST-like ~20, ±50 %", 20, 0.5),
    ("IMDB-like ~200, ±10 %", 200, 0.1),
    ("IMDB-like ~200, ±50 %", 200, 0.5),
    ("bAbI 3-like ~300, ±10 %", 300, 0.1),
]


def make_batch(mean_length: int, spread: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A batch of 32 right-padded examples: `input_ids`, `attention_mask` `(32, max length)`, `labels` `(32,)`."""
    half = max(1, int(mean_length * spread))
    lengths = torch.randint(mean_length - half, mean_length + half + 1, (32,), generator=generator)
    ids = torch.randint(3, 16000, (32, int(lengths.max())), generator=generator)
    mask = torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return {"input_ids": ids.masked_fill(~mask, 0), "attention_mask": mask.long(), "labels": torch.randint(0, 2, (32,))}


def time_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[float, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    output = model(**batch)
    output.loss.backward()
    return time.perf_counter() - start, output.logits.detach()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=16000, num_labels=2, dropout=0.0)  # the same logits on both paths
    model = BiLSTMAttentionForSequenceClassification(config).train()
    print(f"torch {torch.__version__}  threads {torch.get_num_threads()}  batch 32, E=300, H=128")
    print("| batch shape | packed ms | unpacked ms | packed / unpacked | max |Δ logits| |")
    print("|---|---:|---:|---:|---:|")
    for name, mean_length, spread in SHAPES:
        batch = make_batch(mean_length, spread, torch.Generator().manual_seed(0))
        times: dict[str, list[float]] = {"packed": [], "unpacked": []}
        logits = {}
        for rep in range(1 + args.reps):
            with mock.patch.object(modeling, "_run_lstm", modeling._run_lstm_packed):
                elapsed, logits["packed"] = time_step(model, batch)
            if rep:
                times["packed"].append(elapsed)
            elapsed, logits["unpacked"] = time_step(model, batch)
            if rep:
                times["unpacked"].append(elapsed)
        packed, unpacked = (statistics.median(times[k]) for k in ("packed", "unpacked"))
        diff = (logits["packed"] - logits["unpacked"]).abs().max().item()
        print(f"| {name} | {1000 * packed:.0f} | {1000 * unpacked:.0f} | {packed / unpacked:.2f} | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
