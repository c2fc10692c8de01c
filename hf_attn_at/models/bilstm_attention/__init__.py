"""BiLSTM + attention models; importing this package registers them with the Auto classes."""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from .configuration_bilstm_attention import BiLSTMAttentionConfig
from .modeling_bilstm_attention import (
    BiLSTMAttentionEncoderOutput,
    BiLSTMAttentionForAnswerSelection,
    BiLSTMAttentionForSequenceClassification,
    BiLSTMAttentionModel,
    BiLSTMAttentionModelOutput,
    BiLSTMAttentionPreTrainedModel,
    BiLSTMAttentionSequenceClassifierOutput,
)

# Installed library: the Auto classes resolve the model type locally.
AutoConfig.register(BiLSTMAttentionConfig.model_type, BiLSTMAttentionConfig, exist_ok=True)
AutoModel.register(BiLSTMAttentionConfig, BiLSTMAttentionModel, exist_ok=True)
AutoModelForSequenceClassification.register(
    BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, exist_ok=True
)
# Hub code: save_pretrained copies the two model files and writes `auto_map`.
BiLSTMAttentionConfig.register_for_auto_class()
BiLSTMAttentionModel.register_for_auto_class("AutoModel")
BiLSTMAttentionForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
BiLSTMAttentionForAnswerSelection.register_for_auto_class("AutoModelForSequenceClassification")
AUTO_MODEL_CLASS = "modeling_bilstm_attention.BiLSTMAttentionModel"


def add_auto_model(config: BiLSTMAttentionConfig) -> None:
    """Add `auto_map["AutoModel"]` to `config`: `save_pretrained` writes the saved class's own entry (and
    `AutoConfig`) and keeps the others, so every folder a head model is then saved to (checkpoints, the final run
    folder, an export) also loads its body with `AutoModel.from_pretrained(folder, trust_remote_code=True)`."""
    config.auto_map = {**(getattr(config, "auto_map", None) or {}), "AutoModel": AUTO_MODEL_CLASS}

__all__ = [
    "AUTO_MODEL_CLASS",
    "BiLSTMAttentionConfig",
    "BiLSTMAttentionEncoderOutput",
    "BiLSTMAttentionForAnswerSelection",
    "BiLSTMAttentionForSequenceClassification",
    "BiLSTMAttentionModel",
    "BiLSTMAttentionModelOutput",
    "BiLSTMAttentionPreTrainedModel",
    "BiLSTMAttentionSequenceClassifierOutput",
    "add_auto_model",
]
