"""Model cards, export and Hub upload for the BiLSTM + attention models.

Python::

    card = build_model_card(model, method="attention_iat", epsilon=1.0, lambda_=1.0, dataset_name="sst",
                            metrics={"accuracy": 0.83}, interpretability={"pearson": 0.71})
    export_for_hub(model, tokenizer, "export/", card)       # the exact folder that would be uploaded
    push_to_hub("runs/sst-iat", "ns/name", dry_run_dir="export/")  # a run folder, see below

Command::

    python -m hf_attn_at.hub push RUN_DIR --repo_id ns/name [--private] [--revision REV] [--dry_run DIR]

A run folder (``RUN_DIR``) holds a model saved with ``save_pretrained`` and, optionally:

- the tokenizer files (``tokenizer.json``, ``tokenizer_config.json``); without them the upload warns;
- ``training_args.json``: a JSON object of the training arguments (``TrainingArguments.to_dict()``); the
  method settings are read from its ``adv_method``, ``adv_epsilon``, ``adv_lambda`` and
  ``adv_num_neighbors`` keys, and an ``optimizer`` entry (``trainer.describe_optimizer``), when present, is the
  optimizer the card states;
- ``metrics.json``: a flat JSON object of test metrics, as written by ``Trainer.save_metrics``: an
  ``eval_`` / ``test_`` prefix is dropped; keys starting with ``agreement_`` (``agreement_pearson``,
  ``agreement_pearson_std``, ``agreement_kendall``, ...) are the attention–gradient agreement, the other
  numbers prediction metrics (``accuracy``, ``f1``, ...); the strings ``dataset_name`` and ``dataset_split``
  name the evaluation data.

Untrained heads: every bias of a freshly initialised model is zero, and one optimiser step makes the
classifier's output bias non-zero, so an all-zero ``classifier.out_proj.bias`` means "never trained"
(pass ``trained=True`` / ``False`` to state it instead).
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import math
import numbers
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import CommitInfo, CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import SAFE_WEIGHTS_NAME, WEIGHTS_NAME

from . import __version__
from .methods import METHODS as METHOD_SPECS
from .trainer import describe_optimizer

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card_template.md"
CODE_FILES = ("configuration_bilstm_attention.py", "modeling_bilstm_attention.py")
AUTO_MODEL_CLASS = "modeling_bilstm_attention.BiLSTMAttentionModel"
TRAINING_ARGS_FILE = "training_args.json"
METRICS_FILE = "metrics.json"
DEFAULT_COMMIT_MESSAGE = "Upload hf_attn_at model"
CHECKPOINT_NAME = re.compile(rf"{PREFIX_CHECKPOINT_DIR}-[0-9]+")  # a Trainer checkpoint folder, `checkpoint-500`

# method -> (title, description, settings it uses), from the method registry
_CARD_SETTINGS = {"adv_epsilon": "epsilon", "adv_lambda": "lambda_", "adv_num_neighbors": "num_neighbors"}
METHODS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    name: (spec.title, spec.description, tuple(_CARD_SETTINGS[s] for s in spec.settings if s in _CARD_SETTINGS))
    for name, spec in METHOD_SPECS.items()
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
        training_args: training arguments to list (e.g. `TrainingArguments.to_dict()`).
        base_model, license, language: card metadata (`base_model` a Hub repo id).
        model_name: the `model-index` name; defaults to `bilstm-attention-<method>[-<dataset>]`.
        repo_id: the Hub id used in the loading snippets (a placeholder when not given).

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
        attention_type=_escape(config.attention_type),
        model_details=[(name, _escape(value)) for name, value in model_details],
        base_model=base_model,
        dataset_name=dataset_name and _escape(dataset_name),
        dataset_split=dataset_split and _escape(dataset_split),
        training_args=[(_escape(k), _escape(v)) for k, v in sorted((training_args or {}).items())],
        metrics=[(_escape(k), _format_value(v)) for k, v in metrics.items()],
        interpretability=[(_escape(k), _format_value(v)) for k, v in interpretability.items()],
    )


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


def card_from_run_dir(
    run_dir: str | os.PathLike,
    model: PreTrainedModel | None = None,
    *,
    repo_id: str | None = None,
    **overrides: Any,
) -> ModelCard:
    """Build the card of a run folder from its optional `training_args.json` and `metrics.json`.

    A folder with a `config.json` but no weights (a `hf-attn-at reproduce --records_dir` record) is carded from
    the architecture that the config describes. `overrides` (`method`, `epsilon`, `lambda_`, `num_neighbors`,
    `dataset_name`, ... of `build_model_card`) replace what the files say; a value of `None` is ignored.
    """
    run_dir = Path(run_dir)
    if model is None:
        model = _load_model(run_dir, architecture_only=not _has_weights(run_dir))
    training_args = _read_json(run_dir / TRAINING_ARGS_FILE) if (run_dir / TRAINING_ARGS_FILE).is_file() else {}
    flat = _read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).is_file() else {}
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
            f"the training method of {run_dir} is unknown: {run_dir / TRAINING_ARGS_FILE} has no `adv_method`; "
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


def _head_is_untrained(model: PreTrainedModel) -> bool:
    """True when the classifier's output bias is still all zero, as `_init_weights` leaves it."""
    out_proj = getattr(getattr(model, "classifier", None), "out_proj", None)
    return out_proj is not None and out_proj.bias is not None and not out_proj.bias.detach().any()


def add_auto_model_to_config(model: PreTrainedModel, model_dir: Path) -> None:
    """Add `auto_map["AutoModel"]` to the `config.json` that `model.save_pretrained` wrote into `model_dir`,
    so that `AutoModel` (with `trust_remote_code=True`) loads the body of a head checkpoint too."""
    config = type(model.config).from_pretrained(model_dir)
    config.auto_map = {**(config.auto_map or {}), "AutoModel": AUTO_MODEL_CLASS}
    config.save_pretrained(model_dir)


def export_for_hub(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    output_dir: str | os.PathLike,
    card: ModelCard,
    *,
    trained: bool | None = None,
) -> Path:
    """Write the exact folder that would be uploaded and return its path.

    It holds `model.safetensors`, `config.json` (with `auto_map` for `AutoConfig`, the head's Auto class and
    `AutoModel`), the two model code files, the tokenizer files and the card as `README.md`. `output_dir`
    must be absent or empty, so that no stale file is uploaded. Warns when `tokenizer` is `None` and when
    the head looks untrained (`trained=False`, or, with `trained=None`, an all-zero classifier output bias).
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ValueError(f"output_dir must be absent or an empty folder, got {str(output_dir)!r}")
    if trained is False or (trained is None and _head_is_untrained(model)):
        logger.warning(
            "The classification head of this %s looks untrained (%s): the exported model predicts nothing "
            "useful. Export a trained model, or pass trained=True if this is intended.",
            type(model).__name__,
            "trained=False" if trained is False else "its output bias is still all zero, as initialised",
        )
    if tokenizer is None:
        logger.warning(
            "No tokenizer given: the export has no tokenizer files, and users cannot turn text into the "
            "model's input ids. Pass the tokenizer the model was trained with."
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    add_auto_model_to_config(model, output_dir)
    missing = [name for name in CODE_FILES if not (output_dir / name).is_file()]
    if missing:
        raise RuntimeError(
            f"save_pretrained did not copy {missing} into {output_dir}: is {type(model).__name__} registered "
            "with `register_for_auto_class`?"
        )
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)
    card.save(output_dir / "README.md")
    logger.info("exported %s to %s", type(model).__name__, output_dir)
    return output_dir


def check_repo_id(repo_id: Any) -> str:
    """Return `repo_id` if it has the form `namespace/name`, else raise a `ValueError` saying why."""
    expected = "repo_id must be of the form 'namespace/name' (e.g. 'my-user/bilstm-attention-sst')"
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or "" in repo_id.split("/"):
        raise ValueError(f"{expected}, got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ValueError(f"{expected}, got {repo_id!r}: {e}") from e
    return repo_id


def _has_weights(run_dir: Path) -> bool:
    return any((run_dir / name).is_file() for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME))


def _load_model(run_dir: Path, *, architecture_only: bool = False) -> PreTrainedModel:
    """The saved model of `run_dir`; with `architecture_only`, the model its config describes, freshly initialised
    (for its shape and size only). A Trainer checkpoint folder (`checkpoint-<step>`) is refused."""
    # Importing hf_attn_at (this module's package) registered the model type with the Auto classes.
    if CHECKPOINT_NAME.fullmatch(run_dir.name):
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


def _load_tokenizer(run_dir: Path) -> PreTrainedTokenizerBase | None:
    if not (run_dir / "tokenizer_config.json").is_file():
        return None
    return AutoTokenizer.from_pretrained(run_dir)


def push_to_hub(
    run_dir_or_model: str | os.PathLike | PreTrainedModel,
    repo_id: str,
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    card: ModelCard | None = None,
    private: bool = False,
    revision: str | None = None,
    dry_run_dir: str | os.PathLike | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    token: str | None = None,
    trained: bool | None = None,
) -> CommitInfo | None:
    """Export a model (see `export_for_hub`) and upload it to the Hub model repo `repo_id`.

    Args:
        run_dir_or_model: a run folder (model, tokenizer and optional files, see the module docstring) or a
            model; a model needs `card` (see `build_model_card`) and should come with its `tokenizer`.
        repo_id: `namespace/name`, checked before any work.
        tokenizer, card: override what the run folder holds (a folder without `metrics.json` and
            `training_args.json` needs `card`, or use `card_from_run_dir` with the method settings).
        private: create the repo as private (an existing repo keeps its visibility).
        revision: the branch to commit to (created when missing).
        dry_run_dir: write the folder that would be uploaded there and upload nothing.
        commit_message, token: passed to the Hub.
        trained: see `export_for_hub`.

    Returns:
        the commit's `CommitInfo`, or `None` for a dry run.
    """
    check_repo_id(repo_id)
    if isinstance(run_dir_or_model, PreTrainedModel):
        model = run_dir_or_model
        if card is None:
            raise ValueError("pushing a model object needs `card=` (see build_model_card)")
    else:
        run_dir = Path(run_dir_or_model)
        model = _load_model(run_dir)
        tokenizer = tokenizer if tokenizer is not None else _load_tokenizer(run_dir)
        card = card if card is not None else card_from_run_dir(run_dir, model, repo_id=repo_id)
    if dry_run_dir is not None:
        export_for_hub(model, tokenizer, dry_run_dir, card, trained=trained)
        logger.info("dry run: wrote the upload for %s to %s; nothing was uploaded", repo_id, dry_run_dir)
        return None
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp_dir:
        folder = export_for_hub(model, tokenizer, Path(tmp_dir) / "upload", card, trained=trained)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None and not revision.startswith("refs/pr/"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        operations = [
            CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path)) for path in sorted(folder.iterdir())
        ]
        return api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision)


class ModelCardCallback(TrainerCallback):
    """Write the model card as `README.md` into every checkpoint folder the Trainer saves, and add
    `auto_map["AutoModel"]` to its `config.json` (see `add_auto_model_to_config`).

    The method settings come from the training arguments' `adv_method`, `adv_epsilon`, `adv_lambda` and
    `adv_num_neighbors` (a plain `TrainingArguments` means `vanilla`), the metrics from the latest
    evaluation in `state.log_history` (see `split_metrics`). `save_pretrained` has already copied the model
    code files, so each checkpoint loads on its own with `trust_remote_code=True`.
    """

    def __init__(self, dataset_name: str | None = None, base_model: str | None = None, license: str = "apache-2.0"):
        self.dataset_name = dataset_name
        self.base_model = base_model
        self.license = license

    def build_card(
        self, args: Any, state: Any, model: PreTrainedModel, optimizer: torch.optim.Optimizer | None = None
    ) -> ModelCard:
        """The card of `model` trained with `args`, with the metrics of the latest evaluation in `state`; with
        `optimizer` (the trainer's), the card states the optimizer built rather than the `optim`/`adam_*` flags."""
        training_args = args.to_dict()
        if optimizer is not None:
            training_args["optimizer"] = describe_optimizer(optimizer)
        latest_eval = next((log for log in reversed(state.log_history) if any(k.startswith("eval_") for k in log)), {})
        metrics, interpretability, info = split_metrics(latest_eval)
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
            base_model=self.base_model,
            license=self.license,
            repo_id=getattr(args, "hub_model_id", None),
        )

    def on_save(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero or model is None:
            return
        checkpoint_dir = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if not checkpoint_dir.is_dir():
            logger.warning("ModelCardCallback: no checkpoint folder %s to write the card into", checkpoint_dir)
            return
        add_auto_model_to_config(model, checkpoint_dir)
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


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hf_attn_at.hub", description="Share hf_attn_at models on the Hub.")
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push", help="export a run folder and upload it to the Hub (or --dry_run)")
    push.add_argument("run_dir", help="folder with a saved model, its tokenizer, optional metrics.json and training_args.json")
    push.add_argument("--repo_id", required=True, help="the Hub model repo, namespace/name")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--revision", default=None, help="branch to commit to (created when missing)")
    push.add_argument("--dry_run", default=None, metavar="DIR", help="write the upload to DIR and upload nothing")
    push.add_argument("--commit_message", default=DEFAULT_COMMIT_MESSAGE)
    push.add_argument("--adv_method", default=None, choices=tuple(METHODS), help="overrides training_args.json")
    push.add_argument("--adv_epsilon", type=float, default=None, help="overrides training_args.json")
    push.add_argument("--adv_lambda", type=float, default=None, help="overrides training_args.json")
    push.add_argument("--adv_num_neighbors", type=int, default=None, help="overrides training_args.json")
    push.add_argument("--dataset_name", default=None, help="overrides metrics.json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `push` command; returns the exit status."""
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_repo_id(args.repo_id)
        run_dir = Path(args.run_dir)
        model = _load_model(run_dir)
        card = card_from_run_dir(
            run_dir,
            model,
            repo_id=args.repo_id,
            method=args.adv_method,
            epsilon=args.adv_epsilon,
            lambda_=args.adv_lambda,
            num_neighbors=args.adv_num_neighbors,
            dataset_name=args.dataset_name,
        )
        result = push_to_hub(
            model,
            args.repo_id,
            tokenizer=_load_tokenizer(run_dir),
            card=card,
            private=args.private,
            revision=args.revision,
            dry_run_dir=args.dry_run,
            commit_message=args.commit_message,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result is None:
        print(f"dry run: wrote {', '.join(sorted(p.name for p in Path(args.dry_run).iterdir()))} to {args.dry_run}")
    else:
        print(f"uploaded {args.run_dir} to {result.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
