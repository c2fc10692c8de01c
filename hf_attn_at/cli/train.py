"""`hf-attn-at train`: train one model on one task with one method; flags are the dataclass fields.

    hf-attn-at train --task_name sst --data_source local --data_dir ../shared/data \\
        --adv_method attention_iat --adv_epsilon 1.0 --output_dir runs/sst-iat --num_train_epochs 3

`--eval_robustness` also evaluates robustness on the test split (`results.json`: `robustness`; docs/ROBUSTNESS.md).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

from ..arguments import DataArguments, ModelArguments
from ..robustness import RobustnessArguments
from ..training_args import AdversarialTrainingArguments
from .common import CommandParser


def make_parser() -> CommandParser:
    return CommandParser(
        (ModelArguments, DataArguments, AdversarialTrainingArguments, RobustnessArguments), prog="hf-attn-at train", description=__doc__
    )


def main(argv: Sequence[str] | None = None) -> int:
    from ..experiment import run_experiment

    argv = list(argv or [])
    model_args, data_args, training_args, robustness_args = make_parser().parse_args_into_dataclasses(args=argv)
    robustness_args.check_used()
    command = "hf-attn-at train " + " ".join(shlex.quote(arg) for arg in argv)
    record = run_experiment(model_args, data_args, training_args, robustness_args, command=command)
    print(json.dumps({"metrics": record.metrics, "agreement": record.agreement}, indent=2))
    print(f"saved to {training_args.output_dir}")
    return 0
