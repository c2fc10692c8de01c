"""Prepare a task and save it: ``python -m hf_attn_at.data prepare <name> --output_dir DIR``.

Example::

    python -m hf_attn_at.data prepare sst --source local --data_dir ../shared/data --output_dir /tmp/sst

The tokenized `DatasetDict` goes to ``DIR`` (``save_to_disk``) with its tokenizer
(``save_pretrained``); split sizes and label counts are printed.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter

from .registry import SOURCES, TASKS


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m hf_attn_at.data``."""
    parser = argparse.ArgumentParser(prog="python -m hf_attn_at.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="load, tokenize and save a task")
    prepare.add_argument("name", choices=list(TASKS), help="task name")
    prepare.add_argument("--source", choices=SOURCES, default="hub", help="Hub copy or local original files")
    prepare.add_argument("--data_dir", default=None, help="folder of the local files (source=local)")
    prepare.add_argument("--output_dir", required=True, help="where to save the dataset and tokenizer")
    prepare.add_argument("--min_df", type=int, default=None, help="vocabulary min document frequency "
                         "(default: the SPEC's value for the task)")
    prepare.add_argument("--babi_size", choices=("1k", "10k"), default=None, help="bAbI version (default 10k)")
    prepare.add_argument("--no_filters", action="store_true", help="skip the SPEC's length filters")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .processing import prepare_task

    options = {"apply_filters": not args.no_filters}
    if args.babi_size is not None:
        options["babi_size"] = args.babi_size
    dsd, tokenizer = prepare_task(args.name, source=args.source, data_dir=args.data_dir, min_df=args.min_df,
                                  **options)
    dsd.save_to_disk(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    print(f"{args.name}: vocabulary {len(tokenizer)}, saved to {args.output_dir}")
    for split, ds in dsd.items():
        names = ds.features["label"].names
        counts = Counter(ds["label"])
        print(f"  {split}: {len(ds)} examples; labels " +
              ", ".join(f"{names[i]} {counts[i]}" for i in sorted(counts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
