"""Guards of a run folder (`--output_dir`): the settings that define a run, one process at a time, complete
checkpoints only, and no foreign files overwritten.

- `run_settings.json` (written before training, kept in every checkpoint and in the final folder) holds the
  settings that define the run: model, data and training settings plus a fingerprint of the tokenized data. A
  run resumes from (or `reproduce` skips) a folder only when they match; otherwise it stops with one line that
  names the differing settings.
- A checkpoint is complete once its marker `checkpoint_complete.json` exists: the trainer writes it after every
  other file. Resuming takes the newest complete checkpoint and removes incomplete ones with a warning.
- `.hf_attn_at.lock` holds the pid of the process that runs into the folder; a second run gets one line naming
  it, and a lock left by a dead process is taken over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SETTINGS_FILE = "run_settings.json"
CHECKPOINT_MARKER = "checkpoint_complete.json"
LOCK_FILE = ".hf_attn_at.lock"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")

# `TrainingArguments` fields that do not change what a run computes: where it writes, how it logs and reports,
# evaluation batch sizes, data-loader workers and process placement.
NON_DEFINING_TRAINING_ARGS = frozenset({
    "output_dir", "overwrite_output_dir", "run_name", "project", "logging_dir", "logging_strategy", "logging_steps",
    "logging_first_step", "logging_nan_inf_filter", "log_level", "log_level_replica", "log_on_each_node",
    "disable_tqdm", "report_to", "push_to_hub", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo",
    "hub_always_push", "hub_revision", "trackio_bucket_id", "trackio_space_id", "trackio_static_space_id",
    "resume_from_checkpoint", "save_on_each_node", "save_only_model", "save_total_limit", "skip_memory_metrics",
    "per_device_eval_batch_size", "eval_accumulation_steps", "dataloader_num_workers", "dataloader_pin_memory",
    "dataloader_persistent_workers", "dataloader_prefetch_factor", "dataloader_multiprocessing_context",
    "local_rank", "ddp_backend", "ddp_timeout", "use_cpu", "torch_empty_cache_steps", "include_num_input_tokens_seen",
})  # fmt: skip
# Data settings that name where the data lives rather than what it is (the data fingerprint covers the content).
NON_DEFINING_DATA_ARGS = frozenset({"data_dir", "train_file", "validation_file", "test_file"})


def _plain(value: Any) -> Any:
    """`value` as JSON reads it back (enums as their values, tuples as lists)."""
    return json.loads(json.dumps(value, default=str))


def run_settings(model_args: Any, data_args: Any, training_args: Any) -> dict[str, dict[str, Any]]:
    """The settings that define a run: `{"model": ..., "data": ..., "training": ...}` (JSON types).

    Args:
        model_args, data_args (dataclasses): [`ModelArguments`] and [`DataArguments`] (any dataclass works).
        training_args ([`~transformers.TrainingArguments`]): the fields in `NON_DEFINING_TRAINING_ARGS` are left out.
    """
    from dataclasses import asdict

    training = {k: v for k, v in training_args.to_dict().items() if k not in NON_DEFINING_TRAINING_ARGS}
    return _plain({"model": asdict(model_args), "data": _defining_data(asdict(data_args)), "training": training})


def _defining_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """The data settings less `NON_DEFINING_DATA_ARGS` and, for tasks other than bAbI, `babi_size`."""
    ignored = NON_DEFINING_DATA_ARGS | ({"babi_size"} if not str(data.get("task_name") or "").startswith("babi") else set())
    return {k: v for k, v in data.items() if k not in ignored}


def data_fingerprint(dataset_dict: Mapping[str, Any], tokenizer: Any) -> dict[str, Any]:
    """What the run trains and evaluates on: examples per split, vocabulary size and a SHA-256 of the vocabulary
    and of every split's token ids and labels (so a changed file, cap or sample is seen even when sizes agree).

    Args:
        dataset_dict (`DatasetDict`): the tokenized splits (`input_ids`, `label` or `labels`).
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]): their tokenizer (`get_vocab()` is hashed).
    """
    digest = hashlib.sha256()
    vocab = tokenizer.get_vocab()
    digest.update(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode())
    for split in sorted(dataset_dict):
        dataset = dataset_dict[split]
        columns = [c for c in ("input_ids", "label", "labels") if c in dataset.column_names]
        digest.update(f"{split}:{len(dataset)}".encode())
        for batch in dataset.select_columns(columns).iter(batch_size=4096):
            digest.update(json.dumps([batch[c] for c in columns], separators=(",", ":")).encode())
    return {
        "num_examples": {split: len(dataset_dict[split]) for split in sorted(dataset_dict)},
        "vocab_size": len(vocab),
        "sha256": digest.hexdigest(),
    }


def settings_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """`"name: stored → current"` for every setting that both hold with different values (nested keys joined by
    dots; a setting that only one side has is not a difference, so records written before a setting existed
    still compare)."""
    differences = []
    for key in sorted(set(stored) & set(current)):
        old, new = stored[key], current[key]
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            differences += [f"{key}.{d}" for d in settings_differences(old, new)]
        elif old != new:
            differences.append(f"{key}: {old!r} → {new!r}")
    return differences


def read_settings(folder: str | Path) -> dict[str, Any] | None:
    """The settings stored in a run folder, checkpoint or record: its `run_settings.json`, else (folders written
    before that file existed) what `training_args.json` and `results.json` say; `None` if it has neither."""
    folder = Path(folder)
    if (folder / SETTINGS_FILE).is_file():
        return _read_json(folder / SETTINGS_FILE)
    settings: dict[str, Any] = {}
    if (folder / "training_args.json").is_file():
        training = _read_json(folder / "training_args.json")
        settings["training"] = {k: v for k, v in training.items() if k not in NON_DEFINING_TRAINING_ARGS}
    if (folder / "results.json").is_file():
        settings["data"] = _defining_data(_read_json(folder / "results.json").get("data_args") or {})
    return settings or None


def write_settings(folder: str | Path, settings: Mapping[str, Any]) -> None:
    """Write `run_settings.json` into `folder` (atomically: a crash leaves the old file or the new one)."""
    write_json_atomic(Path(folder) / SETTINGS_FILE, settings)


def check_settings(
    folder: str | Path,
    stored: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    remedy: str = "use another --output_dir, or pass --overwrite_output_dir to start this run afresh there",
) -> None:
    """`ValueError` naming every differing setting (and `remedy`) unless the settings stored in `folder` match
    `current`; nothing to check when `stored` is `None`."""
    if stored is None:
        return
    differences = settings_differences(stored, current)
    if differences:
        raise ValueError(f"{folder} holds a run with other settings ({'; '.join(differences)}): {remedy}")


def mark_checkpoint_complete(checkpoint: str | Path, global_step: int) -> None:
    """Write the marker that makes `checkpoint` count as complete (call it after every other file is written)."""
    write_json_atomic(Path(checkpoint) / CHECKPOINT_MARKER, {"global_step": global_step})


def checkpoints(folder: str | Path) -> list[Path]:
    """The `checkpoint-<step>` folders in `folder`, oldest step first."""
    found = [p for p in Path(folder).iterdir() if p.is_dir() and CHECKPOINT_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.match(p.name).group(1)))


def last_complete_checkpoint(folder: str | Path, remove_incomplete: bool = True) -> Path | None:
    """The newest complete checkpoint in `folder` (`None` if none); incomplete ones (no marker: a save that was
    killed or ran out of disk) are named in a warning and, with `remove_incomplete`, deleted so that neither a
    resume nor the trainer's checkpoint rotation can take them for complete."""
    found = checkpoints(folder)
    complete = [p for p in found if (p / CHECKPOINT_MARKER).is_file()]
    for path in found:
        if path not in complete:
            logger.warning("checkpoint %s is incomplete (no %s: its save was interrupted); %s", path,
                           CHECKPOINT_MARKER, "removing it" if remove_incomplete else "skipping it")
            if remove_incomplete:
                shutil.rmtree(path)
    return complete[-1] if complete else None


def verify_checkpoint(checkpoint: str | Path) -> None:
    """`ValueError` naming the first file of `checkpoint` that cannot be read: JSON files, safetensors (header,
    size and every tensor's slice) and torch files (loaded as Trainer loads them: `weights_only=True` with its
    numpy allowlist, here memory-mapped)."""
    import torch
    from safetensors import safe_open
    from transformers.trainer_pt_utils import safe_globals

    for path in sorted(Path(checkpoint).iterdir()):
        try:
            if path.suffix == ".json":
                _read_json(path)
            elif path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as weights:
                    for name in weights.keys():
                        weights.get_slice(name)
            elif path.suffix in (".pt", ".pth", ".bin") and path.name != "training_args.bin":  # not read on resume
                with safe_globals():  # the numpy types Trainer allows in its RNG states
                    torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # noqa: BLE001 - any failure to read means the file is unusable
            raise ValueError(
                f"checkpoint file {path} is corrupt or unsafe to load ({type(err).__name__}: {str(err)[:160]}); "
                f"delete {checkpoint} to resume from an earlier checkpoint, or pass --overwrite_output_dir"
            ) from None


def check_output_dir(folder: str | Path, overwrite: bool) -> None:
    """`ValueError` if `folder` is a file, or a non-empty folder that holds no run (`read_settings` finds
    nothing) while `overwrite` is off: files of the user's are never overwritten silently."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output_dir {folder} is a file, not a folder: give a folder path")
    if overwrite or not folder.is_dir() or read_settings(folder) is not None:
        return
    foreign = sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ValueError(
            f"--output_dir {folder} is not empty ({shown}) and holds no run of hf_attn_at: give an empty or new "
            "folder, or pass --overwrite_output_dir to write there anyway"
        )


def clear_checkpoints(folder: str | Path) -> None:
    """Delete every `checkpoint-<step>` folder in `folder` (a run started afresh with `--overwrite_output_dir`)."""
    for path in checkpoints(folder):
        logger.warning("--overwrite_output_dir: removing %s of an earlier run", path)
        shutil.rmtree(path)


class RunLockedError(ValueError):
    """The run folder is locked by another live process (see `run_lock`)."""


@contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold `folder/.hf_attn_at.lock` (pid and host of this process) while the block runs; `folder` is created.

    Raises `ValueError` if `folder` is a file, and `RunLockedError` (a `ValueError`) naming the holder when a live
    process (or one on another host) holds it; a lock left by a dead process on this host is taken over with a
    warning.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output_dir {folder} is a file, not a folder: give a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    mine = {"pid": os.getpid(), "host": socket.gethostname()}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is not None and (holder.get("host") != mine["host"] or _alive(holder.get("pid"))):
                raise RunLockedError(
                    f"--output_dir {folder} is in use by process {holder.get('pid')} on {holder.get('host')} "
                    f"(lock file {path}); wait for it to finish, or delete the lock file if that process is gone"
                ) from None
            logger.warning("taking over the stale lock %s of %s", path, holder or "an unreadable lock file")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(mine, handle)
        break
    try:
        yield path
    finally:
        if _lock_holder(path) == mine:
            path.unlink(missing_ok=True)


def _lock_holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} cannot be read as JSON ({err})") from None


def write_json_atomic(path: Path, content: Any) -> None:
    """Write `content` as indented JSON to `path` through a temporary file: a crash leaves the old file or the new."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


__all__ = [
    "CHECKPOINT_MARKER",
    "LOCK_FILE",
    "RunLockedError",
    "SETTINGS_FILE",
    "check_output_dir",
    "check_settings",
    "checkpoints",
    "clear_checkpoints",
    "data_fingerprint",
    "last_complete_checkpoint",
    "mark_checkpoint_complete",
    "read_settings",
    "run_lock",
    "run_settings",
    "settings_differences",
    "verify_checkpoint",
    "write_json_atomic",
    "write_settings",
]
