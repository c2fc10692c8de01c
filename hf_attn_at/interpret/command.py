"""`python -m hf_attn_at.interpret explain`: attention vs importance for saved models, as a report folder.

Example:

    python -m hf_attn_at.interpret explain \
        --model_name_or_path runs/sst/vanilla runs/sst/attention_at runs/sst/attention_iat \
        --labels vanilla at iat --dataset_dir ../shared/data/sst/sst_dataset.csv --split test \
        --output_dir reports/sst

    # models trained on your own data: the same file formats and column flags as `train`
    python -m hf_attn_at.interpret explain --model_name_or_path runs/reviews/vanilla runs/reviews/iat \
        --dataset_dir reviews_test.jsonl --text_column body --label_column stars --output_dir reports/reviews
"""

from __future__ import annotations

import argparse
import json
import reprlib
from pathlib import Path
from typing import Any

from .importance import IMPORTANCE_METHODS


def make_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `explain` arguments, added to `parser` (for a CLI's subcommand) or to a new parser."""
    parser = parser or argparse.ArgumentParser(prog="python -m hf_attn_at.interpret explain", description=__doc__,
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", nargs="+", required=True, help="saved model folder(s)")
    parser.add_argument("--labels", nargs="+", help="a name per model for the report (default: folder names)")
    parser.add_argument("--dataset_dir", required=True,
                        help="a `save_to_disk` folder already tokenized (input_ids, [token_type_ids], label), "
                             "or a csv/tsv/json/jsonl/parquet file of texts and labels (e.g. your --test_file), "
                             "tokenized with each model's tokenizer")
    parser.add_argument("--split", default="test", help="DatasetDict split, or the file's `exp_split` value")
    parser.add_argument("--text_column", help="text column of a file (inferred: text, sentence, premise, ...)")
    parser.add_argument("--text_pair_column", help="second text of pair models (inferred: sentence2, hypothesis)")
    parser.add_argument("--label_column", help="label column of a file (inferred: label, ...)")
    parser.add_argument("--output_dir", required=True, help="report folder")
    parser.add_argument("--max_examples", type=int, help="only the first N examples")
    parser.add_argument("--methods", nargs="+", default=["gradient"], choices=sorted(IMPORTANCE_METHODS),
                        help="importance methods to compare attention with")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--num_heatmaps", type=int, default=4, help="examples drawn as heat maps")
    parser.add_argument("--epsilon_runs", help="json list of {method, epsilon, accuracy, pearson} for the ε figure")
    return parser


def _read_file(args: argparse.Namespace) -> dict[str, list]:
    """Texts and raw labels of a data file (`hf_attn_at.data.custom.read_file`), the first `--max_examples`."""
    from ..data.custom import read_file

    ds, _ = read_file(args.dataset_dir, args.text_column, args.text_pair_column, args.label_column, split=args.split)
    if args.max_examples is not None:
        ds = ds.select(range(min(args.max_examples, len(ds))))
    return ds.to_dict()


def _label_ids(values: list[Any], config: Any, model_dir: str) -> list[int]:
    """Raw labels as the model's class ids: by name (`config.label2id`), else integers that are valid ids."""
    label2id = {str(k): v for k, v in (config.label2id or {}).items()}
    ids = []
    for value in values:
        if str(value) in label2id:
            ids.append(label2id[str(value)])
        elif isinstance(value, int) and 0 <= value < config.num_labels:
            ids.append(value)
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and 0 <= int(value) < config.num_labels:
            ids.append(int(value))
        else:
            raise ValueError(f"label {value!r} is not a class of {model_dir}: its labels are {list(label2id)} "
                             f"(or ids 0..{config.num_labels - 1})")
    return ids


def _load_tokenized(path: Path, split: str, max_examples: int | None):
    from datasets import DatasetDict, load_from_disk

    dataset = load_from_disk(str(path))
    if isinstance(dataset, DatasetDict):
        if split not in dataset:
            raise ValueError(f"split {split!r} is not in {path}: it has {list(dataset)}")
        dataset = dataset[split]
    if "input_ids" not in dataset.column_names:
        raise ValueError(f"{path} is not tokenized: columns {dataset.column_names} lack `input_ids`")
    return dataset if max_examples is None else dataset.select(range(min(max_examples, len(dataset))))


def main(argv: list[str] | None = None) -> int:
    """Run `explain` on the arguments `argv` (default: `sys.argv[1:]` without the `explain` verb)."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["explain"]:
        argv = argv[1:]
    args = make_parser().parse_args(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Explain every model over the dataset and write the report; print a summary table."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import hf_attn_at  # noqa: F401  (registers the models with the Auto classes)

    from .evaluate import explain_model
    from .report import write_report

    labels = args.labels or [Path(p).name for p in args.model_name_or_path]
    if len(labels) != len(args.model_name_or_path):
        raise ValueError(f"--labels needs one name per model: {len(args.model_name_or_path)} models, got {labels}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"--labels must be distinct, got {labels}")
    if args.max_examples is not None and args.max_examples < 1:
        raise ValueError(f"--max_examples must be >= 1, got {args.max_examples}")
    epsilon_runs = read_epsilon_runs(args.epsilon_runs) if args.epsilon_runs else None
    data_path = Path(args.dataset_dir)
    raw = _read_file(args) if data_path.is_file() else None
    tokenized = None if raw is not None else _load_tokenized(data_path, args.split, args.max_examples)

    runs = {}
    for label, model_dir in zip(labels, args.model_name_or_path, strict=True):
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
        dataset = tokenized
        if raw is not None:
            encoded = tokenizer(raw["text"], raw.get("text_pair"))
            dataset = {"input_ids": encoded["input_ids"], "label": _label_ids(raw["label"], model.config, model_dir)}
            if "text_pair" in raw:
                dataset["token_type_ids"] = encoded["token_type_ids"]
        runs[label] = explain_model(model, tokenizer, dataset, batch_size=args.batch_size, methods=args.methods)
    report = write_report(runs, args.output_dir, epsilon_runs=epsilon_runs, num_examples=args.num_heatmaps)

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
    """The ε sweep in the file `path` (`--epsilon_runs`); a `ValueError` names the file and the expected format."""
    expected = ('expected a non-empty JSON list of {"method": str, "epsilon": number > 0, "accuracy": number, '
                '"pearson": number} objects')
    try:
        runs = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # missing, a folder, not UTF-8 or not JSON
        raise ValueError(f"--epsilon_runs {path!r}: {e}; {expected}") from e
    if not isinstance(runs, list) or not runs:
        raise ValueError(f"--epsilon_runs {path!r}: it holds {reprlib.repr(runs)}; {expected}")
    for i, run in enumerate(runs):
        fields = run if isinstance(run, dict) else {}
        numbers = [fields.get(key) for key in ("epsilon", "accuracy", "pearson")]
        if not (isinstance(fields.get("method"), str)
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers) and numbers[0] > 0):
            raise ValueError(f"--epsilon_runs {path!r}: entry {i} is {reprlib.repr(run)}; {expected}")
    return runs
