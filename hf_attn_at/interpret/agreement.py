"""Per-example agreement between attention and token importance: Pearson's r and Kendall's τ."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import stats

logger = logging.getLogger(__name__)


def valid_rows(values: np.ndarray | Sequence[np.ndarray], mask: np.ndarray | None = None) -> list[np.ndarray]:
    """Per-example 1-D float arrays over the valid tokens.

    Args:
        values: a `(batch_size, sequence_length)` array with `mask`, or a sequence of 1-D arrays (one per
            example, valid tokens only) without it.
        mask: `(batch_size, sequence_length)` bool, True on the tokens to keep.
    """
    if mask is None:
        return [np.asarray(row, dtype=np.float64).ravel() for row in values]
    values, mask = np.asarray(values, dtype=np.float64), np.asarray(mask, dtype=bool)
    if values.shape != mask.shape or values.ndim != 2:
        raise ValueError(
            f"values and mask must both have shape (batch_size, sequence_length), got {values.shape} and {mask.shape}"
        )
    return [row[keep] for row, keep in zip(values, mask, strict=True)]


def _correlate(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Pearson's r, Kendall's τ-b) of two equal-length vectors; nan when either is constant or too short."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    return float(stats.pearsonr(x, y).statistic), float(stats.kendalltau(x, y).statistic)


def summarize(values: np.ndarray) -> dict[str, float | int]:
    """Mean, standard deviation and median over the finite entries of `values`, and how many were nan."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return {"mean": float("nan"), "std": float("nan"), "median": float("nan"), "count": 0,
                "num_nan": int(values.size)}
    return {
        "mean": float(np.nanmean(values)),
        "std": float(np.nanstd(values)),
        "median": float(np.nanmedian(values)),
        "count": int(finite.sum()),
        "num_nan": int((~finite).sum()),
    }


def attention_agreement(
    attention: np.ndarray | Sequence[np.ndarray],
    importance: np.ndarray | Sequence[np.ndarray],
    mask: np.ndarray | None = None,
) -> dict:
    """Pearson's r and Kendall's τ (τ-b, scipy) between attention and importance, per example.

    Only the valid tokens enter (the `mask`, or the 1-D rows as given): padding never counts. An example
    with one token or a constant vector has no correlation: it gets nan, is counted in `num_nan`, and the
    summaries are over the finite values.

    Args:
        attention, importance: `(batch_size, sequence_length)` arrays with `mask`, or sequences of 1-D
            arrays over each example's valid tokens.
        mask: `(batch_size, sequence_length)` bool, True on valid tokens.

    Returns:
        A dict with `pearson` and `kendall` (float arrays of shape `(batch_size,)`) and `pearson_summary`,
        `kendall_summary` (`mean`, `std`, `median`, `count`, `num_nan`).
    """
    rows_a, rows_i = valid_rows(attention, mask), valid_rows(importance, mask)
    if len(rows_a) != len(rows_i):
        raise ValueError(f"attention has {len(rows_a)} examples but importance has {len(rows_i)}")
    pearson = np.full(len(rows_a), np.nan)
    kendall = np.full(len(rows_a), np.nan)
    for i, (a, imp) in enumerate(zip(rows_a, rows_i, strict=True)):
        if a.shape != imp.shape:
            raise ValueError(f"example {i}: attention has {a.size} valid tokens but importance has {imp.size}")
        pearson[i], kendall[i] = _correlate(a, imp)
    num_nan = int(np.isnan(pearson).sum())
    if num_nan:
        logger.info("%d of %d examples have a constant or one-token vector: no correlation", num_nan, len(pearson))
    return {
        "pearson": pearson,
        "kendall": kendall,
        "pearson_summary": summarize(pearson),
        "kendall_summary": summarize(kendall),
    }
