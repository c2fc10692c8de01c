import evaluate
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score, top_k_accuracy_score
from transformers import EvalPrediction

import hf_attn_at
from hf_attn_at.interpret import attention_agreement
from hf_attn_at.metrics import METRIC_MODULES, classification_metrics, compute_metrics, metric_path


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


def test_metric_paths_are_shipped_modules():
    for name in METRIC_MODULES:
        assert metric_path(name).endswith(f"hf_attn_at/metrics/{name}.py")
    assert hf_attn_at.metric_path is metric_path
    with pytest.raises(ValueError, match="unknown metric module 'accuracy'; shipped modules: task_metrics, attention"):
        metric_path("accuracy")


@pytest.mark.parametrize("num_labels", [2, 7])
def test_task_metrics_module_matches_sklearn(num_labels):
    rng = np.random.default_rng(num_labels)
    logits = rng.normal(size=(60, num_labels))
    labels = rng.integers(0, num_labels, size=60)
    labels[::7] = -100  # unlabelled: ignored
    keep = labels != -100
    y, scores = labels[keep], logits[keep]
    predicted = scores.argmax(-1)
    expected = {
        "accuracy": accuracy_score(y, predicted),
        "macro_f1": f1_score(y, predicted, average="macro"),  # every class occurs in y here
    }
    if num_labels == 2:
        expected["f1"] = f1_score(y, predicted)
        expected["auc"] = roc_auc_score(y, scores[:, 1] - scores[:, 0])  # monotone in softmax(...)[:, 1]
    else:
        assert len(np.unique(y)) == num_labels
        expected["top3_accuracy"] = top_k_accuracy_score(y, scores, k=3, labels=np.arange(num_labels))
    module = evaluate.load(metric_path("task_metrics"))
    from_module = module.compute(predictions=logits.tolist(), references=labels.tolist())
    for metrics in (from_module, classification_metrics(logits, labels)):
        assert metrics.keys() == expected.keys()
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(value, abs=1e-12), key


def test_task_metrics_one_class_has_no_auc_and_bad_input_is_one_line():
    logits = np.array([[0.3, 0.1], [0.0, 2.0], [1.0, 0.0]])
    metrics = classification_metrics(logits, np.array([0, 0, -100]))
    assert "auc" not in metrics and "f1" not in metrics  # ROC AUC and F1 of class 1 are undefined without class 1
    assert metrics["accuracy"] == 0.5
    assert "auc" not in classification_metrics(logits[1:2], np.array([1]))  # positives only: F1 is defined
    assert classification_metrics(logits[1:2], np.array([1]))["f1"] == 1.0
    module = evaluate.load(metric_path("task_metrics"))
    with pytest.raises(ValueError, match=r"same num_labels, got lengths \[2, 3\]"):
        module.compute(predictions=[[0.0, 1.0], [0.0, 1.0, 2.0]], references=[0, 1])
    with pytest.raises(ValueError, match=r"labels must be -100 or in \[0, 2\) for 2 logits, got \[-1, 5\]"):
        module.compute(predictions=logits.tolist(), references=[5, -1, 0])
    with pytest.raises(ValueError, match="top_k must be a positive int, got 0"):
        module.compute(predictions=logits.tolist(), references=[0, 1, 0], top_k=0)


@pytest.mark.parametrize("num_labels", [2, 3])
def test_non_finite_logits_are_refused_not_counted_as_class_0(num_labels):
    logits = np.zeros((4, num_labels))
    logits[2] = np.nan  # a diverged model: argmax would say class 0 and accuracy would count it
    labels = np.array([-100, 0, 0, 1])
    with pytest.raises(ValueError, match=r"logits\) of 1 of 3 labelled examples are not finite \(first: row 2, "):
        classification_metrics(logits, labels)
    logits[2] = -np.inf
    with pytest.raises(ValueError, match="not finite"):
        classification_metrics(logits, labels)


def test_attention_agreement_module_matches_scipy_on_ragged_examples():
    rng = np.random.default_rng(0)
    attention = [rng.dirichlet(np.ones(n)).tolist() for n in (5, 9, 3, 12, 7)]
    importance = [rng.normal(size=len(row)).tolist() for row in attention]
    attention += [[0.5, 0.5], [1.0]]  # constant, one token: no correlation
    importance += [[1.0, 2.0], [3.0]]
    pearson = [stats.pearsonr(a, i).statistic for a, i in zip(attention[:5], importance[:5], strict=True)]
    kendall = [stats.kendalltau(a, i).statistic for a, i in zip(attention[:5], importance[:5], strict=True)]
    module = evaluate.load(metric_path("attention_agreement"))
    result = module.compute(attention=attention, importance=importance)
    assert result == pytest.approx({
        "pearson_mean": np.mean(pearson), "pearson_std": np.std(pearson), "pearson_median": np.median(pearson),
        "kendall_mean": np.mean(kendall), "kendall_std": np.std(kendall), "kendall_median": np.median(kendall),
        "count": 5, "num_nan": 2,
    }, abs=1e-12)
    direct = attention_agreement([np.array(a) for a in attention], [np.array(i) for i in importance])
    assert result["pearson_mean"] == direct["pearson_summary"]["mean"]
    assert result["kendall_std"] == direct["kendall_summary"]["std"]
    with pytest.raises(ValueError, match="example 1: attention has 9 valid tokens but importance has 2"):
        module.compute(attention=attention[:2], importance=[importance[0], [0.0, 1.0]])
