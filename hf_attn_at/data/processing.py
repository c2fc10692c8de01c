"""Tokenisation of loaded tasks and the padding-efficiency measure.

Batches: `transformers.DataCollatorWithPadding(tokenizer)` needs no subclass; it pads
``input_ids`` / ``token_type_ids`` / ``attention_mask`` to the longest example and stacks
``label`` (as ``labels``), ``length`` and CNN's fixed-length ``candidate_mask`` into tensors of
shape ``(batch_size,)`` and ``(batch_size, num_labels)`` (checked in ``tests/data``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import PreTrainedTokenizerFast
from transformers.trainer_pt_utils import LengthGroupedSampler

from ..tokenization import build_word_tokenizer, count_unknown
from .registry import get_task, load_task

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("text", "text_pair")


def _texts(ds: datasets.Dataset) -> list[str]:
    """Every text of a split: ``text``, then ``text_pair`` where the task has one."""
    return [t for column in TEXT_COLUMNS if column in ds.column_names for t in ds[column]]


def tokenize_dataset(
    dsd: datasets.DatasetDict, tokenizer: PreTrainedTokenizerFast, batch_size: int = 1000
) -> datasets.DatasetDict:
    """Encode ``text`` (and ``text_pair``) of every split with ``tokenizer(text, text_pair)``.

    Returns splits with ``input_ids``, ``token_type_ids``, ``attention_mask`` (unpadded lists),
    ``length`` (number of tokens, for ``group_by_length``), ``label`` and, for CNN,
    ``candidate_mask``; the text columns are removed. Logs each split's unknown-token rate.
    """
    def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        enc = tokenizer(batch["text"], batch.get("text_pair"))
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return dict(enc)

    out = {}
    for split, ds in dsd.items():
        unknown, total = count_unknown(tokenizer, _texts(ds))
        logger.info("%s: %d of %d tokens unknown (%.2f%%)", split, unknown, total, 100 * unknown / max(total, 1))
        removed = [c for c in TEXT_COLUMNS if c in ds.column_names]
        out[split] = ds.map(encode, batched=True, batch_size=batch_size, remove_columns=removed,
                            desc=f"tokenizing {split}")
    return datasets.DatasetDict(out)


def prepare_task(
    name: str,
    source: str = "hub",
    data_dir: str | Path | None = None,
    min_df: int | None = None,
    max_vocab_size: int | None = None,
    **options: Any,
) -> tuple[datasets.DatasetDict, PreTrainedTokenizerFast]:
    """Load a task, build its word tokenizer from the training split and tokenize every split.

    Args:
        name, source, data_dir, options: as in :func:`load_task`.
        min_df (`int`, *optional*): vocabulary minimum document frequency; defaults to the data protocol's
            value for the task (both fields of pair tasks count as documents).
        max_vocab_size (`int`, *optional*): cap on the vocabulary size, special tokens included.

    Returns:
        ``(tokenized DatasetDict, tokenizer)``; see :func:`tokenize_dataset` for the columns.
    """
    min_df = get_task(name).min_df if min_df is None else min_df
    dsd = load_task(name, source=source, data_dir=data_dir, **options)
    return prepare_dataset(dsd, min_df=min_df, max_vocab_size=max_vocab_size, name=name)


def prepare_dataset(
    dsd: datasets.DatasetDict, min_df: int = 1, max_vocab_size: int | None = None, name: str = "dataset"
) -> tuple[datasets.DatasetDict, PreTrainedTokenizerFast]:
    """Build the word tokenizer from ``dsd["train"]`` and tokenize every split (any loaded `DatasetDict`).

    Args:
        dsd (`datasets.DatasetDict`): splits with ``text``, optional ``text_pair`` and ``label``, as
            returned by :func:`load_task` or :func:`~hf_attn_at.data.custom.load_custom`.
        min_df (`int`, *optional*, defaults to 1): vocabulary minimum document frequency.
        max_vocab_size (`int`, *optional*): cap on the vocabulary size, special tokens included.
        name (`str`, *optional*): the dataset's name in the log.

    Returns:
        ``(tokenized DatasetDict, tokenizer)``; logs the vocabulary size and each split's unknown-token rate.
    """
    tokenizer = build_word_tokenizer(_texts(dsd["train"]), min_df=min_df, max_vocab_size=max_vocab_size)
    logger.info("%s: vocabulary of %d tokens (min_df=%d, from the train split)", name, len(tokenizer), min_df)
    return tokenize_dataset(dsd, tokenizer), tokenizer


EVAL_SAMPLE_SEED = 0
"""The seed of `sample_examples` for evaluation splits, so that every run (and `explain`) sees the same examples."""


def sample_indices(num_rows: int, max_samples: int | None, seed: int) -> list[int] | None:
    """The rows of a seeded random sample of `max_samples` of `num_rows` examples (`--max_*_samples`).

    Never the first rows: data files can be sorted by label (SST's test set is). The sample is the first
    `max_samples` rows of `datasets.Dataset.shuffle(seed=seed)`, in that order.

    Returns:
        The row indices, or `None` (keep every row) when `max_samples` is `None` or at least `num_rows`.
    """
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be >= 1 or None, got {max_samples}")
    if max_samples is None or max_samples >= num_rows:
        return None
    return np.random.default_rng(seed).permutation(num_rows)[:max_samples].tolist()


def sample_examples(dataset: datasets.Dataset, max_samples: int | None, seed: int) -> datasets.Dataset:
    """`dataset` cut to the seeded random sample of `sample_indices` (itself when it has no more rows)."""
    indices = sample_indices(len(dataset), max_samples, seed)
    return dataset if indices is None else dataset.select(indices)


def padding_efficiency(lengths: Sequence[int], batch_size: int, grouped: bool, seed: int = 0) -> float:
    """Real tokens / padded tokens over one epoch of batches padded to their longest example.

    ``grouped=True`` orders examples with Trainer's `LengthGroupedSampler` (``group_by_length``);
    otherwise a random permutation (Trainer's default sampler). Both are seeded by ``seed``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if not lengths:
        raise ValueError("lengths is empty")
    generator = torch.Generator().manual_seed(seed)
    if grouped:
        order = list(LengthGroupedSampler(batch_size, lengths=list(lengths), generator=generator))
    else:
        order = torch.randperm(len(lengths), generator=generator).tolist()
    real = padded = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start:start + batch_size]]
        real += sum(batch)
        padded += max(batch) * len(batch)
    return real / padded
