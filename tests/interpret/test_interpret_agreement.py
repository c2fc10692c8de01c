"""Pearson/Kendall agreement and e-SNLI rationales."""

from __future__ import annotations

import numpy as np
from scipy import stats
from testing_utils import require_shared_data, shared_data_path

from hf_attn_at.interpret import (
    attention_agreement,
    load_esnli_rationales,
    premise_rationale,
    rationale_agreement,
)


def test_correlations_equal_scipy_over_valid_tokens_only():
    attention = np.array([[0.1, 0.5, 0.2, 0.2, 0.0], [0.3, 0.7, 0.0, 0.0, 0.0]])
    importance = np.array([[0.2, 0.4, 0.1, 0.3, 0.0], [0.9, 0.1, 0.0, 0.0, 0.0]])
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=bool)
    result = attention_agreement(attention, importance, mask)
    for b in range(2):
        a, i = attention[b][mask[b]], importance[b][mask[b]]
        assert result["pearson"][b] == stats.pearsonr(a, i).statistic
        assert result["kendall"][b] == stats.kendalltau(a, i).statistic
    # Values on padding do not matter.
    noisy_attention, noisy_importance = attention.copy(), importance.copy()
    noisy_attention[~mask] = np.random.default_rng(0).random((~mask).sum())
    noisy_importance[~mask] = 5.0
    again = attention_agreement(noisy_attention, noisy_importance, mask)
    np.testing.assert_array_equal(again["pearson"], result["pearson"])
    np.testing.assert_array_equal(again["kendall"], result["kendall"])
    # Ragged rows give the same as the padded form.
    ragged = attention_agreement([a[m] for a, m in zip(attention, mask, strict=True)], [i[m] for i, m in zip(importance, mask, strict=True)])
    np.testing.assert_array_equal(ragged["kendall"], result["kendall"])
    summary = result["pearson_summary"]
    assert summary["mean"] == np.mean(result["pearson"]) and summary["num_nan"] == 0


def test_constant_and_single_token_examples_are_nan_and_counted():
    result = attention_agreement([[1.0], [0.5, 0.5], [0.2, 0.8, 0.0]], [[1.0], [0.1, 0.9], [0.1, 0.7, 0.2]])
    assert np.isnan(result["pearson"][:2]).all() and np.isnan(result["kendall"][:2]).all()
    assert np.isfinite(result["pearson"][2])
    assert result["pearson_summary"]["num_nan"] == 2 and result["pearson_summary"]["count"] == 1
    assert result["pearson_summary"]["mean"] == result["pearson"][2]


def test_premise_rationale_marks_content_words_of_explanations():
    tokens, rationale = premise_rationale("A man in 2 red shirts is running .", ["the man is running , so he moves"])
    assert tokens == ["a", "man", "in", "qqq", "red", "shirts", "is", "running", "."]
    assert rationale.tolist() == [0, 1, 0, 0, 0, 0, 0, 1, 0]


@require_shared_data("esnli")
def test_rationale_on_real_esnli_line():
    data = load_esnli_rationales(shared_data_path("esnli"), "test", max_examples=2)
    # Test line 2: "This church choir sings to the masses ..." / "The church is filled with song ." (entailment)
    assert data["label"] == [1, 0]
    tokens, rationale = data["premise_tokens"][1], data["rationale"][1]
    assert tokens[:4] == ["this", "church", "choir", "sings"]
    marked = {t for t, r in zip(tokens, rationale, strict=True) if r}
    assert marked == {"church", "choir", "sings", "masses", "joyous"}
    # Attention entirely on the rationale: mass 1, AUC 1; uniform attention: AUC 0.5.
    on_rationale = rationale / rationale.sum()
    uniform = np.full(len(tokens), 1 / len(tokens))
    result = rationale_agreement([on_rationale, uniform], [rationale, rationale])
    np.testing.assert_allclose(result["mass"], [1.0, rationale.sum() / len(tokens)])
    np.testing.assert_allclose(result["auc"], [1.0, 0.5])
    skipped = rationale_agreement([np.array([0.5, 0.5])], [np.array([0, 0])])
    assert skipped["num_skipped"] == 1 and np.isnan(skipped["auc"][0])
