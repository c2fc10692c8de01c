"""SNLI and MultiNLI: premise (``text``), hypothesis (``text_pair``), 3 classes.

Labels: 0 entailment, 1 neutral, 2 contradiction; pairs without a gold label ("-", or -1 on the
Hub) are dropped (docs/METHODS.md#data-protocol) and their number logged.

SNLI. Hub: ``stanfordnlp/snli``, official splits. Local: ``<data_dir>/snli/{train,dev,test}.tsv``
(header ``premise<TAB>hypothesis<TAB>label``, label 0-2). Without ``train.tsv`` (the shared copy
has only dev and test) the model trains on a seeded split of dev: 80 % train / 20 % validation
(seed 13478); test = ``test.tsv``. This is logged as a warning.

MultiNLI. Hub: ``nyu-mll/multi_nli``; train 80/20 -> train / validation (seed 13478);
``test_matched`` = validation_matched, ``test_mismatched`` = validation_mismatched. Local:
``<data_dir>/mnli/{train,dev_matched,dev_mismatched}.jsonl`` (``premise``, ``hypothesis``,
``label`` as a word). Without ``train.jsonl``, ``dev_matched.jsonl`` is split instead: 20 % ->
``test_matched`` (seed 13478), the rest 80/20 -> train / validation (seed 13478); without
``dev_mismatched.jsonl`` there is no ``test_mismatched`` split. Both are logged as warnings.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import datasets

from ._common import (
    Rows,
    build_dataset_dict,
    convert_hub_split,
    load_hub,
    pair_features,
    require_data_dir,
    require_file,
    seeded_split,
)

logger = logging.getLogger(__name__)

LABEL_NAMES = ("entailment", "neutral", "contradiction")
SEED = 13478
SNLI_HUB_ID = "stanfordnlp/snli"
MNLI_HUB_ID = "nyu-mll/multi_nli"
_NO_GOLD = ("-", "", "-1")


def _parse_label(value: str, path: Path, line_number: int) -> int | None:
    value = value.strip()
    if value in _NO_GOLD:
        return None
    if value in LABEL_NAMES:
        return LABEL_NAMES.index(value)
    if value in ("0", "1", "2"):
        return int(value)
    raise ValueError(f"{path}:{line_number}: label must be 0-2, one of {LABEL_NAMES} or '-', got {value!r}")


def _log_dropped(path: Path, dropped: int, total: int) -> None:
    if dropped:
        logger.info("%s: dropped %d of %d pairs without a gold label", path, dropped, total)


def read_tsv(path: Path) -> Rows:
    """Rows ``{"text", "text_pair", "label"}`` of an SNLI tsv file (header premise/hypothesis/label)."""
    rows, dropped = [], 0
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header != ["premise", "hypothesis", "label"]:
            raise ValueError(f"{path}:1: expected the header premise<TAB>hypothesis<TAB>label, got {header!r}")
        for line_number, record in enumerate(reader, start=2):
            if len(record) != 3:
                raise ValueError(f"{path}:{line_number}: expected 3 tab-separated fields, got {len(record)}")
            label = _parse_label(record[2], path, line_number)
            if label is None:
                dropped += 1
            else:
                rows.append({"text": record[0], "text_pair": record[1], "label": label})
    _log_dropped(path, dropped, len(rows) + dropped)
    return rows


def read_jsonl(path: Path) -> Rows:
    """Rows of a MultiNLI jsonl file (``premise``, ``hypothesis``, ``label`` as a word)."""
    rows, dropped = [], 0
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            try:
                record = json.loads(line)
                premise, hypothesis, label = record["premise"], record["hypothesis"], str(record["label"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(
                    f"{path}:{line_number}: expected a JSON object with premise, hypothesis, label: {err}"
                ) from err
            parsed = _parse_label(label, path, line_number)
            if parsed is None:
                dropped += 1
            else:
                rows.append({"text": premise, "text_pair": hypothesis, "label": parsed})
    _log_dropped(path, dropped, len(rows) + dropped)
    return rows


def _build(splits: dict[str, Rows], task: str) -> datasets.DatasetDict:
    return build_dataset_dict(splits, pair_features(LABEL_NAMES), task)


def load_snli_local(data_dir: str | Path | None, apply_filters: bool = True) -> datasets.DatasetDict:
    """Load SNLI from ``<data_dir>/snli/*.tsv`` (see the module docstring for the split without train)."""
    folder = require_data_dir(data_dir, "snli") / "snli"
    what = "SNLI pairs as tsv (header premise, hypothesis, label)"
    dev = read_tsv(require_file(folder / "dev.tsv", what))
    test = read_tsv(require_file(folder / "test.tsv", what))
    if (folder / "train.tsv").exists():
        return _build({"train": read_tsv(folder / "train.tsv"), "validation": dev, "test": test}, "snli")
    logger.warning("SNLI local: no %s; training on a seeded split of dev (80 %% train / 20 %% validation, "
                   "seed %d), test = test.tsv", folder / "train.tsv", SEED)
    train, validation = seeded_split(dev, test_size=0.2, seed=SEED)
    return _build({"train": train, "validation": validation, "test": test}, "snli")


def load_mnli_local(data_dir: str | Path | None, apply_filters: bool = True) -> datasets.DatasetDict:
    """Load MultiNLI from ``<data_dir>/mnli/*.jsonl`` (see the module docstring for missing files)."""
    folder = require_data_dir(data_dir, "mnli") / "mnli"
    matched = read_jsonl(require_file(folder / "dev_matched.jsonl", "MultiNLI dev-matched pairs as jsonl"))
    if (folder / "train.jsonl").exists():
        train, validation = seeded_split(read_jsonl(folder / "train.jsonl"), test_size=0.2, seed=SEED)
    else:
        logger.warning("MultiNLI local: no %s; splitting dev_matched instead: 20 %% test_matched, the rest "
                       "80/20 train/validation (seed %d)", folder / "train.jsonl", SEED)
        rest, matched = seeded_split(matched, test_size=0.2, seed=SEED)
        train, validation = seeded_split(rest, test_size=0.2, seed=SEED)
    splits = {"train": train, "validation": validation, "test_matched": matched}
    if (folder / "dev_mismatched.jsonl").exists():
        splits["test_mismatched"] = read_jsonl(folder / "dev_mismatched.jsonl")
    else:
        logger.warning("MultiNLI local: no %s; there is no test_mismatched split", folder / "dev_mismatched.jsonl")
    return _build(splits, "mnli")


def convert_hub_row(row: dict) -> dict | None:
    """``stanfordnlp/snli`` / ``nyu-mll/multi_nli`` row -> pair row; None without a gold label (-1)."""
    label = int(row["label"])
    if label not in (0, 1, 2):
        return None
    return {"text": row["premise"], "text_pair": row["hypothesis"], "label": label}


def load_snli_from_hub(apply_filters: bool = True) -> datasets.DatasetDict:
    """Load SNLI from ``stanfordnlp/snli`` (official splits)."""
    hub = load_hub(SNLI_HUB_ID)
    return _build({s: convert_hub_split(hub[s], convert_hub_row, "snli", s)
                   for s in ("train", "validation", "test")}, "snli")


def load_mnli_from_hub(apply_filters: bool = True) -> datasets.DatasetDict:
    """Load MultiNLI from ``nyu-mll/multi_nli`` (train split 80/20; both dev sets as test sets)."""
    hub = load_hub(MNLI_HUB_ID)
    train, validation = seeded_split(convert_hub_split(hub["train"], convert_hub_row, "mnli", "train"),
                                     test_size=0.2, seed=SEED)
    splits = {"train": train, "validation": validation}
    for hub_split, split in (("validation_matched", "test_matched"), ("validation_mismatched", "test_mismatched")):
        splits[split] = convert_hub_split(hub[hub_split], convert_hub_row, "mnli", hub_split)
    return _build(splits, "mnli")
