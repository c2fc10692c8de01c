"""What every `hf-attn-at` verb shares: the `--log_level` flag, the data flags of the verbs that evaluate saved models
(`explain`, `robustness`), and the refusal of flags that were renamed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser
from transformers.training_args import trainer_log_levels

from ..arguments import BUILTIN_TASK_FLAGS, changed_flags
from ..data import SOURCES, TASKS
from ..data.processing import EVAL_SAMPLE_SEED

# `TrainingArguments.log_level`'s values; "passive": hf_attn_at logs INFO, the other libraries keep their levels.
LOG_LEVELS = tuple(trainer_log_levels)


@dataclass
class LoggingArguments:
    """`--log_level` of the verbs without `TrainingArguments` (which has the same flag)."""

    log_level: str = field(
        default="passive",
        metadata={"help": "Level of hf_attn_at's and transformers' loggers ('passive': INFO for hf_attn_at, "
                          "transformers' own default).", "choices": list(LOG_LEVELS)},
    )


@dataclass
class EvaluationDataArguments:
    """The examples saved models are evaluated on: one split of a built-in task or of a prepared folder, or a file.

    The flags mean what they mean in `train`: `--task_name/--data_source/--data_dir/--babi_size` load a built-in
    task, `--test_file` and the column flags read your own file, `--max_test_samples` takes a seeded sample.
    """

    test_file: str | None = field(
        default=None, metadata={"help": "Your test data: a csv, tsv, json, jsonl or parquet file, tokenized with each "
                                        "model's tokenizer; labels are class names (or ids) of the models."}
    )
    prepared_dir: str | None = field(
        default=None, metadata={"help": "A folder written by `hf-attn-at prepare` (already tokenized)."}
    )
    task_name: str | None = field(
        default=None, metadata={"help": "A built-in task, tokenized with each model's tokenizer.",
                                "choices": list(TASKS)}
    )
    data_source: str = field(
        default="hub", metadata={"help": "'hub' (datasets.load_dataset) or 'local' (original files under "
                                         "--data_dir).", "choices": list(SOURCES)}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with sst/, imdb/, ... for --data_source local (e.g. ../shared/data)."}
    )
    babi_size: str = field(default="10k", metadata={"help": "bAbI tasks: '10k' (the paper's) or '1k'.",
                                                     "choices": ["10k", "1k"]})
    split: str = field(
        default="test",
        metadata={"help": "The split evaluated: of --task_name or --prepared_dir, or a --test_file's "
                          "`exp_split` value (a file without that column is the test split)."},
    )
    text_column: str | None = field(
        default=None, metadata={"help": "Text column of --test_file (inferred: text, sentence, premise, ...)."}
    )
    text_pair_column: str | None = field(
        default=None, metadata={"help": "Second text of pair models (inferred: sentence2, hypothesis, ...)."}
    )
    label_column: str | None = field(
        default=None, metadata={"help": "Label column of --test_file (inferred: label, ...)."}
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Evaluate a random sample of N examples of --split (seeded by --seed), never "
                                        "its first rows."}
    )
    seed: int = field(
        default=EVAL_SAMPLE_SEED,
        metadata={"help": "Seed of the --max_test_samples sample (default: the seed `train` samples evaluation "
                          "splits with)."},
    )

    def __post_init__(self):
        given = [f"--{name}" for name in ("test_file", "prepared_dir", "task_name") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of --test_file, --prepared_dir or --task_name, got {given or 'none'}")
        if self.test_file is None:
            columns = [f"--{n}" for n in ("text_column", "text_pair_column", "label_column") if getattr(self, n)]
            if columns:
                raise ValueError(f"{columns[0]} names a column of --test_file; it cannot be used with {given[0]}")
        if self.task_name is None:  # the built-in tasks' flags would be ignored
            for name, value in changed_flags(self, BUILTIN_TASK_FLAGS):
                raise ValueError(f"--{name} {value} is for a built-in --task_name; it is not used "
                                 f"with {given[0]}: drop --{name}")
        if self.task_name is not None and self.data_source == "local" and self.data_dir is None:
            raise ValueError("--data_source local needs --data_dir (the folder holding sst/, imdb/, ...)")
        if self.max_test_samples is not None and self.max_test_samples < 1:
            raise ValueError(f"--max_test_samples must be a positive integer, got {self.max_test_samples}")

    @property
    def description(self) -> str:
        """What is evaluated, for reports: the file, folder or task (with its source)."""
        if self.task_name is not None:
            return f"{self.task_name} ({self.data_source})"
        return self.test_file or self.prepared_dir


def check_output_dir(output_dir: str, overwrite: bool, replaced: str) -> None:
    """`ValueError` in one line when `output_dir` is a file, or a non-empty folder without `overwrite`
    (`--overwrite_output_dir`), whose files the verb would replace (`replaced` says which, for the message)."""
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output_dir {output_dir} is a file: give a folder")
    present = sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
    if present and not overwrite:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise ValueError(
            f"--output_dir {output_dir} is not empty ({shown}): give a new folder, or --overwrite_output_dir "
            f"to replace {replaced}"
        )


class CommandParser(HfArgumentParser):
    """An `HfArgumentParser` whose errors (a missing flag, a bad choice or type) raise a `ValueError` that
    `hf-attn-at` prints as one line, instead of printing the usage and exiting."""

    def error(self, message: str):
        raise ValueError(message)


def refuse_renamed(argv: Sequence[str], renamed: Mapping[str, str]) -> None:
    """Raise a `ValueError` naming the new flag when `argv` holds a flag of `renamed` (old flag -> its new name),
    spelt with `_` or `-`."""
    for arg in argv:
        flag = arg.split("=", 1)[0]
        old = flag[:2] + flag[2:].replace("-", "_")  # `--dataset-dir` too, as argparse takes both spellings
        if old in renamed:
            raise ValueError(f"{old} is no longer a flag: use {renamed[old]}")


def parse(
    parser: CommandParser, argv: Sequence[str], renamed: Mapping[str, str] | None = None,
    positional: str | None = None,
) -> tuple:
    """The dataclasses of `parser` from `argv`; `ValueError` for a `renamed` flag (old flag -> what to use) and for a
    leading positional argument (`positional`: the flag that takes its value now)."""
    argv = list(argv)
    refuse_renamed(argv, renamed or {})
    if argv and not argv[0].startswith("-"):
        hint = f"give it as {positional} {argv[0]}" if positional else "every value follows its --flag"
        raise ValueError(f"{parser.prog} takes no positional argument, got {argv[0]!r}: {hint}")
    return parser.parse_args_into_dataclasses(args=argv)
