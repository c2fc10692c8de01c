"""CNN reading comprehension (Hermann et al. 2015, DeepMind Q&A): passage, cloze question, entity.

Local files: ``<data_dir>/cnn/questions/{training,validation,test}/*.question``, one question per
file in the original format::

    <url>
    <blank>
    <passage with @entityN tokens>
    <blank>
    <question with @placeholder>
    <blank>
    @entityK            (the answer)
    <blank>
    @entity0:Name       (one mapping line per entity)

Labels are entity numbers (``ClassLabel`` names ``@entity0`` ... ``@entity{K-1}``, K = one more than
the largest number seen in any split); ``candidate_mask`` (length K) is 1 for the entities that
occur in the passage (docs/METHODS.md#pair-model). Official splits, no length filter.

Hub: there is no canonical Hub copy of the DeepMind question files (``abisee/cnn_dailymail`` is
the summarisation version), so ``source="hub"`` raises a `ValueError` pointing to
``source="local"``.
"""

from __future__ import annotations

import re
from pathlib import Path

import datasets

from ._common import Rows, build_dataset_dict, require_data_dir, require_file

SPLIT_FOLDERS = {"train": "training", "validation": "validation", "test": "test"}
_ENTITY = re.compile(r"@entity(\d+)")


def read_question(path: Path) -> dict:
    """One ``.question`` file -> ``{"text", "text_pair", "label", "entities"}`` (entity numbers)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if len(lines) < 7 or lines[1] or lines[3] or lines[5]:
        raise ValueError(f"{path}:1: expected url, blank, passage, blank, question, blank, answer, blank, entity "
                         "mapping lines")
    passage, question, answer = lines[2].strip(), lines[4].strip(), lines[6].strip()
    match = re.fullmatch(r"@entity(\d+)", answer)
    if match is None:
        raise ValueError(f"{path}:7: the answer must be an entity such as '@entity3', got {answer!r}")
    if "@placeholder" not in question:
        raise ValueError(f"{path}:5: the question has no @placeholder: {question!r}")
    entities = {int(n) for n in _ENTITY.findall(passage)}
    mapped = [int(m.group(1)) for line in lines[8:] if (m := re.match(r"@entity(\d+):", line))]
    return {"text": passage, "text_pair": question, "label": int(match.group(1)), "entities": entities,
            "max_entity": max([int(match.group(1)), *entities, *mapped])}


def read_folder(folder: Path) -> Rows:
    """All ``*.question`` files of one split folder, in file-name order."""
    require_file(folder, "a folder of DeepMind CNN '.question' files")
    return [read_question(path) for path in sorted(folder.glob("*.question"))]


def build_cnn(splits: dict[str, Rows]) -> datasets.DatasetDict:
    """Add labels' `ClassLabel` and each row's ``candidate_mask`` over all entity numbers."""
    num_labels = 1 + max((row["max_entity"] for rows in splits.values() for row in rows), default=-1)
    for rows in splits.values():
        for row in rows:
            entities = row.pop("entities")
            row.pop("max_entity")
            row["candidate_mask"] = [i in entities for i in range(num_labels)]
    features = datasets.Features({
        "text": datasets.Value("string"),
        "text_pair": datasets.Value("string"),
        "label": datasets.ClassLabel(names=[f"@entity{i}" for i in range(num_labels)]),
        "candidate_mask": datasets.Sequence(datasets.Value("bool")),
    })
    return build_dataset_dict(splits, features, "cnn")


def load_local(data_dir: str | Path | None, apply_filters: bool = True) -> datasets.DatasetDict:
    """Load CNN from ``<data_dir>/cnn/questions/{training,validation,test}``."""
    folder = require_data_dir(data_dir, "cnn") / "cnn" / "questions"
    return build_cnn({split: read_folder(folder / name) for split, name in SPLIT_FOLDERS.items()})


def load_from_hub(apply_filters: bool = True) -> datasets.DatasetDict:
    """Raise: the DeepMind CNN question files have no canonical Hub copy."""
    raise ValueError("cnn: the DeepMind CNN question files (cnn/questions/*.question) have no canonical copy on "
                     "the Hugging Face Hub (abisee/cnn_dailymail is the summarisation version); download them "
                     "and use source='local' with data_dir")
