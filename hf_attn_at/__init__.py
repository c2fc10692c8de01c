"""hf_attn_at: adversarial training on attention for Hugging Face Transformers.

Importing the package registers the BiLSTM + attention models with the Auto classes.
"""

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
from .word_vectors import load_word_vectors

__version__ = "0.1.0"

__all__ = [
    "BiLSTMAttentionConfig",
    "BiLSTMAttentionEncoderOutput",
    "BiLSTMAttentionForAnswerSelection",
    "BiLSTMAttentionForSequenceClassification",
    "BiLSTMAttentionModel",
    "BiLSTMAttentionModelOutput",
    "BiLSTMAttentionPreTrainedModel",
    "BiLSTMAttentionSequenceClassifierOutput",
    "build_word_tokenizer",
    "jain_wallace_tokenize",
    "load_word_vectors",
]
