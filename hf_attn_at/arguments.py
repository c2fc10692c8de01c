"""`HfArgumentParser` dataclasses shared by the CLI and the examples: model and data arguments.

The training arguments are [`AdversarialTrainingArguments`] (`hf_attn_at.training_args`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .data import SOURCES, TASKS
from .models.bilstm_attention.configuration_bilstm_attention import ATTENTION_TYPES


@dataclass
class ModelArguments:
    """Which model to train: a new BiLSTM + attention model (SPEC §1 sizes) or a saved one."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue from a saved hf_attn_at model folder (its tokenizer is reused)."}
    )
    embedding_size: int = field(default=300, metadata={"help": "Word embedding size E."})
    hidden_size: int = field(default=128, metadata={"help": "LSTM hidden size H per direction."})
    attention_hidden_size: int = field(default=128, metadata={"help": "Additive attention hidden size."})
    attention_type: str = field(
        default="additive", metadata={"help": "Attention scorer.", "choices": list(ATTENTION_TYPES)}
    )
    dropout: float = field(default=0.0, metadata={"help": "Dropout on embeddings and pooled states."})
    word_vectors: str | None = field(
        default=None, metadata={"help": "GloVe/fastText text file to initialise the embeddings from."}
    )


@dataclass
class DataArguments:
    """Which data to train and evaluate on: one of the paper's tasks (Hub or local files)."""

    task_name: str = field(default="sst", metadata={"help": "Dataset.", "choices": list(TASKS)})
    data_source: str = field(
        default="hub",
        metadata={"help": "'hub' (datasets.load_dataset) or 'local' (original files under --data_dir).",
                  "choices": list(SOURCES)},
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with sst/, imdb/, ... for --data_source local (e.g. ../shared/data)."}
    )
    babi_size: str = field(default="10k", metadata={"help": "bAbI tasks: '10k' (the paper's) or '1k'.",
                                                     "choices": ["10k", "1k"]})
    min_df: int | None = field(
        default=None, metadata={"help": "Vocabulary minimum document frequency (default: the SPEC's per task)."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep the first N training examples (after a seeded shuffle)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N validation examples."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Keep the first N test examples."})
    labelled_fraction: float | None = field(
        default=None,
        metadata={"help": "Semi-supervised: keep the labels of a seeded fraction (0, 1] of the training examples and "
                          "set the others to -100 (train with --adv_method attention_vat or attention_ivat)."},
    )
    explain_max_samples: int | None = field(
        default=None, metadata={"help": "Attention-gradient agreement on the first N test examples (default: all)."}
    )

    def __post_init__(self):
        for name in ("max_train_samples", "max_eval_samples", "max_test_samples", "explain_max_samples", "min_df"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be a positive integer, got {value!r}")
        if self.labelled_fraction is not None and not 0 < self.labelled_fraction <= 1:
            raise ValueError(f"--labelled_fraction must be in (0, 1], got {self.labelled_fraction!r}")
        if self.data_source == "local" and self.data_dir is None:
            raise ValueError("--data_source local needs --data_dir (the folder holding sst/, imdb/, ...)")
