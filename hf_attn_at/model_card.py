"""Model cards of the BiLSTM + attention models, built from a run's record or from plain values.

    card = build_model_card(model, method="attention_iat", epsilon=1.0, lambda_=1.0, dataset_name="sst",
                            metrics={"accuracy": 0.83}, interpretability={"pearson": 0.71})
    card = card_from_record(RunRecord.load("runs/sst-iat"), model)  # a finished run (what `train` writes)
    card = card_from_run_dir("runs/sst-iat")                       # the same, read from the folder

`card_from_run_dir` also cards a folder that a plain `Trainer` wrote: a model saved with `save_pretrained` and,
optionally,

- ``training_args.json``: a JSON object of the training arguments (``TrainingArguments.to_dict()``); the
  method settings are read from its ``adv_method``, ``adv_epsilon``, ``adv_lambda`` and
  ``adv_num_neighbors`` keys, and an ``optimizer`` entry (``trainer.describe_optimizer``), when present, is the
  optimizer the card states;
- ``metrics.json``: a flat JSON object of test metrics, as written by ``Trainer.save_metrics``: an
  ``eval_`` / ``test_`` prefix is dropped; keys starting with ``agreement_`` (``agreement_pearson``,
  ``agreement_pearson_std``, ``agreement_kendall``, ...) are the attention–gradient agreement, the other
  numbers prediction metrics (``accuracy``, ``f1``, ...); the strings ``dataset_name`` and ``dataset_split``
  name the evaluation data.

`ModelCardCallback` writes the card into every checkpoint, and `AdversarialTrainer.create_model_card` (hence
`trainer.push_to_hub()`) writes it into the output folder.
"""

from __future__ import annotations

import html
import json
import logging
import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import PreTrainedModel, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ._version import __version__
from .methods import METHODS as METHOD_SPECS
from .models.bilstm_attention import add_auto_model
from .runs import METRICS_FILE, RESULTS_FILE, TRAINING_ARGS_FILE, RunRecord, has_weights, load_run_model

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card_template.md"

# method -> (title, description, settings it uses), from the method registry
_CARD_SETTINGS = {"adv_epsilon": "epsilon", "adv_lambda": "lambda_", "adv_num_neighbors": "num_neighbors"}
METHODS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    name: (spec.title, spec.description, tuple(_CARD_SETTINGS[s] for s in spec.settings if s in _CARD_SETTINGS))
    for name, spec in METHOD_SPECS.items()
}
# The method settings a BiLSTM model's card lists after ε, λ and K, when the training arguments hold them.
_MORE_SETTINGS = {
    "adv_epsilon_scale": "scale of ε ('absolute': the paper; 'score_std': ε × std of the example's scores)",
    "adv_iat_normalize": "iAT perturbation rescaled to norm ε",
    "adv_num_steps": "ascent steps per training step",
    "adv_step_size": "ascent step size",
    "adv_neighbor_refresh_steps": "steps a neighbour list is reused (1: exact search every step)",
    "adv_vat_xi": "probe size ξ",
    "adv_vat_num_iterations": "power iterations",
}
# Metric keys that get a model-index entry, with their Hub metric type and display name.
_INDEXED_METRICS = {
    "accuracy": ("accuracy", "Accuracy"),
    "f1": ("f1", "F1"),
    "f1_macro": ("f1", "Macro F1"),
    "macro_f1": ("f1", "Macro F1"),
    "precision": ("precision", "Precision"),
    "recall": ("recall", "Recall"),
    "auc": ("roc_auc", "ROC AUC"),
    "roc_auc": ("roc_auc", "ROC AUC"),
}
_INDEXED_AGREEMENT = {
    "pearson": ("pearsonr", "Attention–gradient agreement (Pearson's r, mean)"),
    "kendall": ("kendalltau", "Attention–gradient agreement (Kendall's τ, mean)"),
}
# Trainer bookkeeping that is not a measurement of the model.
_NOT_METRICS = {"runtime", "samples_per_second", "steps_per_second", "epoch", "step", "total_flos"}
_AGREEMENT_PREFIX = "agreement_"
# The training arguments a card lists (besides every `adv_*` field).
CARD_TRAINING_ARGS = (
    "optimizer",
    "learning_rate",
    "optim",
    "paper_optimizer",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "lr_scheduler_type",
    "warmup_steps",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_grad_norm",
    "max_consecutive_nonfinite_steps",
    "metric_for_best_model",
    "seed",
)
# Stated by the `optimizer` entry (the optimizer built) when there is one.
_OPTIMIZER_ARGS = ("optim", "paper_optimizer", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon")



def _word_vectors_text(report: dict | None) -> str:
    """`"glove-6b-50d (93.1% of the vocabulary)"`, or `"random (no pretrained vectors)"`."""
    if not report:
        return "random (no pretrained vectors)"
    return f"{Path(report['name']).name} ({100 * report['coverage']:.1f}% of the vocabulary)"  # no local folders


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _escape(value: Any) -> str:
    """`value` as literal text in the card's Markdown, which the Hub renders as HTML: `&<>"'`, `|` and backticks
    become character references and line breaks spaces, so it cannot open a tag, end a table cell or code span, or
    start a Markdown block."""
    text = html.escape(_format_value(value)).replace("|", "&#124;").replace("`", "&#96;")
    return " ".join(text.splitlines())


def _check_hub_id(name: str, value: str | None) -> None:
    """`ValueError` unless `value` is `None` or a Hub repo id (`name` or `namespace/name`)."""
    if value is None:
        return
    try:
        validate_repo_id(value)
    except HFValidationError as e:
        raise ValueError(f"`{name}` must be a Hub repo id ('name' or 'namespace/name'), got {value!r}: {e}") from e


def _check_number(name: str, value: Any, *, positive: bool, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite {'integer' if integer else 'number'}, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"`{name}` must be {'> 0' if positive else '>= 0'}, got {value!r}")


def _check_method_settings(method: str, epsilon: Any, lambda_: Any, num_neighbors: Any) -> None:
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {tuple(METHODS)}, got {method!r}")
    used = METHODS[method][2]
    for name, value, positive, integer in (
        ("epsilon", epsilon, True, False),
        ("lambda_", lambda_, False, False),
        ("num_neighbors", num_neighbors, True, True),
    ):
        if value is None:
            if name in used:
                raise ValueError(f"method {method!r} uses `{name}`: pass its value")
            continue
        _check_number(name, value, positive=positive, integer=integer)


def _as_floats(name: str, values: Mapping[str, Any] | None) -> dict[str, float]:
    for key, value in (values or {}).items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"`{name}` values must be numbers, got {key!r}: {value!r}")
    return {key: float(value) for key, value in (values or {}).items()}


def _eval_results(
    dataset_name: str, dataset_split: str | None, metrics: Mapping[str, float], interpretability: Mapping[str, float]
) -> list[EvalResult]:
    entries = [(key, value, _INDEXED_METRICS) for key, value in metrics.items()]
    entries += [(key, value, _INDEXED_AGREEMENT) for key, value in interpretability.items()]
    return [
        EvalResult(
            task_type="text-classification",
            task_name="Text Classification",
            dataset_type=dataset_name,
            dataset_name=dataset_name,
            dataset_split=dataset_split,
            metric_type=table[key][0],
            metric_name=table[key][1],
            metric_value=float(value),
        )
        for key, value, table in entries
        if key in table
    ]


def build_model_card(
    model: PreTrainedModel,
    *,
    method: str,
    epsilon: float | None = None,
    lambda_: float | None = None,
    num_neighbors: int | None = None,
    dataset_name: str | None = None,
    dataset_split: str | None = "test",
    metrics: Mapping[str, float] | None = None,
    interpretability: Mapping[str, float] | None = None,
    training_args: Mapping[str, Any] | None = None,
    base_model: str | None = None,
    license: str = "apache-2.0",
    model_name: str | None = None,
    repo_id: str | None = None,
    language: str | list[str] | None = "en",
    robustness: Mapping[str, Any] | None = None,
) -> ModelCard:
    """Build the model card of a trained model from plain values.

    Args:
        model: the trained model (its config fills the "Model" table).
        method: one of `METHODS` (a `str` or a `str` enum member: `vanilla`, `attention_rp`, `attention_at`, `attention_iat`,
            `attention_iat_released`, `word_at`, `word_iat`, `attention_vat`, `attention_ivat`); ε and λ are required
            by every method but `vanilla`, K by `word_iat`.
        epsilon, lambda_, num_neighbors: the method's ε, λ and K (`adv_epsilon`, `adv_lambda`,
            `adv_num_neighbors`).
        dataset_name: the evaluation dataset (a Hub id where there is one). Without it the metrics are
            shown but no `model-index` is written (the Hub requires a dataset there).
        dataset_split: the split the metrics were measured on.
        metrics: prediction metrics, e.g. `{"accuracy": 0.83, "f1": 0.82}`; `accuracy`, `f1`, `precision`,
            `recall` and `auc` also go into the `model-index`.
        interpretability: attention–gradient agreement, e.g. `{"pearson": 0.71, "pearson_std": 0.12,
            "kendall": 0.45}`; the `pearson` and `kendall` means also go into the `model-index`.
        training_args: training arguments to list (e.g. `TrainingArguments.to_dict()`); the method's other
            settings found there (`adv_epsilon_scale`, `adv_num_steps`, `adv_neighbor_refresh_steps`, ...) are
            also listed in its method table.
        base_model, license, language: card metadata (`base_model` a Hub repo id).
        model_name: the `model-index` name; defaults to `bilstm-attention-<method>[-<dataset>]`.
        repo_id: the Hub id used in the loading snippets (a placeholder when not given).
        robustness: a run record's `robustness` (`hf_attn_at.robustness.evaluate_run_robustness`): its
            attention-attack accuracy per radius and Jain & Wallace's numbers become a short table.

    The card's text shows the strings (`model_name`, `dataset_name`, metric names, training arguments, ...)
    literally: HTML and Markdown in them are escaped.
    """
    method = getattr(method, "value", method)  # a `str` enum member -> its value
    _check_method_settings(method, epsilon, lambda_, num_neighbors)
    _check_hub_id("repo_id", repo_id)
    _check_hub_id("base_model", base_model)
    metrics = _as_floats("metrics", metrics)
    interpretability = _as_floats("interpretability", interpretability)
    title, description, used = METHODS[method]
    if model_name is None and repo_id is not None:
        model_name = repo_id.split("/")[-1]
    elif model_name is None:
        model_name = f"bilstm-attention-{method.replace('_', '-')}"
        if dataset_name:
            model_name += f"-{dataset_name.split('/')[-1]}"
    card_data = ModelCardData(
        model_name=model_name,
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["hf_attn_at", "adversarial-training", "attention", "bilstm-attention", method],
        base_model=base_model,
        datasets=[dataset_name] if dataset_name else None,
        metrics=sorted({_INDEXED_METRICS[k][0] for k in metrics if k in _INDEXED_METRICS}) or None,
        eval_results=_eval_results(dataset_name, dataset_split, metrics, interpretability) if dataset_name else None,
    )
    config = model.config
    model_details = [
        ("model class", type(model).__name__),
        ("attention", config.attention_type),
        ("input", config.input_type),
        ("vocabulary size", config.vocab_size),
        ("embedding size E", config.embedding_size),
        ("embeddings initialised from", _word_vectors_text(getattr(config, "word_vectors", None))),
        ("hidden size H (per direction)", config.hidden_size),
        ("labels", getattr(config, "num_labels", "-")),
        ("parameters", f"{model.num_parameters():,}"),
    ]

    def setting(name: str, value: Any) -> str:
        return _format_value(value) if name in used else "not used by this method"

    more_settings = [
        (f"{label} (`{name}`)", "2.5 · ε / K (default)" if training_args[name] is None else _escape(training_args[name]))
        for name, label in _MORE_SETTINGS.items()
        if name in METHOD_SPECS[method].settings and name in (training_args or {})
        and not (name == "adv_step_size" and (training_args or {}).get("adv_num_steps", 1) == 1)  # unused at 1 step
    ]

    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        model_name=_escape(model_name),
        repo_id=repo_id or "<namespace>/<name>",
        library_version=__version__,
        method=method,
        method_title=title,
        method_description=description,
        epsilon=setting("epsilon", epsilon),
        lambda_=setting("lambda_", lambda_),
        num_neighbors=setting("num_neighbors", num_neighbors),
        more_settings=more_settings,
        attention_type=_escape(config.attention_type),
        model_details=[(name, _escape(value)) for name, value in model_details],
        base_model=base_model,
        dataset_name=dataset_name and _escape(dataset_name),
        dataset_split=dataset_split and _escape(dataset_split),
        training_args=[(_escape(k), _escape(v)) for k, v in sorted((training_args or {}).items())],
        metrics=[(_escape(k), _format_value(v)) for k, v in metrics.items()],
        interpretability=[(_escape(k), _format_value(v)) for k, v in interpretability.items()],
        robustness=_robustness_rows(robustness),
        robustness_samples=(robustness or {}).get("num_examples"),
    )


def _robustness_rows(robustness: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """`(measure, value)` rows of a run record's `robustness` for the card (none without it)."""
    if not robustness:
        return []
    rows = [("clean accuracy", _format_value(robustness["clean_accuracy"]))]
    attack = robustness.get("attention")
    if attack is not None:
        rows += [(f"accuracy under attention-score PGD, ε = {e:g}", _format_value(a))
                 for e, a in zip(attack["epsilons"], attack["accuracy"], strict=True) if e > 0]
        median = (attack.get("min_flip_epsilon") or {}).get("median")
        if median is not None:
            rows.append(("median smallest flipping ε", _format_value(median)))
    if "permutation" in robustness:
        rows.append(("permutation: median output TVD", _format_value(robustness["permutation"]["median_tvd"])))
    adversarial = robustness.get("adversarial_attention")
    if adversarial is not None and adversarial.get("median_jsd") is not None:
        rows.append((f"adversarial attention (TVD ≤ {adversarial['delta']:g}): median JSD",
                     _format_value(adversarial["median_jsd"])))
    return rows


def split_metrics(flat: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """Split a flat metrics dict (``Trainer`` style) into prediction metrics, agreement and dataset info.

    ``eval_`` / ``test_`` prefixes are dropped, Trainer bookkeeping (runtime, epoch, ...) is skipped, keys
    starting with ``agreement_`` go to the second dict without that prefix, and the strings
    ``dataset_name`` / ``dataset_split`` to the third.
    """
    metrics: dict[str, float] = {}
    agreement: dict[str, float] = {}
    info: dict[str, str] = {}
    for key, value in flat.items():
        for prefix in ("eval_", "test_"):
            key = key.removeprefix(prefix)
        if key in ("dataset_name", "dataset_split"):
            info[key] = str(value)
        elif key in _NOT_METRICS or isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        elif key.startswith(_AGREEMENT_PREFIX):
            agreement[key.removeprefix(_AGREEMENT_PREFIX)] = value
        else:
            metrics[key] = value
    return metrics, agreement, info


def summarize_training_args(training_args: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `training_args` that a card lists: `CARD_TRAINING_ARGS` and every `adv_*` field. An
    `optimizer` entry (see `trainer.describe_optimizer`) is shown as `Class(lr=..., ...)` and replaces the
    arguments it states (`optim`, `paper_optimizer`, `weight_decay`, `adam_*`)."""
    summary = {k: v for k, v in training_args.items() if k in CARD_TRAINING_ARGS or k.startswith("adv_")}
    optimizer = summary.get("optimizer")
    if isinstance(optimizer, Mapping):
        name = str(optimizer.get("class", "optimizer")).rsplit(".", 1)[-1]
        settings = ", ".join(f"{k}={_format_value(v)}" for k, v in optimizer.items() if k != "class")
        summary["optimizer"] = f"{name}({settings})"
        summary = {k: v for k, v in summary.items() if k not in _OPTIMIZER_ARGS}
    return summary


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def card_from_record(
    record: RunRecord, model: PreTrainedModel, *, repo_id: str | None = None, **overrides: Any
) -> ModelCard:
    """The card of the finished run `record` (see `hf_attn_at.runs`) of `model`: its method settings and training
    arguments, and its test metrics and agreement (`RunRecord.flat_metrics`). `overrides` (`method`, `epsilon`,
    `lambda_`, `num_neighbors`, `dataset_name`, ... of `build_model_card`) replace them; a value of `None` is
    ignored."""
    overrides = {"robustness": record.robustness, **overrides}
    return _card(model, "the run record", record.training_args, record.flat_metrics(), repo_id, overrides)


def card_from_run_dir(
    run_dir: str | os.PathLike,
    model: PreTrainedModel | None = None,
    *,
    repo_id: str | None = None,
    **overrides: Any,
) -> ModelCard:
    """The card of a run folder: `card_from_record` of its `RunRecord` when it holds a finished run
    (`results.json`), else built from its optional `training_args.json` and `metrics.json` (see the module
    docstring).

    A folder with a `config.json` but no weights (a `hf-attn-at reproduce --records_dir` record) is carded from
    the architecture that the config describes.
    """
    run_dir = Path(run_dir)
    if model is None:
        model = load_run_model(run_dir, architecture_only=not has_weights(run_dir))
    if (run_dir / RESULTS_FILE).is_file():
        return card_from_record(RunRecord.load(run_dir), model, repo_id=repo_id, **overrides)
    training_args = _read_json(run_dir / TRAINING_ARGS_FILE) if (run_dir / TRAINING_ARGS_FILE).is_file() else {}
    flat = _read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).is_file() else {}
    return _card(model, str(run_dir / TRAINING_ARGS_FILE), training_args, flat, repo_id, overrides)


def _card(
    model: PreTrainedModel,
    source: str,
    training_args: Mapping[str, Any],
    flat: Mapping[str, Any],
    repo_id: str | None,
    overrides: Mapping[str, Any],
) -> ModelCard:
    """`build_model_card` from training arguments (`source` names where they come from) and flat metrics."""
    metrics, interpretability, info = split_metrics(flat)
    kwargs: dict[str, Any] = {
        "method": training_args.get("adv_method"),
        "epsilon": training_args.get("adv_epsilon"),
        "lambda_": training_args.get("adv_lambda"),
        "num_neighbors": training_args.get("adv_num_neighbors"),
        **info,
    }
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    if kwargs["method"] is None:
        raise ValueError(
            f"the training method is unknown: {source} has no `adv_method`; "
            f"pass method=... (command: --adv_method), one of {tuple(METHODS)}"
        )
    return build_model_card(
        model,
        metrics=metrics,
        interpretability=interpretability,
        training_args=summarize_training_args(training_args),
        repo_id=repo_id,
        **kwargs,
    )


def evaluation_of_weights(args: Any, state: Any) -> dict[str, Any]:
    """The entry of `state.log_history` that evaluated the weights the model holds now (`{}` if none did).

    After training (`log_history` holds the train summary, `train_runtime`), an evaluation logged after it
    evaluated the final weights; without one, the final weights are those of the best checkpoint
    (`state.best_global_step`) with `args.load_best_model_at_end`, else of the last step. During training the
    weights are those of `state.global_step`. The entry is the latest evaluation logged at that step, so a card
    never shows the metrics of other weights (the last evaluation when the best checkpoint was loaded, or an
    earlier step's at a save without an evaluation).
    """
    history = state.log_history
    evaluations = [i for i, log in enumerate(history) if any(key.startswith("eval_") for key in log)]
    ended = max((i for i, log in enumerate(history) if "train_runtime" in log), default=None)
    step = state.global_step
    if ended is not None:
        after = [i for i in evaluations if i > ended]
        if after:
            return history[after[-1]]
        if getattr(args, "load_best_model_at_end", False) and state.best_global_step:
            step = state.best_global_step
    return next((history[i] for i in reversed(evaluations) if history[i].get("step") == step), {})


class ModelCardCallback(TrainerCallback):
    """Write the model card as `README.md` into every checkpoint folder the Trainer saves; at the start of training,
    add `auto_map["AutoModel"]` to the model's config (`add_auto_model`), so that every checkpoint and the final
    save load with `AutoModel` too.

    The method settings come from the training arguments' `adv_method`, `adv_epsilon`, `adv_lambda` and
    `adv_num_neighbors` (a plain `TrainingArguments` means `vanilla`), the metrics from the evaluation in
    `state.log_history` of the weights the card describes (see `evaluation_of_weights`; no metrics when there is
    none, e.g. a checkpoint saved at a step without an evaluation). `save_pretrained` has already copied the
    model code files, so each checkpoint loads on its own with `trust_remote_code=True`.
    """

    def __init__(self, dataset_name: str | None = None, base_model: str | None = None, license: str = "apache-2.0"):
        self.dataset_name = dataset_name
        self.base_model = base_model
        self.license = license

    def build_card(
        self,
        args: Any,
        state: Any,
        model: PreTrainedModel,
        optimizer: torch.optim.Optimizer | None = None,
        **options: Any,
    ) -> ModelCard:
        """The card of `model` trained with `args`, with the metrics of the evaluation of its weights in `state`
        (`evaluation_of_weights`); with `optimizer` (the trainer's), the card states the optimizer built rather than the `optim`/`adam_*` flags.
        `options` (`language`, `model_name`, `base_model`, `license` of `build_model_card`) replace the callback's
        settings; a value of `None` is ignored."""
        from .trainer import describe_optimizer  # the trainer imports this module for its `create_model_card`

        training_args = args.to_dict()
        if optimizer is not None:
            training_args["optimizer"] = describe_optimizer(optimizer)
        metrics, interpretability, info = split_metrics(evaluation_of_weights(args, state))
        return build_model_card(
            model,
            method=getattr(args, "adv_method", "vanilla"),
            epsilon=getattr(args, "adv_epsilon", None),
            lambda_=getattr(args, "adv_lambda", None),
            num_neighbors=getattr(args, "adv_num_neighbors", None),
            dataset_name=self.dataset_name,
            dataset_split=info.get("dataset_split", "validation"),
            metrics=metrics,
            interpretability=interpretability,
            training_args=summarize_training_args(training_args),
            repo_id=getattr(args, "hub_model_id", None),
            **{"base_model": self.base_model, "license": self.license,
               **{k: v for k, v in options.items() if v is not None}},
        )

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            add_auto_model(model.config)

    def on_save(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero or model is None:
            return
        checkpoint_dir = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if not checkpoint_dir.is_dir():
            logger.warning("ModelCardCallback: no checkpoint folder %s to write the card into", checkpoint_dir)
            return
        self.build_card(args, state, model, kwargs.get("optimizer")).save(checkpoint_dir / "README.md")


def write_model_cards(results_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Write `<out_dir>/<run>.md` for every run folder `<results_dir>/<run>/` that holds a `metrics.json`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for metrics_file in sorted(Path(results_dir).glob(f"*/{METRICS_FILE}")):
        path = out_dir / f"{metrics_file.parent.name}.md"
        card_from_run_dir(metrics_file.parent).save(path)
        written.append(path)
    return written

