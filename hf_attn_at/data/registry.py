"""Task registry: ``load_task(name, source)`` and each task's vocabulary ``min_df`` (docs/METHODS.md#data-protocol)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from . import agnews, babi, cnn, imdb, newsgroups, nli, sst


@dataclass(frozen=True)
class TaskSpec:
    """How to load one task.

    Args:
        load_local (`Callable`): ``(data_dir, **options) -> DatasetDict`` reading the original files.
        load_hub (`Callable`): ``(**options) -> DatasetDict`` reading the Hub copy.
        min_df (`int`): minimum document frequency of the training vocabulary (docs/METHODS.md#data-protocol).
        is_pair (`bool`): whether examples have a ``text_pair`` column.
        options (`tuple[str, ...]`): keyword options the loaders accept.
    """

    load_local: Callable[..., datasets.DatasetDict]
    load_hub: Callable[..., datasets.DatasetDict]
    min_df: int
    is_pair: bool = False
    options: tuple[str, ...] = ("apply_filters",)


TASKS: dict[str, TaskSpec] = {
    "sst": TaskSpec(sst.load_local, sst.load_from_hub, min_df=1),
    "imdb": TaskSpec(imdb.load_local, imdb.load_from_hub, min_df=10),
    "20news": TaskSpec(newsgroups.load_local, newsgroups.load_from_hub, min_df=2),
    "agnews": TaskSpec(agnews.load_local, agnews.load_from_hub, min_df=5),
    "snli": TaskSpec(nli.load_snli_local, nli.load_snli_from_hub, min_df=3, is_pair=True),
    "mnli": TaskSpec(nli.load_mnli_local, nli.load_mnli_from_hub, min_df=3, is_pair=True),
    "cnn": TaskSpec(cnn.load_local, cnn.load_from_hub, min_df=8, is_pair=True),
    **{
        f"babi{n}": TaskSpec(functools.partial(babi.load_local, task=n), functools.partial(babi.load_from_hub, task=n),
                             min_df=1, is_pair=True, options=("apply_filters", "babi_size"))
        for n in babi.TASKS
    },
}
SOURCES = ("hub", "local")


def get_task(name: str) -> TaskSpec:
    """The `TaskSpec` of ``name``; `ValueError` listing the valid names otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(TASKS)}")
    return TASKS[name]


def task_label(name: str, babi_size: str = "10k") -> str:
    """A built-in task's name in results, run folders and model cards.

    bAbI tasks carry their size unless it is the paper's 10k (``babi1`` vs ``babi1-1k``), so runs of the two
    versions never share a folder or a table row.
    """
    get_task(name)
    return f"{name}-{babi_size}" if "babi_size" in TASKS[name].options and babi_size != "10k" else name


def load_task(
    name: str, source: str = "hub", data_dir: str | Path | None = None, **options: Any
) -> datasets.DatasetDict:
    """Load a task as a `DatasetDict` with the shared column layout.

    Columns: single-sequence tasks (sst, imdb, 20news, agnews) have ``text`` (`str`) and ``label``
    (`int`, a `ClassLabel` naming the classes); pair tasks (snli, mnli, cnn, babi1-3) have ``text``
    (premise / passage), ``text_pair`` (hypothesis / question) and ``label``; cnn adds
    ``candidate_mask`` (`list[bool]` of length ``num_labels``, True for entities in the passage).
    Splits: train / validation / test; mnli has test_matched / test_mismatched instead of test.

    Args:
        name (`str`): one of ``TASKS``.
        source (`str`, *optional*, defaults to `"hub"`): ``"hub"`` (`datasets.load_dataset`) or
            ``"local"`` (the original files under ``data_dir``, see `docs/DATA.md`).
        data_dir (`str`, *optional*): folder holding ``sst/``, ``imdb/``, ... for ``source="local"``.
        options: ``apply_filters`` (`bool`, defaults to True: the length filters of docs/METHODS.md#data-protocol) and, for
            bAbI, ``babi_size`` (``"10k"``, the paper's, or ``"1k"``).
    """
    task = get_task(name)
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    unknown = sorted(set(options) - set(task.options))
    if unknown:
        raise ValueError(f"{name}: unknown options {unknown}; allowed: {list(task.options)}")
    if source == "local":
        return task.load_local(data_dir, **options)
    return task.load_hub(**options)
