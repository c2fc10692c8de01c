"""AG News, World (0) vs Business (1), as in Jain & Wallace.

Local files: ``<data_dir>/ag_news/{train,test}.csv`` in the original format (no header; columns
class index 1-4, title, description; World = 1, Sports = 2, Business = 3, Sci/Tech = 4).
Hub: ``fancyzhx/ag_news`` (``text`` = title and description, ``label`` 0 World / 1 Sports /
2 Business / 3 Sci/Tech). Text = ``title + " " + description``.

Split (docs/METHODS.md#data-protocol): official test; 15 % of train -> validation (seed 16377). No length filter.
"""

from __future__ import annotations

import csv
from pathlib import Path

import datasets

from ._common import (
    Rows,
    build_dataset_dict,
    convert_hub_split,
    load_hub,
    require_data_dir,
    require_file,
    seeded_split,
    single_features,
)

LABEL_NAMES = ("World", "Business")
SEED = 16377
HUB_ID = "fancyzhx/ag_news"
_CSV_CLASSES = {"1": 0, "3": 1}  # World, Business; 2 Sports and 4 Sci/Tech are not part of the task
_HUB_CLASSES = {0: 0, 2: 1}


def read_csv(path: Path) -> Rows:
    """World / Business rows ``{"text", "label"}`` of one original AG News csv file."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for line_number, record in enumerate(csv.reader(f), start=1):
            if len(record) != 3 or record[0] not in ("1", "2", "3", "4"):
                raise ValueError(
                    f"{path}:{line_number}: expected 3 fields (class index 1-4, title, description), got {record!r}"
                )
            if record[0] in _CSV_CLASSES:
                rows.append({"text": f"{record[1]} {record[2]}", "label": _CSV_CLASSES[record[0]]})
    return rows


def _finish(train: Rows, test: Rows) -> datasets.DatasetDict:
    train, validation = seeded_split(train, test_size=0.15, seed=SEED)
    return build_dataset_dict({"train": train, "validation": validation, "test": test},
                              single_features(LABEL_NAMES), "agnews")


def load_local(data_dir: str | Path | None, apply_filters: bool = True) -> datasets.DatasetDict:
    """Load AG News from ``<data_dir>/ag_news/{train,test}.csv`` (``apply_filters`` has no effect)."""
    folder = require_data_dir(data_dir, "agnews") / "ag_news"
    what = "the original AG News csv (class index, title, description)"
    return _finish(read_csv(require_file(folder / "train.csv", what)), read_csv(require_file(folder / "test.csv", what)))


def convert_hub_row(row: dict) -> dict | None:
    """``fancyzhx/ag_news`` row -> ``{"text", "label"}``, None for Sports and Sci/Tech."""
    label = _HUB_CLASSES.get(int(row["label"]))
    return None if label is None else {"text": row["text"], "label": label}


def load_from_hub(apply_filters: bool = True) -> datasets.DatasetDict:
    """Load AG News from ``fancyzhx/ag_news``."""
    hub = load_hub(HUB_ID)
    return _finish(*(convert_hub_split(hub[s], convert_hub_row, "agnews", s) for s in ("train", "test")))
