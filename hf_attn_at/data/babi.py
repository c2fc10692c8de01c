"""bAbI tasks 1-3 (Weston et al. 2015): passage (``text``), question (``text_pair``), answer word.

Local files: ``<data_dir>/babi/en-10k/qa{N}_*_{train,test}.txt`` (``babi_size="10k"``, the
paper's) or ``<data_dir>/babi/en/...`` (``"1k"``), in the original numbered-line format: a story
restarts at line number 1, statements are ``N sentence.``, questions are
``N question?<TAB>answer<TAB>supporting ids``. Runs of spaces are tolerated.

Each question becomes one example; its passage is every statement of the story before it, each
without its final period, joined with " . " and closed by " .". Labels are answer words; the
`ClassLabel` names are the training answers, sorted. Split (docs/METHODS.md#data-protocol): official test; 15 % of the
training questions -> validation (seed 16377).

Hub: ``facebook/babi_qa`` with config ``en-10k-qa{N}`` / ``en-qa{N}`` (one row per story).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from ._common import Rows, build_dataset_dict, load_hub, require_data_dir, require_file, seeded_split

SEED = 16377
TASKS = (1, 2, 3)
SIZES = {"1k": "en", "10k": "en-10k"}
HUB_ID = "facebook/babi_qa"


def _passage(statements: list[str]) -> str:
    return " . ".join(s.rstrip(" .") for s in statements) + " ."


def read_babi(path: Path) -> Rows:
    """Question rows ``{"text", "text_pair", "answer"}`` of one bAbI file."""
    rows: Rows = []
    statements: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            number, _, rest = line.strip().partition(" ")
            if not number.isdigit() or not rest.strip():
                raise ValueError(f"{path}:{line_number}: expected 'N sentence' or 'N question<TAB>answer<TAB>ids', "
                                 f"got {line.rstrip()!r}")
            if number == "1":
                statements = []
            fields = rest.split("\t")
            if len(fields) == 1:
                statements.append(" ".join(rest.split()))
            elif len(fields) == 3 and fields[1].strip():
                rows.append({"text": _passage(statements), "text_pair": " ".join(fields[0].split()),
                             "answer": fields[1].strip()})
            else:
                raise ValueError(f"{path}:{line_number}: a question line needs 'question<TAB>answer<TAB>ids', "
                                 f"got {line.rstrip()!r}")
    return rows


def _finish(train: Rows, test: Rows, task: str) -> datasets.DatasetDict:
    answers = sorted({row["answer"] for row in train})
    index = {answer: i for i, answer in enumerate(answers)}
    train, validation = seeded_split(train, test_size=0.15, seed=SEED)
    splits = {"train": train, "validation": validation, "test": test}
    for split, rows in splits.items():
        for row in rows:
            answer = row.pop("answer")
            if answer not in index:
                raise ValueError(f"{task} {split}: answer {answer!r} does not occur in the training answers {answers}")
            row["label"] = index[answer]
    features = datasets.Features({
        "text": datasets.Value("string"),
        "text_pair": datasets.Value("string"),
        "label": datasets.ClassLabel(names=answers),
    })
    return build_dataset_dict(splits, features, task)


def _check(task: int, babi_size: str) -> None:
    if task not in TASKS:
        raise ValueError(f"bAbI task must be one of {TASKS}, got {task!r}")
    if babi_size not in SIZES:
        raise ValueError(f"babi_size must be one of {sorted(SIZES)}, got {babi_size!r}")


def load_local(
    data_dir: str | Path | None, task: int, babi_size: str = "10k", apply_filters: bool = True
) -> datasets.DatasetDict:
    """Load bAbI task ``task`` from ``<data_dir>/babi/{en,en-10k}``."""
    _check(task, babi_size)
    folder = require_data_dir(data_dir, f"babi{task}") / "babi" / SIZES[babi_size]
    files = {}
    for split in ("train", "test"):
        found = sorted(folder.glob(f"qa{task}_*_{split}.txt"))
        if not found:
            raise FileNotFoundError(f"{folder / f'qa{task}_*_{split}.txt'} not found: expected the bAbI "
                                    f"{babi_size} task {task} {split} file in the numbered-line format")
        files[split] = require_file(found[0], "a bAbI file")
    return _finish(read_babi(files["train"]), read_babi(files["test"]), f"babi{task}")


def convert_hub_story(row: dict) -> Rows:
    """One ``facebook/babi_qa`` row (a story: ``story.{type, text, answer}``, type 0 statement / 1
    question) -> its question rows ``{"text", "text_pair", "answer"}``."""
    story = row["story"]
    rows, statements = [], []
    for kind, text, answer in zip(story["type"], story["text"], story["answer"], strict=True):
        if kind == 0:
            statements.append(" ".join(text.split()))
        else:
            rows.append({"text": _passage(statements), "text_pair": " ".join(text.split()), "answer": answer})
    return rows


def load_from_hub(task: int, babi_size: str = "10k", apply_filters: bool = True) -> datasets.DatasetDict:
    """Load bAbI task ``task`` from ``facebook/babi_qa``."""
    _check(task, babi_size)
    hub = load_hub(HUB_ID, f"{SIZES[babi_size]}-qa{task}")
    train, test = ([r for story in hub[s] for r in convert_hub_story(story)] for s in ("train", "test"))
    return _finish(train, test, f"babi{task}")
