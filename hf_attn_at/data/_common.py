"""Helpers shared by the dataset modules: file checks, seeded splits, length filters, Hub access."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import datasets
from sklearn.model_selection import train_test_split

from ..tokenization import SPECIAL_TOKENS, word_tokenizer_from_vocab

logger = logging.getLogger(__name__)

Rows = list[dict[str, Any]]


def require_file(path: str | Path, what: str) -> Path:
    """Return ``path`` as a `Path`, or raise `FileNotFoundError` naming it and what it should hold."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: expected {what}")
    return path


def require_data_dir(data_dir: str | Path | None, name: str) -> Path:
    """Check the ``data_dir`` argument of a local loader."""
    if data_dir is None:
        raise ValueError(f"source='local' needs data_dir (the folder holding the {name!r} files), got None")
    return require_file(data_dir, f"the local data folder for {name!r}")


def token_lengths(texts: Sequence[str]) -> list[int]:
    """Number of Jain & Wallace tokens of each text (same normaliser as the tokenizer), batched in Rust."""
    counter = word_tokenizer_from_vocab({tok: i for i, tok in enumerate(SPECIAL_TOKENS)}).backend_tokenizer
    return [len(enc.ids) for enc in counter.encode_batch(list(texts), add_special_tokens=False)]


def filter_by_length(
    rows: Rows, split: str, task: str, min_length: int | None = None, max_length: int | None = None,
    field: str = "text",
) -> Rows:
    """Keep rows whose ``field`` has ``min_length <= n <= max_length`` tokens; log how many were dropped."""
    lengths = token_lengths([row[field] for row in rows])
    kept = [row for row, n in zip(rows, lengths, strict=True)
            if (min_length is None or n >= min_length) and (max_length is None or n <= max_length)]
    logger.info("%s %s: length filter [%s, %s] tokens kept %d of %d (dropped %d)", task, split,
                min_length, max_length, len(kept), len(rows), len(rows) - len(kept))
    return kept


def seeded_split(
    rows: Rows, test_size: float, seed: int, stratify: bool = False
) -> tuple[Rows, Rows]:
    """Split ``rows`` into ``(kept, held_out)`` with scikit-learn's ``train_test_split``.

    ``held_out`` gets ``test_size`` of the rows; with ``stratify`` the label proportions are kept.
    """
    labels = [row["label"] for row in rows] if stratify else None
    kept, held_out = train_test_split(rows, test_size=test_size, random_state=seed, stratify=labels)
    return kept, held_out


def build_dataset_dict(splits: dict[str, Rows], features: datasets.Features, task: str) -> datasets.DatasetDict:
    """Turn ``{split: rows}`` into a `DatasetDict`; raise `ValueError` on an empty split."""
    for split, rows in splits.items():
        if not rows:
            raise ValueError(f"{task}: split {split!r} is empty after loading and filtering")
    dsd = datasets.DatasetDict(
        {split: datasets.Dataset.from_list(rows, features=features) for split, rows in splits.items()}
    )
    logger.info("%s: %s", task, ", ".join(f"{split} {len(ds)}" for split, ds in dsd.items()))
    return dsd


def load_hub(path: str, name: str | None = None, **kwargs: Any) -> datasets.DatasetDict:
    """`datasets.load_dataset` with a clear `ConnectionError` when the Hub cannot be reached."""
    try:
        return datasets.load_dataset(path, name, **kwargs)
    except (ConnectionError, OSError) as err:
        raise ConnectionError(
            f"cannot load {path!r}{f' ({name})' if name else ''} from the Hugging Face Hub: {err}. "
            "If the Hub cannot be reached (offline, HF_HUB_OFFLINE=1), use source='local' with data_dir "
            "pointing at local copies of the original files."
        ) from err


def convert_hub_split(
    ds: datasets.Dataset, convert: Callable[[dict[str, Any]], dict[str, Any] | None], task: str, split: str
) -> Rows:
    """Apply a row conversion to a Hub split.

    ``convert`` returns None for rows that the data protocol drops (other classes, unlabelled pairs); their
    number is logged.
    """
    rows = [out for row in ds if (out := convert(row)) is not None]
    if len(rows) < len(ds):
        logger.info("%s %s: kept %d of %d Hub rows (dropped %d: not in the task's classes)",
                    task, split, len(rows), len(ds), len(ds) - len(rows))
    return rows


def single_features(label_names: Sequence[str]) -> datasets.Features:
    """Features of a single-sequence task: ``text`` and ``label``."""
    return datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list(label_names))})


def pair_features(label_names: Sequence[str]) -> datasets.Features:
    """Features of a pair task: ``text`` (premise / passage), ``text_pair`` (hypothesis / question), ``label``."""
    return datasets.Features({
        "text": datasets.Value("string"),
        "text_pair": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(label_names)),
    })
