"""`hf-attn-at prepare`: load a task (or your own data) as `train` does, build its tokenizer and save both.

    hf-attn-at prepare --task_name sst --data_source local --data_dir ../shared/data --output_dir data/sst
    hf-attn-at prepare --train_file reviews.csv --text_column review --output_dir data/reviews

The data flags are `train`'s. The tokenized `DatasetDict` goes to OUTPUT_DIR (`save_to_disk`) with its tokenizer
(`save_pretrained`); `explain --prepared_dir OUTPUT_DIR` reads it. Split sizes and label counts are printed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..arguments import DataArguments
from .common import CommandParser, LoggingArguments, check_output_dir, parse

# Flags of the former `python -m hf_attn_at.data prepare` -> what to use now.
RENAMED = {
    "--source": "--data_source",
    "--no_filters": "nothing: prepare applies the task's length filters, as train does",
}


@dataclass
class PrepareArguments:
    """Where `prepare` saves, and the seed of its samples."""

    output_dir: str = field(metadata={"help": "Where to save the dataset and its tokenizer."})
    seed: int = field(
        default=42, metadata={"help": "As `train`'s --seed: seeds the validation split carved from --train_file "
                                      "and the --max_train_samples sample."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Write into a non-empty --output_dir (its dataset and tokenizer files are "
                                         "replaced)."}
    )

    def __post_init__(self):
        check_output_dir(self.output_dir, self.overwrite_output_dir, "its dataset and tokenizer files")


def make_parser() -> CommandParser:
    return CommandParser((DataArguments, PrepareArguments, LoggingArguments), prog="hf-attn-at prepare", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Prepare the data of `argv` and save it; returns the exit status."""
    from ..data import load_data

    data_args, prepare_args, _ = parse(make_parser(), argv or [], RENAMED, positional="--task_name")
    loaded = load_data(data_args, prepare_args.seed)
    dsd, tokenizer = loaded.dataset, loaded.tokenizer
    dsd.save_to_disk(prepare_args.output_dir)
    tokenizer.save_pretrained(prepare_args.output_dir)
    print(f"{data_args.dataset_label}: vocabulary {len(tokenizer)}, saved to {prepare_args.output_dir}")
    for split, ds in dsd.items():
        names = ds.features["label"].names
        counts = Counter(ds["label"])
        print(f"  {split}: {len(ds)} examples; labels " +
              ", ".join(f"{names[i] if i >= 0 else 'unlabelled'} {counts[i]}" for i in sorted(counts)))
    return 0
