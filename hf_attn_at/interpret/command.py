"""`python -m hf_attn_at.interpret explain`: attention vs importance for saved models, as a report folder.

Example:

    python -m hf_attn_at.interpret explain \
        --model_name_or_path runs/sst/vanilla runs/sst/attention_at runs/sst/attention_iat \
        --labels vanilla at iat --dataset_dir ../shared/data/sst/sst_dataset.csv --split test \
        --max_test_samples 500 --select disagreement --num_examples 8 --output_dir reports/sst

    # models trained on your own data: the same file formats and column flags as `train`
    python -m hf_attn_at.interpret explain --model_name_or_path runs/reviews/vanilla runs/reviews/iat \
        --dataset_dir reviews_test.jsonl --text_column body --label_column stars --output_dir reports/reviews
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from ..data.processing import EVAL_SAMPLE_SEED
from .importance import IMPORTANCE_METHODS
from .report import SELECTIONS

# Weight files of a `save_pretrained` folder, in the order `from_pretrained` looks for them.
WEIGHTS_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
_INT = re.compile(r"[+-]?\d+")
# Flags of earlier versions -> their names now.
RENAMED_FLAGS = {"max_examples": "max_test_samples", "num_heatmaps": "num_examples"}


def make_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `explain` arguments, added to `parser` (for a CLI's subcommand) or to a new parser."""
    parser = parser or argparse.ArgumentParser(prog="python -m hf_attn_at.interpret explain", description=__doc__,
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", nargs="+", required=True, help="saved model folder(s)")
    parser.add_argument("--labels", nargs="+", help="a name per model for the report (default: folder names)")
    add_data_arguments(parser)
    parser.add_argument("--output_dir", required=True, help="report folder")
    parser.add_argument("--max_test_samples", type=int,
                        help="explain a seeded random sample of N examples of --split, never its first rows (as "
                             "`train`'s --max_*_samples: the same sampling function); recorded in metrics.json")
    parser.add_argument("--seed", type=int, default=EVAL_SAMPLE_SEED,
                        help="seed of the --max_test_samples sample and of --select random (default: the seed "
                             "`train` samples evaluation splits with)")
    parser.add_argument("--methods", nargs="+", default=["gradient"], choices=sorted(IMPORTANCE_METHODS),
                        help="importance methods to compare attention with")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--select", default="random", choices=SELECTIONS,
                        help="which examples the report shows: random (seeded), misclassified (by some model), "
                             "lowest_agreement / highest_agreement (Pearson r averaged over the models), "
                             "disagreement (largest difference in r between models)")
    parser.add_argument("--num_examples", type=int, default=4, help="examples shown in the report (>= 0)")
    for old in RENAMED_FLAGS:
        parser.add_argument(f"--{old}", type=int, help=argparse.SUPPRESS)  # refused in `run`, naming the new flag
    parser.add_argument("--max_tokens", type=int, default=5000,
                        help="texts (each text of a pair) longer than this are explained on their first N tokens, "
                             "with a warning; recorded in metrics.json")
    parser.add_argument("--epsilon_runs", help="json list of {method, epsilon, accuracy, pearson} for the ε figure")
    return parser


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The data flags shared by `explain` and `robustness`: `--dataset_dir`, `--split` and the column flags."""
    parser.add_argument("--dataset_dir", required=True,
                        help="a `save_to_disk` folder already tokenized (input_ids, [token_type_ids], label), "
                             "or a csv/tsv/json/jsonl/parquet file of texts and labels (e.g. your --test_file), "
                             "tokenized with each model's tokenizer")
    parser.add_argument("--split", default="test", help="DatasetDict split, or the file's `exp_split` value")
    parser.add_argument("--text_column", help="text column of a file (inferred: text, sentence, premise, ...)")
    parser.add_argument("--text_pair_column", help="second text of pair models (inferred: sentence2, hypothesis)")
    parser.add_argument("--label_column",
                        help="label column of a file (inferred: label, ...); a label is a class name of the model "
                             "(its config's id2label), or a class id 0..N-1 when no class name is an integer")


def _read_file(args: argparse.Namespace) -> tuple[dict[str, list], int, list[int] | None]:
    """Texts and raw labels of a data file (`hf_attn_at.data.custom.read_file`), its number of rows and the rows
    of the `--max_test_samples` sample (`None`: all)."""
    from ..data.custom import read_file
    from ..data.processing import sample_indices

    ds, _ = read_file(args.dataset_dir, args.text_column, args.text_pair_column, args.label_column, split=args.split)
    rows = sample_indices(len(ds), args.max_test_samples, args.seed)
    return (ds if rows is None else ds.select(rows)).to_dict(), len(ds), rows


def _label_key(value: Any) -> str | None:
    """A raw label as a class name, integers in decimal (`1`, `1.0`, `"01"` give `"1"`); `None` for other types."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else None
    if isinstance(value, str):
        return str(int(value)) if _INT.fullmatch(value.strip()) else value
    return None


def _label_ids(values: list[Any], config: Any, model_dir: str) -> list[int]:
    """Raw labels as the model's class ids.

    A label is one of the class names of `config.id2label`, compared as strings (integers in decimal). When
    none of the class names is an integer, an integer label that is not a name is a class id
    `0..num_labels - 1`. When some are (a model trained on labels `1`/`2`), labels are names only, so `1`
    never silently means id 1. Any other value raises a `ValueError` naming it and the allowed labels.
    """
    names = {str(name): int(i) for i, name in config.id2label.items()}
    ids_allowed = not any(_INT.fullmatch(name) for name in names)
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
        allowed = (f"its class names {list(names)} or ids 0..{config.num_labels - 1}" if ids_allowed else
                   f"its class names {list(names)} (ids are not accepted: the names are integers themselves)")
        raise ValueError(f"--dataset_dir labels {unknown[:10]}{' ...' if len(unknown) > 10 else ''} are not "
                         f"classes of {model_dir}: labels must be {allowed}")
    return ids


def _load_tokenized(path: Path, split: str, max_samples: int | None, seed: int):
    """A split of a tokenized `save_to_disk` folder, its number of rows and the rows of the seeded sample."""
    from datasets import DatasetDict, load_from_disk

    from ..data.custom import FORMATS
    from ..data.processing import sample_indices

    try:
        dataset = load_from_disk(str(path))
    except FileNotFoundError as err:
        raise ValueError(f"--dataset_dir {path} is a folder but not a `save_to_disk` dataset: give a tokenized "
                         f"`save_to_disk` folder or a data file ({', '.join(FORMATS)})") from err
    if isinstance(dataset, DatasetDict):
        if split not in dataset:
            raise ValueError(f"split {split!r} is not in {path}: it has {list(dataset)}")
        dataset = dataset[split]
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
    except (OSError, ValueError) as err:
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


def main(argv: list[str] | None = None) -> int:
    """Run `explain` on the arguments `argv` (default: `sys.argv[1:]` without the `explain` verb)."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["explain"]:
        argv = argv[1:]
    args = make_parser().parse_args(argv)
    return run(args)


def model_labels(args: argparse.Namespace) -> list[str]:
    """`--labels`, or the folder names of `--model_name_or_path`: one distinct name per model."""
    labels = args.labels or [Path(p).name for p in args.model_name_or_path]
    if len(labels) != len(args.model_name_or_path):
        raise ValueError(f"--labels needs one name per model: {len(args.model_name_or_path)} models, got {labels}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"--labels must be distinct, got {labels}")
    return labels


def load_models_and_data(
    args: argparse.Namespace, labels: list[str]
) -> tuple[dict[str, tuple[Any, Any, Any]], dict[str, dict[str, Any]], int, list[int] | None]:
    """The models of `--model_name_or_path` and the data of `--dataset_dir` (a data file tokenized with each model's
    tokenizer, labels mapped to its class ids; or a tokenized folder), sampled by `--max_test_samples`/`--seed`.

    Returns `({label: (model, tokenizer, dataset)}, {label: model_info}, rows in the split, sampled rows or None)`.
    """
    import hf_attn_at  # noqa: F401  (registers the models with the Auto classes)

    from ..data.custom import FORMATS

    data_path = Path(args.dataset_dir)
    if not data_path.exists():
        suffix = data_path.suffix.lower()
        kind = "file" if suffix in FORMATS else "file or folder" if suffix else "folder"
        raise FileNotFoundError(f"--dataset_dir {data_path}: no such {kind}; expected a data file "
                                f"({', '.join(FORMATS)}) or a tokenized `save_to_disk` folder")
    raw = tokenized = None
    if data_path.is_file():
        raw, num_rows, rows = _read_file(args)
    else:
        tokenized, num_rows, rows = _load_tokenized(data_path, args.split, args.max_test_samples, args.seed)

    inputs, models = {}, {}
    for label, model_dir in zip(labels, args.model_name_or_path, strict=True):
        tokenizer, model = _load_model(model_dir)
        models[label] = model_info(model_dir, model.config)
        dataset = tokenized
        if raw is not None:
            encoded = tokenizer(raw["text"], raw.get("text_pair"))
            dataset = {"input_ids": encoded["input_ids"], "label": _label_ids(raw["label"], model.config, model_dir)}
            if "text_pair" in raw:
                dataset["token_type_ids"] = encoded["token_type_ids"]
        inputs[label] = model, tokenizer, dataset
    return inputs, models, num_rows, rows


def run(args: argparse.Namespace) -> int:
    """Explain every model over the dataset and write the report; print a summary table.

    Every input is checked and every model loaded before the first one is explained.
    """
    from .evaluate import explain_model
    from .report import write_report

    labels = model_labels(args)
    for old, new in RENAMED_FLAGS.items():
        if getattr(args, old) is not None:
            raise ValueError(f"--{old} is now --{new}: pass --{new} {getattr(args, old)}")
    for flag, value, least in (("--max_test_samples", args.max_test_samples, 1), ("--batch_size", args.batch_size, 1),
                               ("--num_examples", args.num_examples, 0), ("--max_tokens", args.max_tokens, 1)):
        if value is not None and value < least:
            raise ValueError(f"{flag} must be >= {least}, got {value}")
    epsilon_runs = read_epsilon_runs(args.epsilon_runs) if args.epsilon_runs else None
    inputs, models, num_rows, rows = load_models_and_data(args, labels)
    runs = {
        label: explain_model(model, tokenizer, dataset, batch_size=args.batch_size, methods=args.methods,
                             max_tokens=args.max_tokens)
        for label, (model, tokenizer, dataset) in inputs.items()
    }
    data = {"dataset": args.dataset_dir, "split": args.split, "num_rows": num_rows,
            "max_test_samples": args.max_test_samples, "seed": args.seed, "rows": rows}
    report = write_report(runs, args.output_dir, epsilon_runs=epsilon_runs, num_examples=args.num_examples,
                          select=args.select, seed=args.seed, data=data, models=models)

    print(f"{'model':<16}{'method':<22}{'accuracy':>10}{'pearson':>18}{'kendall':>18}")
    for label, result in runs.items():
        s = result["summary"]
        for method in args.methods:
            print(f"{label:<16}{method:<22}{s['accuracy']:>10.4f}"
                  f"{s[f'{method}_pearson_mean']:>10.4f} ± {s[f'{method}_pearson_std']:.3f}"
                  f"{s[f'{method}_kendall_mean']:>10.4f} ± {s[f'{method}_kendall_std']:.3f}")
    print(f"report: {report}")
    return 0


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
