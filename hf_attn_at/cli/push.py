"""`hf-attn-at push`: export a run folder with its model card and upload it to the Hub (or write it with --dry_run).

    hf-attn-at push --run_dir runs/sst-iat --repo_id ns/sst-bilstm-iat --dry_run export/

The card is built from the run's record (`results.json`, `training_args.json`, `metrics.json`); the `--adv_*` and
`--task_label` flags override what it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..hub import DEFAULT_COMMIT_MESSAGE, check_repo_id, load_tokenizer, push_to_hub
from ..model_card import METHODS, card_from_run_dir
from ..runs import load_run_model
from .common import CommandParser, LoggingArguments, parse

# Flags of the former `python -m hf_attn_at.hub push` -> what to use now.
RENAMED = {"--dataset_name": "--task_label (the data's name on the card)"}


@dataclass
class PushArguments:
    """What to upload, where, and the card's overrides."""

    run_dir: str = field(metadata={"help": "Folder with a saved model, its tokenizer and the run's record."})
    repo_id: str = field(metadata={"help": "The Hub model repo, namespace/name."})
    private: bool = field(default=False, metadata={"help": "Create the repo as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to commit to (created when missing)."})
    dry_run: str | None = field(default=None, metadata={"help": "Write the upload to this folder; upload nothing."})
    commit_message: str = field(default=DEFAULT_COMMIT_MESSAGE, metadata={"help": "The Hub commit's message."})
    adv_method: str | None = field(
        default=None, metadata={"help": "The card's method (overrides training_args.json).", "choices": list(METHODS)}
    )
    adv_epsilon: float | None = field(default=None, metadata={"help": "Overrides training_args.json."})
    adv_lambda: float | None = field(default=None, metadata={"help": "Overrides training_args.json."})
    adv_num_neighbors: int | None = field(default=None, metadata={"help": "Overrides training_args.json."})
    task_label: str | None = field(default=None, metadata={"help": "The card's dataset name (overrides the record)."})


def make_parser() -> CommandParser:
    return CommandParser((PushArguments, LoggingArguments), prog="hf-attn-at push", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Export and upload (or `--dry_run`) the run folder of `argv`; returns the exit status."""
    args, _ = parse(make_parser(), argv or [], RENAMED, positional="--run_dir")
    check_repo_id(args.repo_id)
    run_dir = Path(args.run_dir)
    model = load_run_model(run_dir)
    card = card_from_run_dir(
        run_dir, model, repo_id=args.repo_id, method=args.adv_method, epsilon=args.adv_epsilon,
        lambda_=args.adv_lambda, num_neighbors=args.adv_num_neighbors, dataset_name=args.task_label,
    )
    result = push_to_hub(
        model, args.repo_id, tokenizer=load_tokenizer(run_dir), card=card, private=args.private,
        revision=args.revision, dry_run_dir=args.dry_run, commit_message=args.commit_message,
    )
    if result is None:
        print(f"dry run: wrote {', '.join(sorted(p.name for p in Path(args.dry_run).iterdir()))} to {args.dry_run}")
    else:
        print(f"uploaded {args.run_dir} to {result.commit_url}")
    return 0
