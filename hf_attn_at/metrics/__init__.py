"""Task metrics for `Trainer(compute_metrics=...)`, computed through 🤗 Evaluate.

The metric modules ship inside this package (`task_metrics.py`, `attention_agreement.py`) and load offline with
`evaluate.load(metric_path(name))`; `evaluate.load("accuracy")` and the like would need the Hub.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import evaluate
import numpy as np
from transformers import EvalPrediction

METRIC_MODULES = ("task_metrics", "attention_agreement")


def metric_path(name: str) -> str:
    """Local path of a metric module shipped with the package, for `evaluate.load(metric_path(name))`.

    Args:
        name: one of `METRIC_MODULES`: `"task_metrics"` (accuracy, macro F1, F1, ROC AUC, top-k accuracy from
            logits) or `"attention_agreement"` (Pearson's r and Kendall's τ between attention and importance).
    """
    if name not in METRIC_MODULES:
        raise ValueError(f"unknown metric module {name!r}; shipped modules: {', '.join(METRIC_MODULES)}")
    return str(Path(__file__).with_name(f"{name}.py"))


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """The shipped metric module `name` (see `metric_path`), loaded once per process, kept in memory (no cache
    files, so concurrent processes never share one)."""
    return evaluate.load(metric_path(name), keep_in_memory=True)


def classification_metrics(logits: np.ndarray, labels: np.ndarray, top_k: int = 3) -> dict[str, float]:
    """Metrics from `logits` `(num_examples, num_labels)` and `labels` `(num_examples,)`, via the
    `task_metrics` Evaluate module.

    Always `accuracy` and `macro_f1`; binary tasks add `f1` (positive class, when it occurs) and `auc` (when both
    classes occur); tasks with more than `top_k` labels (QA) add `top{top_k}_accuracy`. Unlabelled examples (-100)
    are ignored; non-finite logits raise a `ValueError`.
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (num_examples, num_labels) and labels (num_examples,), got {logits.shape} and {labels.shape}"
        )
    return load_metric("task_metrics").compute(predictions=logits, references=labels, top_k=top_k)


def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """`Trainer` hook: the logits are the first prediction output (extra outputs are ignored)."""
    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    return classification_metrics(logits, eval_pred.label_ids)
