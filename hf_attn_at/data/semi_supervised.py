"""Semi-supervised splits: hide the labels of most training examples (label -100 = unlabelled).

`transformers.DataCollatorWithPadding` stacks -100 labels like any other; the model's loss ignores them, and
`AdversarialTrainer` with `attention_vat` / `attention_ivat` trains on them through the KL term. Evaluation
splits keep their labels (metrics are computed on labelled data only).
"""

from __future__ import annotations

import datasets
import numpy as np

UNLABELLED = -100


def hide_labels(
    dataset: datasets.Dataset, fraction_labelled: float, seed: int, label_column: str = "label"
) -> datasets.Dataset:
    """Keep the labels of a seeded random `round(fraction_labelled · N)` examples (at least one) and set the
    others to -100. Rows, their order and the column's features (e.g. `ClassLabel` names) are unchanged.

    Args:
        dataset (`datasets.Dataset`): a split with an integer `label_column`.
        fraction_labelled (`float`): in (0, 1].
        seed (`int`): seeds the choice of the labelled examples.
        label_column (`str`, *optional*, defaults to `"label"`).
    """
    if not 0 < fraction_labelled <= 1:
        raise ValueError(f"`fraction_labelled` must be in (0, 1], got {fraction_labelled!r}")
    if label_column not in dataset.column_names:
        raise ValueError(f"no column {label_column!r} to hide; columns: {dataset.column_names}")
    num_labelled = max(1, round(fraction_labelled * len(dataset)))
    keep = np.zeros(len(dataset), dtype=bool)
    keep[np.random.default_rng(seed).permutation(len(dataset))[:num_labelled]] = True

    def hide(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        return {label_column: [label if keep[i] else UNLABELLED for label, i in zip(batch[label_column], indices, strict=True)]}

    return dataset.map(hide, batched=True, with_indices=True, desc="hiding labels")


def labelled_subset(dataset: datasets.Dataset, label_column: str = "label") -> datasets.Dataset:
    """The examples whose label is not -100 (e.g. to train a supervised baseline on the same labels)."""
    labels = np.asarray(dataset[label_column])
    return dataset.select(np.flatnonzero(labels != UNLABELLED))
