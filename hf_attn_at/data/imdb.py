"""IMDB movie reviews (Maas et al. 2011), Jain & Wallace's split of reviews under 400 tokens.

Local files: ``<data_dir>/imdb/{train,test}.jsonl.xz``, one JSON object a line with ``text`` and
``label`` (1 pos, 0 neg). Hub: ``stanfordnlp/imdb`` (``text``, ``label`` 0 neg / 1 pos).

Split (docs/METHODS.md#data-protocol): training reviews with fewer than 400 tokens, 80/20 into train/validation (seed
1378); test = a random 20 % (seed 1378) of the test reviews with fewer than 400 tokens. The
"more than 6 tokens" filter is applied together with the 400-token bound, before splitting (one
tokenisation pass; no review of the shared copy has 6 tokens or fewer). ``<br />`` tags are replaced by spaces before anything else (Jain & Wallace's
Keras copy kept them as the word "br").
"""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import datasets

from ._common import (
    Rows,
    build_dataset_dict,
    convert_hub_split,
    filter_by_length,
    load_hub,
    require_data_dir,
    require_file,
    seeded_split,
    single_features,
)

LABEL_NAMES = ("neg", "pos")
MAX_TOKENS = 399  # "documents under 400 tokens"
MIN_LENGTH = 7  # "length > 6"
SEED = 1378
HUB_ID = "stanfordnlp/imdb"


def clean_text(text: str) -> str:
    """Replace the HTML line breaks of the raw reviews by spaces."""
    return text.replace("<br />", " ")


def read_jsonl_xz(path: Path) -> Rows:
    """Rows ``{"text", "label"}`` of one ``.jsonl.xz`` file."""
    rows = []
    with lzma.open(path, "rt", encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            try:
                record = json.loads(line)
                rows.append({"text": clean_text(record["text"]), "label": int(record["label"])})
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(
                    f"{path}:{line_number}: expected a JSON object with 'text' and 'label' (0/1): {err}"
                ) from err
    return rows


def split_reviews(train: Rows, test: Rows, apply_filters: bool = True) -> datasets.DatasetDict:
    """Keep reviews under 400 tokens (and, with ``apply_filters``, over 6), then split with seed 1378."""
    min_length = MIN_LENGTH if apply_filters else None
    train = filter_by_length(train, "train", "imdb", min_length=min_length, max_length=MAX_TOKENS)
    test = filter_by_length(test, "test", "imdb", min_length=min_length, max_length=MAX_TOKENS)
    train, validation = seeded_split(train, test_size=0.2, seed=SEED)
    _, test = seeded_split(test, test_size=0.2, seed=SEED)
    return build_dataset_dict({"train": train, "validation": validation, "test": test},
                              single_features(LABEL_NAMES), "imdb")


def load_local(data_dir: str | Path | None, apply_filters: bool = True) -> datasets.DatasetDict:
    """Load IMDB from ``<data_dir>/imdb/{train,test}.jsonl.xz``."""
    folder = require_data_dir(data_dir, "imdb") / "imdb"
    what = "IMDB reviews as xz-compressed JSON lines ({'text', 'label'})"
    train = read_jsonl_xz(require_file(folder / "train.jsonl.xz", what))
    test = read_jsonl_xz(require_file(folder / "test.jsonl.xz", what))
    return split_reviews(train, test, apply_filters)


def convert_hub_row(row: dict) -> dict:
    """``stanfordnlp/imdb`` row (``text``, ``label`` 0 neg / 1 pos) -> ``{"text", "label"}``."""
    return {"text": clean_text(row["text"]), "label": int(row["label"])}


def load_from_hub(apply_filters: bool = True) -> datasets.DatasetDict:
    """Load IMDB from ``stanfordnlp/imdb``."""
    hub = load_hub(HUB_ID)
    train, test = (convert_hub_split(hub[s], convert_hub_row, "imdb", s) for s in ("train", "test"))
    return split_reviews(train, test, apply_filters)
