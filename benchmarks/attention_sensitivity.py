"""How much do trained models' predictions depend on their attention? A diagnostic for the reproductions
(docs/RESULTS.md and docs/ablations/random_embeddings/RESULTS.md).

For each finished run of a reproduction (seed 1 of a task), over the test split (the first and third figures are
`hf_attn_at.interpret.evaluate.attention_sensitivity`, which every run also records in `results.json`):
- mean per-example ‖∂L/∂ã‖ (L: that example's cross-entropy): how strongly the loss reacts to the attention scores;
- mean cosine similarity between the BiLSTM states of one sentence: near 1 means the pooled vector hardly depends on
  where attention goes;
- mean range (max − min) of an example's attention scores: how peaked attention can be.

    PYTHONPATH=. python benchmarks/attention_sensitivity.py --runs_dir ../runs/paper/runs --task sst \
        --data_dir ../shared/data --methods vanilla attention_rp-eps1 attention_at-eps1 attention_iat-eps1
"""

import argparse

import torch
from transformers import AutoTokenizer, DataCollatorWithPadding

from hf_attn_at import BiLSTMAttentionForSequenceClassification
from hf_attn_at.data import load_task, tokenize_dataset
from hf_attn_at.interpret.evaluate import attention_sensitivity


@torch.no_grad()
def _state_similarity(states: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """Mean pairwise cosine similarity of each example's valid states `(B, T, 2H)` (examples of one token: skipped)."""
    unit = torch.nn.functional.normalize(states, dim=-1)
    out = []
    for row, valid in zip(unit, mask, strict=True):
        h = row[valid]
        n = h.shape[0]
        if n > 1:
            out.append(float(((h @ h.T).sum() - n) / (n * (n - 1))))
    return out


def measure(model, dataset, tokenizer, batch_size: int = 128) -> dict[str, float]:
    collate = DataCollatorWithPadding(tokenizer)
    grad_norms, similarities, ranges = [], [], []
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        labels = batch.pop("labels")
        with torch.no_grad():
            enc = model(**batch).encoder_outputs
        norms, spread = attention_sensitivity(model, enc, labels, batch)
        grad_norms += norms.tolist()
        ranges += spread.tolist()
        similarities += _state_similarity(enc.last_hidden_state, enc.attention_scores_mask)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    return {"grad_norm": mean(grad_norms), "state_similarity": mean(similarities), "score_range": mean(ranges)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs_dir", required=True, help="OUTPUT_DIR/runs of a reproduction")
    parser.add_argument("--task", default="sst")
    parser.add_argument("--data_dir", required=True, help="local data folder (../shared/data)")
    parser.add_argument("--methods", nargs="+", required=True, help="run folder names, e.g. vanilla attention_at-eps1")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    raw = load_task(args.task, source="local", data_dir=args.data_dir)
    test_split = next(split for split in raw if split.startswith("test"))
    print(f"| {args.task} {test_split}, seed {args.seed} | mean ‖∂L/∂ã‖ per example | mean cosine similarity of an "
          "example's BiLSTM states | mean attention-score range |")
    print("|---|---|---|---|")
    for method in args.methods:
        run = f"{args.runs_dir}/{args.task}/{method}/seed{args.seed}"
        tokenizer = AutoTokenizer.from_pretrained(run)
        model = BiLSTMAttentionForSequenceClassification.from_pretrained(run).eval()
        dataset = tokenize_dataset(raw, tokenizer)[test_split].remove_columns(["length"])
        m = measure(model, dataset, tokenizer)
        print(f"| {method} | {m['grad_norm']:.4f} | {m['state_similarity']:.3f} | {m['score_range']:.2f} |")


if __name__ == "__main__":
    main()
