"""Prepare a task and save it: ``python -m hf_attn_at.data prepare <name> --output_dir DIR``.

Example::

    python -m hf_attn_at.data prepare sst --source local --data_dir ../shared/data --output_dir /tmp/sst
    python -m hf_attn_at.data prepare --train_file reviews.csv --text_column review --output_dir /tmp/reviews

The tokenized `DatasetDict` goes to ``DIR`` (``save_to_disk``) with its tokenizer
(``save_pretrained``); split sizes and label counts are printed.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from dataclasses import fields

from .registry import SOURCES, TASKS


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m hf_attn_at.data``."""
    parser = argparse.ArgumentParser(prog="python -m hf_attn_at.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="load, tokenize and save a task")
    prepare.add_argument("name", nargs="?", choices=list(TASKS), default=None,
                         help="task name (or your own data with --train_file / --dataset_name)")
    prepare.add_argument("--source", choices=SOURCES, default="hub", help="Hub copy or local original files")
    prepare.add_argument("--data_dir", default=None, help="folder of the local files (source=local)")
    prepare.add_argument("--output_dir", required=True, help="where to save the dataset and tokenizer")
    prepare.add_argument("--min_df", type=int, default=None, help="vocabulary min document frequency "
                         "(default: the task's, docs/METHODS.md#data-protocol)")
    prepare.add_argument("--babi_size", choices=("1k", "10k"), default=None, help="bAbI version (default 10k)")
    prepare.add_argument("--no_filters", action="store_true", help="skip the length filters of docs/METHODS.md#data-protocol")
    custom = prepare.add_argument_group("your own data (see docs/DATA.md)")
    for flag in ("train_file", "validation_file", "test_file", "dataset_name", "dataset_config_name", "text_column",
                 "text_pair_column", "label_column"):
        custom.add_argument(f"--{flag}", default=None)
    custom.add_argument("--validation_split_percentage", type=int, default=10,
                        help="percent of train held out as validation when there is none")
    custom.add_argument("--seed", type=int, default=42, help="seed of that split")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..arguments import CustomDataArguments
    from .custom import load_custom
    from .processing import prepare_dataset, prepare_task

    custom = CustomDataArguments(**{f.name: getattr(args, f.name) for f in fields(CustomDataArguments)
                                    if hasattr(args, f.name)})
    custom.check_custom()
    if custom.is_custom:
        if args.name is not None:
            raise ValueError(f"give either a task name ({args.name!r}) or --train_file/--dataset_name, not both")
        name = custom.custom_label
        raw = load_custom(**{k: getattr(custom, k) for k in (
            "train_file", "validation_file", "test_file", "dataset_name", "dataset_config_name", "text_column",
            "text_pair_column", "label_column", "validation_split_percentage")}, seed=args.seed)
        dsd, tokenizer = prepare_dataset(raw, min_df=args.min_df or 1, name=name)
    else:
        if args.name is None:
            raise ValueError(f"give a task name ({', '.join(TASKS)}) or --train_file/--dataset_name")
        name = args.name
        options = {"apply_filters": not args.no_filters}
        if args.babi_size is not None:
            options["babi_size"] = args.babi_size
        dsd, tokenizer = prepare_task(args.name, source=args.source, data_dir=args.data_dir, min_df=args.min_df,
                                      **options)
    dsd.save_to_disk(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    print(f"{name}: vocabulary {len(tokenizer)}, saved to {args.output_dir}")
    for split, ds in dsd.items():
        names = ds.features["label"].names
        counts = Counter(ds["label"])
        print(f"  {split}: {len(ds)} examples; labels " +
              ", ".join(f"{names[i]} {counts[i]}" for i in sorted(counts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
