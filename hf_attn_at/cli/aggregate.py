"""Aggregation of finished runs for `hf-attn-at reproduce`: their records read back, tables, ε selection, the
paper's claims, figures and heat-map reports, and generated model cards.

Every finished run is read through its record (`hf_attn_at.runs.RunRecord`, checked by `load_result`); a run lies
under its root as `<task>/<method>[-eps<ε>]/seed<seed>` (`run_name`).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data import TASKS
from ..interpret import Explanation
from ..methods import METHODS
from ..runs import EXPLANATION_FILE, RESULTS_FILE, RunRecord

BINARY_TASKS = ("sst", "imdb", "20news", "agnews")
ALL_METHODS = tuple(METHODS)
# Kitada & Iyatomi 2021's six (not the diagnostic attention_iat_released).
PAPER_METHODS = tuple(name for name, spec in METHODS.items() if not (spec.virtual or spec.diagnostic))
# The ε of a method's main row in grids that do not select it.
DEFAULT_EPSILON = 1.0

def run_name(task: str, method: str, epsilon: float | None, seed: int) -> str:
    """`<task>/<method>[-eps<ε>]/seed<seed>`: where a run lies under `OUTPUT_DIR/runs` and `--records_dir`."""
    eps = "" if epsilon is None else f"-eps{epsilon:g}"
    return f"{task}/{method}{eps}/seed{seed}"


def inside(root: Path, *names: str) -> Path:
    """`root / names`, or a `ValueError` when that path resolves outside `root` (through `..` or a symbolic link)."""
    path = root.joinpath(*names)
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"refusing to write {path}: it resolves to {path.resolve()}, outside {root}")
    return path


def select_epsilon(
    finished: dict[str, RunRecord], task: str, method: str, epsilons: Sequence[float], seed: int
) -> tuple[float | None, dict[float, float]]:
    """The ε of `epsilons` whose run of `task`/`method` with `seed` has the best validation metric (AUC for binary
    tasks, accuracy otherwise: the metric that selects the checkpoint; the smaller ε on a tie), and every ε's
    metric; `(None, {...})` until all of them have finished.

    Args:
        finished (`dict[str, RunRecord]`): the records of the finished runs by run name (see `run_name`).
    """
    metric = "validation_auc" if task in BINARY_TASKS else "validation_accuracy"
    scores = {}
    for eps in epsilons:
        result = finished.get(run_name(task, method, eps, seed))
        if result is not None:
            scores[eps] = result.metrics["validation"][metric]
    if len(scores) < len(epsilons):
        return None, scores
    return max(sorted(scores), key=lambda eps: scores[eps]), scores


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1) of the finite values; NaN where undefined (the std of one)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _fmt(mean: float, std: float) -> str:
    """`mean ± std`; the mean alone when the std is undefined (one value), `n/a` without a value."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.3f}" if math.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def _cell(row: Mapping[str, Any], metric: str) -> str:
    """`row[metric]` as mean ± std, with `(k of n seeds)` when only k of the row's n seeds have a finite value."""
    finite = row["finite"][metric]
    return _fmt(*row[metric]) + (f" ({finite} of {row['seeds']} seeds)" if 0 < finite < row["seeds"] else "")


def load_result(run_dir: Path, name: str) -> RunRecord:
    """A finished run's record (`RunRecord.load`: `results.json` checked, `num_labels` from `config.json`).

    Its `task`, `method`, `epsilon` and `seed` name figures, reports and model cards: a `ValueError` names the file
    unless they give `name`, the run's folder under its root (see `run_name`).
    """
    record = RunRecord.load(run_dir)
    recorded = run_name(record.task, record.method, record.epsilon, record.seed)
    if recorded != name:
        raise ValueError(f"{run_dir / RESULTS_FILE} records the run {recorded!r} (its task, method, epsilon and seed) "
                         f"but lies in the folder of {name!r}: move the run folder or correct its results.json")
    return record


def predicts_one_class(result: RunRecord) -> bool:
    """Whether the run predicted one class for every test example (a collapsed model), told from its metrics.

    Predicting only a class whose test share is p > 0 gives accuracy p and macro F1 2p / ((1 + p) n) over the n
    labels; other predictions meet this identity only by coincidence. n is the model's `num_labels`, so a test set
    lacking some label is never flagged.
    """
    accuracy, macro_f1, n = result.test_metric("accuracy"), result.test_metric("macro_f1"), result.num_labels
    if accuracy is None or macro_f1 is None or not n or not accuracy > 0:
        return False
    return math.isclose(macro_f1, 2 * accuracy / ((1 + accuracy) * n), rel_tol=1e-9)


def summarize(results: list[RunRecord]) -> dict[str, dict[tuple[str, float | None], dict[str, Any]]]:
    """task -> (method, ε) -> mean/std of accuracy, F1, Pearson, Kendall over seeds, the number of seeds that
    predict one class (`predicts_one_class`), and the run time."""
    groups: dict[str, dict[tuple[str, float | None], list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        groups[r.task][(r.method, r.epsilon)].append(r)
    table: dict[str, dict] = {}
    for task, by_method in groups.items():
        table[task] = {}
        for key, rs in by_method.items():
            values = {
                "accuracy": [r.test_metric("accuracy") for r in rs],
                "f1": [r.test_metric("f1") for r in rs],
                "pearson": [r.agreement["agreement_pearson"] for r in rs],
                "kendall": [r.agreement["agreement_kendall"] for r in rs],
                "grad_norm": [(r.attention_sensitivity or {}).get("grad_norm") for r in rs],
                "score_range": [(r.attention_sensitivity or {}).get("score_range") for r in rs],
            }
            table[task][key] = {
                **{metric: _mean_std(v) for metric, v in values.items()},
                "finite": {metric: sum(x is not None and math.isfinite(x) for x in v) for metric, v in values.items()},
                "seeds": len(rs),
                "first_seed_accuracy": min(rs, key=lambda r: r.seed).test_metric("accuracy"),
                "one_class": sum(predicts_one_class(r) for r in rs),
                "minutes": sum(r.total_runtime for r in rs) / 60,
                "split": rs[0].agreement_split,
            }
    return table


def _method_order(key: tuple[str, float | None]) -> tuple[int, float]:
    method, eps = key
    return ALL_METHODS.index(method), eps or 0.0


def _task_title(task: str, results: list[RunRecord]) -> str:
    """`task`, with the size spelled out for a bAbI task's 10k version (labelled `babi1`, next to `babi1-1k`)."""
    data_args = next((r.data_args for r in results if r.task == task), {})
    name, size = data_args.get("task_name"), data_args.get("babi_size")
    if name == task and name in TASKS and "babi_size" in TASKS[name].options:
        return f"{task} (bAbI task {name.removeprefix('babi')}, {size} version)"
    return task


def main_epsilon(task: str, method: str, selected: dict[tuple[str, str], float] | None) -> float | None:
    """The ε of a method's main row: the selected one (`select_epsilon` grids), else `DEFAULT_EPSILON`."""
    if method == "vanilla":
        return None
    return DEFAULT_EPSILON if selected is None else selected.get((task, method))


def markdown_tables(
    table: dict, results: list[RunRecord], selected: dict[tuple[str, str], float] | None = None,
    reused: dict[tuple[str, str], str] | None = None,
) -> list[str]:
    """Per task: a row per (method, ε) with mean ± std over seeds; with `selected` (ε chosen on validation), only
    vanilla and each method's selected ε (the ε runs are in `selection_tables`). The ε of a `(task, method)` in
    `reused` (see `reused_epsilons`: ε selected on that other task) is marked ‡, with a footnote."""
    reused = reused or {}
    lines = []
    for task, rows in table.items():
        if selected is not None:
            rows = {k: v for k, v in rows.items() if k[1] == main_epsilon(task, k[0], selected)}
        commands = sorted({r.command or "(not recorded)" for r in results if r.task == task})
        binary = task in BINARY_TASKS
        split = next(iter(rows.values()))["split"]
        lines += [f"### {_task_title(task, results)} (test split: `{split}`)", ""]
        # Attention sensitivity (recorded by runs since 2026-12-04): mean over the seeds that recorded it.
        sensitivity = any(not math.isnan(row["grad_norm"][0]) for row in rows.values())
        head = ("| method | ε | accuracy | " + ("F1 | " if binary else "") + "Pearson r | Kendall τ | "
                + ("‖∂L/∂ã‖ | score range | " if sensitivity else "") + "seeds | minutes |")
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for key in sorted(rows, key=_method_order):
            row = rows[key]
            eps = "–" if key[1] is None else f"{key[1]:g}" + (" ‡" if (task, key[0]) in reused else "")
            f1 = f"{_cell(row, 'f1')} | " if binary else ""
            extra = f"{_cell(row, 'grad_norm')} | {_cell(row, 'score_range')} | " if sensitivity else ""
            method, seeds = (f"{key[0]} †", f"{row['seeds']} ({row['one_class']} †)") if row["one_class"] else (key[0], row["seeds"])
            lines.append(
                f"| {method} | {eps} | {_cell(row, 'accuracy')} | {f1}{_cell(row, 'pearson')} | "
                f"{_cell(row, 'kendall')} | {extra}{seeds} | {row['minutes']:.1f} |"
            )
        if any(row["one_class"] for row in rows.values()):
            lines += ["", "† (n †): n seeds predict one class for every test example (accuracy = that class's share); "
                          "the agreement of such a collapsed model says nothing about a working one."]
        sources = sorted({source for (t, _), source in reused.items() if t == task})
        if sources:
            lines += ["", f"‡ ε reused from {', '.join(sources)} (not selected on {task}): see the ε-selection table."]
        lines += ["", "Produced by:", "", "```", *commands, "```", ""]
    return lines


def check_claims(
    table: dict, selected: dict[tuple[str, str], float] | None = None, reused: dict[tuple[str, str], str] | None = None
) -> list[str]:
    """The paper's three claims, judged from the numbers (held / not held / mixed / not tested), on each method's
    main row (`main_epsilon`); tasks with an ε in `reused` (see `reused_epsilons`) are marked ‡, with a footnote."""
    reused = reused or {}
    marked = {task for task, _ in reused}
    lines = ["## The paper's claims against our numbers", ""]
    # Claim 1: AT/iAT give the best prediction performance.
    verdicts = []
    for task, rows in table.items():
        default = {k: v for k, v in rows.items()
                   if k[0] in PAPER_METHODS and k[1] == main_epsilon(task, k[0], selected)}  # no diagnostic rows
        methods = {k[0] for k in default}
        if len(methods) < 2:
            continue
        top = max(v["accuracy"][0] for v in default.values())
        best = sorted(k[0] for k in default if default[k]["accuracy"][0] == top)
        missing = [m for m in PAPER_METHODS if m not in methods]
        detail = " = ".join(best) + (f" ({', '.join(missing)} not run)" if missing else "")
        verdicts.append((_marked(task, marked), bool({"attention_at", "attention_iat"} & set(best)), detail))
    lines.append(_claim(
        "1. Attention AT/iAT give the best prediction performance",
        verdicts, lambda t, ok, detail: f"{t}: best accuracy by {detail}",
    ))
    # Claim 2: AT/iAT attention agrees more with gradient importance than vanilla (iAT the most).
    verdicts = []
    for task, rows in table.items():
        vanilla = rows.get(("vanilla", None))
        ours = {k: v for k, v in rows.items()
                if k[0] in ("attention_at", "attention_iat") and k[1] == main_epsilon(task, k[0], selected)}
        if vanilla is None or not ours:
            continue
        ok = all(v["pearson"][0] > vanilla["pearson"][0] for v in ours.values())
        detail = ", ".join(f"{k[0]} {_cell(v, 'pearson')}" for k, v in sorted(ours.items(), key=lambda kv: _method_order(kv[0])))
        verdicts.append((_marked(task, marked), ok, f"vanilla {_cell(vanilla, 'pearson')} vs {detail}"))
    lines.append(_claim(
        "2. Attention AT/iAT correlate more with gradient importance than vanilla (Pearson r)",
        verdicts, lambda t, ok, detail: f"{t}: {detail}",
    ))
    # Claim 3: attention AT/iAT less sensitive to ε than word AT (spread of accuracy over the ε grid), on the lowest
    # seed of each ε (the ε sweep's): the selected ε's row averages more seeds than the others.
    verdicts = []
    for task, rows in table.items():
        spread = {}
        for method in ("attention_at", "attention_iat", "word_at"):
            accs = [v["first_seed_accuracy"] for k, v in rows.items()
                    if k[0] == method and k[1] is not None and v["first_seed_accuracy"] is not None]
            if len(accs) >= 3:
                spread[method] = max(accs) - min(accs)
        if "word_at" not in spread or len(spread) < 2:
            continue
        ok = all(spread[m] < spread["word_at"] for m in spread if m != "word_at")
        detail = ", ".join(f"{m} {s:.3f}" for m, s in spread.items())
        verdicts.append((task, ok, f"test accuracy range over ε (lowest seed of each ε): {detail}"))
    lines.append(_claim(
        "3. Attention AT/iAT are less sensitive to ε than word AT",
        verdicts, lambda t, ok, detail: f"{t}: {detail}",
    ))
    for task in sorted(marked & set(table)):
        sources = sorted({source for (t, _), source in reused.items() if t == task})
        lines.append(f"‡ {task}: ε reused from {', '.join(sources)} (not selected on {task}).\n")
    return lines


def _marked(task: str, marked: set[str]) -> str:
    return f"{task} ‡" if task in marked else task


def selected_epsilons(results: list[RunRecord], epsilons: Sequence[float]) -> dict[tuple[str, str], float]:
    """`(task, method) -> ε` chosen by `select_epsilon` (on each method's lowest seed) for every method of `results`
    whose ε runs have all finished, else the ε reused from another task (`reused_epsilons`)."""
    reused = reused_epsilons(results, epsilons)
    return {**_own_selection(results, epsilons), **{key: eps for key, (eps, _) in reused.items()}}


def reused_epsilons(results: list[RunRecord], epsilons: Sequence[float]) -> dict[tuple[str, str], tuple[float, str]]:
    """`(task, method) -> (ε, source task)` for every method whose ε selection on its own task is not complete and
    whose runs were trained at an ε selected on another task (`RunRecord.epsilon_selected_on`, written by
    `hf-attn-at reproduce --epsilon_from`). A `ValueError` names the method when its runs reused several ε."""
    own = _own_selection(results, epsilons)
    found: dict[tuple[str, str], set[tuple[float, str]]] = defaultdict(set)
    for r in results:
        if r.epsilon_selected_on is not None and (r.task, r.method) not in own:
            found[(r.task, r.method)].add((r.epsilon, r.epsilon_selected_on))
    for (task, method), choices in found.items():
        if len(choices) > 1:
            listed = ", ".join(f"ε={eps:g} from {source}" for eps, source in sorted(choices))
            raise ValueError(f"{task}/{method} has runs at several reused ε ({listed}): delete the runs of the ε "
                             "you do not want")
    return {key: next(iter(choices)) for key, choices in sorted(found.items())}


def _own_selection(results: list[RunRecord], epsilons: Sequence[float]) -> dict[tuple[str, str], float]:
    finished = {run_name(r.task, r.method, r.epsilon, r.seed): r for r in results}
    selected = {}
    for task, method in sorted({(r.task, r.method) for r in results if r.method != "vanilla"}):
        seed = min(r.seed for r in results if (r.task, r.method) == (task, method))
        epsilon = select_epsilon(finished, task, method, epsilons, seed)[0]
        if epsilon is not None:
            selected[(task, method)] = epsilon
    return selected


def selection_tables(results: list[RunRecord], epsilons: Sequence[float]) -> list[str]:
    """Per task, the validation metric of every method at every ε (lowest seed), the selected ε in bold, and the
    measured mean perturbation norm ‖r‖ of the training logs at that ε. A method whose ε was reused from another
    task (`reused_epsilons`) gets a line saying so instead of validation metrics."""
    finished = {run_name(r.task, r.method, r.epsilon, r.seed): r for r in results}
    reused = reused_epsilons(results, epsilons)
    lines = ["## ε selection (validation split, first seed)", ""]
    for task in sorted({r.task for r in results}):
        methods = sorted({r.method for r in results if r.task == task and r.method != "vanilla"},
                         key=ALL_METHODS.index)
        if not methods:
            continue
        metric = "AUC" if task in BINARY_TASKS else "accuracy"
        lines += [f"### {task} (validation {metric})", ""]
        lines += ["| method | " + " | ".join(f"ε={e:g}" for e in epsilons) + " | selected ε | measured ‖r‖ |",
                  "|" + "---|" * (len(epsilons) + 3)]
        for method in methods:
            if (task, method) in reused:
                chosen, source = reused[(task, method)]
                seed = min(r.seed for r in results if (r.task, r.method, r.epsilon) == (task, method, chosen))
                cells = [f"ε reused from {source} (not selected on {task})"] + [""] * (len(epsilons) - 1)
            else:
                seed = min(r.seed for r in results if (r.task, r.method) == (task, method))
                chosen, scores = select_epsilon(finished, task, method, epsilons, seed)
                cells = [("**{:.3f}**" if e == chosen else "{:.3f}").format(scores[e]) if e in scores else "–"
                         for e in epsilons]
            norm = None
            if chosen is not None:
                norm = (finished[run_name(task, method, chosen, seed)].training_logs or {}).get(
                    "adv_perturbation_norm_mean")
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {'–' if chosen is None else f'{chosen:g}'} | "
                         f"{'–' if norm is None else f'{norm:.3g}'} |")
        lines.append("")
    return lines


def recorded_results(records_dir: str | Path) -> list[RunRecord]:
    """The records of every run recorded under `records_dir` (checked by `load_result`)."""
    root = Path(records_dir)
    if not root.is_dir():
        raise ValueError(f"--ablation_records_dir {root} is not a folder of run records")
    found = {p.parent.relative_to(root).as_posix(): p.parent for p in root.glob("*/*/seed*/results.json")}
    return [load_result(folder, name) for name, folder in sorted(found.items())]


def ablation_table(
    results: list[RunRecord], selected: dict[tuple[str, str], float] | None, other: list[RunRecord], other_dir: str | Path,
    other_selected: dict[tuple[str, str], float] | None = None,
) -> list[str]:
    """Per task in both: each method's main row (`main_epsilon`) here next to its main row in `other` (ε selected
    as in `other_selected`, or `DEFAULT_EPSILON` without selection), test accuracy and Pearson r, mean ± std over
    seeds."""
    here, there = summarize(results), summarize(other)
    lines = [f"## Ablation: these runs next to the records in `{other_dir}` (--ablation_records_dir)", "",
             f"Main rows of each method here and in the records of `{other_dir}`; test accuracy and Pearson r, mean ± "
             "std over seeds (seeds in brackets).", ""]
    for task in sorted(set(here) & set(there)):
        rows = []
        for method in ALL_METHODS:
            eps_here, eps_there = main_epsilon(task, method, selected), main_epsilon(task, method, other_selected)
            mine, theirs = here[task].get((method, eps_here)), there[task].get((method, eps_there))
            if mine is None or theirs is None:
                continue
            rows.append(f"| {method} | {_eps(eps_here)} | {_cell(mine, 'accuracy')} | {_cell(mine, 'pearson')} "
                        f"({mine['seeds']}) | {_eps(eps_there)} | {_cell(theirs, 'accuracy')} | "
                        f"{_cell(theirs, 'pearson')} ({theirs['seeds']}) |")
        if rows:
            lines += [f"### {task}", "", "| method | ε here | accuracy here | Pearson r here | ε there | accuracy there "
                      "| Pearson r there |", "|---|---|---|---|---|---|---|", *rows, ""]
    return lines


def _eps(epsilon: float | None) -> str:
    return "–" if epsilon is None else f"{epsilon:g}"


def _claim(title: str, verdicts: list[tuple], describe) -> str:
    if not verdicts:
        return f"- **{title}**: not tested by this grid.\n"
    held = sum(ok for _, ok, _ in verdicts)
    verdict = "held" if held == len(verdicts) else "not held" if held == 0 else "mixed"
    details = "; ".join(describe(*v) for v in verdicts)
    return f"- **{title}**: **{verdict}** ({held} of {len(verdicts)} tasks). {details}.\n"


def _report_run(result_dir: Path) -> Explanation:
    """A run's `explanation.json` with the run's test accuracy as its summary (for `write_report`)."""
    explanation = Explanation.from_json(json.loads((result_dir / EXPLANATION_FILE).read_text()))
    return replace(explanation, summary={"accuracy": RunRecord.load(result_dir).test_metric("accuracy")})


def _first_seed(run_dirs: dict[str, Path], task: str, name: str) -> Path | None:
    """The folder of the lowest-numbered seed of `task/name` (`name` is `<method>[-eps<ε>]`), if any."""
    prefix = f"{task}/{name}/seed"
    seeds = {int(run[len(prefix):]): d for run, d in run_dirs.items()
             if run.startswith(prefix) and run[len(prefix):].isdigit()}
    return seeds[min(seeds)] if seeds else None


def write_figures(
    table: dict, run_dirs: dict[str, Path], figures_dir: Path, selected: dict[tuple[str, str], float] | None = None
) -> dict[str, list[Path]]:
    """Per task: an ε-sweep figure (when the grid has several ε) and a heat-map report of the first seed of each
    method's main row (`main_epsilon`)."""
    from ..interpret.report import plot_epsilon_sweep, plot_heatmap, write_report

    figures: dict[str, list[Path]] = defaultdict(list)
    figures_dir.mkdir(parents=True, exist_ok=True)
    for task, rows in table.items():
        sweep = [
            {"method": k[0], "epsilon": k[1], "accuracy": v["accuracy"][0], "pearson": v["pearson"][0]}
            for k, v in sorted(rows.items(), key=lambda kv: _method_order(kv[0])) if k[1] is not None
        ]
        if len({(s["method"], s["epsilon"]) for s in sweep}) > len({s["method"] for s in sweep}):
            vanilla = rows.get(("vanilla", None))
            reference = None if vanilla is None else {"accuracy": vanilla["accuracy"][0], "pearson": vanilla["pearson"][0]}
            figures[task].append(plot_epsilon_sweep(sweep, inside(figures_dir, f"{task}_epsilon.png"), reference))
        report_runs = {}
        for key in sorted(rows, key=_method_order):
            main = main_epsilon(task, key[0], selected)
            if key[1] != main and (key[0], main) in rows:
                continue
            eps = "" if key[1] is None else f"-eps{key[1]:g}"
            run_dir = _first_seed(run_dirs, task, f"{key[0]}{eps}")
            if run_dir is not None:
                report_runs[f"{key[0]}{eps}"] = _report_run(run_dir)
        if report_runs:
            report = write_report(report_runs, inside(figures_dir, f"{task}_report"), num_examples=3,
                                  title=f"{task}: attention vs gradient importance")
            heatmap = plot_heatmap(report_runs, 0, report.parent / "heatmap_0.png")
            figures[task] += [report.parent / "agreement.png", heatmap, report]
    return figures


def write_model_cards(
    table: dict, run_dirs: dict[str, Path], out_dir: Path, selected: dict[tuple[str, str], float] | None = None
) -> list[Path]:
    """`<task>-<method>[-eps<ε>].md` from the first seed's run folder (or record) of each method's main row."""
    from ..hub import card_from_run_dir

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task, rows in table.items():
        for method, eps in sorted(rows, key=_method_order):
            if eps != main_epsilon(task, method, selected):
                continue  # ε-sweep rows get no card
            name = f"{method}{'' if eps is None else f'-eps{eps:g}'}"
            run_dir = _first_seed(run_dirs, task, name)
            if run_dir is not None:
                path = inside(out_dir, f"{task}-{name}.md")
                card_from_run_dir(run_dir).save(path)
                written.append(path)
    return written


def print_summary(results: list[RunRecord]) -> None:
    table = summarize(results)
    width = max([len("task"), *map(len, table)]) + 2
    print(f"{'task':<{width}}{'method':<24}{'ε':>6}{'accuracy':>18}{'F1':>18}{'Pearson r':>18}{'Kendall τ':>18}")
    for task, rows in table.items():
        for key in sorted(rows, key=_method_order):
            row = rows[key]
            eps = "–" if key[1] is None else f"{key[1]:g}"
            print(f"{task:<{width}}{key[0]:<24}{eps:>6}{_fmt(*row['accuracy']):>18}{_fmt(*row['f1']):>18}"
                  f"{_fmt(*row['pearson']):>18}{_fmt(*row['kendall']):>18}")


def _at(attack: dict[str, Any] | None, key: str, epsilon: float | None) -> float | None:
    """`attack[key]` (`accuracy` or `flip_rate`) at the radius `epsilon` of its grid; `None` if not measured."""
    if attack is None or epsilon is None:
        return None
    values = dict(zip(attack["epsilons"], attack[key], strict=True))
    return next((v for e, v in values.items() if math.isclose(e, epsilon, rel_tol=1e-9)), None)


def _robustness_groups(
    results: list[RunRecord], selected: dict[tuple[str, str], float] | None
) -> dict[str, dict[tuple[str, float | None], list[dict[str, Any]]]]:
    """task -> main row (`main_epsilon`) -> the `robustness` of its seeds that recorded it."""
    groups: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if r.robustness is not None and r.epsilon == main_epsilon(r.task, r.method, selected):
            groups[r.task][(r.method, r.epsilon)].append(r.robustness)
    return groups


def _fixed_epsilons(rows: dict[tuple[str, float | None], list[dict[str, Any]]]) -> list[float]:
    return sorted({e for reports in rows.values() for report in reports for e in report["settings"]["fixed_epsilons"]})


def robustness_tables(results: list[RunRecord], selected: dict[tuple[str, str], float] | None = None) -> list[str]:
    """Per task whose runs recorded `robustness`: each method's main row under the attention-score attack (accuracy
    at the trained ε, 2ε and the fixed radii, flip rate at ε, median smallest flipping ε) and Jain & Wallace's
    experiments (median permutation TVD, median adversarial-attention JSD), mean ± std over seeds. Nothing (so
    RESULTS.md is unchanged) when no record has it."""
    groups = _robustness_groups(results, selected)
    if not groups:
        return []
    first = next(iter(next(iter(groups.values())).values()))[0]
    settings = first["settings"]
    lines = ["## Robustness (attention-score attack; test-split sample)", "",
             f"After training, each run is attacked on a seeded sample of at most {settings['max_samples']} test "
             f"examples (`hf_attn_at.robustness`): PGD on the attention scores with K = {settings['num_steps']} steps "
             "in an L2 ball of radius ε, at the run's trained ε, 2ε and fixed radii that compare methods; flip rate: "
             "predictions changed at ε; min flip ε: the median over examples of the smallest flipping radius "
             "(bisection); permutation: the median over examples of the median total variation of the output under "
             "random permutations of the attention; adversarial attention: the median Jensen–Shannon divergence of "
             "attention that changes the output by at most δ (Jain & Wallace 2019). Mean ± std over seeds; n/a, or "
             "(k of n seeds), where fewer than half of a run's examples flip within the largest radius.", ""]
    for task in sorted(groups):
        rows = groups[task]
        fixed = _fixed_epsilons(rows)
        head = ("| method | ε | clean | acc. at ε | acc. at 2ε | " + " | ".join(f"acc. at {e:g}" for e in fixed)
                + " | flip rate at ε | min flip ε | permutation TVD | adversarial JSD | seeds |")
        lines += [f"### {task}", "", head, "|" + "---|" * (head.count("|") - 1)]
        for key in sorted(rows, key=_method_order):
            reports = rows[key]
            eps = key[1]
            attacks = [report.get("attention") for report in reports]

            def cell(values: list[float | None]) -> str:
                """Mean ± std over the seeds that have the value, `(k of n)` when only some have it."""
                known = sum(v is not None and math.isfinite(v) for v in values)
                text = _fmt(*_mean_std(values))
                return text if known in (0, len(values)) else f"{text} ({known} of {len(values)} seeds)"

            cells = [cell([r["clean_accuracy"] for r in reports]),
                     cell([_at(a, "accuracy", eps) for a in attacks]),
                     cell([_at(a, "accuracy", None if eps is None else 2 * eps) for a in attacks]),
                     *(cell([_at(a, "accuracy", e) for a in attacks]) for e in fixed),
                     cell([_at(a, "flip_rate", eps) for a in attacks]),
                     cell([((a or {}).get("min_flip_epsilon") or {}).get("median") for a in attacks]),
                     cell([(r.get("permutation") or {}).get("median_tvd") for r in reports]),
                     cell([(r.get("adversarial_attention") or {}).get("median_jsd") for r in reports])]
            lines.append(f"| {key[0]} | {_eps(eps)} | " + " | ".join(cells) + f" | {len(reports)} |")
        lines.append("")
    return lines


def write_robustness_figures(
    results: list[RunRecord], figures_dir: Path, selected: dict[tuple[str, str], float] | None = None
) -> dict[str, list[Path]]:
    """Per task whose runs recorded `robustness`: accuracy under the attention-score attack against the fixed radii
    (and 0), one line per method's main row (mean over seeds), `<task>_robustness.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, list[Path]] = {}
    for task, rows in sorted(_robustness_groups(results, selected).items()):
        grid = [0.0, *_fixed_epsilons(rows)]
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        for key in sorted(rows, key=_method_order):
            attacks = [report.get("attention") for report in rows[key]]
            means = [_mean_std([_at(a, "accuracy", e) for a in attacks])[0] for e in grid]
            ax.plot(grid, means, marker="o", label=key[0] if key[1] is None else f"{key[0]} (ε={key[1]:g})")
        ax.set_xlabel("attack radius ε (L2, attention scores)")
        ax.set_ylabel("accuracy under attack")
        ax.set_title(f"{task}: attention-score PGD")
        ax.legend(fontsize=8)
        figures_dir.mkdir(parents=True, exist_ok=True)
        path = inside(figures_dir, f"{task}_robustness.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        figures[task] = [path]
    return figures
