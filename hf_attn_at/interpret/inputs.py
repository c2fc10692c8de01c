"""What `explain` and `robustness` evaluate: saved models and the examples they are evaluated on.

The examples are one split of a built-in task, of a folder written by `hf-attn-at prepare`, or of a data file;
texts are tokenized with each model's tokenizer and labels mapped to its class ids. `data` arguments below are
objects with the attributes of the CLI's data flags: `test_file`, `prepared_dir`, `task_name`, `data_source`,
`data_dir`, `babi_size`, `split`, `text_column`, `text_pair_column`, `label_column`, `max_test_samples`, `seed`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Weight files of a `save_pretrained` folder, in the order `from_pretrained` looks for them.
WEIGHTS_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
_INT = re.compile(r"[+-]?\d+")
# `--split`'s default: the split that a data file without an `exp_split` column, or a saved `Dataset` without
# splits, is.
WHOLE_SPLIT = "test"


def _read_raw(data: Any) -> tuple[dict[str, list], int, list[int] | None]:
    """Texts and raw labels of `data.test_file` (`hf_attn_at.data.custom.read_file`) or of the `data.split` split of
    the built-in `data.task_name` (labels as class names), its number of rows and the rows of the seeded
    `max_test_samples` sample (`None`: all). A file without an `exp_split` column is the `WHOLE_SPLIT` split:
    another `data.split` raises a `ValueError`."""
    from ..data import load_task
    from ..data.custom import read_file
    from ..data.processing import sample_indices

    if data.test_file is not None:
        ds, _ = read_file(data.test_file, data.text_column, data.text_pair_column, data.label_column,
                          split=data.split, whole_file_split=WHOLE_SPLIT)
    else:
        options = {"babi_size": data.babi_size} if data.task_name.startswith("babi") else {}
        splits = load_task(data.task_name, source=data.data_source, data_dir=data.data_dir, **options)
        if data.split not in splits:
            raise ValueError(f"--split {data.split!r} is not a split of {data.task_name}: it has {list(splits)}")
        ds = splits[data.split]
        names = ds.features["label"].names
        ds = ds.map(lambda b: {"label": [names[i] for i in b["label"]]}, batched=True, remove_columns=["label"])
    rows = sample_indices(len(ds), data.max_test_samples, data.seed)
    return (ds if rows is None else ds.select(rows)).to_dict(), len(ds), rows


def _is_float(value: Any) -> bool:
    """Whether a raw label is a float: a float value or a csv cell such as `"1.0"` (`text_kind`)."""
    from ..data.custom import text_kind

    return isinstance(value, float) or isinstance(value, str) and text_kind(value) == "float"


def _label_key(value: Any) -> str | None:
    """A raw label as a class name, integers in decimal (`1`, `"01"` give `"1"`); `None` for other types."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        from ..data.custom import text_kind

        return str(int(value)) if text_kind(value) == "int" else value  # a csv cell: "1" and "01" are 1
    return None


def _label_ids(values: list[Any], config: Any, model_dir: str) -> list[int]:
    """Raw labels as the model's class ids.

    A label is one of the class names of `config.id2label`, compared as strings (integers in decimal). When
    none of the class names is an integer, an integer label that is not a name is a class id
    `0..num_labels - 1`. When some are (a model trained on labels `1`/`2`), labels are names only, so `1`
    never silently means id 1. A float (`1.0`, a csv `"1.0"`) or any other value raises a `ValueError` naming
    it and the allowed labels.
    """
    names = {str(name): int(i) for i, name in config.id2label.items()}
    ids_allowed = not any(_INT.fullmatch(name) for name in names)
    allowed = (f"its class names {list(names)} or ids 0..{config.num_labels - 1}" if ids_allowed else
               f"its class names {list(names)} (ids are not accepted: the names are integers themselves)")
    floats = list(dict.fromkeys(v for v in values if _is_float(v)))
    if floats:  # as in training (`load_custom`): a float is not a class id, even when whole
        raise ValueError(f"labels {floats[:10]}{' ...' if len(floats) > 10 else ''} are floats; labels must be "
                         f"{allowed}, written as strings or integers")
    ids, unknown = [], []  # the first 11 distinct unknown values
    for value in values:
        key = _label_key(value)
        if key in names:
            ids.append(names[key])
        elif ids_allowed and key is not None and _INT.fullmatch(key) and 0 <= int(key) < config.num_labels:
            ids.append(int(key))
        elif len(unknown) <= 10 and value not in unknown:
            unknown.append(value)
    if unknown:
        raise ValueError(f"labels {unknown[:10]}{' ...' if len(unknown) > 10 else ''} are not "
                         f"classes of {model_dir}: labels must be {allowed}")
    return ids


def _load_tokenized(path: Path, split: str, max_samples: int | None, seed: int):
    """A split of a tokenized `save_to_disk` folder (a `Dataset` without splits is the `WHOLE_SPLIT` split),
    its number of rows and the rows of the seeded sample."""
    from datasets import DatasetDict, load_from_disk

    from ..data.custom import FORMATS
    from ..data.processing import sample_indices

    try:
        dataset = load_from_disk(str(path))
    except FileNotFoundError as err:
        raise ValueError(f"--prepared_dir {path} is not a `save_to_disk` dataset: give a folder written by "
                         f"`hf-attn-at prepare`, or a data file ({', '.join(FORMATS)}) as --test_file") from err
    if isinstance(dataset, DatasetDict):
        if split not in dataset:
            raise ValueError(f"--split {split!r} is not in {path}: it has {list(dataset)}")
        dataset = dataset[split]
    elif split != WHOLE_SPLIT:
        raise ValueError(f"--split {split!r} selects a split of --prepared_dir, and {path} holds one dataset "
                         f"without splits (evaluated as the {WHOLE_SPLIT!r} split): drop --split")
    if "input_ids" not in dataset.column_names:
        raise ValueError(f"{path} is not tokenized: columns {dataset.column_names} lack `input_ids`")
    rows = sample_indices(len(dataset), max_samples, seed)
    return (dataset if rows is None else dataset.select(rows)), len(dataset), rows


def _load_model(model_dir: str):
    """The tokenizer and float32 model saved in `model_dir`; one-line errors naming the missing or bad file."""
    import pickle

    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        problem = "has no config.json" if folder.is_dir() else "is not a folder"
        raise FileNotFoundError(f"--model_name_or_path {model_dir} {problem}: expected a model folder saved by "
                                "`train` (`save_pretrained`)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError, ImportError) as err:  # ImportError: transformers 5.5 without protobuf
        raise ValueError(f"--model_name_or_path {model_dir}: cannot load its tokenizer (tokenizer.json, "
                         f"tokenizer_config.json): {' '.join(str(err).split())}") from err
    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    except (SafetensorError, pickle.UnpicklingError, EOFError, RuntimeError, OSError) as err:
        weights = next((folder / name for name in WEIGHTS_NAMES if (folder / name).is_file()), None)
        if weights is None:
            raise ValueError(f"--model_name_or_path {model_dir} has no weights: expected one of "
                             f"{list(WEIGHTS_NAMES)}") from err
        if isinstance(err, pickle.UnpicklingError):
            reason = ("torch refuses to unpickle it with weights_only=True (it holds objects other than "
                      "tensors); if you trust its source, re-save the model as model.safetensors")
        elif isinstance(err, OSError):
            reason = " ".join(str(err).split())
        else:
            reason = f"the file is corrupt or truncated ({' '.join(str(err).split())})"
        raise ValueError(f"--model_name_or_path {model_dir}: cannot load {weights}: {reason}") from err
    return tokenizer, model


def model_info(model_dir: str, config: Any) -> dict[str, Any]:
    """The report's facts about a model: its folder, class names, and the `adv_method` and `adv_epsilon` of the
    `training_args.json` that `train` writes next to it (absent keys when the folder has none)."""
    info: dict[str, Any] = {"path": model_dir, "id2label": {int(i): name for i, name in config.id2label.items()}}
    args_file = Path(model_dir) / "training_args.json"
    if args_file.is_file():
        try:
            training = json.loads(args_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"--model_name_or_path {model_dir}: cannot read {args_file}: {err}") from None
        info.update({key: training[key] for key in ("adv_method", "adv_epsilon") if key in training})
    return info


def model_labels(model_paths: Sequence[str], labels: Sequence[str] | None) -> list[str]:
    """`labels` (`--labels`), or the folder names of `model_paths`: one distinct name per model."""
    labels = list(labels or [Path(p).name for p in model_paths])
    if len(labels) != len(model_paths):
        raise ValueError(f"--labels needs one name per model: {len(model_paths)} models, got {labels}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"--labels must be distinct, got {labels}")
    return labels


def load_models_and_data(
    model_paths: Sequence[str], labels: Sequence[str], data: Any
) -> tuple[dict[str, tuple[Any, Any, Any]], dict[str, dict[str, Any]], int, list[int] | None]:
    """The models saved in `model_paths` and the examples of `data` (see the module docstring), sampled by its
    `max_test_samples`/`seed`: a prepared folder as saved, texts tokenized with each model's tokenizer and their
    labels mapped to its class ids.

    Returns `({label: (model, tokenizer, dataset)}, {label: model_info}, rows in the split, sampled rows or None)`.
    """
    from ..data.custom import FORMATS
    from ..models import bilstm_attention  # noqa: F401  (registers the BiLSTM-attention models with the Auto classes)

    raw = tokenized = None
    source = (f"--test_file {data.test_file}" if data.test_file is not None
              else f"--prepared_dir {data.prepared_dir}" if data.prepared_dir is not None
              else f"--task_name {data.task_name}")
    if data.prepared_dir is not None:
        path = Path(data.prepared_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"--prepared_dir {path}: no such folder; expected the --output_dir of "
                                    "`hf-attn-at prepare`")
        tokenized, num_rows, rows = _load_tokenized(path, data.split, data.max_test_samples, data.seed)
        prepared_tokenizer = _prepared_tokenizer(path)
        types = tokenized["token_type_ids"] if "token_type_ids" in tokenized.column_names else []
        is_pair = any(1 in row for row in types)  # a pair's second text has type 1
    else:
        if data.test_file is not None and not Path(data.test_file).exists():
            raise FileNotFoundError(f"--test_file {data.test_file}: no such file; expected a data file "
                                    f"({', '.join(FORMATS)})")
        raw, num_rows, rows = _read_raw(data)
        is_pair = "text_pair" in raw

    inputs, models = {}, {}
    for label, model_dir in zip(labels, model_paths, strict=True):
        tokenizer, model = _load_model(model_dir)
        models[label] = model_info(model_dir, model.config)
        _check_input_type(model.config, model_dir, is_pair, source)
        dataset = tokenized
        if tokenized is not None:
            _check_prepared(path, tokenized, prepared_tokenizer, tokenizer, model.config, model_dir)
        if raw is not None:
            encoded = tokenizer(raw["text"], raw.get("text_pair"))
            dataset = {"input_ids": encoded["input_ids"], "label": _label_ids(raw["label"], model.config, model_dir)}
            if "text_pair" in raw and "token_type_ids" in encoded:
                dataset["token_type_ids"] = encoded["token_type_ids"]
            if "candidate_mask" in raw:
                dataset["candidate_mask"] = raw["candidate_mask"]
        inputs[label] = model, tokenizer, dataset
    return inputs, models, num_rows, rows


def _check_input_type(config: Any, model_dir: str, is_pair: bool, source: str) -> None:
    """`ValueError` when a BiLSTM-attention model for single texts gets text pairs (they would be read as one
    text joined by `<sep>`) or a pair model single texts; models without `input_type` (Transformers encoders)
    take both."""
    input_type = getattr(config, "input_type", None)
    if input_type is not None and (input_type == "pair") != is_pair:
        kinds = {True: "text pairs", False: "single texts"}
        raise ValueError(f"--model_name_or_path {model_dir} is a model for {kinds[input_type == 'pair']} "
                         f"(input_type {input_type!r}), but {source} holds {kinds[is_pair]}: evaluate it on "
                         "data of its kind")


def _prepared_tokenizer(path: Path):
    """The tokenizer `prepare` saved with the dataset in `path` (its ids are only meaningful with it)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, ImportError) as err:
        raise ValueError(f"--prepared_dir {path} has no tokenizer `hf-attn-at prepare` saved (tokenizer.json, "
                         f"tokenizer_config.json): its token ids cannot be checked against the models' vocabulary; "
                         f"give the texts instead (--test_file or --task_name)") from err


def _check_prepared(path: Path, dataset: Any, prepared_tokenizer: Any, tokenizer: Any, config: Any, model_dir: str) -> None:
    """`ValueError` unless the prepared ids and labels mean for the model what they meant when prepared: the same
    vocabulary (token -> id) and, when the dataset names its classes, the same class names in the same order."""
    if prepared_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise ValueError(f"--prepared_dir {path} was tokenized with another vocabulary ({len(prepared_tokenizer)} "
                         f"tokens) than {model_dir} ({len(tokenizer)} tokens): its ids would be other words for that "
                         f"model; give the texts instead (--test_file or --task_name), which each model tokenizes")
    names = getattr(dataset.features.get("label"), "names", None)
    classes = [str(config.id2label[i]) for i in range(config.num_labels)]
    if names is not None and list(names) != classes:
        raise ValueError(f"--prepared_dir {path} labels its classes {list(names)}, but {model_dir} predicts "
                         f"{classes}: its label ids would be other classes for that model")


def read_epsilon_runs(path: str) -> list[dict[str, Any]]:
    """The ε sweep in the file `path` (`--epsilon_runs`), checked by `check_epsilon_runs`; a `ValueError` names
    the file and the problem (missing, not JSON, wrong shape)."""
    from .report import check_epsilon_runs

    try:
        runs = json.loads(Path(path).read_text(encoding="utf-8"))
        check_epsilon_runs(runs)
    except (OSError, ValueError) as err:  # missing, a folder, not UTF-8, not JSON, wrong shape
        raise ValueError(f"--epsilon_runs {path}: {err}") from None
    return runs
