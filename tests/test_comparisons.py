"""Differences to vanilla with confidence intervals from run records, and the claim verdicts they decide."""

import json

import numpy as np
import pytest

from hf_attn_at.cli.aggregate import run_name
from hf_attn_at.cli.comparisons import claim_verdicts, difference_tables, differences, task_verdicts
from hf_attn_at.runs import RunRecord
from hf_attn_at.statistics import paired_bootstrap_ci, seed_difference_ci


def write_run(root, task, method, epsilon, seed, accuracy, pearson):
    name = run_name(task, method, epsilon, seed)
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "explanation.json").write_text(json.dumps({"pearson": [None if np.isnan(v) else v for v in pearson]}))
    result = RunRecord(task=task, method=method, epsilon=epsilon, lambda_=1.0, seed=seed, agreement={},
                       agreement_split="test", metrics={"test": {"test_accuracy": accuracy}})
    return name, folder, result


def test_differences_pair_seeds_and_decide_the_claims(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(-0.2, 0.6, size=(3, 200))
    base[0, 5] = np.nan  # a constant-attention example
    runs = {  # method -> (ε, accuracies, per-seed Pearson)
        "vanilla": (None, [0.80, 0.81, 0.82], base),
        "attention_at": (0.1, [0.70, 0.71, 0.72], base + 0.2 + rng.normal(0, 0.01, base.shape)),
        "attention_iat": (1.0, [0.80, 0.82, 0.81], base + 0.1 + rng.normal(0, 0.01, base.shape)),
        "word_at": (1.0, [0.9, 0.91, 0.92], base - 0.3),
    }
    run_dirs, results = {}, []
    for method, (epsilon, accuracies, pearson) in runs.items():
        for seed in (1, 2, 3):
            name, folder, result = write_run(tmp_path, "sst", method, epsilon, seed, accuracies[seed - 1],
                                             pearson[seed - 1])
            run_dirs[name] = folder
            results.append(result)
    main = {"attention_at": 0.1, "attention_iat": 1.0, "word_at": 1.0}
    table = differences(results, run_dirs, lambda task, method: main.get(method), run_name, lambda r: r.test_metric("accuracy"))
    at = table["sst"]["attention_at"]
    assert at["accuracy"] == seed_difference_ci(runs["attention_at"][1], runs["vanilla"][1])
    assert at["pearson"] == paired_bootstrap_ci(list(runs["attention_at"][2]), list(base))
    assert at["pearson_seeds"] == seed_difference_ci(np.nanmean(runs["attention_at"][2], axis=1),
                                                     np.nanmean(base, axis=1))
    assert at["accuracy"].verdict() == "not held" and at["pearson"].verdict() == "held"
    assert table["sst"]["word_at"]["pearson"].verdict() == "not held"
    text = "\n".join(difference_tables(table) + claim_verdicts(table))
    assert "| attention_at | −0.100 [" in text
    # Claim 1: neither AT nor iAT is significantly more accurate, AT significantly less → not held.
    assert "1. Attention AT/iAT are more accurate than vanilla**: held 0 / not held 1 / inconclusive 0" in text
    # Claim 2: both significantly above vanilla → held.
    assert "2. Attention AT/iAT agree more with gradient importance than vanilla**: held 1 / not held 0" in text
    assert task_verdicts(table) == {"claim1": [("sst", "not held")], "claim2": [("sst", "held")],
                                    "claim2_seeds": [("sst", "held")]}
    # Another bootstrap seed (docs/bootstrap_stability.py) draws other resamples: the same estimate, other bounds.
    other = differences(results, run_dirs, lambda task, method: main.get(method), run_name,
                        lambda r: r.test_metric("accuracy"), bootstrap_seed=7)["sst"]["attention_at"]
    assert other["pearson"] == paired_bootstrap_ci(list(runs["attention_at"][2]), list(base), seed=7)
    assert other["pearson"].estimate == at["pearson"].estimate and other["pearson"].low != at["pearson"].low
    assert other["accuracy"] == at["accuracy"] and other["pearson_seeds"] == at["pearson_seeds"]


def test_seed_level_check_of_the_agreement_counts_the_seed_spread(tmp_path):
    """Per-seed offsets of ±0.3 around +0.03: the bootstrap over pooled examples sees a small, sharp gain (held);
    the interval over the 3 seeds' means sees the spread (inconclusive), and the claim's check says so."""
    rng = np.random.default_rng(1)
    base = rng.uniform(-0.2, 0.6, size=(3, 400))
    offsets = [0.33, -0.27, 0.03]
    runs = {"vanilla": (None, base),
            "attention_at": (0.1, np.stack([base[k] + offsets[k] for k in range(3)])),
            "attention_iat": (1.0, np.stack([base[k] + offsets[k] for k in range(3)]))}
    run_dirs, results = {}, []
    for method, (epsilon, pearson) in runs.items():
        for seed in (1, 2, 3):
            name, folder, result = write_run(tmp_path, "sst", method, epsilon, seed, 0.8, pearson[seed - 1])
            run_dirs[name], results = folder, [*results, result]
    main = {"attention_at": 0.1, "attention_iat": 1.0}
    table = differences(results, run_dirs, lambda task, method: main.get(method), run_name,
                        lambda r: r.test_metric("accuracy"))
    at = table["sst"]["attention_at"]
    assert at["pearson"].verdict() == "held" and at["pearson_seeds"].verdict() == "inconclusive"
    assert at["pearson_seeds"].estimate == pytest.approx(np.mean(offsets))
    text = "\n".join(difference_tables(table) + claim_verdicts(table))
    assert "| Δ Pearson r, seeds [95% CI] | verdict |" in text
    assert "2. Attention AT/iAT agree more with gradient importance than vanilla**: held 1 / not held 0 / " \
           "inconclusive 0" in text
    assert "2, checked over seeds (Welch's interval over the seeds' mean Pearson r)**: held 0 / not held 0 / " \
           "inconclusive 1" in text


def test_differences_pair_seeds_by_number_not_position(tmp_path, caplog):
    """Vanilla has seeds 1-3, the method seeds 2-3 with exactly vanilla's values of the same seed: the paired
    difference is 0 (pairing by position would compare method seed 2 with vanilla seed 1), and seed 1 is named."""
    base = {seed: np.full(20, 0.1 * seed) for seed in (1, 2, 3)}
    run_dirs, results = {}, []
    for method, epsilon, seeds in (("vanilla", None, (1, 2, 3)), ("attention_at", 1.0, (2, 3))):
        for seed in seeds:
            name, folder, result = write_run(tmp_path, "sst", method, epsilon, seed, 0.8, base[seed])
            run_dirs[name] = folder
            results.append(result)
    with caplog.at_level("WARNING", logger="hf_attn_at.cli.comparisons"):
        table = differences(results, run_dirs, lambda task, method: 1.0, run_name, lambda r: r.test_metric("accuracy"))
    r = table["sst"]["attention_at"]["pearson"]
    assert (r.estimate, r.low, r.high) == (0.0, 0.0, 0.0) and r.verdict() == "inconclusive"
    assert "pairs seeds [2, 3] with vanilla's and leaves out seeds [1]" in caplog.text


def test_bootstrap_stability_script_recomputes_the_verdicts_per_seed(tmp_path, capsys):
    """docs/bootstrap_stability.py on records of one task: ε selected on validation (0.1 of four), vanilla and AT
    paired by seed; AT's clear gain is held under every bootstrap seed."""
    import importlib.util

    from testing_utils import REPO_ROOT

    rng = np.random.default_rng(1)
    base = rng.uniform(-0.2, 0.6, size=(3, 100))
    runs = [("vanilla", None, seed, base[seed - 1], 0.80) for seed in (1, 2, 3)]
    runs += [("attention_at", eps, 1, base[0] + 0.2, 0.9 if eps == 0.1 else 0.8) for eps in (0.01, 0.1, 1.0, 10.0)]
    runs += [("attention_at", 0.1, seed, base[seed - 1] + 0.2, 0.9) for seed in (2, 3)]
    for method, epsilon, seed, pearson, auc in runs:
        name, folder, result = write_run(tmp_path, "sst", method, epsilon, seed, 0.8, pearson)
        result.metrics["validation"] = {"validation_auc": auc}
        result.save(folder)
    spec = importlib.util.spec_from_file_location("bootstrap_stability", REPO_ROOT / "docs" / "bootstrap_stability.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(str(tmp_path), 3) == 0
    out = capsys.readouterr().out
    assert "9 records; bootstrap seeds 0..2: 0 of 1 agreement verdicts change with the seed." in out
    assert "Claim 2 per task (AT and iAT combined) over the seeds: sst: inconclusive 3." in out  # iAT missing
