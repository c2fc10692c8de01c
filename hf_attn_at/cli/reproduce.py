"""`hf-attn-at reproduce`: run a grid of tasks × methods × seeds (× ε), then aggregate tables, figures, claims.

    hf-attn-at reproduce --grid quickstart --data_source local --data_dir ../shared/data

    # the methods compared on your own data (one task, named --task_label or after the file)
    hf-attn-at reproduce --train_file reviews.csv --test_file reviews_test.csv \
        --methods vanilla attention_at attention_iat --output_dir runs/reviews

Each run trains in `OUTPUT_DIR/runs/<task>/<method>[-eps<ε>]/seed<seed>/` and writes `results.json` when it
finishes (with the command that ran it): finished runs are skipped, and an interrupted run resumes from its
last checkpoint. Aggregation (`hf_attn_at.cli.aggregate`) reads every run record (`results.json`) under
`OUTPUT_DIR/runs` (so separate invocations, such as a grid and an ε sweep, share one report) and writes `RESULTS.md` (or `--results_file`), the ε-sweep figures,
a heat-map report per task and, with `--model_cards_dir`, one generated model card per task × method.

With `--records_dir`, each finished run's small files (`RECORD_FILES`: metrics, settings, explanations; no
weights) are also copied to `RECORDS_DIR/<task>/<method>[-eps<ε>]/seed<seed>/`. A recorded run counts as finished
and is aggregated like a run folder, so a committed records folder regenerates the report without the run
folders, and a grid can be completed over several machines or sessions.

After training, each run's robustness is evaluated on a seeded sample of its test split and stored in its record
(`robustness`; `--no_eval_robustness` skips it, `hf_attn_at.robustness.RobustnessArguments` sets it);
`--robustness_only` trains nothing and fills it for finished runs whose folders still hold weights. RESULTS.md then
gets a robustness table and figure per task.

In a grid that selects ε (`paper_v2`), `--epsilon_from TASK` skips the ε selection of the other tasks (for tasks too
costly to sweep, e.g. `--tasks imdb --epsilon_from sst`): every method trains all seeds at the ε selected on TASK's
finished runs, each record says so (`epsilon_selected_on`), and RESULTS.md marks that ε as reused.

Task labels name folders and files: they are letters, digits, `.`, `_` and `-` (see `safe_path_component`). Before
anything is written, every `results.json` aggregated must hold a valid `task`, `method`, `epsilon` and `seed` that
give its own folder's name, and no figure, report, card or record is written outside its folder.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..arguments import BUILTIN_TASK_FLAGS, CustomDataArguments, changed_flags, safe_path_component
from ..data import SOURCES, TASKS, task_label
from ..model_card import card_from_record
from ..robustness import RobustnessArguments, evaluate_run_robustness
from ..run_folder import (
    RunLockedError,
    check_settings,
    data_fingerprint,
    read_settings,
    run_lock,
    run_settings,
)
from ..runs import (
    EXPLANATION_FILE,
    METRICS_FILE,
    RESULTS_FILE,
    TRAINING_ARGS_FILE,
    RunRecord,
    has_weights,
    load_run_model,
)
from ..word_vectors import word_vectors_dim
from .aggregate import (
    ALL_METHODS,
    BINARY_TASKS,
    DEFAULT_EPSILON,
    PAPER_METHODS,
    ablation_table,
    check_claims,
    inside,
    load_result,
    main_epsilon,
    markdown_tables,
    print_summary,
    recorded_results,
    reused_epsilons,
    robustness_tables,
    run_name,
    select_epsilon,
    selected_epsilons,
    selection_tables,
    summarize,
    write_figures,
    write_model_cards,
    write_robustness_figures,
)
from .common import CommandParser, LoggingArguments
from .comparisons import claim_verdicts, difference_tables, differences

logger = logging.getLogger(__name__)

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
    epsilon_from: str | None = field(
        default=None,
        metadata={"help": "A grid that selects ε (paper_v2): train every method of --tasks at the ε selected for this "
                          "task (from its finished runs in --output_dir/--records_dir), all seeds, no ε sweep; "
                          "RESULTS.md marks that ε as reused (e.g. --tasks imdb --epsilon_from sst)."},
    )
    data_source: str = field(default="hub", metadata={"help": "'hub' or 'local'.", "choices": list(SOURCES)})
    data_dir: str | None = field(default=None, metadata={"help": "Local data folder (e.g. ../shared/data)."})
    babi_size: str = field(
        default="10k", metadata={"help": "bAbI version: '10k' (the paper's) or '1k' (local copies of tasks 2-3).",
                                 "choices": ["10k", "1k"]}
    )
    num_train_epochs: float | None = field(default=None, metadata={"help": "Override the epochs (the paper's 8 / 10: docs/METHODS.md#hyper-parameters)."})
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
    robustness_only: bool = field(
        default=False,
        metadata={"help": "Skip training; evaluate robustness for the grid's finished run folders that still have "
                          "weights and whose record lacks it (or has other settings), update their records (run "
                          "folder and --records_dir), then aggregate."},
    )

    def __post_init__(self):
        for name, valid in (("tasks", TASKS), ("methods", ALL_METHODS)):
            bad = [v for v in getattr(self, name) or [] if v not in valid]
            if bad:
                raise ValueError(f"--{name}: unknown {bad}; valid: {', '.join(valid)}")
        bad_eps = [e for e in self.epsilons or [] if not e > 0]
        if bad_eps:
            raise ValueError(f"--epsilons must all be > 0, got {bad_eps}")
        if self.epsilon_from is not None:
            safe_path_component(self.epsilon_from, "--epsilon_from")
            if not GRIDS[self.grid].get("select_epsilon"):
                selecting = ", ".join(name for name, grid in GRIDS.items() if grid.get("select_epsilon"))
                raise ValueError(f"--epsilon_from {self.epsilon_from} reuses a selected ε, but grid {self.grid!r} "
                                 f"does not select ε; use a grid that does ({selecting})")
        if self.data_source == "local" and self.data_dir is None:
            raise ValueError("--data_source local needs --data_dir (the folder holding sst/, imdb/, ...)")
        if self.word_vectors is not None:
            word_vectors_dim(self.word_vectors)  # unknown name, unreadable file, missing package: stop before any run


@dataclass
class ReproduceRobustnessArguments(RobustnessArguments):
    """`RobustnessArguments` on by default: every run of the grid is evaluated (`--no_eval_robustness` skips)."""

    eval_robustness: bool = field(
        default=True, metadata={"help": "Evaluate robustness on a seeded sample of each run's test split after "
                                        "training and store it in results.json (`robustness`)."}
    )


@dataclass(frozen=True)
class Run:
    """One run of the grid; `label` names its folder and table (`task_label`: ``babi1-1k`` for bAbI 1 (1k));
    `epsilon_from`: the task whose selected ε it trains at (`--epsilon_from`), `None` when ε is its own."""

    task: str
    method: str
    epsilon: float | None
    seed: int
    label: str
    epsilon_from: str | None = None

    @property
    def name(self) -> str:
        return run_name(self.label, self.method, self.epsilon, self.seed)


def plan_runs(
    args: ReproduceArguments, custom: CustomDataArguments | None = None, finished: dict[str, RunRecord] | None = None
) -> list[Run]:
    """The grid's runs, seed-major (task, seed, method, ε): a grid stopped early still covers every method.

    With custom data the grid has one task, the user's data. A grid with `select_epsilon` (`paper_v2`) runs every ε
    with the first seed only, and the other seeds at the ε that `select_epsilon` picks from the `finished` runs
    (their records by run name); until a method's ε runs have all finished, its other seeds are not planned. With
    `--epsilon_from TASK`, every seed of every method runs at the ε selected on TASK (`epsilons_from`).
    """
    grid = GRIDS[args.grid]
    is_custom = custom is not None and custom.is_custom
    tasks = [custom.custom_label] if is_custom else args.tasks or grid["tasks"]
    methods = args.methods or grid["methods"]
    seeds = args.seeds or grid["seeds"]
    epsilons = args.epsilons or grid.get("epsilons") or [DEFAULT_EPSILON]
    labels = [custom.custom_label] if is_custom else [task_label(task, args.babi_size) for task in tasks]
    reused = None
    if args.epsilon_from is not None:
        if args.epsilon_from in labels:
            raise ValueError(f"--epsilon_from {args.epsilon_from} is among the tasks {labels}: its ε is selected on it; "
                             "run it without --epsilon_from, then the other tasks with it")
        reused = epsilons_from(args.epsilon_from, methods, epsilons, finished or {})
    runs = []
    for task, label in zip(tasks, labels, strict=True):
        selected = {
            method: select_epsilon(finished or {}, label, method, epsilons, seeds[0])[0]
            for method in methods if method != "vanilla" and grid.get("select_epsilon") and reused is None
        }
        for seed in seeds:
            for method in methods:
                if method == "vanilla":
                    chosen = [None]
                elif reused is not None:
                    chosen = [reused[method]]
                elif not grid.get("select_epsilon") or seed == seeds[0]:
                    chosen = epsilons
                else:
                    chosen = [] if selected[method] is None else [selected[method]]
                source = None if reused is None or method == "vanilla" else args.epsilon_from
                runs += [Run(task, method, eps, seed, label, source) for eps in chosen]
    return runs


def epsilons_from(
    source: str, methods: Sequence[str], epsilons: Sequence[float], finished: dict[str, RunRecord]
) -> dict[str, float]:
    """Method -> the ε `select_epsilon` picks on the task `source` (its lowest seed there), for every method of
    `methods` but vanilla; a `ValueError` names the first method whose ε runs on `source` have not all finished.

    Args:
        finished (`dict[str, RunRecord]`): the records of the finished runs by run name (see `run_name`).
    """
    chosen = {}
    for method in methods:
        if method == "vanilla":
            continue
        seeds = [r.seed for r in finished.values() if (r.task, r.method) == (source, method)]
        epsilon, scores = select_epsilon(finished, source, method, epsilons, min(seeds)) if seeds else (None, {})
        if epsilon is None:
            missing = ", ".join(f"{e:g}" for e in epsilons if e not in scores)
            raise ValueError(f"--epsilon_from {source}: the ε selection of {method} on {source} is not complete (no "
                             f"finished run at ε = {missing} in --output_dir/--records_dir); finish it first, or "
                             f"leave {method} out of --methods")
        chosen[method] = epsilon
    return chosen


def run_arguments(args: ReproduceArguments, run: Run, run_dir: Path, custom: CustomDataArguments | None = None):
    """The (model, data, training) arguments of one run: the paper's settings (Adam with amsgrad, lr 1e-3, betas
    (0.9, 0.999), eps 1e-8, L2 weight decay 1e-5, constant schedule) plus the grid's overrides.

    With custom data (`custom.is_custom`) the run reads the user's data; it trains 8 epochs (or
    `--num_train_epochs`) and selects the model on validation accuracy.
    """
    from dataclasses import asdict

    from ..arguments import DataArguments, ModelArguments
    from ..data.custom import has_test_split
    from ..training_args import AdversarialTrainingArguments

    grid = GRIDS[args.grid]
    is_custom = custom is not None and custom.is_custom  # its label names folders, never the protocol
    binary = not is_custom and run.task in BINARY_TASKS
    epochs = 8 if is_custom or binary else 10
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
        "per_device_train_batch_size": 90 if not is_custom and run.task == "cnn" else 32,
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
    if is_custom:
        data = {**asdict(custom), **grid.get("data", {})}
        if "max_test_samples" in data and (  # no test split to cap: test metrics are on validation
                custom.test_file is None if custom.train_file is not None
                else not has_test_split(custom.dataset_name, custom.dataset_config_name)):
            del data["max_test_samples"]
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


def execute(
    args: ReproduceArguments,
    command: str,
    custom: CustomDataArguments | None = None,
    robustness_args: RobustnessArguments | None = None,
) -> None:
    """Run every unfinished run of the grid (evaluating robustness with `robustness_args`); each new
    `results.json` records `command`, its invocation. With `robustness_args`, finished runs whose record lacks
    robustness with these settings (an evaluation that failed after training) are then evaluated
    ([`fill_robustness`])."""
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
                if _finished_meanwhile(args, run, run_dir):
                    logger.info("skipping %s: another worker of the grid finished it", run.name)
                    continue
                run_experiment(*run_arguments(args, run, run_dir, custom), robustness_args, command=command,
                               epsilon_selected_on=run.epsilon_from)
            except RunLockedError as err:  # another worker of the grid is running it
                logger.warning("skipping %s: %s", run.name, err)
                continue
            except Exception:
                _record_finished(args, run, run_dir, command)  # saved before a failing robustness evaluation
                raise
            _record_finished(args, run, run_dir, command)
    if robustness_args is not None and int(os.environ.get("RANK", "0")) == 0:  # the main process only, as training's
        evaluated = fill_robustness(args, robustness_args, custom)
        if evaluated:
            logger.info("robustness evaluated for %d finished runs that lacked it: %s", len(evaluated),
                        ", ".join(evaluated))


def _finished_meanwhile(args: ReproduceArguments, run: Run, run_dir: Path) -> bool:
    """Whether another worker finished `run` after this invocation planned it: checked under the run folder's lock
    (a worker still running it raises `RunLockedError`), else the run would be trained again from its last
    checkpoint and its record overwritten."""
    with run_lock(run_dir):
        if (run_dir / RESULTS_FILE).is_file():
            return True
    return bool(args.records_dir) and (inside(Path(args.records_dir), run.name) / RESULTS_FILE).is_file()


def _record_finished(args: ReproduceArguments, run: Run, run_dir: Path, command: str) -> None:
    """Stamp a run this invocation finished (`results.json` exists: written by the main process only) with the
    grid's `command` and ε source (`run_experiment` records them too; a run finished by an earlier invocation gets
    this one's), and copy its record to `--records_dir`."""
    if not (run_dir / RESULTS_FILE).is_file():
        return
    record = RunRecord.load(run_dir)
    record.command = command
    record.epsilon_selected_on = run.epsilon_from
    record.save(run_dir)
    if args.records_dir:
        record_run(run_dir, inside(Path(args.records_dir), run.name))


def fill_robustness(
    args: ReproduceArguments, robustness_args: RobustnessArguments, custom: CustomDataArguments | None = None
) -> list[str]:
    """`--robustness_only`: evaluate robustness for every finished run of the grid whose folder under
    `OUTPUT_DIR/runs` still has weights and whose record lacks `robustness` with these settings; the record is
    updated in the run folder and, with `--records_dir`, there. Returns the names of the runs evaluated.

    The test split is rebuilt from the run's data settings; a `ValueError` names the run unless it is the data the
    run was trained on (the `data_fingerprint` of its `run_settings.json`). Each run is evaluated under its run
    folder's lock: a run locked by another live process is skipped with a warning.
    """
    from ..data import load_data

    root = Path(args.output_dir) / "runs"
    finished = finished_runs(args.output_dir, args.records_dir)
    records = {name: load_result(path, name) for name, path in finished.items()}
    done, data = [], {}
    for run in plan_runs(args, custom, records):
        run_dir = root / run.name
        record = records.get(run.name)
        if record is None or not has_weights(run_dir):
            continue
        settings = robustness_args.settings(record.epsilon, record.agreement_split)
        if record.robustness is not None and record.robustness.get("settings") == settings:
            logger.info("%s: robustness already recorded with these settings", run.name)
            continue
        data_args = run_arguments(args, run, run_dir, custom)[1]
        key = (repr(data_args), run.seed)  # the runs of a task and seed share their data
        if key not in data:
            loaded = load_data(data_args, run.seed)
            data[key] = loaded.dataset, data_fingerprint(loaded.dataset, loaded.tokenizer)
        dsd, fingerprint = data[key]
        stored = (read_settings(run_dir) or {}).get("data_fingerprint")
        if stored is not None and stored != fingerprint:
            raise ValueError(f"{run_dir}: the data of these flags (e.g. --data_dir {args.data_dir}) is not the data "
                             f"this run was trained on (its run_settings.json data_fingerprint)")
        try:
            with run_lock(run_dir):  # one evaluation per run when several workers fill the same grid
                record = load_result(finished[run.name], run.name)  # another worker may have filled it meanwhile
                if record.robustness is not None and record.robustness.get("settings") == settings:
                    continue
                logger.info("robustness of %s", run.name)
                model = load_run_model(run_dir).to("cuda" if torch.cuda.is_available() else "cpu")
                record.robustness = evaluate_run_robustness(model, dsd[record.agreement_split], settings)
                card_from_record(record, model).save(run_dir / "README.md")  # the run folder's card shows it too
                record.save(run_dir)
        except RunLockedError as err:
            logger.warning("skipping the robustness of %s: %s", run.name, err)
            continue
        if args.records_dir:
            record_run(run_dir, inside(Path(args.records_dir), run.name))
        done.append(run.name)
    return done


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


def write_results(
    args: ReproduceArguments, run_dirs: dict[str, Path], results: list[RunRecord], elapsed: float, command: str
) -> Path:
    """RESULTS.md (claims, tables, intervals, notes, figures) and the model cards from the finished runs `run_dirs`, whose
    records are `results`."""
    table = summarize(results)
    grid = GRIDS[args.grid]
    epsilons = args.epsilons or grid.get("epsilons") or [DEFAULT_EPSILON]
    selected = selected_epsilons(results, epsilons) if grid.get("select_epsilon") else None
    reused = {key: source for key, (_, source) in reused_epsilons(results, epsilons).items()} if selected is not None else None
    results_file = Path(args.results_file or Path(args.output_dir) / "RESULTS.md")
    figures = write_figures(table, run_dirs, results_file.parent / "figures", selected)
    for task, paths in write_robustness_figures(results, results_file.parent / "figures", selected).items():
        figures.setdefault(task, []).extend(paths)
    if args.model_cards_dir:
        cards = write_model_cards(table, run_dirs, Path(args.model_cards_dir), selected)
        logger.info("wrote %d model cards to %s", len(cards), args.model_cards_dir)
    intervals = differences(
        results, run_dirs, lambda task, method: main_epsilon(task, method, selected), run_name,
        lambda result: result.test_metric("accuracy"),
    )
    lines = [
        "# Results", "",
        "Generated by `hf-attn-at reproduce`; do not edit by hand. This file was written by:", "",
        f"```\n{command}\n```", "",
        f"Grid `{args.grid}`: {len(results)} runs; this invocation took {elapsed / 60:.1f} minutes "
        "(finished runs are skipped; each table's `minutes` column is the cost of its runs: wall-clock minutes of "
        "each whole run — training, evaluation, explanation, robustness, and before a resume — summed over seeds).",
        "Accuracy/F1 on the test split (model selected on validation; F1 of class 1, binary tasks only — macro F1 is in the records), "
        "attention–gradient agreement (Pearson r, Kendall τ; per run the mean over test examples). ± is the sample "
        "standard deviation over seeds (ddof 1; a value from one seed has none). The claims come first; "
        "the tables, ε selection, robustness and the intervals they are decided by follow.", "",
        *claim_verdicts(intervals),
        *check_claims(table, selected, reused),
        "## Tables", "",
    ]
    lines += markdown_tables(table, results, selected, reused)
    if selected is not None:
        lines += selection_tables(results, epsilons)
    lines += robustness_tables(results, selected)
    lines += difference_tables(intervals)
    if args.ablation_records_dir:
        other = recorded_results(args.ablation_records_dir)
        other_grid = GRIDS[args.ablation_grid]
        other_epsilons = other_grid.get("epsilons") or [DEFAULT_EPSILON]
        other_selected = selected_epsilons(other, other_epsilons) if other_grid.get("select_epsilon") else None
        lines += ablation_table(results, selected, other, args.ablation_records_dir, other_selected)
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = CommandParser((ReproduceArguments, CustomDataArguments, ReproduceRobustnessArguments,
                               LoggingArguments), prog="hf-attn-at reproduce", description=__doc__)
    args, custom, robustness_args, _ = parser.parse_args_into_dataclasses(args=argv)
    robustness_args.check_used()
    if args.robustness_only and args.aggregate_only:
        raise ValueError("give either --robustness_only or --aggregate_only: both skip training")
    if args.robustness_only and not robustness_args.eval_robustness:
        raise ValueError("--robustness_only evaluates robustness: drop --no_eval_robustness")
    custom.check_custom()
    if custom.is_custom and custom.task_label is None:  # the label from the file or dataset name names folders
        source = "--dataset_name" if custom.dataset_name else "--train_file"
        safe_path_component(custom.custom_label, f"the task label from {source} (else set --task_label)")
    if custom.is_custom:  # the built-in tasks' flags would be ignored
        for name, value in changed_flags(args, BUILTIN_TASK_FLAGS):
            raise ValueError(f"--{name} {value} is for the built-in tasks (--tasks); your "
                             f"own data (--train_file / --dataset_name) is read as it is: drop --{name}")
    if custom.is_custom and args.tasks:
        raise ValueError(f"--tasks {args.tasks} are built-in tasks: with --train_file/--dataset_name the grid has one "
                         f"task, your data (named {custom.custom_label!r}; set it with --task_label)")
    command = "hf-attn-at reproduce " + " ".join(shlex.quote(a) for a in argv)
    start = time.perf_counter()
    if args.robustness_only:
        evaluated = fill_robustness(args, robustness_args, custom)
        logger.info("robustness evaluated for %d runs: %s", len(evaluated), ", ".join(evaluated) or "none")
    else:
        execute(args, command, custom, robustness_args if robustness_args.eval_robustness else None)
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
