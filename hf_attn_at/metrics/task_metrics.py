"""🤗 Evaluate metric module: accuracy, macro F1, F1, ROC AUC and top-k accuracy from classifier logits.

Load it offline with `evaluate.load(hf_attn_at.metric_path("task_metrics"))`.
"""

import datasets
import evaluate
import numpy as np
from scipy.special import softmax
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

_DESCRIPTION = """\
The task metrics of "Attention Meets Perturbations" (Kitada & Iyatomi, 2021) from classifier logits: always
`accuracy` and `macro_f1` (over the classes present in the references); binary tasks add `f1` (positive class 1,
only when class 1 occurs: without positives it is undefined) and `auc` (ROC AUC of the softmax probability of
class 1, only when both classes occur); tasks with more than `top_k` labels (question answering) add
`top{top_k}_accuracy`. References equal to -100 (unlabelled) are ignored. Non-finite logits (a diverged model)
are refused: their argmax would count as predictions of class 0.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[float]]`): logits, one row of `num_labels` floats per example.
    references (`list[int]`): the gold class per example; -100 marks an unlabelled example, which is ignored.
    top_k (`int`, defaults to 3): k of the top-k accuracy, reported when there are more than k labels.
Returns:
    `dict[str, float]`: `accuracy`, `macro_f1`, and `f1`, `auc` or `top{top_k}_accuracy` where they apply.
Examples:
    >>> metric = evaluate.load(hf_attn_at.metric_path("task_metrics"))
    >>> metric.compute(predictions=[[2.0, 0.0], [0.0, 1.0]], references=[0, 1])
    {'accuracy': 1.0, 'macro_f1': 1.0, 'f1': 1.0, 'auc': 1.0}
"""

_CITATION = """\
@article{kitada2021attention,
  title={Attention Meets Perturbations: Robust and Interpretable Attention With Adversarial Training},
  author={Kitada, Shunsuke and Iyatomi, Hitoshi},
  journal={IEEE Access}, volume={9}, pages={92974--92985}, year={2021}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TaskMetrics(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float64")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions: list[list[float]], references: list[int], top_k: int = 3) -> dict[str, float]:
        if len({len(row) for row in predictions}) > 1:
            raise ValueError(
                f"every row of predictions (logits) needs the same num_labels, got lengths "
                f"{sorted({len(row) for row in predictions})}"
            )
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        logits, labels = np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.int64)
        keep = labels != -100
        logits, labels = logits[keep], labels[keep]
        if labels.size == 0:
            raise ValueError("no labelled example to score (all labels are -100)")
        num_labels = logits.shape[-1]
        if labels.min() < 0 or labels.max() >= num_labels:
            raise ValueError(f"labels must be -100 or in [0, {num_labels}) for {num_labels} logits, got "
                             f"{sorted(set(labels[(labels < 0) | (labels >= num_labels)].tolist()))}")
        bad_rows = np.flatnonzero(~np.isfinite(logits).all(-1))
        if bad_rows.size:
            raise ValueError(f"predictions (logits) of {bad_rows.size} of {len(logits)} labelled examples are not finite "
                             f"(first: row {int(np.flatnonzero(keep)[bad_rows[0]])}, {logits[bad_rows[0]].tolist()}); "
                             "the model diverged: no metric is computed from them")
        predicted = logits.argmax(-1)
        metrics = {
            "accuracy": float(accuracy_score(labels, predicted)),
            "macro_f1": float(f1_score(labels, predicted, average="macro", labels=np.unique(labels))),
        }
        if num_labels == 2 and (labels == 1).any():
            metrics["f1"] = float(f1_score(labels, predicted, pos_label=1, zero_division=0))
            if len(np.unique(labels)) == 2:
                metrics["auc"] = float(roc_auc_score(labels, softmax(logits, axis=-1)[:, 1]))
        if num_labels > top_k:
            top = np.argsort(-logits, axis=-1)[:, :top_k]
            metrics[f"top{top_k}_accuracy"] = float((top == labels[:, None]).any(-1).mean())
        return metrics
