"""The record of a finished run: what `run_experiment` writes into a run folder and every reader reads back.

A finished run folder (and its `hf-attn-at reproduce --records_dir` copy) holds, besides the model:

- `results.json`: the `RunRecord` (task, method, ε, λ, seed, every split's metrics, agreement, timings, ...);
- `training_args.json`: the training arguments (`TrainingArguments.to_dict()` plus `optimizer`, see
  `trainer.describe_optimizer`), `RunRecord.training_args`;
- `metrics.json`: the flat test metrics and `agreement_*` of `RunRecord.flat_metrics` (Trainer's
  `save_metrics` style, for tools that read Trainer folders);
- `explanation.json`: attention and gradient importance of the first test examples
  (`hf_attn_at.interpret.Explanation`).

    record = RunRecord.load("runs/sst-iat")
    record.test_metric("accuracy"), record.agreement["agreement_pearson"]
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import SAFE_WEIGHTS_NAME, WEIGHTS_NAME

from .arguments import safe_path_component
from .interpret.report import json_safe
from .methods import METHODS
from .run_folder import write_json_atomic

RESULTS_FILE = "results.json"
TRAINING_ARGS_FILE = "training_args.json"
METRICS_FILE = "metrics.json"
EXPLANATION_FILE = "explanation.json"
# `results.json` keys that differ from the field names (`lambda` is a Python keyword).
_JSON_NAMES = {"lambda_": "lambda"}
_METHODS = tuple(METHODS)


@dataclass
class RunRecord:
    """What a finished run folder records (`results.json`, `training_args.json`, `metrics.json`).

    Args:
        task (`str`): the task label (`babi1-1k`, a custom data set's label, ...); it names folders.
        method (`str`): the `AdversarialMethod` value.
        epsilon (`float`, *optional*): ε (`None` for vanilla).
        lambda_ (`float`, *optional*): λ (`lambda` in `results.json`).
        seed (`int`): the training seed.
        metrics (`dict[str, dict[str, float]]`): split -> that split's `Trainer.evaluate` metrics (keys prefixed with
            the split, `test_accuracy`).
        agreement (`dict[str, float]`): `agreement_pearson`, `agreement_pearson_std`, `agreement_kendall`,
            `agreement_kendall_std` (attention vs gradient importance, on `agreement_split`).
        agreement_split (`str`): the test split the agreement (and the card's metrics) are measured on.
        labelled_fraction (`float`, *optional*): the fraction of training labels kept.
        word_vectors (`dict`, *optional*): the pretrained vectors' name and vocabulary coverage.
        attention_sensitivity (`dict[str, float]`, *optional*): mean ‖∂L/∂ã‖ (`grad_norm`) and score range
            (`score_range`) over the explained examples.
        data_args (`dict`), num_examples (`dict[str, int]`): the data settings and each split's size.
        train_runtime, total_runtime (`float`, *optional*): seconds of training, and of the whole run.
        training_logs (`dict`, *optional*): see `experiment.training_log_summary`.
        code_version (`str`, *optional*): see `experiment.code_version`; a run resumed by other code names each
            version, oldest first, joined by " then " (`experiment.CodeVersions`).
        command (`str`, *optional*): the `hf-attn-at train` or `hf-attn-at reproduce` invocation that ran it.
        robustness (`dict`, *optional*): `hf_attn_at.robustness.evaluate_run_robustness` on the test split
            (`settings`, `seconds`, and the report of `evaluate_robustness`); numbers only, no weights.
        epsilon_selected_on (`str`, *optional*): the task whose validation selected `epsilon`, when it is not this
            run's task (`hf-attn-at reproduce --epsilon_from`); `None` when ε was fixed or selected on this task.
        training_args (`dict`): the content of `training_args.json` (not in `results.json`).
        num_labels (`int`, *optional*): the model's number of labels, read from `config.json` (not saved).
    """

    task: str
    method: str
    epsilon: float | None
    lambda_: float | None
    seed: int
    metrics: dict[str, dict[str, float]]
    agreement: dict[str, float]
    agreement_split: str
    labelled_fraction: float | None = None
    word_vectors: dict[str, Any] | None = None
    attention_sensitivity: dict[str, float] | None = None
    data_args: dict[str, Any] = field(default_factory=dict)
    num_examples: dict[str, int] = field(default_factory=dict)
    train_runtime: float | None = None
    total_runtime: float | None = None
    training_logs: dict[str, Any] | None = None
    code_version: str | None = None
    command: str | None = None
    robustness: dict[str, Any] | None = None
    epsilon_selected_on: str | None = None
    training_args: dict[str, Any] = field(default_factory=dict)
    num_labels: int | None = None

    def test_metric(self, name: str) -> float | None:
        """The metric `name` (`accuracy`, `f1`, ...) on `agreement_split`, `None` when not measured."""
        return self.metrics[self.agreement_split].get(f"{self.agreement_split}_{name}")

    def flat_metrics(self) -> dict[str, Any]:
        """`metrics.json`: the `agreement_split` metrics without their prefix, the agreement, `dataset_name` (the
        task) and `dataset_split`."""
        prefix = f"{self.agreement_split}_"
        flat = {k[len(prefix):]: v for k, v in self.metrics[self.agreement_split].items() if k.startswith(prefix)}
        return {**flat, **self.agreement, "dataset_name": self.task, "dataset_split": self.agreement_split}

    def to_results(self) -> dict[str, Any]:
        """The `results.json` object (every field but `training_args` and `num_labels`; `command`, `robustness`
        and `epsilon_selected_on` when set)."""
        optional = ("command", "robustness", "epsilon_selected_on")
        skip = {"training_args", "num_labels"} | {name for name in optional if getattr(self, name) is None}
        return {_JSON_NAMES.get(f.name, f.name): getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def save(self, run_dir: str | os.PathLike) -> None:
        """Write `results.json`, `training_args.json` and `metrics.json` into `run_dir` (created), each atomically
        and `results.json` last (a crash leaves each file old or new, never cut)."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        for name, content in ((TRAINING_ARGS_FILE, self.training_args), (METRICS_FILE, self.flat_metrics()),
                              (RESULTS_FILE, self.to_results())):
            write_json_atomic(run_dir / name, json_safe(content))

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> RunRecord:
        """The record of the finished run folder (or record folder) `run_dir`: its `results.json`, its optional
        `training_args.json` and `num_labels` from its optional `config.json`.

        A `ValueError` names the file unless `results.json` is a JSON object whose `task`, `method`, `epsilon`
        and `seed` are valid (they name the run's folder) and whose other keys are fields of the record.
        """
        run_dir = Path(run_dir)
        path = run_dir / RESULTS_FILE
        if not path.is_file():
            raise ValueError(f"{run_dir} holds no finished run: it has no {RESULTS_FILE}")
        results = _read_object(path)
        by_json_name = {_JSON_NAMES.get(f.name, f.name): f.name for f in fields(cls)}
        unknown = sorted(set(results) - set(by_json_name) | set(results) & {"training_args", "num_labels"})
        if unknown:
            raise ValueError(f"{path} has keys {unknown} that a run record does not have; its keys are "
                             f"{', '.join(k for k in by_json_name if k not in ('training_args', 'num_labels'))}")
        missing = [k for k in ("task", "method", "epsilon", "lambda", "seed", "metrics", "agreement", "agreement_split")
                   if k not in results]
        if missing:
            raise ValueError(f"{path} lacks {missing}: a run's results.json records them")
        _check_identity(path, results)
        record = cls(**{by_json_name[k]: v for k, v in results.items()})
        if (run_dir / TRAINING_ARGS_FILE).is_file():
            record.training_args = _read_object(run_dir / TRAINING_ARGS_FILE)
        if (run_dir / "config.json").is_file():
            record.num_labels = len(_read_object(run_dir / "config.json")["id2label"])
        return record


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _check_identity(path: Path, results: dict[str, Any]) -> None:
    """`ValueError` naming `path` unless its `task`, `method`, `epsilon` and `seed` can name a run folder."""
    task, method, epsilon, seed = (results[key] for key in ("task", "method", "epsilon", "seed"))
    safe_path_component(task, f"`task` in {path}")
    if method not in _METHODS:
        raise ValueError(f"`method` in {path} must be one of {', '.join(_METHODS)}, got {method!r}")
    if epsilon is not None and (isinstance(epsilon, bool) or not isinstance(epsilon, (int, float))
                                or not 0 < epsilon < math.inf):
        raise ValueError(f"`epsilon` in {path} must be null or a finite number > 0, got {epsilon!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` in {path} must be an integer, got {seed!r}")
    source = results.get("epsilon_selected_on")
    if source is not None:
        safe_path_component(source, f"`epsilon_selected_on` in {path}")


def has_weights(run_dir: Path) -> bool:
    """Whether `run_dir` holds saved weights (a record copied by `--records_dir` holds none)."""
    return any((run_dir / name).is_file() for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME))


def load_run_model(run_dir: Path, *, architecture_only: bool = False) -> PreTrainedModel:
    """The saved model of `run_dir`; with `architecture_only`, the model its config describes, freshly initialised
    (for its shape and size only). A Trainer checkpoint folder (`checkpoint-<step>`) is refused."""
    # Importing hf_attn_at (this module's package) registered the model type with the Auto classes.
    if run_dir.name.startswith(f"{PREFIX_CHECKPOINT_DIR}-") and run_dir.name.split("-", 1)[1].isdigit():
        raise ValueError(
            f"{str(run_dir)!r} is a Trainer checkpoint, not a finished run folder: pass the run folder it lies in "
            f"({str(run_dir.parent)!r}), which holds the selected model, its tokenizer, training_args.json and "
            "metrics.json once training has finished (the same `hf-attn-at train` command resumes an unfinished run)"
        )
    if not (run_dir / "config.json").is_file():
        raise ValueError(f"{str(run_dir)!r} is not a saved model folder: it has no config.json")
    if architecture_only:
        return AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(run_dir))
    return AutoModelForSequenceClassification.from_pretrained(run_dir)
