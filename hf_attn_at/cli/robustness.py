"""`hf-attn-at robustness`: trained models under test-time attacks on attention and word embeddings, and Jain &
Wallace's (2019) permutation and adversarial-attention experiments; writes OUT/robustness.json and robustness.md.

    hf-attn-at robustness --model_name_or_path runs/sst/vanilla runs/sst/attention_at \
        --task_name sst --data_source local --data_dir ../shared/data --epsilons 0 0.5 1 2 4 \
        --output_dir reports/sst_robustness

The models and data flags are those of `explain`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..robustness import ATTACKS
from .common import CommandParser, EvaluationDataArguments, LoggingArguments, parse
from .explain import RENAMED, ModelsArguments


@dataclass
class RobustnessArguments:
    """The radii and the settings of the attacks (checked by `robustness.check_settings`)."""

    epsilons: list[float] = field(
        default_factory=lambda: [0, 0.5, 1, 2, 4], metadata={"help": "L2 radii ε of the attacks (distinct, >= 0)."}
    )
    attacks: list[str] = field(
        default_factory=lambda: list(ATTACKS), metadata={"help": "What to run.", "choices": list(ATTACKS)}
    )
    num_steps: int = field(default=10, metadata={"help": "PGD steps K."})
    step_size: float = field(default=0.25, metadata={"help": "PGD step as a fraction of ε."})
    tolerance: float | None = field(
        default=None, metadata={"help": "Bisection tolerance of the smallest flipping ε (default: 1%% of the largest ε)."}
    )
    no_bisection: bool = field(default=False, metadata={"help": "Skip the smallest flipping ε."})
    num_permutations: int = field(default=100, metadata={"help": "Permutations per example."})
    tvd_delta: float = field(
        default=0.01, metadata={"help": "Adversarial attention: the largest output change allowed (total variation)."}
    )
    adversarial_iterations: int = field(default=300, metadata={"help": "Adversarial attention: Adam steps."})
    attack_seed: int = field(default=0, metadata={"help": "Seeds the permutations and the adversarial start."})


def make_parser() -> CommandParser:
    return CommandParser((ModelsArguments, EvaluationDataArguments, RobustnessArguments, LoggingArguments),
                            prog="hf-attn-at robustness", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `robustness` on `argv`: check every input, load every model, then evaluate."""
    from ..interpret.inputs import load_models_and_data, model_labels
    from ..robustness import check_model, check_settings, evaluate_robustness, resolve_bisection

    models_args, data_args, args, _ = parse(make_parser(), argv or [], RENAMED)
    labels = model_labels(models_args.model_name_or_path, models_args.labels)
    settings = {key: getattr(args, key) for key in ("epsilons", "attacks", "num_steps", "step_size", "tolerance",
                                                    "num_permutations", "tvd_delta", "adversarial_iterations")}
    settings["batch_size"] = models_args.batch_size
    settings["bisection"], settings["seed"] = not args.no_bisection, args.attack_seed
    check_settings(**settings)
    settings["bisection"], settings["tolerance"] = resolve_bisection(
        args.epsilons, args.attacks, args.tolerance, not args.no_bisection)
    if args.tolerance is not None and not settings["bisection"]:
        why = ("--no_bisection" if args.no_bisection else "no radius > 0 in --epsilons"
               if max(args.epsilons) == 0 else "no attention or word attack in --attacks")
        raise ValueError(f"--tolerance {args.tolerance} is the tolerance of the bisection of the smallest "
                         f"flipping ε, which does not run ({why}): drop --tolerance")
    inputs, _, num_rows, rows = load_models_and_data(models_args.model_name_or_path, labels, data_args)
    for model, _, _ in inputs.values():
        check_model(model)
    models: dict[str, Any] = {}
    for label, (model, _, dataset) in inputs.items():
        start = time.perf_counter()
        models[label] = evaluate_robustness(model, dataset, **settings)
        models[label]["seconds"] = round(time.perf_counter() - start, 1)
    output_dir = Path(models_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {"settings": {**settings, "data": data_args.description, "split": data_args.split,
                           "num_rows": num_rows, "max_test_samples": data_args.max_test_samples,
                           "sample_seed": data_args.seed, "rows": rows}, "models": models}
    (output_dir / "robustness.json").write_text(json.dumps(report, indent=2) + "\n")
    summary = markdown_summary(models)
    (output_dir / "robustness.md").write_text(summary)
    print(summary)
    return 0


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown_summary(models: dict[str, dict[str, Any]]) -> str:
    """A short markdown report of `evaluate_robustness` results per model label."""
    lines = ["# Robustness", ""]
    for attack, title in (("attention", "Attention-score PGD"), ("word", "Word-embedding PGD")):
        rows = {label: result[attack] for label, result in models.items() if attack in result}
        if not rows:
            continue
        epsilons = next(iter(rows.values()))["epsilons"]
        lines += [f"## {title}: accuracy (flip rate) at ε", "",
                  "| model | " + " | ".join(f"ε={e:g}" for e in epsilons) + " | median min flip ε | no flip |",
                  "|---" * (len(epsilons) + 3) + "|"]
        for label, row in rows.items():
            cells = [f"{a:.3f} ({f:.3f})" for a, f in zip(row["accuracy"], row["flip_rate"], strict=True)]
            flip = row.get("min_flip_epsilon", {})
            lines.append(f"| {label} | " + " | ".join(cells) +
                         f" | {_number(flip.get('median'))} | {flip.get('num_no_flip', '–')} |")
        lines.append("")
    if any("permutation" in r or "adversarial_attention" in r for r in models.values()):
        lines += ["## Jain & Wallace (2019)", "",
                  "| model | permutation: median TVD | adversarial: mean JSD | median JSD | satisfying TVD ≤ δ |",
                  "|---|---|---|---|---|"]
        for label, result in models.items():
            permutation, adversarial = result.get("permutation", {}), result.get("adversarial_attention", {})
            satisfied = adversarial.get("fraction_satisfied")
            lines.append(f"| {label} | {_number(permutation.get('median_tvd'))} | "
                         f"{_number(adversarial.get('mean_jsd'))} | {_number(adversarial.get('median_jsd'))} | "
                         f"{_number(satisfied)} |")
        lines.append("")
    return "\n".join(lines)

