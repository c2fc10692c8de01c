"""`hf-attn-at robustness`: trained models under test-time attacks on attention and word embeddings, and Jain &
Wallace's (2019) permutation and adversarial-attention experiments; writes OUT/robustness.json and robustness.md.

Example:

    hf-attn-at robustness --model_name_or_path runs/sst/vanilla runs/sst/attention_at \
        --dataset_dir ../shared/data/sst/sst_dataset.csv --split test --epsilons 0 0.5 1 2 4 \
        --output_dir reports/sst_robustness
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..data.processing import EVAL_SAMPLE_SEED
from ..interpret.command import add_data_arguments, load_models_and_data, model_labels
from ..robustness import ATTACKS, check_model, check_settings, evaluate_robustness


def make_parser() -> argparse.ArgumentParser:
    """The `robustness` arguments: the data flags of `explain`, the radii and the attack settings."""
    parser = argparse.ArgumentParser(prog="hf-attn-at robustness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", nargs="+", required=True, help="saved model folder(s)")
    parser.add_argument("--labels", nargs="+", help="a name per model for the report (default: folder names)")
    add_data_arguments(parser)
    parser.add_argument("--max_test_samples", type=int,
                        help="attack a seeded random sample of N examples of --split (the sampling of `train` "
                             "and `explain`); recorded in robustness.json")
    parser.add_argument("--seed", type=int, default=EVAL_SAMPLE_SEED, help="seed of the --max_test_samples sample")
    parser.add_argument("--output_dir", required=True, help="report folder")
    parser.add_argument("--epsilons", nargs="+", type=float, default=[0, 0.5, 1, 2, 4],
                        help="L2 radii ε of the attacks (distinct, >= 0)")
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS), choices=ATTACKS, help="what to run")
    parser.add_argument("--num_steps", type=int, default=10, help="PGD steps K")
    parser.add_argument("--step_size", type=float, default=0.25, help="PGD step as a fraction of ε")
    parser.add_argument("--tolerance", type=float,
                        help="bisection tolerance of the smallest flipping ε (default: 1%% of the largest ε)")
    parser.add_argument("--no_bisection", action="store_true", help="skip the smallest flipping ε")
    parser.add_argument("--num_permutations", type=int, default=100, help="permutations per example")
    parser.add_argument("--tvd_delta", type=float, default=0.01,
                        help="adversarial attention: the largest output change allowed (total variation)")
    parser.add_argument("--adversarial_iterations", type=int, default=300, help="adversarial attention: Adam steps")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--attack_seed", type=int, default=0, help="seeds the permutations and the adversarial start")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `robustness` on `argv` (default: `sys.argv[1:]`): check every input, load every model, then evaluate."""
    args = make_parser().parse_args(sys.argv[1:] if argv is None else argv)
    labels = model_labels(args)
    if args.max_test_samples is not None and args.max_test_samples < 1:
        raise ValueError(f"--max_test_samples must be >= 1, got {args.max_test_samples}")
    settings = {key: getattr(args, key) for key in ("epsilons", "attacks", "num_steps", "step_size", "tolerance",
                                                    "num_permutations", "tvd_delta", "adversarial_iterations",
                                                    "batch_size")}
    settings["bisection"], settings["seed"] = not args.no_bisection, args.attack_seed
    check_settings(**settings)
    inputs, _, num_rows, rows = load_models_and_data(args, labels)
    for model, _, _ in inputs.values():
        check_model(model)
    models: dict[str, Any] = {}
    for label, (model, _, dataset) in inputs.items():
        start = time.perf_counter()
        models[label] = evaluate_robustness(model, dataset, **settings)
        models[label]["seconds"] = round(time.perf_counter() - start, 1)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {"settings": {**settings, "dataset_dir": args.dataset_dir, "split": args.split,
                                "num_rows": num_rows, "max_test_samples": args.max_test_samples,
                                "sample_seed": args.seed, "rows": rows}, "models": models}
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


if __name__ == "__main__":
    sys.exit(main())
