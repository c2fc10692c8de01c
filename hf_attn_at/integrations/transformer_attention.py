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

from ..methods import METHODS, AdversarialMethod
from ..perturbations import DIRECTIONS, DirectionInputs, Perturbation
from ..training_args import AttentionNorm

ATTENTION_IMPLEMENTATION = "hf_attn_at_eager"
ADVERSARY_KWARG = "attention_adversary"
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "albert", "distilbert")
# The registry's `transformer_encoders` methods; any other (word, virtual, attention_iat_released) is rejected.
_SUPPORTED_METHODS = tuple(name for name, spec in METHODS.items() if spec.transformer_encoders)

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
            # Added in at least float32: on the bf16/fp16 grid of the logits (autocast) a small r rounds away.
            work = torch.promote_types(logits.dtype, torch.float32)
            logits = logits.to(work) + perturbations[layer].to(work)
    if attention_mask is not None:
        logits = logits + attention_mask
    weights = nn.functional.softmax(logits, dim=-1)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights.to(value.dtype), value).transpose(1, 2).contiguous()
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
    layer's own additive mask (above half its dtype's lowest value: a position bias in the mask is allowed)."""
    logits = torch.stack([layer.detach() for layer in adversary.logits], dim=1)  # (B, L, H, Tq, Tk)
    batch_size, _, _, q_len, k_len = logits.shape
    if attention_mask is None:
        valid = torch.ones(batch_size, 1, 1, q_len, k_len, dtype=torch.bool, device=logits.device)
    else:
        tokens = attention_mask.bool().to(logits.device)
        valid = (tokens[:, :q_len, None] & tokens[:, None, :k_len])[:, None, None]  # (B, 1, 1, Tq, Tk)
    allowed = [
        torch.ones(batch_size, 1, q_len, k_len, dtype=torch.bool, device=logits.device) if mask is None
        else mask > torch.finfo(mask.dtype).min / 2
        for mask in adversary.masks
    ]
    return valid & torch.stack(allowed, dim=1).expand(-1, -1, -1, q_len, k_len)  # (B, L, 1|H, Tq, Tk)


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
        method (`str`): a method registered with `transformer_encoders` (`attention_rp`, `attention_at`,
            `attention_iat`); its direction comes from `perturbations.DIRECTIONS`.
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
    if method.value not in _SUPPORTED_METHODS:
        raise ValueError(
            f"`method` must be {', '.join(_SUPPORTED_METHODS[:-1])} or {_SUPPORTED_METHODS[-1]}, got {method.value!r}"
        )
    if method.spec.gradient and grad is None:
        raise ValueError(f"method={method.value!r} needs `grad`, the loss gradient with respect to the logits")
    batch_size, num_layers, num_heads, q_len, k_len = logits.shape
    # (B, L, H, Tq, Tk) -> (B, G, D): one group per layer-head, or one group of all layer-heads.
    per_group = norm == AttentionNorm.PER_LAYER_HEAD
    group_shape = (batch_size, num_layers * num_heads, q_len * k_len) if per_group else (batch_size, 1, -1)
    inputs = DirectionInputs(logits.detach().reshape(group_shape), mask.bool().expand(logits.shape).reshape(group_shape),
                             iat_normalize)
    perturbation = DIRECTIONS[method.value](inputs, None if grad is None else grad.reshape(group_shape), epsilon)
    unit_shape = (batch_size * num_layers * num_heads, q_len * k_len) if per_group else (batch_size, -1)
    return Perturbation(perturbation.delta.reshape(unit_shape), perturbation.num_zeroed)


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
        if method.spec.gradient:
            grads = torch.autograd.grad(outputs.loss, clean.logits, retain_graph=True)
            grad = torch.stack(grads, dim=1)
        mask = logits_mask(clean, inputs.get("attention_mask"))
        perturbation = transformer_attention_perturbation(method, logits, grad, mask, epsilon, norm, iat_normalize)
        per_layer = perturbation.delta.view_as(logits).unbind(1)
        adv_outputs = unwrapped(**inputs, **{ADVERSARY_KWARG: AttentionAdversary(perturbations=list(per_layer))})
    return outputs, adv_outputs, perturbation
