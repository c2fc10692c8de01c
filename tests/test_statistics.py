import math
import time

import numpy as np
import pytest
from scipy import stats

from hf_attn_at import statistics
from hf_attn_at.statistics import (
    Interval,
    format_interval,
    paired_bootstrap_ci,
    seed_difference_ci,
    summarize_verdicts,
)


def reference_paired_bootstrap(method, baseline, num_resamples, confidence, seed):
    """Explicit loops: pair seeds with zip, keep pairs finite on both sides, difference of the pooled means."""
    pairs = list(zip(method, baseline, strict=False))
    kept = [[not (math.isnan(m[i]) or math.isnan(b[i])) for i in range(len(m))] for m, b in pairs]
    population = [i for i in range(len(pairs[0][0])) if any(k[i] for k in kept)]

    def difference(examples):
        ours, theirs = [], []
        for (m, b), k in zip(pairs, kept, strict=True):
            for i in examples:
                if k[i]:
                    ours.append(m[i])
                    theirs.append(b[i])
        return sum(ours) / len(ours) - sum(theirs) / len(theirs)

    rng = np.random.default_rng(seed)
    resampled = []
    for _ in range(num_resamples):
        draw = rng.integers(0, len(population), size=len(population))
        resampled.append(difference([population[j] for j in draw]))
    alpha = 1 - confidence
    low, high = np.quantile(resampled, [alpha / 2, 1 - alpha / 2])
    return difference(population), low, high, len(population)


def nan_agreement(rng, num_seeds, num_examples, nan_fraction=0.1):
    values = [rng.uniform(-1, 1, num_examples) for _ in range(num_seeds)]
    for v in values:
        v[rng.random(num_examples) < nan_fraction] = np.nan
    return values


@pytest.mark.parametrize("chunk", [None, 7, 1])
def test_paired_bootstrap_equals_explicit_loop(monkeypatch, chunk):
    if chunk is not None:  # several (or one-row) chunks must draw the same indices as one big draw
        monkeypatch.setattr(statistics, "_MAX_DRAWS_PER_CHUNK", chunk * 12)
    rng = np.random.default_rng(3)
    method, baseline = nan_agreement(rng, 3, 12, 0.25), nan_agreement(rng, 3, 12, 0.25)
    method[0][5] = baseline[1][5] = baseline[2][5] = np.nan  # example 5 is kept in no pair: not resampled
    got = paired_bootstrap_ci(method, baseline, num_resamples=300, confidence=0.9, seed=11)
    estimate, low, high, n = reference_paired_bootstrap(method, baseline, 300, 0.9, 11)
    assert got.n == n <= 11
    assert got.estimate == pytest.approx(estimate, abs=1e-12)
    assert (got.low, got.high) == pytest.approx((low, high), abs=1e-12)
    assert got.confidence == 0.9


def test_paired_bootstrap_pairs_seeds_in_order_and_drops_nan_pairs():
    # Pair 0 keeps example 0 (difference 1), pair 1 keeps example 1 (difference 4): estimate 2.5 over 2 examples.
    # Resampling the 2 examples gives 1 (p 1/4), 2.5 (p 1/2) or 4 (p 1/4): the 95 % interval is [1, 4].
    method = [np.array([1.0, np.nan]), np.array([3.0, 5.0])]
    baseline = [np.array([0.0, 2.0]), np.array([np.nan, 1.0])]
    got = paired_bootstrap_ci(method, baseline, num_resamples=4000)
    assert (got.estimate, got.low, got.high, got.n) == (2.5, 1.0, 4.0, 2)
    # Pairing method seed 0 with baseline seed 1 instead keeps other examples: a different estimate.
    assert paired_bootstrap_ci(method[1::-1], baseline).estimate == 3.0


def test_paired_bootstrap_constant_difference_and_determinism():
    rng = np.random.default_rng(0)
    baseline = [rng.normal(size=50) for _ in range(2)]
    shifted = paired_bootstrap_ci([b + 0.25 for b in baseline], baseline, num_resamples=200)
    assert (shifted.estimate, shifted.low, shifted.high) == pytest.approx((0.25, 0.25, 0.25))
    method = [b + rng.normal(size=50) for b in baseline]
    assert paired_bootstrap_ci(method, baseline, seed=4) == paired_bootstrap_ci(method, baseline, seed=4)
    assert paired_bootstrap_ci(method, baseline, seed=4) != paired_bootstrap_ci(method, baseline, seed=5)


def test_paired_bootstrap_coverage():
    """Known difference 0.05; an example effect shared by both methods and every seed (paired data), and a
    per-example gain shared across seeds (so seed pairs are not independent: examples must be the unit)."""
    rng = np.random.default_rng(2024)
    num_seeds, num_examples, delta, covered = 3, 120, 0.05, 0
    for simulation in range(200):
        difficulty = rng.normal(0, 1.0, num_examples)
        gain = delta + rng.normal(0, 0.3, num_examples)
        baseline = [difficulty + rng.normal(0, 0.1, num_examples) for _ in range(num_seeds)]
        method = [difficulty + gain + rng.normal(0, 0.1, num_examples) for _ in range(num_seeds)]
        interval = paired_bootstrap_ci(method, baseline, num_resamples=1000, seed=simulation)
        covered += interval.low <= delta <= interval.high
    assert 0.90 <= covered / 200 <= 0.985


def test_seed_difference_matches_scipy_welch():
    rng = np.random.default_rng(5)
    for n1, n2 in [(3, 3), (2, 5), (4, 3)]:
        values, baseline = rng.normal(0.8, 0.02, n1), rng.normal(0.78, 0.05, n2)
        for confidence in (0.95, 0.8):
            got = seed_difference_ci(values, baseline, confidence)
            expected = stats.ttest_ind(values, baseline, equal_var=False).confidence_interval(confidence)
            assert got.estimate == pytest.approx(values.mean() - baseline.mean(), abs=1e-15)
            assert (got.low, got.high) == pytest.approx((expected.low, expected.high), rel=1e-10)
            assert got.n == min(n1, n2)


def test_seed_difference_coverage():
    """3 seeds a side, unequal variances, known difference 0.01 (a normal-quantile interval covers ≈ 80 %)."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(200):
        interval = seed_difference_ci(rng.normal(0.81, 0.01, 3), rng.normal(0.80, 0.02, 3))
        covered += interval.low <= 0.01 <= interval.high
    assert 0.90 <= covered / 200 <= 0.99


def test_seed_difference_too_few_seeds_or_no_spread():
    one = seed_difference_ci([0.9], [0.8, 0.82])
    assert one.estimate == pytest.approx(0.09) and math.isnan(one.low) and math.isnan(one.high) and one.n == 1
    assert one.verdict() == "inconclusive"
    assert format_interval(one) == "+0.090 [n/a]"
    flat = seed_difference_ci([0.9, 0.9], [0.8, 0.8, 0.8])
    assert (flat.low, flat.estimate, flat.high) == pytest.approx((0.1, 0.1, 0.1))


@pytest.mark.parametrize(
    ("low", "high", "higher", "lower"),
    [
        (0.01, 0.02, "held", "not held"),
        (-0.02, -0.01, "not held", "held"),
        (-0.01, 0.02, "inconclusive", "inconclusive"),
        (0.0, 0.02, "inconclusive", "inconclusive"),
        (-0.02, 0.0, "inconclusive", "inconclusive"),
        (math.nan, math.nan, "inconclusive", "inconclusive"),
    ],
)
def test_verdict(low, high, higher, lower):
    interval = Interval(estimate=0.005, low=low, high=high, confidence=0.95, n=3)
    assert interval.verdict() == higher
    assert interval.verdict(better_is_higher=False) == lower


def test_summarize_verdicts():
    verdicts = ["held", "inconclusive", "held", "not held", "held"]
    assert summarize_verdicts(verdicts) == "held 3 / not held 1 / inconclusive 1 (of 5 tasks)"
    assert summarize_verdicts(iter(["inconclusive"])) == "held 0 / not held 0 / inconclusive 1 (of 1 task)"
    with pytest.raises(ValueError, match="no verdicts"):
        summarize_verdicts([])
    with pytest.raises(ValueError, match="unknown verdict 'yes'"):
        summarize_verdicts(["held", "yes"])


def test_format_interval():
    interval = Interval(0.0123, -0.0041, 0.0279, 0.95, 3)
    assert format_interval(interval) == "+0.012 [\N{MINUS SIGN}0.004, +0.028]"
    assert format_interval(interval, digits=1) == "+0.0 [\N{MINUS SIGN}0.0, +0.0]"
    assert format_interval(Interval(-1.5, -2.25, -0.75, 0.95, 3), digits=2) == "\N{MINUS SIGN}1.50 [\N{MINUS SIGN}2.25, \N{MINUS SIGN}0.75]"
    with pytest.raises(ValueError, match="digits must be a non-negative integer, got -1"):
        format_interval(interval, digits=-1)


def test_paired_bootstrap_is_fast():
    rng = np.random.default_rng(0)
    method, baseline = nan_agreement(rng, 3, 2000), nan_agreement(rng, 3, 2000)
    start = time.process_time()
    paired_bootstrap_ci(method, baseline, num_resamples=10000)
    assert time.process_time() - start < 1.0


def one_line_error(match, function, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as info:
        function(*args, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, math.nan, "0.95", True])
def test_bad_confidence(confidence):
    one_line_error(r"confidence must be a number in \(0, 1\)", seed_difference_ci, [1, 2], [1, 2], confidence)
    one_line_error(r"confidence must be a number in \(0, 1\)", paired_bootstrap_ci, [[1]], [[1]], confidence=confidence)


def test_bad_input():
    one_line_error(r"seed pair 1: method has 4 and baseline 3 examples, expected 4", paired_bootstrap_ci,
                   [np.zeros(4), np.zeros(4)], [np.zeros(4), np.zeros(3)])
    one_line_error(r"seed pair 1: method has 5 and baseline 5 examples, expected 4", paired_bootstrap_ci,
                   [np.zeros(4), np.zeros(5)], [np.zeros(4), np.zeros(5)])
    one_line_error("no data: got 0 method and 2 baseline seeds", paired_bootstrap_ci, [], [[1.0], [2.0]])
    one_line_error("got 3 method and 2 baseline seeds: pass the same seeds, in the same order, for both",
                   paired_bootstrap_ci, [[1.0], [2.0], [9.0]], [[1.0], [2.0]])
    one_line_error("no data: every test example is NaN", paired_bootstrap_ci, [[np.nan, 1.0]], [[0.0, np.nan]])
    one_line_error("no data: the seed arrays hold no test example", paired_bootstrap_ci, [[]], [[]])
    one_line_error(r"baseline_values\[0\] must hold finite numbers or NaN, got inf at index 1", paired_bootstrap_ci,
                   [[0.0, 1.0]], [[0.0, np.inf]])
    one_line_error(r"method_values\[0\] must be one-dimensional, got shape \(2, 2\)", paired_bootstrap_ci,
                   [np.zeros((2, 2))], [np.zeros(4)])
    one_line_error("num_resamples must be a positive integer, got 0", paired_bootstrap_ci, [[1.0]], [[0.0]],
                   num_resamples=0)
    one_line_error("seed must be an integer, got 1.5", paired_bootstrap_ci, [[1.0]], [[0.0]], seed=1.5)
    one_line_error("no data: got 0 method and 2 baseline seed values", seed_difference_ci, [], [0.8, 0.9])
    one_line_error("values must hold finite numbers, got nan at index 1", seed_difference_ci, [0.8, np.nan], [0.8])
