"""Adversarial training on the attention of models from other libraries.

Importing `transformer_attention` registers the `"hf_attn_at_eager"` attention implementation with Transformers.
"""

from .transformer_attention import (
    ATTENTION_IMPLEMENTATION,
    SUPPORTED_MODEL_TYPES,
    AttentionAdversary,
    adversarial_attention,
    adversarial_attention_forward,
    check_supported,
    transformer_attention_perturbation,
    transformer_attention_step,
)

__all__ = [
    "ATTENTION_IMPLEMENTATION",
    "SUPPORTED_MODEL_TYPES",
    "AttentionAdversary",
    "adversarial_attention",
    "adversarial_attention_forward",
    "check_supported",
    "transformer_attention_perturbation",
    "transformer_attention_step",
]
