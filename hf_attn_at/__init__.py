"""hf_attn_at: adversarial training on attention for Hugging Face Transformers."""

from .tokenization import build_word_tokenizer, jain_wallace_tokenize

__all__ = ["build_word_tokenizer", "jain_wallace_tokenize"]
