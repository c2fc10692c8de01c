"""Stanford Sentiment Treebank, binary sentence level (Jain & Wallace's SST).

Local files: ``<data_dir>/sst/{train,dev,test}.txt``, the original PTB trees, one per line, root
label 0-4. Neutral roots (2) are dropped, roots >= 3 are positive; the text is the tree's leaves
joined by spaces with the PTB escapes undone. This gives 6920 / 872 / 1821 sentences, the counts
of Jain & Wallace's ``sst_dataset.csv``; the length filter of docs/METHODS.md#data-protocol (>= 5 tokens) is applied after
that (``apply_filters=False`` keeps all sentences).

Hub: ``SetFit/sst2`` (sentence level, the same 6920 / 872 / 1821 split); ``stanfordnlp/sst2`` is
not used because its training split holds phrases.
"""

from __future__ import annotations

import re
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
    single_features,
)

LABEL_NAMES = ("negative", "positive")
MIN_LENGTH = 5
HUB_ID = "SetFit/sst2"
_FILES = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}
_LEAF = re.compile(r"\(\d+ ([^()\s]+)\)")
_PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


def _unescape(word: str) -> str:
    return _PTB_ESCAPES.get(word, word).replace("\\/", "/").replace("\\*", "*")


def parse_tree_line(line: str, path: Path | str, line_number: int) -> tuple[int, str]:
    """Return ``(root_label, sentence)`` of one PTB tree line such as ``(3 (2 It) (4 works))``."""
    line = line.strip()
    if not re.match(r"\(\d ", line) or line.count("(") != line.count(")"):
        raise ValueError(f"{path}:{line_number}: not a PTB tree with a 0-4 root label: {line[:80]!r}")
    leaves = _LEAF.findall(line)
    if not leaves:
        raise ValueError(f"{path}:{line_number}: PTB tree without leaves: {line[:80]!r}")
    return int(line[1]), " ".join(_unescape(w) for w in leaves)


def read_trees(path: Path) -> Rows:
    """Binary rows ``{"text", "label"}`` of one tree file (neutral roots dropped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            root, text = parse_tree_line(line, path, line_number)
            if root != 2:
                rows.append({"text": text, "label": int(root >= 3)})
    return rows


def _finish(splits: dict[str, Rows], apply_filters: bool) -> datasets.DatasetDict:
    if apply_filters:
        splits = {split: filter_by_length(rows, split, "sst", min_length=MIN_LENGTH) for split, rows in splits.items()}
    return build_dataset_dict(splits, single_features(LABEL_NAMES), "sst")


def load_local(data_dir: str | Path | None, apply_filters: bool = True) -> datasets.DatasetDict:
    """Load SST from the PTB tree files in ``<data_dir>/sst``."""
    folder = require_data_dir(data_dir, "sst") / "sst"
    splits = {
        split: read_trees(require_file(folder / name, "SST PTB trees, one per line (root label 0-4)"))
        for split, name in _FILES.items()
    }
    return _finish(splits, apply_filters)


def convert_hub_row(row: dict) -> dict:
    """``SetFit/sst2`` row (``text``, ``label`` 0/1, ``label_text``) -> ``{"text", "label"}``."""
    return {"text": row["text"], "label": int(row["label"])}


def load_from_hub(apply_filters: bool = True) -> datasets.DatasetDict:
    """Load SST from ``SetFit/sst2``."""
    hub = load_hub(HUB_ID)
    return _finish({split: convert_hub_split(hub[split], convert_hub_row, "sst", split)
                    for split in ("train", "validation", "test")}, apply_filters)
