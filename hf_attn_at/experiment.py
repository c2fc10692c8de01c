"""One training run end to end: data → model → `AdversarialTrainer` → test metrics → agreement → saved run folder.

Used by `hf-attn-at train`, `hf-attn-at reproduce` and the README's quick start. A run folder holds the model,
tokenizer and custom code (`save_pretrained`, with `AutoModel` in `auto_map`), `README.md` (model card), the run's
record (`results.json`, `training_args.json`, `metrics.json`: `hf_attn_at.runs.RunRecord`) and `explanation.json`
(attention and gradient importance of the first test examples, for heat maps: `interpret.Explanation`). A crashed
run resumes from its last checkpoint.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

from transformers import (
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    TrainerCallback,
    TrainerState,
    set_seed,
)
from transformers.trainer_callback import ExportableState

from .arguments import DataArguments, ModelArguments
from .data import EVAL_SAMPLE_SEED, LoadedData, load_data, sample_examples
from .interpret import Explanation, explain_model
from .interpret.report import json_safe
from .metrics import compute_metrics
from .model_card import ModelCardCallback, card_from_record
from .models.bilstm_attention import (
    BiLSTMAttentionConfig,
    BiLSTMAttentionForAnswerSelection,
    BiLSTMAttentionForSequenceClassification,
)
from .robustness import RobustnessArguments, evaluate_run_robustness
from .run_folder import (
    CHECKPOINT_MARKER,
    check_output_dir,
    check_settings,
    clear_checkpoints,
    data_fingerprint,
    last_complete_checkpoint,
    read_settings,
    run_lock,
    run_settings,
    verify_checkpoint,
    write_settings,
)
from .runs import EXPLANATION_FILE, METRICS_FILE, RESULTS_FILE, TRAINING_ARGS_FILE, RunRecord
from .trainer import AdversarialTrainer, describe_optimizer
from .training_args import AdversarialTrainingArguments
from .word_vectors import load_word_vectors

logger = logging.getLogger(__name__)

NUM_HEATMAP_EXAMPLES = 25
# A finished run's files besides the model code, config and tokenizer (which the new run rewrites): its record
# (results.json first: it marks the run finished), card and weights.
_FINISHED_RUN_FILES = (RESULTS_FILE, METRICS_FILE, TRAINING_ARGS_FILE, EXPLANATION_FILE, "README.md")
_WEIGHT_PATTERNS = ("model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json",
                    "pytorch_model*.bin", "pytorch_model.bin.index.json")


def clear_earlier_run(output_dir: Path) -> None:
    """`--overwrite_output_dir`: remove the earlier run's checkpoints, record, card and weights, so that a new run
    that stops early never leaves the earlier run's results (a finished run's `results.json`) under its settings."""
    clear_checkpoints(output_dir)
    earlier = [output_dir / name for name in _FINISHED_RUN_FILES if (output_dir / name).is_file()]
    earlier += sorted({path for pattern in _WEIGHT_PATTERNS for path in output_dir.glob(pattern) if path.is_file()})
    if earlier:
        logger.warning("--overwrite_output_dir: removing the earlier run's %s", ", ".join(p.name for p in earlier))
    for path in earlier:
        path.unlink()


class RunClock(TrainerCallback, ExportableState):
    """Wall time of a run, saved in every checkpoint's `trainer_state.json` so a resumed run reports the time of
    the whole run (up to the checkpoint it resumed from, plus the resumed part), not only the resumed part.

    Args:
        elapsed (`float`, *optional*, defaults to 0): seconds already spent before this process started.
    """

    def __init__(self, elapsed: float = 0.0):
        self.before = elapsed
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.start

    def state(self) -> dict[str, Any]:
        return {"args": {"elapsed": self.elapsed}, "attributes": {}}

    @classmethod
    def from_checkpoint(cls, checkpoint: str | None) -> RunClock:
        """A clock continuing the one saved in `checkpoint` (a fresh one without checkpoint or saved clock)."""
        return cls(**_saved_callback_args(checkpoint, cls.__name__))


# The version of the code that trained a run's checkpoint before checkpoints recorded it.
UNRECORDED_VERSION = "an unrecorded earlier version"


class CodeVersions(TrainerCallback, ExportableState):
    """The code versions (`code_version`) that trained a run, oldest first, saved in every checkpoint's
    `trainer_state.json`: a run resumed by another version records both (`RunRecord.code_version`: joined by
    " then ").

    Args:
        versions (`Sequence[str]`, *optional*): the versions of the processes before this one; this process's
            version is appended when it differs from the last.
    """

    def __init__(self, versions: Sequence[str] = ()):
        self.versions = list(versions)
        if not self.versions or self.versions[-1] != code_version():
            self.versions.append(code_version())

    def state(self) -> dict[str, Any]:
        return {"args": {"versions": self.versions}, "attributes": {}}

    @classmethod
    def from_checkpoint(cls, checkpoint: str | None) -> CodeVersions:
        """The versions saved in `checkpoint` plus this process's; `UNRECORDED` first for a checkpoint saved
        without the list (by code before this callback); this process's alone without a checkpoint."""
        saved = _saved_callback_args(checkpoint, cls.__name__)
        if checkpoint is not None and not saved:
            saved = {"versions": [UNRECORDED_VERSION]}
        return cls(**saved)

    def __str__(self) -> str:
        return " then ".join(self.versions)


def _saved_callback_args(checkpoint: str | None, name: str) -> dict[str, Any]:
    """The `args` of the stateful callback `name` saved in `checkpoint`'s `trainer_state.json` (`{}` if none)."""
    state_file = Path(checkpoint) / "trainer_state.json" if checkpoint else None
    if state_file is None or not state_file.is_file():
        return {}
    saved = TrainerState.load_from_json(str(state_file)).stateful_callbacks.get(name)
    return dict(saved["args"]) if isinstance(saved, dict) else {}


def _saved_tokenizer(model_args: ModelArguments) -> PreTrainedTokenizerBase | None:
    """The tokenizer saved with `model_args.model_name_or_path` (a continued model must keep the vocabulary its
    embeddings were trained with), or `None` for a new model. One-line error when it cannot be loaded."""
    if model_args.model_name_or_path is None:
        return None
    try:
        return AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    except (OSError, ValueError, ImportError) as err:  # ImportError: transformers 5.5 without protobuf
        raise ValueError(
            f"--model_name_or_path {model_args.model_name_or_path}: cannot load its tokenizer (tokenizer.json, "
            f"tokenizer_config.json), which a continued model needs: {' '.join(str(err).split())}"
        ) from err


def build_model(model_args: ModelArguments, data: LoadedData) -> BiLSTMAttentionForSequenceClassification:
    """A new model sized for the loaded data (label names, single or pair input, candidate masks), or a saved one
    (`model_args.model_name_or_path`: the answer-selection class when its config uses candidate masks; its labels
    and input type must match the data's).

    With `model_args.word_vectors` the new model's embeddings start from those vectors, and `config.word_vectors`
    records their name and coverage of the vocabulary.
    """
    tokenizer, label_names = data.tokenizer, data.label_names
    use_candidate_mask = "candidate_mask" in data.dataset["train"].column_names
    if model_args.model_name_or_path is not None:
        return _saved_model(model_args.model_name_or_path, data, use_candidate_mask, model_args.dropout)
    config = BiLSTMAttentionConfig(
        vocab_size=len(tokenizer),
        embedding_size=model_args.embedding_size,
        hidden_size=model_args.hidden_size,
        attention_hidden_size=model_args.attention_hidden_size,
        attention_type=model_args.attention_type,
        dropout=model_args.dropout,
        input_type="pair" if data.is_pair else "single",
        use_candidate_mask=use_candidate_mask,
        pad_token_id=tokenizer.pad_token_id,
        sep_token_id=tokenizer.sep_token_id,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
    )
    model_class = BiLSTMAttentionForAnswerSelection if use_candidate_mask else BiLSTMAttentionForSequenceClassification
    model = model_class(config)
    if model_args.word_vectors:
        model.config.word_vectors = load_word_vectors(model, tokenizer, model_args.word_vectors)
    return model


def _saved_model(
    path: str, data: LoadedData, use_candidate_mask: bool, dropout: float
) -> BiLSTMAttentionForSequenceClassification:
    """The model saved in `path` with `dropout`, checked against the data it continues on (one line per
    mismatch)."""
    config = BiLSTMAttentionConfig.from_pretrained(path)
    saved = {
        "labels": [config.id2label[i] for i in range(config.num_labels)],
        "input type": config.input_type,
        "candidate masks": bool(config.use_candidate_mask),
    }
    wanted = {
        "labels": list(data.label_names),
        "input type": "pair" if data.is_pair else "single",
        "candidate masks": use_candidate_mask,
    }
    for what, value in saved.items():
        if value != wanted[what]:
            raise ValueError(
                f"--model_name_or_path {path} was trained with {what} {value!r}, the data has {wanted[what]!r}: "
                "continue on data of the same task, or train a new model"
            )
    model_class = BiLSTMAttentionForAnswerSelection if config.use_candidate_mask else BiLSTMAttentionForSequenceClassification
    return model_class.from_pretrained(path, dropout=dropout)


def agreement_metrics(explanation: Explanation) -> dict[str, float]:
    """`agreement_pearson`, `agreement_pearson_std`, `agreement_kendall`, `agreement_kendall_std` (gradient)."""
    summary = explanation.summary
    return {
        "agreement_pearson": summary["gradient_pearson_mean"],
        "agreement_pearson_std": summary["gradient_pearson_std"],
        "agreement_kendall": summary["gradient_kendall_mean"],
        "agreement_kendall_std": summary["gradient_kendall_std"],
    }


@functools.cache
def code_version() -> str:
    """`hf_attn_at <version>`, plus the git commit of the package's checkout when its files are tracked by one
    (`+dirty` when they differ from that commit): which code produced a run.

    Read once per process (at its first run, see `run_experiment`): the code a process runs is the code it
    imported, even when the checkout moves on while it trains (a long `reproduce` grid).
    """
    from ._version import __version__

    version = f"hf_attn_at {__version__}"
    package = Path(__file__).resolve().parent
    try:
        # The package's own files must be tracked: an installed copy inside another repository (a `.venv` in the
        # user's project) would otherwise report that project's commit.
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "__init__.py"], cwd=package,
                                 capture_output=True, text=True, timeout=10)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=package, capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.SubprocessError):
        return version
    if tracked.returncode != 0 or commit.returncode != 0:
        return version
    return f"{version} (git {commit.stdout.strip()[:12]}{'+dirty' if dirty.stdout.strip() else ''})"


def training_log_summary(log_history: list[dict[str, Any]]) -> dict[str, float | int | None]:
    """Over the training logs (`trainer.state.log_history`, resumed parts included): the mean of the logged
    `adv_perturbation_norm` (the measured ‖r‖, e.g. ≈ 2ε for iAT), `num_skipped_steps` summed, `num_logs`."""
    logs = [entry for entry in log_history if "loss" in entry and "eval_loss" not in entry]
    norms = [entry["adv_perturbation_norm"] for entry in logs if "adv_perturbation_norm" in entry]
    return {
        "adv_perturbation_norm_mean": sum(norms) / len(norms) if norms else None,
        "num_skipped_steps": sum(int(entry.get("num_skipped_steps", 0)) for entry in logs),
        "num_logs": len(logs),
    }


def find_resume_checkpoint(
    output_dir: Path, training_args: AdversarialTrainingArguments, settings: dict[str, Any], main_process: bool
) -> str | None:
    """The checkpoint to resume from: `--resume_from_checkpoint`, else the newest complete checkpoint in
    `output_dir` (none with `--overwrite_output_dir`, which removes the earlier run: `clear_earlier_run`).

    The checkpoint's stored settings must match `settings` and its files must be readable (`ValueError` naming
    the differing settings or the unreadable file otherwise). Incomplete checkpoints are skipped with a warning
    (and removed by the main process). A checkpoint without optimizer state (`save_only_model`) cannot continue
    the run as it was: `ValueError`, unless it is given as `--resume_from_checkpoint` (then a warning).
    """
    if training_args.resume_from_checkpoint:
        checkpoint = Path(training_args.resume_from_checkpoint)
        if not checkpoint.is_dir():
            raise ValueError(f"--resume_from_checkpoint {checkpoint} is not a folder")
        if not (checkpoint / CHECKPOINT_MARKER).is_file():
            logger.warning("%s has no %s: it may be incomplete", checkpoint, CHECKPOINT_MARKER)
    elif training_args.overwrite_output_dir:
        if main_process and output_dir.is_dir():
            clear_earlier_run(output_dir)
        return None
    else:
        checkpoint = last_complete_checkpoint(output_dir, remove_incomplete=main_process) if output_dir.is_dir() else None
        if checkpoint is None:
            return None
    check_settings(checkpoint, read_settings(checkpoint), settings)
    verify_checkpoint(checkpoint)
    if not any(path.name.startswith("optimizer") for path in checkpoint.iterdir()):  # saved with save_only_model
        weights_only = (f"{checkpoint} holds the weights only (saved with --save_only_model): resuming from it "
                        "restarts the optimizer, the learning-rate schedule and the random state")
        if not training_args.resume_from_checkpoint:
            raise ValueError(f"{weights_only}, which is not the run these settings describe; pass "
                             f"--overwrite_output_dir to train afresh, or --resume_from_checkpoint {checkpoint} to "
                             "continue from its weights anyway")
        logger.warning("%s (asked for with --resume_from_checkpoint)", weights_only)
    logger.info("resuming from %s", checkpoint)
    return str(checkpoint)


def prepare_run_folder(
    model_args: ModelArguments, data_args: DataArguments, training_args: AdversarialTrainingArguments,
    data: LoadedData,
) -> tuple[str | None, dict[str, Any]]:
    """For scripts that build their own `AdversarialTrainer` (the examples): check `training_args.output_dir` as
    `train` does and return `(checkpoint to resume from or None, the run's settings)`; pass the settings to the
    trainer as `run_settings=` so that its checkpoints record them.

    A folder or checkpoint holding a run with other settings or data (`data_fingerprint`) raises a `ValueError`
    naming the differences (remedy: another `--output_dir` or `--overwrite_output_dir`), as does a
    weights-only checkpoint; the main process writes the settings into the folder.
    """
    output_dir = Path(training_args.output_dir)
    settings = run_settings(model_args, data_args, training_args)
    settings["data_fingerprint"] = data_fingerprint(data.dataset, data.tokenizer)
    check_settings(output_dir, None if training_args.overwrite_output_dir else read_settings(output_dir), settings)
    resume = find_resume_checkpoint(output_dir, training_args, settings, training_args.should_save)
    if training_args.should_save:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_settings(output_dir, settings)
    return resume, settings


def run_experiment(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: AdversarialTrainingArguments,
    robustness_args: RobustnessArguments | None = None,
    *,
    command: str | None = None,
    epsilon_selected_on: str | None = None,
) -> RunRecord:
    """Train, evaluate on every test split, measure attention–gradient agreement (and, with
    `robustness_args.eval_robustness`, robustness: the record's `robustness`) and save the run folder.

    `command` (the command line that ran it) and `epsilon_selected_on` (the task whose validation chose ε, when
    not this one) go into the record from its first write, so a run stopped during its robustness evaluation is
    never recorded without them.

    The output folder is checked and locked first (`hf_attn_at.run_folder`): a file, a foreign non-empty folder
    (without `--overwrite_output_dir`), a folder locked by a live process, or a run or checkpoint with other
    settings stops the run with one line; a matching interrupted run resumes from its newest complete checkpoint.

    Returns the run's record (`results.json`): `metrics` (per split), `agreement`, `train_runtime`, settings.
    """
    code_version()  # pinned now: the checkout may change while this process trains
    output_dir = Path(training_args.output_dir)
    main_process = training_args.should_save
    with run_lock(output_dir) if main_process else nullcontext():
        check_output_dir(output_dir, training_args.overwrite_output_dir)
        return _run_locked(model_args, data_args, training_args, output_dir, main_process, robustness_args,
                           command=command, epsilon_selected_on=epsilon_selected_on)


def _run_locked(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: AdversarialTrainingArguments,
    output_dir: Path,
    main_process: bool,
    robustness_args: RobustnessArguments | None = None,
    *,
    command: str | None = None,
    epsilon_selected_on: str | None = None,
) -> RunRecord:
    """`run_experiment` once this process holds the folder's lock (or is not the main process)."""
    settings = run_settings(model_args, data_args, training_args)
    stored = None if training_args.overwrite_output_dir else read_settings(output_dir)
    check_settings(output_dir, stored, settings)  # before loading data: a mismatch of flags stops at once
    set_seed(training_args.seed)
    data = load_data(data_args, training_args.seed, tokenizer=_saved_tokenizer(model_args))
    dsd, tokenizer = data.dataset, data.tokenizer
    resume, settings = prepare_run_folder(model_args, data_args, training_args, data)
    clock, versions = RunClock.from_checkpoint(resume), CodeVersions.from_checkpoint(resume)
    model = build_model(model_args, data)
    trainer = AdversarialTrainer(
        model=model,
        args=training_args,
        train_dataset=dsd["train"],
        eval_dataset=dsd["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[ModelCardCallback(dataset_name=data_args.dataset_label), clock, versions],
        run_settings=settings,
    )
    train_output = trainer.train(resume_from_checkpoint=resume)

    test_splits = [split for split in dsd if split.startswith("test")]
    metrics = {"validation": trainer.evaluate(dsd["validation"], metric_key_prefix="validation")}
    for split in test_splits:
        metrics[split] = trainer.evaluate(dsd[split], metric_key_prefix=split)
    if not test_splits:
        logger.warning("no test split: the reported metrics and agreement are on the validation split")
    main_split = test_splits[0] if test_splits else "validation"
    explained = dsd[main_split]
    if data_args.explain_max_samples is not None:
        explained = sample_examples(explained, data_args.explain_max_samples, EVAL_SAMPLE_SEED)
    explanation = explain_model(
        trainer.model, tokenizer, explained, batch_size=training_args.per_device_eval_batch_size,
        show_progress=not training_args.disable_tqdm,
    )
    agreement = agreement_metrics(explanation)

    args_dict = training_args.to_dict()
    args_dict["adv_method"] = training_args.adv_method.value
    args_dict["word_vectors"] = getattr(trainer.model.config, "word_vectors", None)
    args_dict["optimizer"] = describe_optimizer(trainer.optimizer)
    record = RunRecord(
        task=data_args.dataset_label,
        method=training_args.adv_method.value,
        epsilon=training_args.adv_epsilon,
        lambda_=training_args.adv_lambda,
        seed=training_args.seed,
        labelled_fraction=data_args.labelled_fraction,
        word_vectors=args_dict["word_vectors"],
        metrics=metrics,
        agreement=agreement,
        agreement_split=main_split,
        attention_sensitivity={key: explanation.summary[f"attention_{key}_mean"] for key in ("grad_norm", "score_range")},
        data_args={**asdict(data_args), **(data.columns or {})},  # with the columns used
        num_examples=data.num_examples,
        train_runtime=train_output.metrics.get("train_runtime"),
        total_runtime=clock.elapsed,
        training_logs=training_log_summary(trainer.state.log_history),
        code_version=str(versions),
        command=command,
        epsilon_selected_on=epsilon_selected_on,
        training_args=json_safe(args_dict),
        num_labels=trainer.model.config.num_labels,
    )
    if not trainer.is_world_process_zero():
        return record
    trainer.save_model(str(output_dir))
    heat = explanation.to_json(NUM_HEATMAP_EXAMPLES)
    (output_dir / EXPLANATION_FILE).write_text(json.dumps(json_safe(heat)) + "\n")
    card_from_record(record, trainer.model).save(output_dir / "README.md")
    record.save(output_dir)  # results.json last: it marks the run finished
    if robustness_args is not None and robustness_args.eval_robustness:
        # After the run is saved: a failing attack loses no training (the record then lacks `robustness`).
        settings = robustness_args.settings(training_args.adv_epsilon, main_split)
        try:
            record.robustness = evaluate_run_robustness(trainer.model, dsd[main_split], settings)
        except Exception:
            logger.error("%s: the run is finished and saved, its robustness evaluation failed; `hf-attn-at reproduce "
                         "--robustness_only` (a grid) or `hf-attn-at robustness` (one model) evaluates it again",
                         output_dir)
            raise
        card_from_record(record, trainer.model).save(output_dir / "README.md")
        record.save(output_dir)
    return record
