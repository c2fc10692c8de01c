"""`hf-attn-at reproduce`: run a grid of tasks × methods × seeds (× ε), then aggregate tables, figures, claims.

    hf-attn-at reproduce --grid quickstart --data_source local --data_dir ../shared/data

    # the methods compared on your own data (one task, named --task_label or after the file)
    hf-attn-at reproduce --train_file reviews.csv --test_file reviews_test.csv \
        --methods vanilla attention_at attention_iat --output_dir runs/reviews

Each run trains in `OUTPUT_DIR/runs/<task>/<method>[-eps<ε>]/seed<seed>/` and writes `results.json` when it
finishes (with the command that ran it): finished runs are skipped, and an interrupted run resumes from its
last checkpoint. Aggregation reads every `results.json` under `OUTPUT_DIR/runs` (so separate invocations, such
as a grid and an ε sweep, share one report) and writes `RESULTS.md` (or `--results_file`), the ε-sweep figures,
a heat-map report per task and, with `--model_cards_dir`, one generated model card per task × method.

With `--records_dir`, each finished run's small files (`RECORD_FILES`: metrics, settings, explanations; no
weights) are also copied to `RECORDS_DIR/<task>/<method>[-eps<ε>]/seed<seed>/`. A recorded run counts as finished
and is aggregated like a run folder, so a committed records folder regenerates the report without the run
folders, and a grid can be completed over several machines or sessions.

Task labels name folders and files: they are letters, digits, `.`, `_` and `-` (see `safe_path_component`). Before
anything is written, every `results.json` aggregated must hold a valid `task`, `method`, `epsilon` and `seed` that
give its own folder's name, and no figure, report, card or record is written outside its folder.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import HfArgumentParser

from ..arguments import CustomDataArguments, safe_path_component
from ..data import SOURCES, TASKS, task_label
from ..interpret import Explanation
from ..run_folder import RunLockedError, check_settings, read_settings, run_settings
from ..runs import EXPLANATION_FILE, METRICS_FILE, RESULTS_FILE, TRAINING_ARGS_FILE, RunRecord
from ..training_args import AdversarialMethod
from ..word_vectors import word_vectors_dim
from .comparisons import claim_verdicts, difference_tables, differences

logger = logging.getLogger(__name__)

BINARY_TASKS = ("sst", "imdb", "20news", "agnews")
ALL_METHODS = tuple(m.value for m in AdversarialMethod)
# Kitada & Iyatomi 2021's six (not the diagnostic attention_iat_released).
PAPER_METHODS = tuple(m.value for m in AdversarialMethod if not (m.is_virtual or m.is_diagnostic))
OFFLINE_TASKS = ("sst", "imdb", "20news", "babi1", "babi2", "babi3", "snli", "mnli")

# Grid presets: tasks, methods, seeds, ε values and overrides of the model/training settings.
GRIDS: dict[str, dict[str, Any]] = {
    "quickstart": {
        "tasks": ["sst"], "methods": ["vanilla", "attention_at", "attention_iat"], "seeds": [1],
        "training": {"num_train_epochs": 3},
    },
    "ci": {
        "tasks": ["sst"], "methods": ["vanilla", "attention_at"], "seeds": [1],
        "model": {"embedding_size": 32, "hidden_size": 16, "attention_hidden_size": 16},
        "data": {"max_train_samples": 400, "max_eval_samples": 100, "max_test_samples": 200},
        "training": {"num_train_epochs": 1},
    },
    "paper": {"tasks": list(OFFLINE_TASKS), "methods": list(PAPER_METHODS), "seeds": [1, 2, 3]},
    "sweep": {
        "tasks": ["sst", "snli"], "methods": ["attention_at", "attention_iat", "word_at", "word_iat"], "seeds": [1],
        "epsilons": [0.01, 0.1, 1.0, 10.0, 100.0],
    },
    # Protocol v2: GloVe 6B 50d embeddings; per task and method, ε selected on validation from the grid's ε with
    # the first seed, then the other seeds at the selected ε (`select_epsilon`).
    "paper_v2": {
        "tasks": list(OFFLINE_TASKS), "methods": list(PAPER_METHODS), "seeds": [1, 2, 3],
        "epsilons": [0.01, 0.1, 1.0, 10.0], "select_epsilon": True,
        "model": {"word_vectors": "glove-6b-50d", "embedding_size": None},
    },
}
DEFAULT_EPSILON = 1.0
# What `--records_dir` keeps of a run folder: enough to aggregate tables, figures, reports and model cards.
RECORD_FILES = (RESULTS_FILE, METRICS_FILE, TRAINING_ARGS_FILE, "config.json", EXPLANATION_FILE, "run_settings.json")


@dataclass
class ReproduceArguments:
    """What to run and where; every list flag overrides the grid preset's list."""

    grid: str = field(default="quickstart", metadata={"help": "Preset grid.", "choices": list(GRIDS)})
    output_dir: str = field(default="runs/reproduce", metadata={"help": "Root folder of the runs and reports."})
    tasks: list[str] | None = field(default=None, metadata={"help": "Tasks (override the grid)."})
    methods: list[str] | None = field(default=None, metadata={"help": "Methods (override the grid)."})
    seeds: list[int] | None = field(default=None, metadata={"help": "Seeds (override the grid)."})
    epsilons: list[float] | None = field(
        default=None, metadata={"help": "ε values: each non-vanilla method runs at each (an ε sweep)."}
    )
    data_source: str = field(default="hub", metadata={"help": "'hub' or 'local'.", "choices": list(SOURCES)})
    data_dir: str | None = field(default=None, metadata={"help": "Local data folder (e.g. ../shared/data)."})
    babi_size: str = field(
        default="10k", metadata={"help": "bAbI version: '10k' (the paper's) or '1k' (local copies of tasks 2-3).",
                                 "choices": ["10k", "1k"]}
    )
    num_train_epochs: float | None = field(default=None, metadata={"help": "Override the epochs (SPEC: 8 / 10)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Cap the training examples."})
    word_vectors: str | None = field(
        default=None,
        metadata={"help": "Initialise every model's embeddings from these vectors (glove-6b-50d, or a GloVe/fastText "
                          "text file); the embedding size becomes their dimension."},
    )
    adv_epsilon_scale: str = field(
        default="absolute",
        metadata={"help": "Attention methods: 'absolute' (the paper) or 'score_std' (ours: epsilon times the std of "
                          "each example's attention scores); use its own --output_dir/--records_dir, since run "
                          "names do not include it.", "choices": ["absolute", "score_std"]},
    )
    explain_max_samples: int | None = field(default=None, metadata={"help": "Cap the examples explained."})
    results_file: str | None = field(
        default=None, metadata={"help": "Where to write the Markdown results (default OUTPUT_DIR/RESULTS.md)."}
    )
    notes_file: str | None = field(
        default=None, metadata={"help": "A Markdown file of discussion included verbatim at the end of RESULTS.md."}
    )
    model_cards_dir: str | None = field(
        default=None, metadata={"help": "Also write one generated model card per task x method here (first seed)."}
    )
    records_dir: str | None = field(
        default=None, metadata={"help": "Also copy each finished run's small files (no weights) here; runs recorded "
                                        "here count as finished and are aggregated (e.g. docs/runs)."}
    )
    ablation_records_dir: str | None = field(
        default=None,
        metadata={"help": "Records of the same tasks from another protocol (e.g. docs/runs: random embeddings, "
                          "ε = 1): RESULTS.md gets a side-by-side table of both protocols' main rows."},
    )
    ablation_grid: str = field(
        default="paper", metadata={"help": "The grid that made --ablation_records_dir (its main ε: 1, or selected).",
                                   "choices": list(GRIDS)},
    )
    aggregate_only: bool = field(default=False, metadata={"help": "Skip training; aggregate finished runs."})

    def __post_init__(self):
        for name, valid in (("tasks", TASKS), ("methods", ALL_METHODS)):
            bad = [v for v in getattr(self, name) or [] if v not in valid]
            if bad:
                raise ValueError(f"--{name}: unknown {bad}; valid: {', '.join(valid)}")
        bad_eps = [e for e in self.epsilons or [] if not e > 0]
        if bad_eps:
            raise ValueError(f"--epsilons must all be > 0, got {bad_eps}")
        if self.data_source == "local" and self.data_dir is None:
            raise ValueError("--data_source local needs --data_dir (the folder holding sst/, imdb/, ...)")
        if self.word_vectors is not None:
            word_vectors_dim(self.word_vectors)  # unknown name, unreadable file, missing package: stop before any run


@dataclass(frozen=True)
class Run:
    """One run of the grid; `label` names its folder and table (`task_label`: ``babi1-1k`` for bAbI 1 (1k))."""

    task: str
    method: str
    epsilon: float | None
    seed: int
    label: str

    @property
    def name(self) -> str:
        return run_name(self.label, self.method, self.epsilon, self.seed)


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


def plan_runs(
    args: ReproduceArguments, custom: CustomDataArguments | None = None, finished: dict[str, dict] | None = None
) -> list[Run]:
    """The grid's runs, seed-major (task, seed, method, ε): a grid stopped early still covers every method.

    With custom data the grid has one task, the user's data. A grid with `select_epsilon` (`paper_v2`) runs every ε
    with the first seed only, and the other seeds at the ε that `select_epsilon` picks from the `finished` runs
    (`results.json` contents by run name); until a method's ε runs have all finished, its other seeds are not planned.
    """
    grid = GRIDS[args.grid]
    is_custom = custom is not None and custom.is_custom
    tasks = [custom.custom_label] if is_custom else args.tasks or grid["tasks"]
    methods = args.methods or grid["methods"]
    seeds = args.seeds or grid["seeds"]
    epsilons = args.epsilons or grid.get("epsilons") or [DEFAULT_EPSILON]
    runs = []
    for task in tasks:
        label = task if is_custom else task_label(task, args.babi_size)
        selected = {
            method: select_epsilon(finished or {}, label, method, epsilons, seeds[0])[0]
            for method in methods if method != "vanilla" and grid.get("select_epsilon")
        }
        for seed in seeds:
            for method in methods:
                if method == "vanilla":
                    chosen = [None]
                elif not grid.get("select_epsilon") or seed == seeds[0]:
                    chosen = epsilons
                else:
                    chosen = [] if selected[method] is None else [selected[method]]
                runs += [Run(task, method, eps, seed, label) for eps in chosen]
    return runs


def select_epsilon(
    finished: dict[str, dict], task: str, method: str, epsilons: Sequence[float], seed: int
) -> tuple[float | None, dict[float, float]]:
    """The ε of `epsilons` whose run of `task`/`method` with `seed` has the best validation metric (AUC for binary
    tasks, accuracy otherwise: the metric that selects the checkpoint; the smaller ε on a tie), and every ε's
    metric; `(None, {...})` until all of them have finished.

    Args:
        finished (`dict[str, dict]`): `results.json` contents of the finished runs by run name (see `run_name`).
    """
    metric = "validation_auc" if task in BINARY_TASKS else "validation_accuracy"
    scores = {}
    for eps in epsilons:
        result = finished.get(run_name(task, method, eps, seed))
        if result is not None:
            scores[eps] = result["metrics"]["validation"][metric]
    if len(scores) < len(epsilons):
        return None, scores
    return max(sorted(scores), key=lambda eps: scores[eps]), scores


def run_arguments(args: ReproduceArguments, run: Run, run_dir: Path, custom: CustomDataArguments | None = None):
    """The (model, data, training) arguments of one run: the paper's settings (Adam with amsgrad, lr 1e-3, betas
    (0.9, 0.999), eps 1e-8, L2 weight decay 1e-5, constant schedule) plus the grid's overrides.

    With custom data (`custom.is_custom`) the run reads the user's data; it trains 8 epochs (or
    `--num_train_epochs`) and selects the model on validation accuracy.
    """
    from dataclasses import asdict

    from ..arguments import DataArguments, ModelArguments
    from ..training_args import AdversarialTrainingArguments

    grid = GRIDS[args.grid]
    binary = run.task in BINARY_TASKS
    epochs = 8 if run.task in BINARY_TASKS else 10
    training = {
        "output_dir": str(run_dir),
        "adv_method": run.method,
        "adv_epsilon": run.epsilon,
        "adv_lambda": 1.0,
        "seed": run.seed,
        "paper_optimizer": True,  # Adam(amsgrad=True), L2 weight decay
        "learning_rate": 1e-3,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-8,
        "weight_decay": 1e-5,
        "lr_scheduler_type": "constant",
        "per_device_train_batch_size": 90 if run.task == "cnn" else 32,
        "per_device_eval_batch_size": 128,
        "num_train_epochs": epochs,
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 1,
        "load_best_model_at_end": True,
        "metric_for_best_model": "auc" if binary else "accuracy",
        "greater_is_better": True,
        "train_sampling_strategy": "group_by_length",
        "logging_strategy": "epoch",
        "disable_tqdm": True,
        "report_to": "none",
        "dataloader_pin_memory": torch.cuda.is_available(),
        **grid.get("training", {}),
    }
    if args.num_train_epochs is not None:
        training["num_train_epochs"] = args.num_train_epochs
    if run.method != "vanilla" and args.adv_epsilon_scale != "absolute":
        training["adv_epsilon_scale"] = args.adv_epsilon_scale
    if custom is not None and custom.is_custom:
        data = {**asdict(custom), **grid.get("data", {})}
    else:
        data = {"task_name": run.task, "data_source": args.data_source, "data_dir": args.data_dir,
                "babi_size": args.babi_size, **grid.get("data", {})}
    if args.max_train_samples is not None:
        data["max_train_samples"] = args.max_train_samples
    if args.explain_max_samples is not None:
        data["explain_max_samples"] = args.explain_max_samples
    model = dict(grid.get("model", {}))
    if args.word_vectors is not None:
        model.update(word_vectors=args.word_vectors, embedding_size=None)  # E = the vectors' dimension
    return (
        ModelArguments(**model),
        DataArguments(**data),
        AdversarialTrainingArguments(**training),
    )


def execute(args: ReproduceArguments, command: str, custom: CustomDataArguments | None = None) -> None:
    """Run every unfinished run of the grid; each new `results.json` records `command`, its invocation."""
    from ..experiment import run_experiment

    root = Path(args.output_dir) / "runs"
    checked: set[str] = set()
    # Two rounds for a grid that selects ε: its first seed's ε runs decide which runs the other seeds get.
    for _ in range(2 if GRIDS[args.grid].get("select_epsilon") else 1):
        finished = finished_runs(args.output_dir, args.records_dir)
        runs = plan_runs(args, custom, {name: load_result(path, name) for name, path in finished.items()})
        todo = [r for r in runs if r.name not in finished]
        logger.info("%d runs in the grid, %d finished, %d to run", len(runs), len(runs) - len(todo), len(todo))
        if args.aggregate_only:
            return
        for run in runs:
            if run.name in finished and run.name not in checked:  # another grid's run under the same name is not this run
                check_settings(
                    finished[run.name], read_settings(finished[run.name]),
                    run_settings(*run_arguments(args, run, root / run.name, custom)),
                    remedy="give another --output_dir (and --records_dir), or delete that run to run it again",
                )
                checked.add(run.name)
        for run in tqdm(todo, desc="reproduce", unit="run"):
            run_dir = inside(root, run.name)
            logger.info("run %s", run.name)
            try:
                run_experiment(*run_arguments(args, run, run_dir, custom))
            except RunLockedError as err:  # another worker of the grid is running it
                logger.warning("skipping %s: %s", run.name, err)
                continue
            if (run_dir / RESULTS_FILE).is_file():  # written by the main process only
                record = RunRecord.load(run_dir)
                record.command = command
                record.save(run_dir)
                if args.records_dir:
                    record_run(run_dir, inside(Path(args.records_dir), run.name))


def record_run(run_dir: Path, record_dir: Path) -> Path:
    """Copy the `RECORD_FILES` that a finished run folder has into `record_dir` (created); returns `record_dir`."""
    record_dir.mkdir(parents=True, exist_ok=True)
    for name in RECORD_FILES:
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, record_dir / name)
    return record_dir


def finished_runs(output_dir: str | Path, records_dir: str | Path | None = None) -> dict[str, Path]:
    """Run name (`<task>/<method>[-eps<ε>]/seed<seed>`) -> the folder holding its `results.json`, sorted by name.

    Run folders under `output_dir/runs` (this grid's and earlier invocations', e.g. an ε sweep) take precedence
    over records under `records_dir`; with `records_dir`, run folders not yet recorded there are recorded.
    """
    def by_name(root: Path) -> dict[str, Path]:
        return {p.parent.relative_to(root).as_posix(): p.parent for p in root.glob("*/*/seed*/results.json")}

    runs = by_name(Path(output_dir) / "runs")
    records = {} if records_dir is None else by_name(Path(records_dir))
    if records_dir is not None:
        for name, run_dir in runs.items():
            if name not in records or _newer(run_dir, records[name]):
                records[name] = record_run(run_dir, inside(Path(records_dir), name))
    return dict(sorted({**records, **runs}.items()))


def _newer(run_dir: Path, record_dir: Path) -> bool:
    return (run_dir / "results.json").stat().st_mtime_ns > (record_dir / "results.json").stat().st_mtime_ns


# ----------------------------------------------------------------------------------------------- aggregation


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _fmt(mean: float, std: float) -> str:
    return "n/a" if math.isnan(mean) else f"{mean:.3f} ± {std:.3f}"


def _test_metric(result: dict, name: str) -> float | None:
    split = result["agreement_split"]
    return result["metrics"][split].get(f"{split}_{name}")


def load_result(run_dir: Path, name: str) -> dict:
    """A finished run's record (`RunRecord.load`: `results.json` checked, `num_labels` from `config.json`) as the
    `results.json` object plus `num_labels` (for `predicts_one_class`).

    Its `task`, `method`, `epsilon` and `seed` name figures, reports and model cards: a `ValueError` names the file
    unless they give `name`, the run's folder under its root (see `run_name`).
    """
    record = RunRecord.load(run_dir)
    recorded = run_name(record.task, record.method, record.epsilon, record.seed)
    if recorded != name:
        raise ValueError(f"{run_dir / RESULTS_FILE} records the run {recorded!r} (its task, method, epsilon and seed) "
                         f"but lies in the folder of {name!r}: move the run folder or correct its results.json")
    return {**record.to_results(), "num_labels": record.num_labels}


def predicts_one_class(result: dict) -> bool:
    """Whether the run predicted one class for every test example (a collapsed model), told from its metrics.

    Predicting only a class whose test share is p > 0 gives accuracy p and macro F1 2p / ((1 + p) n) over the n
    labels; other predictions meet this identity only by coincidence. n is the model's `num_labels`, so a test set
    lacking some label is never flagged.
    """
    accuracy, macro_f1, n = _test_metric(result, "accuracy"), _test_metric(result, "macro_f1"), result.get("num_labels")
    if accuracy is None or macro_f1 is None or not n or not accuracy > 0:
        return False
    return math.isclose(macro_f1, 2 * accuracy / ((1 + accuracy) * n), rel_tol=1e-9)


def summarize(results: list[dict]) -> dict[str, dict[tuple[str, float | None], dict[str, Any]]]:
    """task -> (method, ε) -> mean/std of accuracy, F1, Pearson, Kendall over seeds, the number of seeds that
    predict one class (`predicts_one_class`), and the run time."""
    groups: dict[str, dict[tuple[str, float | None], list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        groups[r["task"]][(r["method"], r["epsilon"])].append(r)
    table: dict[str, dict] = {}
    for task, by_method in groups.items():
        table[task] = {}
        for key, rs in by_method.items():
            table[task][key] = {
                "accuracy": _mean_std([_test_metric(r, "accuracy") for r in rs]),
                "f1": _mean_std([_test_metric(r, "f1") for r in rs]),
                "pearson": _mean_std([r["agreement"]["agreement_pearson"] for r in rs]),
                "kendall": _mean_std([r["agreement"]["agreement_kendall"] for r in rs]),
                "grad_norm": _mean_std([(r.get("attention_sensitivity") or {}).get("grad_norm") for r in rs]),
                "score_range": _mean_std([(r.get("attention_sensitivity") or {}).get("score_range") for r in rs]),
                "seeds": len(rs),
                "one_class": sum(predicts_one_class(r) for r in rs),
                "minutes": sum(r["total_runtime"] for r in rs) / 60,
                "split": rs[0]["agreement_split"],
            }
    return table


def _method_order(key: tuple[str, float | None]) -> tuple[int, float]:
    method, eps = key
    return ALL_METHODS.index(method), eps or 0.0


def _task_title(task: str, results: list[dict]) -> str:
    """`task`, with the size spelled out for a bAbI task's 10k version (labelled `babi1`, next to `babi1-1k`)."""
    data_args = next((r.get("data_args") or {} for r in results if r["task"] == task), {})
    name, size = data_args.get("task_name"), data_args.get("babi_size")
    if name == task and name in TASKS and "babi_size" in TASKS[name].options:
        return f"{task} (bAbI task {name.removeprefix('babi')}, {size} version)"
    return task


def main_epsilon(task: str, method: str, selected: dict[tuple[str, str], float] | None) -> float | None:
    """The ε of a method's main row: the selected one (`select_epsilon` grids), else `DEFAULT_EPSILON`."""
    if method == "vanilla":
        return None
    return DEFAULT_EPSILON if selected is None else selected.get((task, method))


def markdown_tables(table: dict, results: list[dict], selected: dict[tuple[str, str], float] | None = None) -> list[str]:
    """Per task: a row per (method, ε) with mean ± std over seeds; with `selected` (ε chosen on validation), only
    vanilla and each method's selected ε (the ε runs are in `selection_tables`)."""
    lines = []
    for task, rows in table.items():
        if selected is not None:
            rows = {k: v for k, v in rows.items() if k[1] == main_epsilon(task, k[0], selected)}
        commands = sorted({r.get("command", "(not recorded)") for r in results if r["task"] == task})
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
            eps = "–" if key[1] is None else f"{key[1]:g}"
            f1 = f"{_fmt(*row['f1'])} | " if binary else ""
            extra = f"{_fmt(*row['grad_norm'])} | {_fmt(*row['score_range'])} | " if sensitivity else ""
            method, seeds = (f"{key[0]} †", f"{row['seeds']} ({row['one_class']} †)") if row["one_class"] else (key[0], row["seeds"])
            lines.append(
                f"| {method} | {eps} | {_fmt(*row['accuracy'])} | {f1}{_fmt(*row['pearson'])} | "
                f"{_fmt(*row['kendall'])} | {extra}{seeds} | {row['minutes']:.1f} |"
            )
        if any(row["one_class"] for row in rows.values()):
            lines += ["", "† (n †): n seeds predict one class for every test example (accuracy = that class's share); "
                          "the agreement of such a collapsed model says nothing about a working one."]
        lines += ["", "Produced by:", "", "```", *commands, "```", ""]
    return lines


def check_claims(table: dict, selected: dict[tuple[str, str], float] | None = None) -> list[str]:
    """The paper's three claims, judged from the numbers (held / not held / mixed / not tested), on each method's
    main row (`main_epsilon`)."""
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
        verdicts.append((task, bool({"attention_at", "attention_iat"} & set(best)), detail))
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
        detail = ", ".join(f"{k[0]} {_fmt(*v['pearson'])}" for k, v in sorted(ours.items(), key=lambda kv: _method_order(kv[0])))
        verdicts.append((task, ok, f"vanilla {_fmt(*vanilla['pearson'])} vs {detail}"))
    lines.append(_claim(
        "2. Attention AT/iAT correlate more with gradient importance than vanilla (Pearson r)",
        verdicts, lambda t, ok, detail: f"{t}: {detail}",
    ))
    # Claim 3: attention AT/iAT less sensitive to ε than word AT (spread of accuracy over the ε grid).
    verdicts = []
    for task, rows in table.items():
        spread = {}
        for method in ("attention_at", "attention_iat", "word_at"):
            accs = [v["accuracy"][0] for k, v in rows.items() if k[0] == method and k[1] is not None]
            if len(accs) >= 3:
                spread[method] = max(accs) - min(accs)
        if "word_at" not in spread or len(spread) < 2:
            continue
        ok = all(spread[m] < spread["word_at"] for m in spread if m != "word_at")
        detail = ", ".join(f"{m} {s:.3f}" for m, s in spread.items())
        verdicts.append((task, ok, f"accuracy range over ε: {detail}"))
    lines.append(_claim(
        "3. Attention AT/iAT are less sensitive to ε than word AT",
        verdicts, lambda t, ok, detail: f"{t}: {detail}",
    ))
    return lines


def selected_epsilons(results: list[dict], epsilons: Sequence[float]) -> dict[tuple[str, str], float]:
    """`(task, method) -> ε` chosen by `select_epsilon` (on each method's lowest seed) for every method of `results`
    whose ε runs have all finished."""
    finished = {run_name(r["task"], r["method"], r["epsilon"], r["seed"]): r for r in results}
    selected = {}
    for task, method in sorted({(r["task"], r["method"]) for r in results if r["method"] != "vanilla"}):
        seed = min(r["seed"] for r in results if (r["task"], r["method"]) == (task, method))
        epsilon = select_epsilon(finished, task, method, epsilons, seed)[0]
        if epsilon is not None:
            selected[(task, method)] = epsilon
    return selected


def selection_tables(results: list[dict], epsilons: Sequence[float]) -> list[str]:
    """Per task, the validation metric of every method at every ε (lowest seed), the selected ε in bold, and the
    measured mean perturbation norm ‖r‖ of the training logs at that ε."""
    finished = {run_name(r["task"], r["method"], r["epsilon"], r["seed"]): r for r in results}
    lines = ["## ε selection (validation split, first seed)", ""]
    for task in sorted({r["task"] for r in results}):
        methods = sorted({r["method"] for r in results if r["task"] == task and r["method"] != "vanilla"},
                         key=ALL_METHODS.index)
        if not methods:
            continue
        metric = "AUC" if task in BINARY_TASKS else "accuracy"
        lines += [f"### {task} (validation {metric})", ""]
        lines += ["| method | " + " | ".join(f"ε={e:g}" for e in epsilons) + " | selected ε | measured ‖r‖ |",
                  "|" + "---|" * (len(epsilons) + 3)]
        for method in methods:
            seed = min(r["seed"] for r in results if (r["task"], r["method"]) == (task, method))
            chosen, scores = select_epsilon(finished, task, method, epsilons, seed)
            cells = [("**{:.3f}**" if e == chosen else "{:.3f}").format(scores[e]) if e in scores else "–"
                     for e in epsilons]
            norm = None
            if chosen is not None:
                norm = (finished[run_name(task, method, chosen, seed)].get("training_logs") or {}).get(
                    "adv_perturbation_norm_mean")
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {'–' if chosen is None else f'{chosen:g}'} | "
                         f"{'–' if norm is None else f'{norm:.3g}'} |")
        lines.append("")
    return lines


def recorded_results(records_dir: str | Path) -> list[dict]:
    """The `results.json` contents of every run recorded under `records_dir` (checked by `load_result`)."""
    root = Path(records_dir)
    if not root.is_dir():
        raise ValueError(f"--ablation_records_dir {root} is not a folder of run records")
    found = {p.parent.relative_to(root).as_posix(): p.parent for p in root.glob("*/*/seed*/results.json")}
    return [load_result(folder, name) for name, folder in sorted(found.items())]


def ablation_table(
    results: list[dict], selected: dict[tuple[str, str], float] | None, other: list[dict], other_dir: str | Path,
    other_selected: dict[tuple[str, str], float] | None = None,
) -> list[str]:
    """Per task in both: each method's main row (`main_epsilon`) here next to its main row in `other` (ε selected
    as in `other_selected`, or `DEFAULT_EPSILON` without selection), test accuracy and Pearson r, mean ± std over
    seeds."""
    here, there = summarize(results), summarize(other)
    lines = [f"## This protocol next to `{other_dir}`", "",
             f"Main rows of each method here and in the records of `{other_dir}`; test accuracy and Pearson r, mean ± "
             "std over seeds (seeds in brackets).", ""]
    for task in sorted(set(here) & set(there)):
        rows = []
        for method in ALL_METHODS:
            eps_here, eps_there = main_epsilon(task, method, selected), main_epsilon(task, method, other_selected)
            mine, theirs = here[task].get((method, eps_here)), there[task].get((method, eps_there))
            if mine is None or theirs is None:
                continue
            rows.append(f"| {method} | {_eps(eps_here)} | {_fmt(*mine['accuracy'])} | {_fmt(*mine['pearson'])} "
                        f"({mine['seeds']}) | {_eps(eps_there)} | {_fmt(*theirs['accuracy'])} | "
                        f"{_fmt(*theirs['pearson'])} ({theirs['seeds']}) |")
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
    from ..interpret.report import plot_epsilon_sweep, write_report

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
            figures[task] += [report.parent / "agreement.png", report.parent / "heatmap_0.png", report]
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


def write_results(
    args: ReproduceArguments, run_dirs: dict[str, Path], results: list[dict], elapsed: float, command: str
) -> Path:
    """RESULTS.md (tables, claims, notes, figures) and the model cards from the finished runs `run_dirs`, whose
    `results.json` contents are `results`."""
    table = summarize(results)
    grid = GRIDS[args.grid]
    epsilons = args.epsilons or grid.get("epsilons") or [DEFAULT_EPSILON]
    selected = selected_epsilons(results, epsilons) if grid.get("select_epsilon") else None
    results_file = Path(args.results_file or Path(args.output_dir) / "RESULTS.md")
    figures = write_figures(table, run_dirs, results_file.parent / "figures", selected)
    if args.model_cards_dir:
        cards = write_model_cards(table, run_dirs, Path(args.model_cards_dir), selected)
        logger.info("wrote %d model cards to %s", len(cards), args.model_cards_dir)
    lines = [
        "# Results", "",
        "Generated by `hf-attn-at reproduce`; do not edit by hand. This file was written by:", "",
        f"```\n{command}\n```", "",
        f"Grid `{args.grid}`: {len(results)} runs; this invocation took {elapsed / 60:.1f} minutes "
        "(finished runs are skipped, so see each table's `minutes` column for training cost: summed over seeds).",
        "Accuracy/F1 on the test split (model selected on validation), attention–gradient agreement "
        "(Pearson r, Kendall τ; mean ± std over seeds of the per-run mean over test examples).", "",
        "## Tables", "",
    ]
    lines += markdown_tables(table, results, selected)
    if selected is not None:
        lines += selection_tables(results, epsilons)
    intervals = differences(
        results, run_dirs, lambda task, method: main_epsilon(task, method, selected), run_name,
        lambda result: _test_metric(result, "accuracy"),
    )
    lines += difference_tables(intervals)
    lines += claim_verdicts(intervals)
    if args.ablation_records_dir:
        other = recorded_results(args.ablation_records_dir)
        other_grid = GRIDS[args.ablation_grid]
        other_epsilons = other_grid.get("epsilons") or [DEFAULT_EPSILON]
        other_selected = selected_epsilons(other, other_epsilons) if other_grid.get("select_epsilon") else None
        lines += ablation_table(results, selected, other, args.ablation_records_dir, other_selected)
    lines += check_claims(table, selected)
    if args.notes_file:
        lines += [f"## Discussion (from `{args.notes_file}`)", "", Path(args.notes_file).read_text(encoding="utf-8"), ""]
    lines += ["## Figures", ""]
    for task, paths in figures.items():
        for path in paths:
            rel = path.relative_to(results_file.parent)
            lines.append(f"- {task}: [{rel}]({rel})" if path.suffix == ".html" else f"![{task} {path.stem}]({rel})")
        lines.append("")
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return results_file


def print_summary(results: list[dict]) -> None:
    table = summarize(results)
    width = max([len("task"), *map(len, table)]) + 2
    print(f"{'task':<{width}}{'method':<24}{'ε':>6}{'accuracy':>18}{'F1':>18}{'Pearson r':>18}{'Kendall τ':>18}")
    for task, rows in table.items():
        for key in sorted(rows, key=_method_order):
            row = rows[key]
            eps = "–" if key[1] is None else f"{key[1]:g}"
            print(f"{task:<{width}}{key[0]:<24}{eps:>6}{_fmt(*row['accuracy']):>18}{_fmt(*row['f1']):>18}"
                  f"{_fmt(*row['pearson']):>18}{_fmt(*row['kendall']):>18}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser((ReproduceArguments, CustomDataArguments), prog="hf-attn-at reproduce",
                              description=__doc__)
    args, custom = parser.parse_args_into_dataclasses(args=argv)
    custom.check_custom()
    if custom.is_custom and custom.task_label is None:  # the label from the file or dataset name names folders
        source = "--dataset_name" if custom.dataset_name else "--train_file"
        safe_path_component(custom.custom_label, f"the task label from {source} (else set --task_label)")
    if custom.is_custom and args.tasks:
        raise ValueError(f"--tasks {args.tasks} are built-in tasks: with --train_file/--dataset_name the grid has one "
                         f"task, your data (named {custom.custom_label!r}; set it with --task_label)")
    command = "hf-attn-at reproduce " + " ".join(shlex.quote(a) for a in argv)
    start = time.perf_counter()
    execute(args, command, custom)
    run_dirs = finished_runs(args.output_dir, args.records_dir)
    if not run_dirs:
        where = Path(args.output_dir) / "runs"
        raise ValueError(f"no finished run under {where}" + (f" or {args.records_dir}" if args.records_dir else "")
                         + " to aggregate")
    results = [load_result(run_dir, name) for name, run_dir in run_dirs.items()]
    results_file = write_results(args, run_dirs, results, time.perf_counter() - start, command)
    print_summary(results)
    print(f"results: {results_file}")
    return 0
