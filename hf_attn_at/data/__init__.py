"""Datasets of Jain & Wallace / Kitada & Iyatomi as `datasets.DatasetDict` with one column layout.

See :func:`load_data` (settings → tokenized splits and what was resolved), :func:`load_task` for the layout
and ``docs/DATA.md`` for sources, splits and filters.
"""

from .custom import load_custom
from .loading import DataSettings, LoadedData, load_data
from .processing import (
    EVAL_SAMPLE_SEED,
    padding_efficiency,
    prepare_dataset,
    prepare_task,
    sample_examples,
    sample_indices,
    tokenize_dataset,
)
from .registry import SOURCES, TASKS, TaskSpec, get_task, load_task, task_label
from .semi_supervised import UNLABELLED, hide_labels, labelled_subset

__all__ = [
    "DataSettings",
    "EVAL_SAMPLE_SEED",
    "LoadedData",
    "SOURCES",
    "TASKS",
    "TaskSpec",
    "UNLABELLED",
    "get_task",
    "hide_labels",
    "labelled_subset",
    "load_custom",
    "load_data",
    "load_task",
    "padding_efficiency",
    "prepare_dataset",
    "prepare_task",
    "sample_examples",
    "sample_indices",
    "task_label",
    "tokenize_dataset",
]
