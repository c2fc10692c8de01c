"""Attention RP / AT / iAT on the self-attention logits of Transformers encoders (BERT, RoBERTa, DistilBERT, ...).

Nothing of the model is forked or patched: an attention function is registered with Transformers' pluggable
attention interface under the name [`ATTENTION_IMPLEMENTATION`] (`"hf_attn_at_eager"`). It computes eager attention
and reads one extra keyword argument, `attention_adversary` (an [`AttentionAdversary`]), that the model forwards
from its `forward(**kwargs)` down to every attention function: each call appends its pre-softmax logits
`(batch_size, num_heads, query_length, key_length)` (before the padding mask) and its additive mask to it and, in
the adversarial pass, adds the layer's perturbation to the logits before the mask is added. Layers are numbered in
call order, so shared layers (ALBERT) count once per application.

[`adversarial_attention`] switches a model to this implementation and restores the previous one (`sdpa` or
`eager`), so inference and `save_pretrained` keep the stock implementation. [`transformer_attention_step`] is the
training step used by [`~hf_attn_at.AdversarialTrainer`]:

1. clean forward with the adversary → `L` and the logits `ã` of every layer;
2. AT/iAT: `g = ∂L/∂ã` by `torch.autograd.grad(L, ã, retain_graph=True)` (no probe pass, no parameter `.grad`);
3. `r` from `g` (detached, zero on masked logits), normalised per example and per layer-head (`per_layer_head`)
   or over all layer-heads of the example (`global`);
4. a second full forward with `r` added to the logits → `L_adv`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from ..perturbations import Perturbation, gradient_perturbation, random_perturbation
from ..training_args import AdversarialMethod, AttentionNorm

ATTENTION_IMPLEMENTATION = "hf_attn_at_eager"
ADVERSARY_KWARG = "attention_adversary"
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "albert", "distilbert")
# Named one by one: any other method (word, virtual, the diagnostic attention_iat_released) is rejected.
_SUPPORTED_METHODS = (AdversarialMethod.ATTENTION_RP, AdversarialMethod.ATTENTION_AT, AdversarialMethod.ATTENTION_IAT)

__all__ = [
    "ADVERSARY_KWARG",
    "ATTENTION_IMPLEMENTATION",
    "SUPPORTED_MODEL_TYPES",
    "AttentionAdversary",
    "adversarial_attention",
    "adversarial_attention_forward",
    "check_supported",
    "logits_mask",
    "transformer_attention_perturbation",
    "transformer_attention_step",
]


@dataclass
class AttentionAdversary:
    """State of one forward pass, passed as `attention_adversary=` and filled by the attention function.

    Args:
        perturbations (`list[torch.Tensor]`, *optional*):
            Per layer, `(batch_size, num_heads, query_length, key_length)`: added to that layer's logits.
        logits (`list[torch.Tensor]`):
            Filled per layer with the pre-softmax logits `(batch_size, num_heads, query_length, key_length)`
            (scaled `QKᵀ`, before the mask and the perturbation; part of the autograd graph).
        masks (`list[torch.Tensor | None]`):
            Filled per layer with the additive mask the layer received (`(batch_size, 1, query_length, key_length)`,
            0 where attention is allowed), or `None` when the model passed no mask.
    """

    perturbations: list[torch.Tensor] | None = None
    logits: list[torch.Tensor] = field(default_factory=list)
    masks: list[torch.Tensor | None] = field(default_factory=list)


def adversarial_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    attention_adversary: AttentionAdversary | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention (as BERT's `eager_attention_forward`) that exposes and perturbs the logits.

    `query` is `(batch_size, num_heads, query_length, head_dim)`, `key` and `value`
    `(batch_size, num_heads, key_length, head_dim)`. Returns the output `(batch_size, query_length, num_heads,
    head_dim)` and the attention weights `(batch_size, num_heads, query_length, key_length)`. Without
    `attention_adversary` it computes exactly the eager attention.
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    logits = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, H, Tq, Tk)
    if attention_adversary is not None:
        layer = len(attention_adversary.logits)
        attention_adversary.logits.append(logits)
        attention_adversary.masks.append(attention_mask)
        perturbations = attention_adversary.perturbations
        if perturbations is not None:
            if layer >= len(perturbations):
                raise ValueError(
                    f"the model called its attention {layer + 1} times but {len(perturbations)} perturbations were given"
                )
            logits = logits + perturbations[layer].to(logits.dtype)
    if attention_mask is not None:
        logits = logits + attention_mask
    weights = nn.functional.softmax(logits, dim=-1)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


AttentionInterface.register(ATTENTION_IMPLEMENTATION, adversarial_attention_forward)
AttentionMaskInterface.register(ATTENTION_IMPLEMENTATION, eager_mask)


def check_supported(model: nn.Module) -> None:
    """Raise a `ValueError` unless `model` is an encoder whose attention goes through Transformers' attention
    interface (so that [`adversarial_attention`] can switch it)."""
    name = type(model).__name__
    if not isinstance(model, PreTrainedModel):
        raise ValueError(
            f"{name} is not a transformers PreTrainedModel: attention adversarial training supports the BiLSTM-attention "
            f"models and Transformers encoders using the attention interface ({', '.join(SUPPORTED_MODEL_TYPES)})"
        )
    config = model.config
    if getattr(config, "is_decoder", False) or getattr(config, "is_encoder_decoder", False):
        raise ValueError(
            f"{name} (model_type={config.model_type!r}) is a decoder or encoder-decoder: only encoders' self-attention "
            f"can be perturbed (supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
        )
    if not (type(model)._supports_attention_backend and model._can_set_attn_implementation()):
        raise ValueError(
            f"{name} (model_type={config.model_type!r}) does not use Transformers' attention interface, so its attention "
            f"logits cannot be perturbed; supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )


@contextmanager
def adversarial_attention(model: PreTrainedModel) -> Iterator[PreTrainedModel]:
    """Switch `model` to the `"hf_attn_at_eager"` attention implementation inside the block, and restore the
    previous implementation on exit (also on error)."""
    check_supported(model)
    previous = model.config._attn_implementation
    if previous == ATTENTION_IMPLEMENTATION:
        yield model
        return
    model.set_attn_implementation(ATTENTION_IMPLEMENTATION)
    try:
        yield model
    finally:
        model.set_attn_implementation(previous)


def logits_mask(adversary: AttentionAdversary, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Valid logits `(batch_size, num_layers, num_heads, query_length, key_length)` of a filled adversary: query and
    key both valid in `attention_mask` `(batch_size, sequence_length)` (all valid if `None`) and allowed by the
    layer's own additive mask."""
    logits = torch.stack([layer.detach() for layer in adversary.logits], dim=1)  # (B, L, H, Tq, Tk)
    batch_size, _, _, q_len, k_len = logits.shape
    if attention_mask is None:
        valid = torch.ones(batch_size, 1, 1, q_len, k_len, dtype=torch.bool, device=logits.device)
    else:
        tokens = attention_mask.bool().to(logits.device)
        valid = (tokens[:, :q_len, None] & tokens[:, None, :k_len])[:, None, None]  # (B, 1, 1, Tq, Tk)
    allowed = [
        torch.ones(batch_size, 1, q_len, k_len, dtype=torch.bool, device=logits.device) if mask is None else mask == 0
        for mask in adversary.masks
    ]
    return valid & torch.stack(allowed, dim=1).expand(-1, -1, -1, q_len, k_len)  # (B, L, 1|H, Tq, Tk)


def _masked_iat(
    scores: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, epsilon: float, normalize: bool, per_group: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention iAT (SPEC §2.1) on `G` groups of `D` logits per example, without materialising the `(B, B, G, D)`
    differences: every quantity is an inner product computed by a matrix product (float64).

    `scores`, `grad`, `mask` are `(G, B, D)`. `per_group`: directions `d_ij`, weights and `α` per group (the same as
    [`~hf_attn_at.perturbations.attention_iat_perturbation`] on each group); otherwise over the concatenation of the
    groups (the same as that function on `(B, G·D)`). Returns `r` `(G, B, D)` and zeroed units (`(G, B)` or `(B,)`).
    """
    m = mask.to(torch.float64)
    finite = torch.isfinite(grad).all(-1)  # (G, B)
    if not per_group:
        finite = finite.all(0, keepdim=True).expand_as(finite)
    s = torch.where(mask, scores.to(torch.float64), 0.0)
    g = torch.where(mask & finite.unsqueeze(-1), grad.to(torch.float64), 0.0)
    # ⟨D_ij, g_i⟩ = ⟨s_i, g_i⟩ − ⟨s_j, g_i⟩ and ‖D_ij‖² = ‖s_i‖² − 2⟨s_i, s_j⟩ + ⟨m_i, s_j²⟩ (D_ij = (s_i − s_j) ⊙ m_i).
    dots = (s * g).sum(-1).unsqueeze(-1) - g @ s.transpose(1, 2)  # (G, B, B)
    own = (s * s).sum(-1).unsqueeze(-1)
    other = m @ (s * s).transpose(1, 2)
    norm2 = own - 2 * s @ s.transpose(1, 2) + other
    tiny = 1e-12 * (own + other)  # below this the difference is cancellation noise: D_ij = 0
    if not per_group:
        dots, norm2, tiny = dots.sum(0, keepdim=True), norm2.sum(0, keepdim=True), tiny.sum(0, keepdim=True)
    not_self = ~torch.eye(s.shape[1], dtype=torch.bool, device=s.device)
    valid = (norm2 > tiny) & not_self
    norm = torch.where(valid, norm2, 1.0).sqrt()
    weights = torch.where(valid, dots / norm, 0.0)  # g_ij = ⟨d_ij, g_i⟩: (G|1, B, B)
    weight_norm = torch.linalg.vector_norm(weights, dim=-1, keepdim=True)
    ok = (weight_norm > 0) & torch.isfinite(weight_norm)
    alpha = torch.where(ok, epsilon * weights / torch.where(ok, weight_norm, 1.0), 0.0)
    coefficients = torch.where(valid, alpha / norm, 0.0)  # r_i = Σ_j c_ij (s_i − s_j) ⊙ m_i
    delta = m * (s * coefficients.sum(-1, keepdim=True) - coefficients @ s)  # (G, B, D)
    zeroed = ~ok.squeeze(-1) | ~finite[: ok.shape[0]]
    if normalize:
        dims = (-1,) if per_group else (0, -1)
        delta_norm = torch.linalg.vector_norm(delta, dim=dims, keepdim=True)
        ok = (delta_norm > 0) & torch.isfinite(delta_norm)
        delta = torch.where(ok, epsilon * delta / torch.where(ok, delta_norm, 1.0), 0.0)
        zeroed = zeroed | ~ok.reshape(zeroed.shape)
    return delta, zeroed.squeeze(0)


def transformer_attention_perturbation(
    method: AdversarialMethod | str,
    logits: torch.Tensor,
    grad: torch.Tensor | None,
    mask: torch.Tensor,
    epsilon: float,
    norm: AttentionNorm | str = AttentionNorm.PER_LAYER_HEAD,
    iat_normalize: bool = False,
) -> Perturbation:
    """Attention RP / AT / iAT on the logits of all layers and heads, per example.

    Args:
        method (`str`): `attention_rp`, `attention_at` or `attention_iat`.
        logits (`torch.Tensor` of shape `(batch_size, num_layers, num_heads, query_length, key_length)`):
            The clean pre-softmax logits ã.
        grad (`torch.Tensor` of the same shape, *optional*): ∂L/∂ã (not needed for RP).
        mask (`torch.Tensor`, bool, broadcastable to `logits`): the valid logits; r is 0 elsewhere.
        epsilon (`float`): ε.
        norm (`str`, *optional*, defaults to `"per_layer_head"`): `per_layer_head` takes the norm (and, for iAT, the
            directions) over each layer-head's valid logits of the example, so every layer-head gets ‖r‖ = ε;
            `global` takes them over all layers and heads of the example together.
        iat_normalize (`bool`, *optional*, defaults to `False`): iAT: rescale each unit's r to norm ε.

    Returns a [`Perturbation`] whose `delta` is laid out per normalisation unit: `(batch_size * num_layers *
    num_heads, query_length * key_length)` for `per_layer_head`, `(batch_size, num_layers * num_heads *
    query_length * key_length)` for `global`; `num_zeroed` counts units (layer-heads of an example, or examples).
    Use `delta.view_as(logits)` for the per-layer tensors.
    """
    method, norm = AdversarialMethod(method), AttentionNorm(norm)
    if method not in _SUPPORTED_METHODS:
        raise ValueError(f"`method` must be attention_rp, attention_at or attention_iat, got {method.value!r}")
    batch_size, num_layers, num_heads, q_len, k_len = logits.shape
    per_group = norm == AttentionNorm.PER_LAYER_HEAD
    unit_shape = (batch_size * num_layers * num_heads, q_len * k_len) if per_group else (batch_size, -1)
    mask = mask.bool().expand(logits.shape)
    if method == AdversarialMethod.ATTENTION_RP:
        return random_perturbation(mask.reshape(unit_shape), epsilon, dtype=logits.dtype)
    if grad is None:
        raise ValueError(f"method={method.value!r} needs `grad`, the loss gradient with respect to the logits")
    if method == AdversarialMethod.ATTENTION_AT:
        return gradient_perturbation(grad.reshape(unit_shape), mask.reshape(unit_shape), epsilon)
    # attention_iat, the only method left in _SUPPORTED_METHODS.
    if not epsilon > 0:
        raise ValueError(f"`epsilon` must be > 0, got {epsilon!r}")

    def groups(tensor: torch.Tensor) -> torch.Tensor:  # (B, L, H, Tq, Tk) -> (L·H, B, Tq·Tk)
        return tensor.reshape(batch_size, num_layers * num_heads, q_len * k_len).transpose(0, 1)

    delta, zeroed = _masked_iat(groups(logits.detach()), groups(grad.detach()), groups(mask), epsilon, iat_normalize, per_group)
    delta = delta.transpose(0, 1).reshape(unit_shape).to(logits.dtype)
    return Perturbation(delta, zeroed.sum())


def transformer_attention_step(
    model: nn.Module,
    unwrapped: PreTrainedModel,
    inputs: dict[str, Any],
    method: AdversarialMethod,
    epsilon: float,
    norm: AttentionNorm = AttentionNorm.PER_LAYER_HEAD,
    iat_normalize: bool = False,
) -> tuple[Any, Any, Perturbation]:
    """One adversarial step on a Transformers encoder: clean forward of `model` (possibly wrapped) → `L`, the
    perturbation from `g = ∂L/∂ã`, an adversarial forward of `unwrapped` → `L_adv`.

    Returns the clean outputs, the adversarial outputs and the [`Perturbation`] (laid out as in
    [`transformer_attention_perturbation`]).
    """
    if ADVERSARY_KWARG in inputs:
        raise ValueError(f"the batch must not contain `{ADVERSARY_KWARG}`: it is set by the trainer")
    with adversarial_attention(unwrapped):
        clean = AttentionAdversary()
        outputs = model(**inputs, **{ADVERSARY_KWARG: clean})
        num_layers = unwrapped.config.num_hidden_layers
        if len(clean.logits) == 0 or len(clean.logits) % num_layers:
            raise ValueError(
                f"{type(unwrapped).__name__} (model_type={unwrapped.config.model_type!r}) called the attention function "
                f"with `{ADVERSARY_KWARG}` {len(clean.logits)} times for {num_layers} layers: it does not forward its "
                f"keyword arguments to the attention interface; supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        if outputs.loss is None:
            raise ValueError("the model returned no loss: the batch needs `labels` for adversarial training")
        logits = torch.stack([layer.detach() for layer in clean.logits], dim=1)  # (B, L, H, Tq, Tk)
        grad = None
        if method != AdversarialMethod.ATTENTION_RP:
            grads = torch.autograd.grad(outputs.loss, clean.logits, retain_graph=True)
            grad = torch.stack(grads, dim=1)
        mask = logits_mask(clean, inputs.get("attention_mask"))
        perturbation = transformer_attention_perturbation(method, logits, grad, mask, epsilon, norm, iat_normalize)
        per_layer = perturbation.delta.view_as(logits).unbind(1)
        adv_outputs = unwrapped(**inputs, **{ADVERSARY_KWARG: AttentionAdversary(perturbations=list(per_layer))})
    return outputs, adv_outputs, perturbation
