"""20 Newsgroups, rec.sport.baseball (0) vs rec.sport.hockey (1), as in Jain & Wallace.

Local file: ``<data_dir>/20news/20news-bydate_rec.sport.hockey_baseball.tar.gz`` holding the raw
"bydate" messages ``20news-bydate-{train,test}/rec.sport.{baseball,hockey}/<id>``. Messages are
decoded as UTF-8, falling back to latin-1, and stripped of headers, signature footers and quoted
replies with scikit-learn's own functions (what ``fetch_20newsgroups(remove=...)`` applies).

Hub: ``SetFit/20_newsgroups`` (``text``, ``label``, ``label_text``; scikit-learn's copy with
headers, footers and quotes already removed), keeping the two classes.

Split (docs/METHODS.md#data-protocol): train and test pooled (1993 messages), stratified 80/20 into train+dev / test,
then stratified 80/20 into train / validation (seed 13478 both times); then 6 < length < 500.
"""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path

import datasets
from sklearn.datasets._twenty_newsgroups import (
    strip_newsgroup_footer,
    strip_newsgroup_header,
    strip_newsgroup_quoting,
)

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

logger = logging.getLogger(__name__)

LABEL_NAMES = ("baseball", "hockey")
GROUPS = {"rec.sport.baseball": 0, "rec.sport.hockey": 1}
ARCHIVE = "20news-bydate_rec.sport.hockey_baseball.tar.gz"
SEED = 13478
MIN_LENGTH, MAX_LENGTH = 7, 499  # "6 < length < 500"
HUB_ID = "SetFit/20_newsgroups"


def strip_message(text: str) -> str:
    """Remove headers, footers and quoted replies (scikit-learn's functions, in its order)."""
    return strip_newsgroup_quoting(strip_newsgroup_footer(strip_newsgroup_header(text)))


def read_archive(path: Path) -> Rows:
    """All baseball / hockey messages of the archive as rows ``{"text", "label"}``."""
    rows, latin1 = [], 0
    with tarfile.open(path, "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[1] not in GROUPS:
                continue
            raw = tar.extractfile(member).read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text, latin1 = raw.decode("latin-1"), latin1 + 1
            rows.append({"text": strip_message(text), "label": GROUPS[parts[1]]})
    logger.info("20news: read %d messages from %s (%d decoded as latin-1)", len(rows), path, latin1)
    return rows


def split_messages(rows: Rows, apply_filters: bool = True) -> datasets.DatasetDict:
    """Pool, split 80/20 twice (stratified, seed 13478) and apply the length filter."""
    train, test = seeded_split(rows, test_size=0.2, seed=SEED, stratify=True)
    train, validation = seeded_split(train, test_size=0.2, seed=SEED, stratify=True)
    splits = {"train": train, "validation": validation, "test": test}
    if apply_filters:
        splits = {split: filter_by_length(r, split, "20news", MIN_LENGTH, MAX_LENGTH) for split, r in splits.items()}
    return build_dataset_dict(splits, single_features(LABEL_NAMES), "20news")


def load_local(data_dir: str | Path | None, apply_filters: bool = True) -> datasets.DatasetDict:
    """Load 20News baseball / hockey from the raw archive in ``<data_dir>/20news``."""
    path = require_file(require_data_dir(data_dir, "20news") / "20news" / ARCHIVE,
                        "the 20news-bydate rec.sport.{baseball,hockey} messages as a tar.gz")
    return split_messages(read_archive(path), apply_filters)


def convert_hub_row(row: dict) -> dict | None:
    """``SetFit/20_newsgroups`` row -> ``{"text", "label"}``, None for the other 18 groups."""
    label = GROUPS.get(row["label_text"])
    return None if label is None else {"text": row["text"], "label": label}


def load_from_hub(apply_filters: bool = True) -> datasets.DatasetDict:
    """Load 20News baseball / hockey from ``SetFit/20_newsgroups`` (train and test pooled)."""
    hub = load_hub(HUB_ID)
    rows = [row for s in ("train", "test") for row in convert_hub_split(hub[s], convert_hub_row, "20news", s)]
    return split_messages(rows, apply_filters)
