"""Write an interpretability report folder: `metrics.json`, `report.html` and PNG figures.

Matplotlib is imported inside the plotting functions (Agg backend), never at package import.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MAX_HEATMAP_TOKENS = 60
_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.example { margin: 1.5em 0; }
.row { margin: 2px 0; line-height: 1.9; }
.row-label { display: inline-block; width: 16em; font-size: 0.85em; color: #555; }
.tok { padding: 2px 3px; margin: 0 1px; border-radius: 3px; }
img { max-width: 100%; }
"""


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


def plot_heatmap(runs: Mapping[str, dict], index: int, path: str | Path) -> Path:
    """One example, one panel per model: tokens shaded by attention and by each importance method.

    Each row is scaled by its own maximum so that rows with different ranges stay readable.
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
        values = np.stack([v[: len(tokens)] for _, v in rows])
        peak = values.max(axis=1, keepdims=True)
        ax.imshow(np.divide(values, peak, out=np.zeros_like(values), where=peak > 0), cmap="Reds", vmin=0, vmax=1,
                  aspect="auto")
        ax.set_yticks(range(len(rows)), [name for name, _ in rows])
        ax.set_xticks(range(len(tokens)), [_literal(token) for token in tokens], rotation=90)
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                ax.text(c, r, f"{values[r, c]:.2f}", ha="center", va="center", fontsize=6)
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


def _html_tokens(tokens: Sequence[str], values: np.ndarray) -> str:
    peak = float(values.max()) if len(values) else 0.0
    spans = []
    for token, value in zip(tokens, values, strict=True):
        alpha = value / peak if peak > 0 else 0.0
        spans.append(
            f'<span class="tok" style="background: rgba(220, 40, 40, {alpha:.3f})" title="{value:.4f}">'
            f"{html.escape(token)}</span>"
        )
    return " ".join(spans)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


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


def write_report(
    runs: Mapping[str, dict],
    output_dir: str | Path,
    epsilon_runs: Sequence[Mapping] | None = None,
    example_indices: Sequence[int] | None = None,
    num_examples: int = 4,
    title: str = "Attention interpretability report",
) -> Path:
    """Write `metrics.json`, `report.html` and the PNG figures for several models' `explain_model` results.

    Args:
        runs: model label -> `explain_model` result, all over the same examples in the same order.
        output_dir: created if missing.
        epsilon_runs: optional ε sweep (dicts with `method`, `epsilon`, `accuracy`, `pearson`).
        example_indices: examples to draw as heat maps (default: the first `num_examples`).
        num_examples: how many heat maps without `example_indices` (>= 0).
        title: the page title.

    Returns:
        The path of `report.html`. The page is self-contained: CSS inline, figures embedded as base64.
    """
    if not runs:
        raise ValueError("runs is empty: pass at least one model's explain_model result")
    sizes = {label: len(run["tokens"]) for label, run in runs.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"all runs must cover the same examples; their sizes differ: {sizes}")
    size = next(iter(sizes.values()))
    if num_examples < 0:
        raise ValueError(f"num_examples must be >= 0, got {num_examples}")
    indices = list(range(min(num_examples, size))) if example_indices is None else list(example_indices)
    bad = [i for i in indices if not 0 <= i < size]
    if bad:
        raise ValueError(f"example_indices {bad} are outside [0, {size})")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    metrics = {"models": metrics_of(runs)}
    if epsilon_runs:
        metrics["epsilon_runs"] = list(epsilon_runs)
    (output_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2) + "\n", encoding="utf-8")

    figures = [plot_agreement(runs, output_dir / "agreement.png")]
    if epsilon_runs:
        figures.append(plot_epsilon_sweep(epsilon_runs, output_dir / "epsilon.png"))
    heatmaps = [plot_heatmap(runs, i, output_dir / f"heatmap_{i}.png") for i in indices]

    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>", "<h2>Agreement</h2>",
             "<table><tr><th>model</th><th>method</th><th>accuracy</th><th>Pearson r (mean ± std)</th>"
             "<th>Kendall τ (mean ± std)</th><th>examples without a correlation</th></tr>"]
    for label, run in runs.items():
        for method, stats in run["agreement"].items():
            p, k = stats["pearson_summary"], stats["kendall_summary"]
            parts.append(
                f"<tr><td>{html.escape(label)}</td><td>{html.escape(method)}</td>"
                f"<td>{run['summary']['accuracy']:.4f}</td><td>{p['mean']:.4f} ± {p['std']:.4f}</td>"
                f"<td>{k['mean']:.4f} ± {k['std']:.4f}</td><td>{p['num_nan']}</td></tr>"
            )
    parts.append("</table>")
    capped = {label: run["summary"] for label, run in runs.items() if run["summary"].get("max_tokens") is not None}
    if capped:
        parts.append("<p>Texts longer than the token cap are explained on their first tokens: " + ", ".join(
            f"{html.escape(label)}: {s['num_truncated']} of {s['num_examples']} examples cut to "
            f"{s['max_tokens']} tokens" for label, s in capped.items()) + ".</p>")
    parts += [_img(path) for path in figures]
    parts.append("<h2>Examples</h2>")
    for i, heatmap in zip(indices, heatmaps, strict=True):
        parts.append(f'<div class="example"><h3>Example {i}</h3>')
        for label, run in runs.items():
            for name, values in _rows(run, i):
                parts.append(
                    f'<div class="row"><span class="row-label">{html.escape(label)}: {html.escape(name)}</span>'
                    f"{_html_tokens(run['tokens'][i], values)}</div>"
                )
        parts.append(_img(heatmap) + "</div>")
    parts.append("</body></html>\n")
    report = output_dir / "report.html"
    report.write_text("\n".join(parts), encoding="utf-8")
    logger.info("wrote %s with %d figures", report, len(figures) + len(heatmaps))
    return report
