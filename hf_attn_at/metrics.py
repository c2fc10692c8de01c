"""Task metrics (docs/METHODS.md#data-protocol) for `Trainer(compute_metrics=...)`: accuracy, F1, AUC, top-k accuracy."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from transformers import EvalPrediction


def classification_metrics(logits: np.ndarray, labels: np.ndarray, top_k: int = 3) -> dict[str, float]:
    """Metrics from `logits` `(num_examples, num_labels)` and `labels` `(num_examples,)`.

    Always `accuracy` and `macro_f1`; binary tasks add `f1` (positive class) and `auc`; tasks with
    more than `top_k` labels (QA) add `top{top_k}_accuracy`. Unlabelled examples (-100) are ignored.
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (num_examples, num_labels) and labels (num_examples,), got {logits.shape} and {labels.shape}"
        )
    keep = labels != -100
    logits, labels = logits[keep], labels[keep]
    if labels.size == 0:
        raise ValueError("no labelled example to score (all labels are -100)")
    predictions = logits.argmax(-1)
    num_labels = logits.shape[-1]
    metrics = {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", labels=np.unique(labels))),
    }
    if num_labels == 2:
        metrics["f1"] = float(f1_score(labels, predictions, pos_label=1, zero_division=0))
        if len(np.unique(labels)) == 2:
            metrics["auc"] = float(roc_auc_score(labels, softmax(logits, axis=-1)[:, 1]))
    if num_labels > top_k:
        top = np.argsort(-logits, axis=-1)[:, :top_k]
        metrics[f"top{top_k}_accuracy"] = float((top == labels[:, None]).any(-1).mean())
    return metrics


def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """`Trainer` hook: the logits are the first prediction output (extra outputs are ignored)."""
    logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    return classification_metrics(logits, eval_pred.label_ids)
