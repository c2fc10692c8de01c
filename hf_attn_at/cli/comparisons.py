"""Each method's difference to vanilla with 95% confidence intervals, and the claim verdicts they decide.

Accuracy: Welch's t interval over seeds ([`~hf_attn_at.statistics.seed_difference_ci`]). Agreement (Pearson r
between attention and gradient importance per test example): a paired bootstrap over test examples pooled across
seeds, a method's seed s paired with vanilla's seed s (seeds only one of them has are left out, with a warning;
[`~hf_attn_at.statistics.paired_bootstrap_ci`]), checked by Welch's interval over the seeds' mean Pearson r (the
seed-to-seed spread). A verdict is "held" when the whole interval is above 0, "not held" when it is below
(significantly worse), else "inconclusive". See docs/STATISTICS.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..runs import RunRecord
from ..statistics import (
    Interval,
    format_interval,
    paired_bootstrap_ci,
    seed_difference_ci,
    summarize_verdicts,
)

logger = logging.getLogger(__name__)

# The paper's two attention methods, whose claims the intervals decide.
OURS = ("attention_at", "attention_iat")


def per_example_pearson(run_dir: Path) -> np.ndarray:
    """A run's per-test-example Pearson r (NaN where undefined) from its `explanation.json`."""
    values = json.loads((run_dir / "explanation.json").read_text())["pearson"]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def differences(
    results: list[RunRecord], run_dirs: dict[str, Path], main_epsilon: Callable[[str, str], float | None],
    run_name: Callable[[str, str, float | None, int], str], accuracy: Callable[[RunRecord], float | None],
    bootstrap_seed: int = 0,
) -> dict[str, dict[str, dict[str, Interval]]]:
    """task -> method -> {"accuracy", "pearson", "pearson_seeds"}: Intervals of the method's main row minus vanilla
    (`pearson_seeds`: Welch's interval over the seeds' mean Pearson r, which also counts the seed-to-seed spread
    that the bootstrap over pooled examples leaves out).

    Args:
        results: the records of the finished runs (`hf_attn_at.runs.RunRecord`).
        run_dirs: their folders (or records) by run name.
        main_epsilon: `(task, method) -> ε` of the method's main row.
        run_name: `(task, method, ε, seed) -> name`.
        accuracy: a result's test accuracy.
        bootstrap_seed: seeds the paired bootstrap (RESULTS.md uses 0; other seeds show how much a verdict
            depends on its Monte-Carlo draw, `docs/bootstrap_stability.py`).
    """
    table: dict[str, dict[str, dict[str, Interval]]] = {}
    for task in sorted({r.task for r in results}):
        vanilla = sorted((r for r in results if r.task == task and r.method == "vanilla"), key=lambda r: r.seed)
        if not vanilla:
            continue
        table[task] = {}
        methods = sorted({r.method for r in results if r.task == task and r.method != "vanilla"})
        for method in methods:
            epsilon = main_epsilon(task, method)
            runs = sorted((r for r in results if (r.task, r.method, r.epsilon) == (task, method, epsilon)),
                          key=lambda r: r.seed)
            if not runs:
                continue
            pearson = {r.seed: per_example_pearson(run_dirs[run_name(task, method, epsilon, r.seed)]) for r in runs}
            baseline = {r.seed: per_example_pearson(run_dirs[run_name(task, "vanilla", None, r.seed)]) for r in vanilla}
            paired = sorted(pearson.keys() & baseline.keys())
            unpaired = sorted(pearson.keys() ^ baseline.keys())
            if not paired:
                logger.warning("%s: %s (seeds %s) has no seed in common with vanilla (seeds %s): no interval",
                               task, method, sorted(pearson), sorted(baseline))
                continue
            if unpaired:
                logger.warning("%s: the bootstrap of %s pairs seeds %s with vanilla's and leaves out seeds %s, which "
                               "only one of them has", task, method, paired, unpaired)
            table[task][method] = {
                "accuracy": seed_difference_ci([accuracy(r) for r in runs], [accuracy(r) for r in vanilla]),
                "pearson": paired_bootstrap_ci([pearson[s] for s in paired], [baseline[s] for s in paired],
                                               seed=bootstrap_seed),
                "pearson_seeds": seed_difference_ci([np.nanmean(p) for p in pearson.values()],
                                                    [np.nanmean(b) for b in baseline.values()]),
            }
    return table


def difference_tables(table: dict[str, dict[str, dict[str, Interval]]]) -> list[str]:
    """Markdown: per task, each method's Δ accuracy and Δ Pearson r to vanilla with 95% CIs and verdicts."""
    lines = [
        "## Differences to vanilla (95% confidence intervals)", "",
        "Method − vanilla at each method's main ε. Accuracy: Welch's t interval over seeds (every seed of each side; "
        "n = the smaller side's seeds); Pearson r: paired bootstrap over test examples pooled across the seeds both "
        "sides have (seed s with seed s; 10,000 resamples; n = test examples). "
        "Verdict for \"better than vanilla\": held (interval > 0), not held (interval < 0), inconclusive. "
        "The last two columns check the agreement verdict against the seeds: Welch's interval over each seed's mean "
        "Pearson r (n = seeds), which also counts how much the agreement of one method varies from seed to seed "
        "(the bootstrap over pooled examples treats these seeds as fixed).", "",
    ]
    for task, methods in table.items():
        if not methods:
            continue
        lines += [f"### {task}", "", "| method | Δ accuracy [95% CI] | verdict | Δ Pearson r [95% CI] | verdict | "
                  "Δ Pearson r, seeds [95% CI] | verdict |", "|---|---|---|---|---|---|---|"]
        for method, intervals in methods.items():
            acc, r, seeds = intervals["accuracy"], intervals["pearson"], intervals["pearson_seeds"]
            lines.append(f"| {method} | {format_interval(acc)} (n={acc.n}) | {acc.verdict()} | "
                         f"{format_interval(r)} (n={r.n}) | {r.verdict()} | "
                         f"{format_interval(seeds)} (n={seeds.n}) | {seeds.verdict()} |")
        lines.append("")
    return lines


def task_verdicts(table: dict[str, dict[str, dict[str, Interval]]]) -> dict[str, list[tuple[str, str]]]:
    """The paper's claims 1 and 2 decided per task by the intervals of attention AT and iAT against vanilla:
    `{"claim1": [(task, verdict), ...], "claim2": [...], "claim2_seeds": [...]}` (tasks without AT/iAT left out).

    Claim 1 (AT/iAT give the best accuracy) is held on a task when AT or iAT is significantly more accurate than
    vanilla, not held when neither is and one is significantly less accurate, else inconclusive. Claim 2 (AT/iAT
    attention agrees more with gradient importance) is held when both are significantly above vanilla, not held
    when either is significantly below, else inconclusive; it is decided by the bootstrap intervals (`claim2`) and,
    as a check, again by the seed-level ones (`claim2_seeds`).
    """
    claims: dict[str, list[tuple[str, str]]] = {"claim1": [], "claim2": [], "claim2_seeds": []}
    for task, methods in table.items():
        ours = {m: methods[m] for m in OURS if m in methods}
        if not ours:
            continue
        accuracy = [v["accuracy"].verdict() for v in ours.values()]
        claims["claim1"].append(
            (task, "held" if "held" in accuracy else "not held" if "not held" in accuracy else "inconclusive"))
        for claim, key in (("claim2", "pearson"), ("claim2_seeds", "pearson_seeds")):
            pearson = [v[key].verdict() for v in ours.values()]
            claims[claim].append((task, "held" if all(v == "held" for v in pearson) and len(pearson) == len(OURS)
                                  else "not held" if "not held" in pearson else "inconclusive"))
    return claims


def claim_verdicts(table: dict[str, dict[str, dict[str, Interval]]]) -> list[str]:
    """RESULTS.md's "claims decided by the intervals" section: the verdicts of `task_verdicts` and their rules."""
    claims = task_verdicts(table)
    lines = ["## The claims decided by the intervals", "",
             "Per task, from the intervals of attention AT and iAT against vanilla (tables below). Claim 1 (the paper: "
             "AT/iAT improve accuracy) is held when AT or iAT is significantly more accurate, not held when neither is "
             "and one is significantly less accurate, else inconclusive. Claim 2 (the paper: the attention of both "
             "agrees more) is held when both are significantly above vanilla, not held when either is significantly "
             "below, else inconclusive.", ""]
    for title, verdicts in (("1. Attention AT/iAT are more accurate than vanilla", claims["claim1"]),
                            ("2. Attention AT/iAT agree more with gradient importance than vanilla", claims["claim2"]),
                            ("2, checked over seeds (Welch's interval over the seeds' mean Pearson r)",
                             claims["claim2_seeds"])):
        if not verdicts:
            lines.append(f"- **{title}**: not tested (no attention AT/iAT runs next to vanilla).")
            continue
        detail = "; ".join(f"{task}: {verdict}" for task, verdict in verdicts)
        lines.append(f"- **{title}**: {summarize_verdicts(v for _, v in verdicts)}. {detail}.")
    return [*lines, ""]


__all__ = ["claim_verdicts", "difference_tables", "differences", "per_example_pearson", "task_verdicts"]
