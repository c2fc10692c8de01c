"""Confidence intervals of a method's difference to vanilla, and the verdicts that decide a claim.

Two intervals, one per kind of evidence (see docs/STATISTICS.md):

- [`seed_difference_ci`]: a per-run score (test accuracy) over independent seeds, Welch's t interval;
- [`paired_bootstrap_ci`]: a per-example score (attention–importance agreement) over the same test examples,
  a paired bootstrap that resamples test examples, pooled over seed pairs.

Both return an [`Interval`], whose [`Interval.verdict`] reads "held", "not held" or "inconclusive" for the claim
"the method is better than vanilla"; [`summarize_verdicts`] counts the verdicts of a claim over many tasks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

VERDICTS = ("held", "not held", "inconclusive")

# Most resample indices drawn at once by `paired_bootstrap_ci`: 32 MiB of int64, plus two float64 gathers as large.
_MAX_DRAWS_PER_CHUNK = 1 << 22


@dataclass(frozen=True)
class Interval:
    """A difference to vanilla (method − vanilla) with a two-sided confidence interval.

    Args:
        estimate: the observed difference.
        low, high: the interval's bounds; both NaN when the data cannot define one.
        confidence: its nominal coverage, in (0, 1).
        n: the independent units behind it: seeds (the smaller side) for [`seed_difference_ci`], test examples
            for [`paired_bootstrap_ci`].
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n: int

    def verdict(self, better_is_higher: bool = True) -> str:
        """The claim "the method is better than vanilla" under this interval.

        "held": the whole interval lies on the better side of 0; "not held": the whole interval lies on the worse
        side, i.e. the method is significantly *worse* (not merely "not shown better"); "inconclusive": the interval
        contains 0, or is undefined (NaN bounds). Set `better_is_higher=False` for a score where lower is better.
        """
        low, high = (self.low, self.high) if better_is_higher else (-self.high, -self.low)
        if low > 0:
            return "held"
        if high < 0:
            return "not held"
        return "inconclusive"


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")


def _finite_1d(values: Iterable[float], name: str, allow_nan: bool = False) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
    if bad.any():
        allowed = "finite numbers or NaN" if allow_nan else "finite numbers"
        raise ValueError(f"{name} must hold {allowed}, got {array[bad][0]} at index {int(np.flatnonzero(bad)[0])}")
    return array


def seed_difference_ci(values: Sequence[float], baseline: Sequence[float], confidence: float = 0.95) -> Interval:
    """Difference of means between a method's per-seed scores and vanilla's, with Welch's t interval.

    The seeds of the two sides are independent runs (not paired), and their variances may differ:
    `mean(values) − mean(baseline) ± t_{1−α/2, ν} · se`, with `se² = s₁²/n₁ + s₂²/n₂` (sample variances) and
    Welch–Satterthwaite degrees of freedom `ν = se⁴ / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1))`.

    Args:
        values: the method's score per seed, shape `(n₁,)`, e.g. test accuracy of 3 seeds.
        baseline: vanilla's score per seed, shape `(n₂,)`.
        confidence: the interval's nominal coverage, in (0, 1).

    Returns:
        An [`Interval`] with `n = min(n₁, n₂)`. With fewer than 2 seeds on either side there is no variance to
        estimate: the bounds are NaN (verdict "inconclusive"). With zero spread on both sides the interval has
        zero width.
    """
    _check_confidence(confidence)
    values, baseline = _finite_1d(values, "values"), _finite_1d(baseline, "baseline")
    if values.size == 0 or baseline.size == 0:
        raise ValueError(f"no data: got {values.size} method and {baseline.size} baseline seed values")
    estimate = float(values.mean() - baseline.mean())
    n = min(values.size, baseline.size)
    if n < 2:
        return Interval(estimate, math.nan, math.nan, confidence, n)
    var1, var2 = values.var(ddof=1) / values.size, baseline.var(ddof=1) / baseline.size
    se = math.sqrt(var1 + var2)
    if se == 0:
        return Interval(estimate, estimate, estimate, confidence, n)
    dof = (var1 + var2) ** 2 / (var1**2 / (values.size - 1) + var2**2 / (baseline.size - 1))
    half_width = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
    return Interval(estimate, estimate - half_width, estimate + half_width, confidence, n)


def paired_bootstrap_ci(
    method_values: Sequence[Sequence[float]],
    baseline_values: Sequence[Sequence[float]],
    num_resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Difference of mean per-example scores (method − vanilla) with a paired bootstrap over test examples.

    Made for the per-example agreement (Pearson r) of several seeds evaluated on one test set. The method's seed k
    is paired with vanilla's seed k, so both lists hold the same seeds in the same order (different numbers of
    seeds are refused).
    Within a pair, an example that is NaN on either side (no correlation: constant attention) is dropped.

    The estimate is the mean difference over the kept (seed pair, example) observations, i.e. the difference of
    the two pooled means over the same observations. Each resample draws test examples with replacement (the same
    draw for every seed pair: examples are the resampled unit, seeds are not), recomputes that estimate, and the
    interval is the percentile interval of the `num_resamples` estimates. Resample b draws the indices
    `numpy.random.default_rng(seed).integers(0, n, size=n)` in order (b = 0, 1, ...), over the n examples kept in
    at least one pair; it is vectorised in chunks of bounded memory.

    Args:
        method_values: one array per seed of the method's per-example scores, shape `(num_examples,)` each,
            finite or NaN.
        baseline_values: the same for vanilla, over the same test examples in the same order.
        num_resamples: the number of bootstrap resamples (≥ 1).
        confidence: the interval's nominal coverage, in (0, 1).
        seed: seeds the resampling (the same seed gives the same interval).

    Returns:
        An [`Interval`] whose `n` is the number of test examples resampled.
    """
    _check_confidence(confidence)
    if isinstance(num_resamples, bool) or not isinstance(num_resamples, int) or num_resamples < 1:
        raise ValueError(f"num_resamples must be a positive integer, got {num_resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if len(method_values) == 0 or len(baseline_values) == 0:
        raise ValueError(f"no data: got {len(method_values)} method and {len(baseline_values)} baseline seeds")
    if len(method_values) != len(baseline_values):
        raise ValueError(f"got {len(method_values)} method and {len(baseline_values)} baseline seeds: pass the same "
                         "seeds, in the same order, for both (seed k of the method is paired with seed k of vanilla)")
    method = [_finite_1d(v, f"method_values[{k}]", allow_nan=True) for k, v in enumerate(method_values)]
    baseline = [_finite_1d(v, f"baseline_values[{k}]", allow_nan=True) for k, v in enumerate(baseline_values)]
    num_examples = method[0].size
    if num_examples == 0:
        raise ValueError("no data: the seed arrays hold no test example")
    for k, (m, b) in enumerate(zip(method, baseline, strict=True)):
        if m.size != num_examples or b.size != num_examples:
            raise ValueError(
                f"seed pair {k}: method has {m.size} and baseline {b.size} examples, expected {num_examples} "
                "(every seed must cover the same test examples)"
            )
    method, baseline = np.stack(method), np.stack(baseline)  # (num_pairs, num_examples)
    kept = ~(np.isnan(method) | np.isnan(baseline))
    # Per example: the sum of its kept differences over seed pairs, and how many pairs kept it.
    diff_sum = np.where(kept, method - baseline, 0.0).sum(0)
    kept_count = kept.sum(0).astype(np.float64)
    examples = kept_count > 0
    if not examples.any():
        raise ValueError("no data: every test example is NaN in the method or the baseline of every seed pair")
    diff_sum, kept_count = diff_sum[examples], kept_count[examples]
    n = diff_sum.size
    estimate = float(diff_sum.sum() / kept_count.sum())

    rng = np.random.default_rng(seed)
    resampled = np.empty(num_resamples)
    chunk = max(1, _MAX_DRAWS_PER_CHUNK // n)
    for start in range(0, num_resamples, chunk):
        stop = min(start + chunk, num_resamples)
        indices = rng.integers(0, n, size=(stop - start, n))
        resampled[start:stop] = diff_sum[indices].sum(1) / kept_count[indices].sum(1)
    alpha = 1 - confidence
    low, high = np.quantile(resampled, [alpha / 2, 1 - alpha / 2])
    return Interval(estimate, float(low), float(high), confidence, n)


def summarize_verdicts(verdicts: Iterable[str]) -> str:
    """Summarise a claim's per-task verdicts as counts, e.g. `"held 3 / not held 1 / inconclusive 2 (of 6 tasks)"`.

    The counts are descriptive: each task's interval has its own 5 % error rate (no multiple-comparison
    correction), so a claim "on every task" is held only if every task reads "held".
    """
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("no verdicts to summarise")
    unknown = [v for v in verdicts if v not in VERDICTS]
    if unknown:
        raise ValueError(f"unknown verdict {unknown[0]!r}, expected one of {VERDICTS}")
    counts = Counter(verdicts)
    task_word = "task" if len(verdicts) == 1 else "tasks"
    return " / ".join(f"{v} {counts[v]}" for v in VERDICTS) + f" (of {len(verdicts)} {task_word})"


def _signed(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}".replace("-", "\N{MINUS SIGN}")


def format_interval(interval: Interval, digits: int = 3) -> str:
    """`"+0.012 [−0.004, +0.028]"`: the estimate and bounds with their signs (U+2212 minus); `"[n/a]"` when
    the interval is undefined."""
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    bounds = (
        "[n/a]"
        if math.isnan(interval.low) or math.isnan(interval.high)
        else f"[{_signed(interval.low, digits)}, {_signed(interval.high, digits)}]"
    )
    return f"{_signed(interval.estimate, digits)} {bounds}"
