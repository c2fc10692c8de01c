"""Token importance scores to compare attention against: gradients, integrated gradients, leave-one-out.

Every function takes a model in eval mode and a batch (a dict with `input_ids`, `attention_mask` and, for
pair models, `token_type_ids`; right-padded) and scores the positions that attention may weigh
(`encoder_outputs.attention_scores_mask`: the valid tokens, or the first segment of a pair). Padding and
`<sep>` get 0; `<unk>` is a word like any other. ŷ is the probability of the class the model predicts on
the clean input.

Attention is held fixed (detached) for the gradient and integrated-gradients scores, as in Jain & Wallace
(2019): the encoder runs once with differentiable embeddings, and the head is re-run on its states
(`encoder_outputs=`) with pre-softmax scores `log(a)`, where `a` are the clean attention weights detached,
so the pooling weights are constants equal to `a` and gradients reach the embeddings only through the
BiLSTM states.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "candidate_mask")


def _model_inputs(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if model.training:
        raise ValueError("the model is in training mode (dropout on): call model.eval() before scoring tokens")
    if "input_ids" not in batch:
        raise ValueError(f"the batch needs `input_ids`; it has {sorted(batch)}")
    device = model.get_input_embeddings().weight.device
    return {k: torch.as_tensor(batch[k]).to(device) for k in MODEL_INPUTS if batch.get(k) is not None}


def _fixed_attention_probs(
    model: nn.Module, inputs_embeds: torch.Tensor, inputs: dict[str, torch.Tensor], attention: torch.Tensor
) -> torch.Tensor:
    """Class probabilities `(batch_size, num_labels)` from `inputs_embeds` with attention weights fixed to `attention`."""
    encoded = model(inputs_embeds=inputs_embeds, **{k: v for k, v in inputs.items() if k != "input_ids"})
    encoder_outputs = encoded.encoder_outputs
    encoder_outputs.attention_scores = attention.detach().log()  # softmax(log a) = a; -inf where a = 0
    outputs = model(encoder_outputs=encoder_outputs, candidate_mask=inputs.get("candidate_mask"))
    return outputs.logits.softmax(-1)


def _clean_pass(model: nn.Module, inputs: dict[str, torch.Tensor]):
    """Clean attention `(B, T)`, scored positions `(B, T)` bool, predicted class `(B,)`, its probability `(B,)`."""
    with torch.no_grad():
        outputs = model(**inputs)
    probs = outputs.logits.softmax(-1)
    predicted = probs.argmax(-1)
    return (
        outputs.attentions,
        outputs.encoder_outputs.attention_scores_mask,
        predicted,
        probs.gather(1, predicted[:, None]).squeeze(1),
    )


def normalize_importance(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Scale non-negative `scores` `(batch_size, sequence_length)` to sum to 1 over `mask`; 0 outside it.

    A row whose scores are all 0 stays 0.
    """
    scores = scores.masked_fill(~mask, 0.0)
    total = scores.sum(-1, keepdim=True)
    return torch.where(total > 0, scores / total.clamp_min(torch.finfo(scores.dtype).tiny), scores)


def gradient_importance(
    model: nn.Module, batch: Mapping[str, torch.Tensor], normalize: bool = True
) -> torch.Tensor:
    """Jain & Wallace's gradient importance `|∇_{w_t} ŷ · w_t|` with attention held fixed.

    One forward and one backward per batch (the gradient of `Σ_b ŷ_b`: examples do not interact).

    Args:
        model: a `BiLSTMAttentionForSequenceClassification` (or answer-selection) model in eval mode.
        batch: `input_ids`, `attention_mask` `(batch_size, sequence_length)` and, for pair models,
            `token_type_ids`.
        normalize: scale each example's scores to sum to 1 over its attended tokens.

    Returns:
        `torch.FloatTensor` of shape `(batch_size, sequence_length)`: 0 outside the attended positions.
    """
    inputs = _model_inputs(model, batch)
    attention, mask, predicted, _ = _clean_pass(model, inputs)
    embeds = model.get_input_embeddings()(inputs["input_ids"]).detach().requires_grad_(True)
    with torch.enable_grad():
        probs = _fixed_attention_probs(model, embeds, inputs, attention)
        (grad,) = torch.autograd.grad(probs.gather(1, predicted[:, None]).sum(), embeds)
    scores = (grad * embeds.detach()).sum(-1).abs().masked_fill(~mask, 0.0)
    return normalize_importance(scores, mask) if normalize else scores


def _integrated_gradients(
    model: nn.Module, inputs: dict[str, torch.Tensor], n_steps: int, internal_batch_size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed IG scores `(B, T)` and scored positions `(B, T)` (see `integrated_gradients_attributions`)."""
    from captum.attr import IntegratedGradients

    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    attention, mask, predicted, _ = _clean_pass(model, inputs)
    names = sorted(k for k in inputs if k != "input_ids")

    def forward(embeds: torch.Tensor, attention: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        return _fixed_attention_probs(model, embeds, dict(zip(names, tensors, strict=True)), attention)

    embeds = model.get_input_embeddings()(inputs["input_ids"]).detach()
    with torch.enable_grad():
        attributions = IntegratedGradients(forward).attribute(
            embeds,
            baselines=embeds * ~mask.unsqueeze(-1),  # attended tokens zeroed, the rest (hypothesis) kept
            target=predicted,
            additional_forward_args=(attention, *(inputs[k] for k in names)),
            n_steps=n_steps,
            internal_batch_size=internal_batch_size,
        )
    return attributions.sum(-1).masked_fill(~mask, 0.0), mask


def integrated_gradients_attributions(
    model: nn.Module, batch: Mapping[str, torch.Tensor], n_steps: int = 50, internal_batch_size: int | None = None
) -> torch.Tensor:
    """Signed integrated gradients of ŷ per token (summed over the embedding), attention held fixed.

    Uses captum's `IntegratedGradients` on the word embeddings, from a baseline whose attended tokens have
    the all-zero (padding) embedding to the input; for pair models the second segment keeps its
    embeddings, so the scores account for the premise/passage only. The clean attention weights enter as an
    additional forward argument, so captum expands them along with its interpolation steps. Completeness:
    an example's scores sum to `ŷ(x) - ŷ(baseline)` up to the integration error.

    Returns:
        `torch.FloatTensor` of shape `(batch_size, sequence_length)`: 0 outside the attended positions.
    """
    return _integrated_gradients(model, _model_inputs(model, batch), n_steps, internal_batch_size)[0]


def integrated_gradients_importance(
    model: nn.Module, batch: Mapping[str, torch.Tensor], n_steps: int = 50, internal_batch_size: int | None = None
) -> torch.Tensor:
    """`|integrated gradients|` per token (see `integrated_gradients_attributions`), summing to 1 per example.

    Returns:
        `torch.FloatTensor` of shape `(batch_size, sequence_length)`: 0 outside the attended positions.
    """
    attributions, mask = _integrated_gradients(model, _model_inputs(model, batch), n_steps, internal_batch_size)
    return normalize_importance(attributions.abs(), mask)


def leave_one_out_attributions(
    model: nn.Module, batch: Mapping[str, torch.Tensor], chunk_size: int = 256
) -> torch.Tensor:
    """Leave-one-out: `ŷ(x) - ŷ(x without token t)`, removing the token from the sequence and re-running the model.

    The shorter sequence is re-encoded (attention is recomputed over the remaining tokens); ŷ is the
    probability of the class predicted on the full input. A segment of one token cannot lose it: that
    token's score is 0. Reduced sequences run in batches of `chunk_size`.

    Returns:
        `torch.FloatTensor` of shape `(batch_size, sequence_length)`: 0 outside the attended positions.
    """
    return _leave_one_out(model, _model_inputs(model, batch), chunk_size)[0]


def _leave_one_out(
    model: nn.Module, inputs: dict[str, torch.Tensor], chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed leave-one-out scores `(B, T)` and scored positions `(B, T)` (see `leave_one_out_attributions`)."""
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    _, mask, predicted, clean = _clean_pass(model, inputs)
    valid = inputs.get("attention_mask", inputs["input_ids"] != model.config.pad_token_id).bool()
    # One reduced example per (example, removable position): drop column t and shift the rest left.
    removable = mask & (mask.sum(-1, keepdim=True) > 1)
    rows, cols = removable.nonzero(as_tuple=True)
    scores = torch.zeros(mask.shape, dtype=clean.dtype, device=clean.device)
    seq_len = mask.shape[1]
    positions = torch.arange(seq_len - 1, device=mask.device)
    for start in range(0, rows.numel(), chunk_size):
        r, c = rows[start : start + chunk_size], cols[start : start + chunk_size]
        keep = positions[None, :] + (positions[None, :] >= c[:, None]).long()  # (N, T - 1) source columns
        reduced = {k: v[r].gather(1, keep) for k, v in inputs.items() if k != "candidate_mask"}
        reduced["attention_mask"] = valid[r].gather(1, keep).long()
        if "candidate_mask" in inputs:
            reduced["candidate_mask"] = inputs["candidate_mask"][r]
        with torch.no_grad():
            probs = model(**reduced).logits.softmax(-1)
        scores[r, c] = clean[r] - probs.gather(1, predicted[r][:, None]).squeeze(1)
    return scores, mask


def leave_one_out_importance(
    model: nn.Module, batch: Mapping[str, torch.Tensor], chunk_size: int = 256
) -> torch.Tensor:
    """`|leave-one-out change in ŷ|` per token (see `leave_one_out_attributions`), summing to 1 per example.

    Returns:
        `torch.FloatTensor` of shape `(batch_size, sequence_length)`: 0 outside the attended positions.
    """
    scores, mask = _leave_one_out(model, _model_inputs(model, batch), chunk_size)
    return normalize_importance(scores.abs(), mask)


IMPORTANCE_METHODS = {
    "gradient": gradient_importance,
    "integrated_gradients": integrated_gradients_importance,
    "leave_one_out": leave_one_out_importance,
}
