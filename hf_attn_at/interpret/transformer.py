"""Attention and gradient importance of Transformers encoders (BERT, RoBERTa, DistilBERT, ...) and their agreement.

The attention vector of an example is what the first token (`[CLS]` / `<s>`, the token a sequence classifier
pools) attends to:

- `last_layer`: the last layer's attention weights averaged over heads, row 0;
- `rollout`: attention rollout (Abnar & Zuidema 2020): per layer `Â = 0.5 · mean_heads(A) + 0.5 · I`, rows
  renormalised, `R = Â_L ⋯ Â_1`, row 0.

Gradient importance is `|∇_{e_t} ŷ · e_t|` over the input (word) embeddings `e_t`, ŷ the probability of the
predicted class. Unlike the BiLSTM models (`importance.gradient_importance`), attention is not held fixed: the
gradient flows through every layer's attention. Both vectors are compared over the valid non-special tokens only,
importance normalised to sum to 1 there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from .agreement import attention_agreement
from .evaluate import Explanation
from .importance import normalize_importance

ATTENTION_KINDS = ("last_layer", "rollout")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@contextmanager
def _attention_weights_returned(model: nn.Module) -> Iterator[None]:
    """Use eager attention inside the block (`sdpa` and flash attention return no weights), then restore."""
    previous = model.config._attn_implementation
    if previous in ("eager", "hf_attn_at_eager"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def _inputs(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if model.training:
        raise ValueError("the model is in training mode (dropout on): call model.eval() before scoring tokens")
    if "input_ids" not in batch:
        raise ValueError(f"the batch needs `input_ids`; it has {sorted(batch)}")
    device = model.get_input_embeddings().weight.device
    inputs = {key: torch.as_tensor(batch[key]).to(device) for key in _INPUTS if batch.get(key) is not None}
    inputs.setdefault("attention_mask", torch.ones_like(inputs["input_ids"]))
    return inputs


def scored_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: Iterable[int]) -> torch.Tensor:
    """Valid non-special tokens `(batch_size, sequence_length)` bool."""
    special = torch.tensor(sorted({int(i) for i in special_ids}), dtype=input_ids.dtype, device=input_ids.device)
    return attention_mask.bool() & ~torch.isin(input_ids, special)


def attention_rollout(attentions: Iterable[torch.Tensor]) -> torch.Tensor:
    """Attention rollout `(batch_size, sequence_length, sequence_length)` from per-layer weights
    `(batch_size, num_heads, sequence_length, sequence_length)` (first layer first)."""
    rollout = None
    for layer in attentions:
        averaged = layer.mean(1)  # (B, T, T)
        mixed = 0.5 * averaged + 0.5 * torch.eye(averaged.shape[-1], dtype=averaged.dtype, device=averaged.device)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
    if rollout is None:
        raise ValueError("`attentions` is empty")
    return rollout


def transformer_attention(model: nn.Module, batch: Mapping[str, torch.Tensor], kind: str = "last_layer") -> torch.Tensor:
    """The first token's attention `(batch_size, sequence_length)` (`kind`: `last_layer` or `rollout`); 0 on padding.
    The first token is each example's first non-padding one (`[CLS]` with right or left padding)."""
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"`kind` must be one of {ATTENTION_KINDS}, got {kind!r}")
    inputs = _inputs(model, batch)
    with torch.no_grad(), _attention_weights_returned(model):
        attentions = model(**inputs, output_attentions=True).attentions
    return _first_token_attention(attentions, kind, inputs["attention_mask"])


def _first_token_attention(attentions: Sequence[torch.Tensor], kind: str, attention_mask: torch.Tensor) -> torch.Tensor:
    """The row `(batch_size, sequence_length)` of each example's first valid token (the first 1 of
    `attention_mask`: row 0 with right padding, after the padding with left padding) in the last layer's head
    mean or in the rollout of `attentions`."""
    weights = attentions[-1].mean(1) if kind == "last_layer" else attention_rollout(attentions)
    first = attention_mask.to(weights.device).long().argmax(-1)  # (batch_size,)
    return weights[torch.arange(weights.shape[0], device=weights.device), first]


def transformer_gradient_importance(
    model: nn.Module, batch: Mapping[str, torch.Tensor], special_ids: Iterable[int] = (), normalize: bool = True
) -> torch.Tensor:
    """Gradient importance `|∇_{e_t} ŷ · e_t|` `(batch_size, sequence_length)` over the word embeddings.

    One forward and one backward per batch (the gradient of `Σ_b ŷ_b`). Padding and `special_ids` get 0; with
    `normalize` each row sums to 1 over the other tokens. The gradient is taken at the word-embedding layer's output
    in the model's own `input_ids` forward (with `inputs_embeds` RoBERTa-family models would number the positions of
    left-padded rows differently from the prediction they explain).
    """
    inputs = _inputs(model, batch)
    captured: list[torch.Tensor] = []

    def capture(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        captured.append(output.detach().requires_grad_())
        return captured[-1]

    handle = model.get_input_embeddings().register_forward_hook(capture)
    try:
        with torch.enable_grad():
            probs = model(**inputs).logits.softmax(-1)
            predicted = probs.max(-1).values
            (grad,) = torch.autograd.grad(predicted.sum(), captured[0])
    finally:
        handle.remove()
    scores = (grad * captured[0]).sum(-1).abs().detach()
    mask = scored_tokens(inputs["input_ids"], inputs["attention_mask"], special_ids)
    return normalize_importance(scores, mask) if normalize else scores.masked_fill(~mask, 0.0)


def explain_transformer(
    model: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]], special_ids: Iterable[int]
) -> dict:
    """Agreement of the `last_layer` and `rollout` attention with gradient importance over `batches`.

    Args:
        model: a Transformers sequence classifier in eval mode.
        batches: right- or left-padded batches with `input_ids`, `attention_mask` (and `token_type_ids`).
        special_ids: token ids never scored (`tokenizer.all_special_ids`).

    Returns a dict with `last_layer` and `rollout` (each [`attention_agreement`]'s dict) and `num_examples`.
    """
    rows = _scored_rows(model, batches, special_ids)
    result = {kind: attention_agreement(rows[kind], rows["importance"]) for kind in ATTENTION_KINDS}
    result["num_examples"] = len(rows["importance"])
    return result


def _scored_rows(
    model: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]], special_ids: Iterable[int]
) -> dict[str, list]:
    """Per example, over its scored tokens (`scored_tokens`): `input_ids`, each attention kind and `importance`
    (arrays of shape `(n_i,)`), and `predictions` (the predicted class)."""
    special_ids = list(special_ids)
    rows: dict[str, list] = {kind: [] for kind in ("input_ids", *ATTENTION_KINDS, "importance", "predictions")}
    for batch in batches:
        inputs = _inputs(model, batch)
        mask = scored_tokens(inputs["input_ids"], inputs["attention_mask"], special_ids).cpu().numpy()
        with torch.no_grad(), _attention_weights_returned(model):
            outputs = model(**inputs, output_attentions=True)
        values = {"input_ids": inputs["input_ids"], "importance": transformer_gradient_importance(model, inputs, special_ids),
                  **{kind: _first_token_attention(outputs.attentions, kind, inputs["attention_mask"])
                     for kind in ATTENTION_KINDS}}
        for kind, tensor in values.items():
            array = tensor.cpu().numpy() if kind == "input_ids" else tensor.float().cpu().numpy()
            rows[kind].extend(row[keep] for row, keep in zip(array, mask, strict=True))
        rows["predictions"].extend(outputs.logits.argmax(-1).tolist())
    return rows


def explain_transformer_examples(
    model: nn.Module, tokenizer, dataset: Mapping[str, list], batch_size: int = 64, label_column: str = "label"
) -> dict[str, Explanation]:
    """Per attention kind (`last_layer`, `rollout`), an [`Explanation`] of every example of `dataset`, as
    `explain_model` gives for a BiLSTM model: the scored tokens, that attention, the `gradient` importance, the
    predictions, the labels and their agreement (the heat maps of `hf-attn-at explain`'s `report.html`).

    Args:
        model, tokenizer, dataset, batch_size: as in [`explain_transformer_dataset`].
        label_column: the gold-label column (optional: accuracy is nan and labels -1 without it).

    Returns:
        `{kind: Explanation}`; `summary` holds `accuracy`, `num_examples` and the mean/std/number of nan of
        `gradient_pearson` and `gradient_kendall`.
    """
    rows = _scored_rows(model, _padded_batches(model, tokenizer, dataset, batch_size), tokenizer.all_special_ids)
    num_examples = len(rows["predictions"])
    predictions = np.asarray(rows["predictions"], dtype=np.int64).reshape(num_examples)
    labels = np.asarray(dataset.get(label_column, [-1] * num_examples), dtype=np.int64).reshape(num_examples)
    labelled = labels >= 0
    accuracy = float((predictions[labelled] == labels[labelled]).mean()) if labelled.any() else float("nan")
    tokens = [tokenizer.convert_ids_to_tokens(ids.tolist()) for ids in rows["input_ids"]]
    explanations = {}
    for kind in ATTENTION_KINDS:
        agreement = {"gradient": attention_agreement(rows[kind], rows["importance"])}
        summary: dict[str, Any] = {"accuracy": accuracy, "num_examples": num_examples}
        for measure in ("pearson", "kendall"):
            stats = agreement["gradient"][f"{measure}_summary"]
            summary.update({f"gradient_{measure}_{key}": stats[key] for key in ("mean", "std", "num_nan")})
        explanations[kind] = Explanation(
            tokens=tokens, attention=rows[kind], importance={"gradient": rows["importance"]}, predictions=predictions,
            labels=labels, agreement=agreement, summary=summary,
        )
    return explanations


def explain_transformer_dataset(model: nn.Module, tokenizer, dataset: Mapping[str, list], batch_size: int = 64) -> dict:
    """[`explain_transformer`] over a tokenized dataset, in batches of `batch_size` examples padded by `tokenizer`.

    Args:
        model: a Transformers sequence classifier; it is put in eval mode.
        tokenizer: its tokenizer (pads the batches; its special tokens are never scored).
        dataset: columns `input_ids` (and `token_type_ids`) of lists of token ids; other columns are ignored.
        batch_size: examples per forward/backward.

    Returns [`explain_transformer`]'s dict. A `ValueError` names the examples longer than the model accepts
    (`tokenizer.model_max_length`) rather than cutting them.
    """
    return explain_transformer(model, _padded_batches(model, tokenizer, dataset, batch_size), tokenizer.all_special_ids)


def _padded_batches(
    model: nn.Module, tokenizer, dataset: Mapping[str, list], batch_size: int
) -> Iterator[dict[str, torch.Tensor]]:
    """`dataset`'s examples in order, `batch_size` at a time, padded by `tokenizer`; `model` is put in eval mode.
    `ValueError` (before any batch) for a bad `batch_size` and for examples longer than the model accepts."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    columns = [c for c in ("input_ids", "token_type_ids") if c in dataset]
    lengths = [len(ids) for ids in dataset["input_ids"]]
    too_long = [i for i, n in enumerate(lengths) if n > tokenizer.model_max_length]
    if too_long:
        raise ValueError(f"{len(too_long)} examples (rows {too_long[:5]} of the sample) are longer than the "
                         f"{tokenizer.model_max_length} tokens {type(model).__name__} accepts")
    model.eval()

    def batches() -> Iterator[dict[str, torch.Tensor]]:
        for start in range(0, len(lengths), batch_size):
            rows = [{c: dataset[c][i] for c in columns} for i in range(start, min(start + batch_size, len(lengths)))]
            yield tokenizer.pad(rows, return_tensors="pt")

    return batches()


__all__ = [
    "ATTENTION_KINDS",
    "attention_rollout",
    "explain_transformer",
    "explain_transformer_dataset",
    "explain_transformer_examples",
    "scored_tokens",
    "transformer_attention",
    "transformer_gradient_importance",
]
