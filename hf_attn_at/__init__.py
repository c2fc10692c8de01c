"""hf_attn_at: adversarial training on attention for Hugging Face Transformers.

Importing the package registers the BiLSTM + attention models with the Auto classes.
"""

from ._version import __version__
from .arguments import DataArguments, ModelArguments
from .data import LoadedData, load_data, load_task, prepare_task, tokenize_dataset
from .experiment import build_model, prepare_run_folder
from .hub import export_for_hub
from .interpret import attention_agreement, explain_model, gradient_importance
from .metrics import compute_metrics, metric_path
from .model_card import ModelCardCallback, build_model_card
from .models.bilstm_attention import (
    BiLSTMAttentionConfig,
    BiLSTMAttentionEncoderOutput,
    BiLSTMAttentionForAnswerSelection,
    BiLSTMAttentionForSequenceClassification,
    BiLSTMAttentionModel,
    BiLSTMAttentionModelOutput,
    BiLSTMAttentionPreTrainedModel,
    BiLSTMAttentionSequenceClassifierOutput,
)
from .tokenization import build_word_tokenizer, jain_wallace_tokenize
from .trainer import AdversarialTrainer
from .training_args import AdversarialMethod, AdversarialTrainingArguments
from .word_vectors import load_word_vectors

__all__ = [
    "__version__",
    "AdversarialMethod",
    "AdversarialTrainer",
    "AdversarialTrainingArguments",
    "BiLSTMAttentionConfig",
    "BiLSTMAttentionEncoderOutput",
    "BiLSTMAttentionForAnswerSelection",
    "BiLSTMAttentionForSequenceClassification",
    "BiLSTMAttentionModel",
    "BiLSTMAttentionModelOutput",
    "BiLSTMAttentionPreTrainedModel",
    "BiLSTMAttentionSequenceClassifierOutput",
    "DataArguments",
    "LoadedData",
    "ModelArguments",
    "ModelCardCallback",
    "attention_agreement",
    "build_model",
    "build_model_card",
    "build_word_tokenizer",
    "compute_metrics",
    "explain_model",
    "export_for_hub",
    "gradient_importance",
    "jain_wallace_tokenize",
    "load_data",
    "prepare_run_folder",
    "load_task",
    "load_word_vectors",
    "metric_path",
    "prepare_task",
    "tokenize_dataset",
]
