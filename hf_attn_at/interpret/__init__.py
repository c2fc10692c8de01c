"""Interpretability evaluation: token importance, attention agreement, human rationales, reports.

Reads only the models' public outputs. Matplotlib (reports) and captum (integrated gradients) are
imported inside the functions that need them.
"""

from .agreement import attention_agreement, summarize
from .evaluate import Explanation, explain_model
from .importance import (
    IMPORTANCE_METHODS,
    gradient_importance,
    integrated_gradients_attributions,
    integrated_gradients_importance,
    leave_one_out_attributions,
    leave_one_out_importance,
    normalize_importance,
)
from .rationale import load_esnli_rationales, premise_rationale, rationale_agreement
from .transformer import (
    attention_rollout,
    explain_transformer,
    explain_transformer_dataset,
    explain_transformer_examples,
    transformer_attention,
    transformer_gradient_importance,
)

__all__ = [
    "Explanation",
    "IMPORTANCE_METHODS",
    "attention_agreement",
    "attention_rollout",
    "explain_model",
    "explain_transformer",
    "explain_transformer_dataset",
    "explain_transformer_examples",
    "gradient_importance",
    "integrated_gradients_attributions",
    "integrated_gradients_importance",
    "leave_one_out_attributions",
    "leave_one_out_importance",
    "load_esnli_rationales",
    "normalize_importance",
    "premise_rationale",
    "rationale_agreement",
    "summarize",
    "transformer_attention",
    "transformer_gradient_importance",
]
