"""Run a model over a tokenized dataset: attention, token importance and their agreement per example."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.utils import ModelOutput

from .agreement import attention_agreement, summarize
from .importance import IMPORTANCE_METHODS

logger = logging.getLogger(__name__)


@dataclass
class Explanation(ModelOutput):
    """What `explain_model` measured over `num_examples` examples (fields also read as keys: `result["summary"]`).

    Args:
        tokens (`list[list[str]]`): per example, the `n_i` attended tokens.
        attention (`list[np.ndarray]`): per example, the attention weights, shape `(n_i,)`.
        importance (`dict[str, list[np.ndarray]]`): method -> per example, the token importance, shape `(n_i,)`.
        predictions (`np.ndarray` of shape `(num_examples,)`): the predicted classes.
        labels (`np.ndarray` of shape `(num_examples,)`): the gold labels, -1 when absent.
        agreement (`dict[str, dict]`): method -> `attention_agreement` of attention and that importance (per-example
            `pearson`, `kendall` of shape `(num_examples,)` and their `*_summary`).
        summary (`dict[str, float | None]`): accuracy, `num_examples`, `max_tokens`, `num_truncated`, the means of
            `attention_sensitivity` (`attention_grad_norm_mean`, `attention_score_range_mean`) and mean/std/number
            of nan of each correlation per method (`gradient_pearson_mean`, ...).
    """

    tokens: list[list[str]] | None = None
    attention: list[np.ndarray] | None = None
    importance: dict[str, list[np.ndarray]] | None = None
    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    agreement: dict[str, dict] | None = None
    summary: dict[str, Any] | None = None

    def to_json(self, num_examples: int | None = None) -> dict[str, Any]:
        """The `explanation.json` object: `tokens`, `attention`, `importance`, `predictions` and `labels` of the first
        `num_examples` examples (all with `None`: the heat maps), the per-example gradient `pearson` and `kendall` of
        *every* example (the paired bootstrap over test examples reads them) and the `summary` of all examples.
        NumPy values stay as they are (see `interpret.report.json_safe`)."""
        if "gradient" not in self.agreement:
            raise ValueError(f"explanation.json records the gradient agreement: explain with methods including "
                             f"'gradient', got {list(self.agreement)}")
        keep = slice(num_examples)
        gradient = self.agreement["gradient"]
        return {
            "tokens": self.tokens[keep],
            "attention": self.attention[keep],
            "importance": {method: values[keep] for method, values in self.importance.items()},
            "predictions": self.predictions[keep],
            "labels": self.labels[keep],
            "pearson": gradient["pearson"],
            "kendall": gradient["kendall"],
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Explanation:
        """The explanation that `to_json` wrote (null correlations read as nan); `summary` is empty for files written
        before it was recorded."""
        agreement = {}
        for measure in ("pearson", "kendall"):
            values = np.array([np.nan if v is None else v for v in data[measure]], dtype=float)
            agreement[measure], agreement[f"{measure}_summary"] = values, summarize(values)
        return cls(
            tokens=data["tokens"],
            attention=[np.asarray(a) for a in data["attention"]],
            importance={m: [np.asarray(v) for v in vs] for m, vs in data["importance"].items()},
            predictions=np.asarray(data["predictions"]),
            labels=np.asarray(data["labels"]),
            agreement={"gradient": agreement},
            summary=data.get("summary") or {},
        )


def _collate(rows: dict[str, list], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a slice of a tokenized dataset (`input_ids`, optional `token_type_ids` and `candidate_mask`)."""
    lengths = [len(ids) for ids in rows["input_ids"]]
    seq_len = max(lengths)
    batch = {
        "input_ids": torch.tensor([ids + [pad_token_id] * (seq_len - len(ids)) for ids in rows["input_ids"]]),
        "attention_mask": torch.tensor([[1] * n + [0] * (seq_len - n) for n in lengths]),
    }
    if rows.get("token_type_ids") is not None:
        batch["token_type_ids"] = torch.tensor([t + [0] * (seq_len - len(t)) for t in rows["token_type_ids"]])
    if rows.get("candidate_mask") is not None:
        batch["candidate_mask"] = torch.tensor(rows["candidate_mask"], dtype=torch.bool)
    return batch


def _truncate(rows: dict[str, list], max_tokens: int) -> int:
    """Cut each text of `rows` (each segment of a pair) to its first `max_tokens` tokens, in place.

    A pair `a <sep> b` (`token_type_ids` 0 on `a`, 1 from `<sep>` on) keeps its `<sep>`. Returns how many
    examples were cut.
    """
    types = rows.get("token_type_ids")
    cut = 0
    for i, ids in enumerate(rows["input_ids"]):
        split = types[i].index(1) if types is not None and 1 in types[i] else len(ids)
        first, second = ids[:split], ids[split + 1 :]
        if len(first) <= max_tokens and len(second) <= max_tokens:
            continue
        cut += 1
        first, second = first[:max_tokens], second[:max_tokens]
        if split == len(ids):
            rows["input_ids"][i] = first
            if types is not None:
                types[i] = types[i][:max_tokens]
        else:
            rows["input_ids"][i] = [*first, ids[split], *second]
            types[i] = [0] * len(first) + [1] * (len(second) + 1)
    return cut


def attention_sensitivity(
    model: nn.Module, encoder_outputs, target: torch.Tensor, batch: dict[str, torch.Tensor]
) -> tuple[np.ndarray, np.ndarray]:
    """How strongly each example's loss reacts to its attention scores, and how peaked they can make attention.

    Args:
        model: the BiLSTM + attention model that produced `encoder_outputs`.
        encoder_outputs: its `encoder_outputs` (scores `(batch_size, sequence_length)`, mask, cached states).
        target (`torch.LongTensor` of shape `(batch_size,)`): the class whose cross-entropy L is differentiated.
        batch: the model inputs (`candidate_mask` is passed to the head when present).

    Returns:
        `(‖∂L/∂ã‖, max ã − min ã)` per example over its valid positions, two float arrays of shape `(batch_size,)`;
        a head-only re-run on detached encoder states, so no parameter gradient is touched.
    """
    mask = encoder_outputs.attention_scores_mask
    leaf = encoder_outputs.attention_scores.detach().requires_grad_()
    question = encoder_outputs.question_hidden_state
    states = type(encoder_outputs)(
        last_hidden_state=encoder_outputs.last_hidden_state.detach(), attention_scores=leaf,
        attention_scores_mask=mask, question_hidden_state=None if question is None else question.detach(),
    )
    head_inputs = {"candidate_mask": batch["candidate_mask"]} if "candidate_mask" in batch else {}
    with torch.enable_grad():
        logits = model(encoder_outputs=states, **head_inputs).logits
        loss = nn.functional.cross_entropy(logits.float(), target, reduction="sum")  # a per-example gradient each
        (grad,) = torch.autograd.grad(loss, leaf)
    scores = leaf.detach().float()
    spread = scores.masked_fill(~mask, -torch.inf).amax(1) - scores.masked_fill(~mask, torch.inf).amin(1)
    return grad.float().norm(dim=1).cpu().numpy(), spread.cpu().numpy()


def explain_model(
    model: nn.Module,
    tokenizer=None,
    dataset=None,
    batch_size: int = 64,
    methods: Sequence[str] = ("gradient",),
    label_column: str = "label",
    show_progress: bool = True,
    max_tokens: int | None = None,
) -> Explanation:
    """Attention, importance and attention-importance agreement for every example of `dataset`.

    Batches are formed from examples of similar length (results come back in dataset order).

    Args:
        model: a BiLSTM + attention classifier; it is put in eval mode.
        tokenizer: turns ids back into tokens for the report (`None`: ids as strings).
        dataset: a tokenized `datasets.Dataset` or dict of lists with `input_ids`, optional
            `token_type_ids` and `label_column` (optional: accuracy is nan without it).
        batch_size: examples per forward/backward.
        methods: importance methods, from `IMPORTANCE_METHODS` (`gradient`, `integrated_gradients`,
            `leave_one_out`).
        label_column: the gold-label column.
        show_progress: show a tqdm bar.
        max_tokens: explain texts (each text of a pair) longer than this on their first `max_tokens` tokens,
            with a warning saying how many were cut (`None`: no cap).

    Returns:
        An `Explanation` (`tokens`, `attention`, `importance`, `predictions`, `labels`, `agreement`, `summary`).
    """
    unknown = [m for m in methods if m not in IMPORTANCE_METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {sorted(IMPORTANCE_METHODS)}, got {list(methods)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer or None, got {max_tokens!r}")
    columns = dataset.column_names if hasattr(dataset, "column_names") else list(dataset)
    if "input_ids" not in columns:
        raise ValueError(f"the dataset must be tokenized (an `input_ids` column); it has columns {columns}")
    num_examples = len(dataset["input_ids"])
    order = np.argsort([len(ids) for ids in dataset["input_ids"]], kind="stable")
    model.eval()
    pad_id = model.config.pad_token_id
    device = model.get_input_embeddings().weight.device
    keep = ["input_ids"] + [c for c in ("token_type_ids", "candidate_mask", label_column) if c in columns]
    tokens: list = [None] * num_examples
    attention: list = [None] * num_examples
    importance: dict[str, list] = {m: [None] * num_examples for m in methods}
    predictions = np.zeros(num_examples, dtype=np.int64)
    labels = np.full(num_examples, -1, dtype=np.int64)
    grad_norms = np.zeros(num_examples)
    score_ranges = np.zeros(num_examples)
    num_truncated = 0
    for start in tqdm(range(0, num_examples, batch_size), desc="explain", disable=not show_progress):
        index = order[start : start + batch_size]
        if hasattr(dataset, "select"):
            rows = dataset.select(index).to_dict()
        else:
            rows = {c: [dataset[c][i] for i in index] for c in keep}
        if max_tokens is not None:
            num_truncated += _truncate(rows, max_tokens)
        batch = {k: v.to(device) for k, v in _collate(rows, pad_id).items()}
        with torch.no_grad():
            outputs = model(**batch)
        mask = outputs.encoder_outputs.attention_scores_mask.cpu().numpy()
        weights = outputs.attentions.float().cpu().numpy()
        predictions[index] = outputs.logits.argmax(-1).cpu().numpy()
        if label_column in rows:
            labels[index] = np.asarray(rows[label_column])
        target = outputs.logits.argmax(-1)
        if label_column in rows:
            gold = torch.as_tensor(rows[label_column], device=device)
            target = torch.where(gold >= 0, gold, target)  # unlabelled examples: the predicted class
        grad_norms[index], score_ranges[index] = attention_sensitivity(model, outputs.encoder_outputs, target, batch)
        scores = {m: IMPORTANCE_METHODS[m](model, batch).float().cpu().numpy() for m in methods}
        ids = batch["input_ids"].cpu().numpy()
        for row, i in enumerate(index):
            kept = ids[row][mask[row]].tolist()
            tokens[i] = tokenizer.convert_ids_to_tokens(kept) if tokenizer is not None else [str(t) for t in kept]
            attention[i] = weights[row][mask[row]]
            for m in methods:
                importance[m][i] = scores[m][row][mask[row]]
    if num_truncated:
        logger.warning("%d of %d examples have a text longer than %d tokens: explained on its first %d tokens",
                       num_truncated, num_examples, max_tokens, max_tokens)
    agreement = {m: attention_agreement(attention, importance[m]) for m in methods}
    labelled = labels >= 0
    accuracy = float((predictions[labelled] == labels[labelled]).mean()) if labelled.any() else float("nan")
    summary: dict[str, float | None] = {
        "accuracy": accuracy, "num_examples": num_examples, "max_tokens": max_tokens, "num_truncated": num_truncated,
        "attention_grad_norm_mean": float(grad_norms.mean()) if num_examples else float("nan"),
        "attention_score_range_mean": float(score_ranges.mean()) if num_examples else float("nan"),
    }
    for m in methods:
        for measure in ("pearson", "kendall"):
            stats = agreement[m][f"{measure}_summary"]
            summary[f"{m}_{measure}_mean"] = stats["mean"]
            summary[f"{m}_{measure}_std"] = stats["std"]
            summary[f"{m}_{measure}_num_nan"] = stats["num_nan"]
    logger.info("explained %d examples: %s", num_examples, summary)
    return Explanation(
        tokens=tokens, attention=attention, importance=importance, predictions=predictions, labels=labels,
        agreement=agreement, summary=summary,
    )
