"""Write an interpretability report folder: `metrics.json`, `report.html` and PNG figures.

Matplotlib is imported inside the plotting functions (Agg backend), never at package import.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MAX_HEATMAP_TOKENS = 60
SELECTIONS = ("random", "misclassified", "lowest_agreement", "highest_agreement", "disagreement")
SATURATION = 4.0
"""Token shades (`token_shades`) at or beyond this many uniform shares get the full colour."""
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _literal(text: str) -> str:
    """`text` escaped for matplotlib, which would otherwise read `$...$` as mathtext (and fail on `$$`)."""
    return text.replace("$", r"\$")


def json_safe(value):
    """Plain JSON types: numpy scalars/arrays converted, nan/inf as null."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.integer, bool, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _rows(run: dict, index: int) -> list[tuple[str, np.ndarray]]:
    """(name, values) rows for one example: attention, then each importance method."""
    rows = [("attention", np.asarray(run["attention"][index]))]
    rows += [(method, np.asarray(values[index])) for method, values in run["importance"].items()]
    return rows


def token_shades(values: np.ndarray) -> np.ndarray:
    """Values of one row (attention or importance over an example's `n` tokens) as multiples of a uniform share.

    `shade_i = values_i / sum_j |values_j| * n`: a flat row is 1 everywhere whatever `n`, a token with all the
    weight is `n`; the sign is kept. One absolute scale for every model, method and example (colours are
    comparable), unlike a row scaled to its own maximum, where a flat row is as dark as a peaked one.

    Args:
        values (`np.ndarray` of shape `(n,)`): one row.

    Returns:
        `np.ndarray` of shape `(n,)`; zeros when every value is 0.
    """
    values = np.asarray(values, dtype=np.float64)
    total = np.abs(values).sum()
    return values / total * len(values) if total > 0 else np.zeros_like(values)


def plot_heatmap(runs: Mapping[str, dict], index: int, path: str | Path) -> Path:
    """One example, one panel per model: tokens shaded by attention and by each importance method.

    Shades are `token_shades` on one fixed diverging scale (±`SATURATION` uniform shares), the raw values printed.
    """
    plt = _pyplot()
    labels = list(runs)
    width = max(len(run["tokens"][index][:MAX_HEATMAP_TOKENS]) for run in runs.values())
    num_rows = [len(_rows(runs[label], index)) for label in labels]
    fig, axes = plt.subplots(
        len(labels), 1, figsize=(max(6.0, 0.45 * width + 2), sum(0.45 * n + 1.6 for n in num_rows)),
        squeeze=False, layout="constrained",
    )
    for ax, label in zip(axes[:, 0], labels, strict=True):
        run = runs[label]
        tokens = run["tokens"][index][:MAX_HEATMAP_TOKENS]
        rows = _rows(run, index)
        shades = np.stack([token_shades(v)[: len(tokens)] for _, v in rows])
        ax.imshow(shades, cmap="RdBu_r", vmin=-SATURATION, vmax=SATURATION, aspect="auto")
        ax.set_yticks(range(len(rows)), [name for name, _ in rows])
        ax.set_xticks(range(len(tokens)), [_literal(token) for token in tokens], rotation=90)
        for r, (_, values) in enumerate(rows):
            for c in range(len(tokens)):
                ax.text(c, r, f"{values[c]:.2f}", ha="center", va="center", fontsize=6)
        ax.set_title(f"{_literal(label)} (prediction {int(run['predictions'][index])}, "
                     f"label {int(run['labels'][index])})", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_agreement(runs: Mapping[str, dict], path: str | Path) -> Path:
    """Box plots of per-example Pearson's r and Kendall's τ, one box per (model, method)."""
    plt = _pyplot()
    groups = [(label, method) for label, run in runs.items() for method in run["agreement"]]
    fig, axes = plt.subplots(1, 2, figsize=(2 * max(5.0, 0.8 * len(groups) + 1.5), 4.5), layout="constrained")
    for ax, measure in zip(axes, ("pearson", "kendall"), strict=True):
        data = [runs[label]["agreement"][method][measure] for label, method in groups]
        ax.boxplot([d[np.isfinite(d)] for d in data], showmeans=True)
        ax.set_xticks(range(1, len(groups) + 1), [_literal(f"{label}\n{method}") for label, method in groups],
                      fontsize=8)
        ax.set_ylabel("Pearson's r" if measure == "pearson" else "Kendall's τ")
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.set_title(f"attention vs importance: {'Pearson' if measure == 'pearson' else 'Kendall'}")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def check_epsilon_runs(epsilon_runs: Sequence[Mapping]) -> None:
    """`ValueError` unless `epsilon_runs` is a list of dicts with `method`, `epsilon` (> 0), `accuracy`, `pearson`."""
    required = ("method", "epsilon", "accuracy", "pearson")
    if not isinstance(epsilon_runs, Sequence) or isinstance(epsilon_runs, str):
        raise ValueError(f"epsilon runs must be a list of {{{', '.join(required)}}}, got {type(epsilon_runs).__name__}")
    for i, run in enumerate(epsilon_runs):
        if not isinstance(run, Mapping):
            raise ValueError(f"epsilon run {i} must be a dict with {list(required)}, got {run!r}")
        missing = [k for k in required if k not in run]
        if missing:
            raise ValueError(f"epsilon run {i} lacks {missing}: each needs {list(required)}, got {sorted(run)}")
        if not isinstance(run["epsilon"], Real) or not run["epsilon"] > 0:
            raise ValueError(f"epsilon run {i}: epsilon must be a number > 0 for the log axis, got {run['epsilon']!r}")


def plot_epsilon_sweep(
    epsilon_runs: Sequence[Mapping], path: str | Path, reference: Mapping[str, float] | None = None
) -> Path:
    """Accuracy and mean Pearson's r against ε (log x axis), a line per adversarial method, in one figure.

    Args:
        epsilon_runs: dicts with `method`, `epsilon` (> 0), `accuracy` and `pearson` (the mean).
        reference: `accuracy` and `pearson` of a model trained without perturbation (vanilla), drawn as a
            dashed horizontal line on both panels.
    """
    if reference is not None and not {"accuracy", "pearson"} <= set(reference):
        raise ValueError(f"reference needs 'accuracy' and 'pearson', got {sorted(reference)}")
    check_epsilon_runs(epsilon_runs)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for method in dict.fromkeys(run["method"] for run in epsilon_runs):
        points = sorted((r["epsilon"], r["accuracy"], r["pearson"]) for r in epsilon_runs if r["method"] == method)
        eps, acc, pearson = zip(*points, strict=True)
        axes[0].plot(eps, acc, marker="o", label=_literal(str(method)))
        axes[1].plot(eps, pearson, marker="o", label=_literal(str(method)))
    for ax, key in zip(axes, ("accuracy", "pearson"), strict=True):
        if reference is not None:
            ax.axhline(reference[key], color="black", linestyle="--", linewidth=1, label="vanilla")
    for ax, name in zip(axes, ("accuracy", "Pearson's r (mean)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("ε")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def metrics_of(runs: Mapping[str, dict]) -> dict:
    """Per model: the run's `summary` and full per-method correlation summaries (plain JSON types)."""
    return {
        label: {
            "summary": run["summary"],
            "agreement": {
                method: {k: v for k, v in stats.items() if k.endswith("_summary")}
                for method, stats in run["agreement"].items()
            },
        }
        for label, run in runs.items()
    }



def select_examples(
    runs: Mapping[str, dict], select: str, num_examples: int, seed: int = 0, method: str | None = None
) -> list[int]:
    """Which examples the report shows, at most `num_examples` of them.

    Args:
        runs: model label -> `explain_model` result, all over the same examples.
        select: one of `SELECTIONS`:
            - `random`: a seeded random sample, in dataset order;
            - `misclassified`: examples some model gets wrong, those most models get wrong first;
            - `lowest_agreement` / `highest_agreement`: the lowest / highest Pearson r averaged over the models;
            - `disagreement`: the largest difference in Pearson r between two models (needs two models).
            Ties keep dataset order; the agreement selections skip examples without a correlation for some model.
        num_examples: at most this many (>= 0); fewer when fewer examples qualify.
        seed: the seed of `random`.
        method: the importance method whose Pearson r is compared (default: each run's first).

    Returns:
        Example indices into the runs.
    """
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {list(SELECTIONS)}, got {select!r}")
    if num_examples < 0:
        raise ValueError(f"num_examples must be >= 0, got {num_examples}")
    size = len(next(iter(runs.values()))["tokens"])
    if select == "random":
        return sorted(np.random.default_rng(seed).permutation(size)[:num_examples].tolist())
    if select == "misclassified":
        wrong = sum((run["labels"] >= 0) & (run["predictions"] != run["labels"]) for run in runs.values())
        order = np.argsort(-wrong, kind="stable")
        return [int(i) for i in order if wrong[i] > 0][:num_examples]
    if select == "disagreement" and len(runs) < 2:
        raise ValueError(f"select 'disagreement' compares models: it needs at least 2, got {list(runs)}")
    method = method or next(iter(next(iter(runs.values()))["agreement"]))
    missing = [label for label, run in runs.items() if method not in run["agreement"]]
    if missing:
        raise ValueError(f"runs {missing} have no agreement with importance method {method!r}")
    r = np.stack([np.asarray(run["agreement"][method]["pearson"], dtype=np.float64) for run in runs.values()])
    valid = np.isfinite(r).all(axis=0)
    key = {"lowest_agreement": r.mean(axis=0), "highest_agreement": -r.mean(axis=0),
           "disagreement": r.min(axis=0) - r.max(axis=0)}[select]
    order = np.argsort(np.where(valid, key, np.inf), kind="stable")
    return [int(i) for i in order if valid[i]][:num_examples]


def _label_name(id2label: Mapping | None, class_id: int) -> str:
    """The class name of `class_id` (its number without `id2label`); `—` for an unlabelled example (-1)."""
    if class_id < 0:
        return "—"
    if id2label is None:
        return str(class_id)
    return str(id2label.get(class_id, id2label.get(str(class_id), class_id)))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _cells(tokens: Sequence[str], values: np.ndarray) -> list[dict]:
    """Template cells of one row: token, raw value, shade and its background colour (red +, blue -)."""
    cells = []
    for token, value, shade in zip(tokens, values, token_shades(values), strict=True):
        alpha = min(abs(shade) / SATURATION, 1.0)
        colour = "220, 40, 40" if shade >= 0 else "40, 90, 220"
        cells.append({"token": token, "value": float(value), "shade": float(shade),
                      "background": f"rgba({colour}, {alpha:.3f})"})
    return cells


def _example(runs: Mapping[str, dict], index: int, models: Mapping[str, Mapping]) -> dict:
    """Template view of one example: per model its prediction, gold label, r and τ per method and shaded rows."""
    per_model = []
    for label, run in runs.items():
        id2label = models.get(label, {}).get("id2label")
        per_model.append({
            "label": label,
            "prediction": _label_name(id2label, int(run["predictions"][index])),
            "gold": _label_name(id2label, int(run["labels"][index])),
            "correct": int(run["labels"][index]) < 0 or run["predictions"][index] == run["labels"][index],
            "agreement": {method: (float(stats["pearson"][index]), float(stats["kendall"][index]))
                          for method, stats in run["agreement"].items()},
            "rows": [{"name": name, "cells": _cells(run["tokens"][index], values)} for name, values in _rows(run, index)],
        })
    return {"index": index, "models": per_model}


def write_report(
    runs: Mapping[str, dict],
    output_dir: str | Path,
    epsilon_runs: Sequence[Mapping] | None = None,
    example_indices: Sequence[int] | None = None,
    num_examples: int = 4,
    title: str = "Attention interpretability report",
    select: str = "random",
    seed: int = 0,
    data: Mapping | None = None,
    models: Mapping[str, Mapping] | None = None,
) -> Path:
    """Write `metrics.json`, `report.html` (from `templates/report.html.j2`) and the PNG figures (the agreement
    distribution, and the ε sweep with `epsilon_runs`) for several models' `explain_model` results.

    Args:
        runs: model label -> `explain_model` result, all over the same examples in the same order.
        output_dir: created if missing.
        epsilon_runs: optional ε sweep (dicts with `method`, `epsilon`, `accuracy`, `pearson`).
        example_indices: the examples to show (default: `num_examples` chosen by `select_examples`).
        num_examples: how many examples without `example_indices` (>= 0).
        title: the page title.
        select: how `select_examples` chooses them, one of `SELECTIONS`; `seed` seeds `random`.
        data: what was explained, shown in the header and recorded in `metrics.json` (e.g. `dataset`, `split`,
            `num_rows`, `max_test_samples`, `seed`, and `rows`: each example's row in the split).
        models: model label -> `path`, `adv_method`, `adv_epsilon`, `id2label` (class names for the page).

    Returns:
        The path of `report.html`. The page is self-contained: CSS inline, figures embedded as base64.
    """
    import jinja2

    if not runs:
        raise ValueError("runs is empty: pass at least one model's explain_model result")
    sizes = {label: len(run["tokens"]) for label, run in runs.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"all runs must cover the same examples; their sizes differ: {sizes}")
    size = next(iter(sizes.values()))
    if example_indices is None:
        indices = select_examples(runs, select, num_examples, seed)
    else:
        indices = [int(i) for i in example_indices]
        bad = [i for i in indices if not 0 <= i < size]
        if bad:
            raise ValueError(f"example_indices {bad} are outside [0, {size})")
    models = {label: dict((models or {}).get(label, {})) for label in runs}
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    metrics = {"data": dict(data or {}), "models": metrics_of(runs),
               "examples": {"select": select if example_indices is None else "given", "seed": seed,
                            "indices": indices}}
    for label, info in models.items():
        metrics["models"][label]["model"] = {k: v for k, v in info.items() if k != "id2label"}
    if epsilon_runs:
        metrics["epsilon_runs"] = list(epsilon_runs)
    (output_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2) + "\n", encoding="utf-8")

    figures = [plot_agreement(runs, output_dir / "agreement.png")]
    if epsilon_runs:
        figures.append(plot_epsilon_sweep(epsilon_runs, output_dir / "epsilon.png"))

    rows = (data or {}).get("rows")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    page = env.get_template("report.html.j2").render(
        title=title, data=data or {}, size=size, saturation=SATURATION,
        models=[{"label": label, **info, "summary": run["summary"],
                 "agreement": {m: (s["pearson_summary"], s["kendall_summary"]) for m, s in run["agreement"].items()}}
                for (label, run), info in zip(runs.items(), models.values(), strict=True)],
        selection={"select": select if example_indices is None else "given", "seed": seed, "count": len(indices)},
        figures=[{"name": path.name, "src": _data_uri(path)} for path in figures],
        examples=[{**_example(runs, i, models), "row": None if rows is None else rows[i]} for i in indices],
    )
    report = output_dir / "report.html"
    report.write_text(page, encoding="utf-8")
    logger.info("wrote %s with %d figures and %d examples", report, len(figures), len(indices))
    return report
