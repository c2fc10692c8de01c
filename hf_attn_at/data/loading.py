"""One entry point from data settings to tokenized splits: a built-in task or a user's data, capped and
(semi-supervised) partly unlabelled, returned with everything that was resolved on the way ([`LoadedData`]).

The settings are read, never written: whatever is inferred (a custom file's columns, pair or single input, the
label names, the sampled rows) is in the returned [`LoadedData`].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import datasets
from transformers import PreTrainedTokenizerBase

from .custom import load_custom
from .processing import EVAL_SAMPLE_SEED, prepare_dataset, sample_indices, tokenize_dataset
from .registry import get_task, load_task
from .semi_supervised import hide_labels

logger = logging.getLogger(__name__)


class DataSettings(Protocol):
    """What [`load_data`] reads: the fields of `hf_attn_at.arguments.DataArguments` (any object with them)."""

    @property
    def is_custom(self) -> bool:
        """Whether the data are a user's files or Hub dataset (else the built-in `task_name`)."""

    @property
    def dataset_label(self) -> str:
        """The data's name in logs."""

    train_file: str | None
    validation_file: str | None
    test_file: str | None
    dataset_name: str | None
    dataset_config_name: str | None
    text_column: str | None
    text_pair_column: str | None
    label_column: str | None
    validation_split_percentage: int
    task_name: str | None
    data_source: str
    data_dir: str | None
    babi_size: str
    min_df: int | None
    max_train_samples: int | None
    max_eval_samples: int | None
    max_test_samples: int | None
    labelled_fraction: float | None


@dataclass(frozen=True)
class LoadedData:
    """Tokenized splits and what [`load_data`] resolved.

    Args:
        dataset (`datasets.DatasetDict`): ``train``, ``validation`` and the ``test*`` splits, tokenized
            (``input_ids``, ``attention_mask``, ``label``; bAbI adds ``candidate_mask``).
        tokenizer (`PreTrainedTokenizerBase`): the word tokenizer with the vocabulary built on ``train``.
        is_pair (`bool`): whether examples are text pairs (``text`` attended, conditioned on ``text_pair``).
        label_names (`list[str]`): the class names, in label-id order.
        columns (`dict[str, str | None]`, *optional*): for a user's data, the columns used
            (``text_column``, ``text_pair_column``, ``label_column``; inferred ones included); `None` for
            built-in tasks.
        sampled_indices (`dict[str, list[int]]`): for each split capped by a ``max_*_samples`` setting, the
            rows kept (indices into the uncapped split); empty without caps.
    """

    dataset: datasets.DatasetDict
    tokenizer: PreTrainedTokenizerBase
    is_pair: bool
    label_names: list[str]
    columns: dict[str, str | None] | None
    sampled_indices: dict[str, list[int]]

    @property
    def num_examples(self) -> dict[str, int]:
        """The number of examples of each split (after caps)."""
        return {split: len(ds) for split, ds in self.dataset.items()}


def load_data(
    settings: DataSettings, seed: int, tokenizer: PreTrainedTokenizerBase | None = None
) -> LoadedData:
    """The tokenized task (or the user's data) and its tokenizer, with the optional `max_*_samples` caps applied
    and, with `labelled_fraction`, all but a seeded fraction of the training labels set to -100 (evaluation
    splits keep theirs). The vocabulary of custom data uses `min_df` (default 1). `ValueError` for a setting
    that would not be used: `min_df` with a given `tokenizer` (its vocabulary is kept), `max_test_samples` for
    data without a test split.

    Caps keep a seeded sample, never the first rows (files can be sorted by label, as SST's test set is): the
    training split with `seed`, evaluation splits with `EVAL_SAMPLE_SEED`, so every run of a grid sees the same
    evaluation examples.

    Args:
        settings ([`DataSettings`]): e.g. a `DataArguments`; only read.
        seed (`int`): seed of the training sample, of the hidden labels and of a custom validation split.
        tokenizer (`PreTrainedTokenizerBase`, *optional*): encode with this tokenizer (a saved model's) instead of
            a new vocabulary built from the training split.
    """
    if tokenizer is not None and settings.min_df is not None:
        raise ValueError(f"--min_df {settings.min_df} builds a new vocabulary, but the data are encoded with "
                         "the saved model's tokenizer (--model_name_or_path keeps its vocabulary): drop "
                         "--min_df")
    columns = None
    if settings.is_custom:
        raw, resolved = load_custom(
            train_file=settings.train_file, validation_file=settings.validation_file,
            test_file=settings.test_file, dataset_name=settings.dataset_name,
            dataset_config_name=settings.dataset_config_name, text_column=settings.text_column,
            text_pair_column=settings.text_pair_column, label_column=settings.label_column,
            validation_split_percentage=settings.validation_split_percentage, seed=seed, return_columns=True,
        )
        columns = dict(zip(("text_column", "text_pair_column", "label_column"), resolved, strict=True))
        is_pair = columns["text_pair_column"] is not None
        min_df, name = settings.min_df or 1, settings.dataset_label
    else:
        options: dict[str, Any] = {}
        if settings.task_name.startswith("babi"):
            options["babi_size"] = settings.babi_size
        task = get_task(settings.task_name)
        raw = load_task(settings.task_name, source=settings.data_source, data_dir=settings.data_dir, **options)
        is_pair, name = task.is_pair, settings.task_name
        min_df = task.min_df if settings.min_df is None else settings.min_df
    if settings.max_test_samples is not None and not any(split.startswith("test") for split in raw):
        raise ValueError(f"--max_test_samples {settings.max_test_samples} caps the test split, and {name} "
                         "has none (test metrics are reported on validation, capped by --max_eval_samples): "
                         "drop --max_test_samples")
    if tokenizer is None:
        dsd, tokenizer = prepare_dataset(raw, min_df=min_df, name=name)
    else:
        dsd = tokenize_dataset(raw, tokenizer)
    caps = {"train": settings.max_train_samples, "validation": settings.max_eval_samples}
    sampled: dict[str, list[int]] = {}
    for split in dsd:
        cap = caps.get(split, settings.max_test_samples)
        indices = sample_indices(len(dsd[split]), cap, seed if split == "train" else EVAL_SAMPLE_SEED)
        if indices is not None:
            logger.info("%s: keeping a seeded sample of %d of %d examples (--max_*_samples)", split, cap,
                        len(dsd[split]))
            dsd[split] = dsd[split].select(indices)
            sampled[split] = indices
    if settings.labelled_fraction is not None:
        logger.info("train: keeping the labels of a seeded %.3g of the examples (--labelled_fraction)",
                    settings.labelled_fraction)
        dsd["train"] = hide_labels(dsd["train"], settings.labelled_fraction, seed)
    return LoadedData(
        dataset=dsd, tokenizer=tokenizer, is_pair=is_pair, label_names=list(dsd["train"].features["label"].names),
        columns=columns, sampled_indices=sampled,
    )
