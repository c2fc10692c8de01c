import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from transformers import EvalPrediction

from hf_attn_at.metrics import classification_metrics, compute_metrics


def test_binary_metrics_known_values():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.5, 0.0], [0.0, 3.0]])
    labels = np.array([0, 1, 1, 1])
    m = classification_metrics(logits, labels)
    assert m["accuracy"] == 0.75
    assert m["f1"] == pytest.approx(2 * 1.0 * (2 / 3) / (1.0 + 2 / 3))  # precision 1, recall 2/3
    assert m["auc"] == pytest.approx(roc_auc_score(labels, logits[:, 1] - logits[:, 0]))
    assert set(m) == {"accuracy", "macro_f1", "f1", "auc"}


def test_multiclass_top_k_and_unlabelled():
    logits = np.array([[0.0, 1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0, 0.0], [0.0, 0.0, 9.0, 0.0, 0.0]])
    labels = np.array([2, 4, -100])
    m = compute_metrics(EvalPrediction(predictions=(logits, np.zeros(3)), label_ids=labels))
    assert m["accuracy"] == 0.0
    assert m["top3_accuracy"] == 0.5  # label 2 is in the top 3 of row 0; label 4 is last in row 1
    with pytest.raises(ValueError, match="no labelled example"):
        classification_metrics(logits[2:], labels[2:])
    with pytest.raises(ValueError, match="expected logits"):
        classification_metrics(logits, labels[:2])
