"""`hf-attn-at explain`: attention vs importance of saved models on the same examples, as a report folder.

    hf-attn-at explain --model_name_or_path runs/sst/vanilla runs/sst/attention_at runs/sst/attention_iat \\
        --labels vanilla at iat --task_name sst --data_source local --data_dir ../shared/data \\
        --max_test_samples 500 --select disagreement --num_examples 8 --output_dir reports/sst

    # models trained on your own data: the file formats and column flags of `train`
    hf-attn-at explain --model_name_or_path runs/reviews/vanilla runs/reviews/iat \\
        --test_file reviews_test.jsonl --text_column body --label_column stars --output_dir reports/reviews

The report folder holds `metrics.json`, `report.html` and figures. A BiLSTM-attention model is one row of the report;
a Transformers encoder (BERT, RoBERTa, MiniLM, ...) two: its `[CLS]` attention of the last layer (`MODEL · last_layer`)
and attention rollout (`MODEL · rollout`), each against gradient importance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..interpret.importance import IMPORTANCE_METHODS
from ..interpret.report import SELECTIONS
from .common import CommandParser, EvaluationDataArguments, LoggingArguments, check_output_dir, parse

# Flags of earlier versions -> what to use now.
RENAMED = {
    "--dataset_dir": "--test_file (a data file) or --prepared_dir (a folder written by `hf-attn-at prepare`)",
    "--max_examples": "--max_test_samples",
    "--num_heatmaps": "--num_examples",
}


@dataclass
class ModelsArguments:
    """The saved models compared, and their names in the report."""

    model_name_or_path: list[str] = field(metadata={"help": "Saved model folder(s)."})
    output_dir: str = field(metadata={"help": "Report folder."})
    labels: list[str] | None = field(
        default=None, metadata={"help": "A name per model for the report (default: the folder names)."}
    )
    batch_size: int = field(default=64, metadata={"help": "Examples per forward/backward."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Write into a non-empty --output_dir (its report files are replaced)."}
    )

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {self.batch_size}")
        check_output_dir(self.output_dir, self.overwrite_output_dir, "its report")


MAX_TOKENS = 5000


@dataclass
class ExplainArguments:
    """What `explain` compares and shows."""

    methods: list[str] = field(
        default_factory=lambda: ["gradient"],
        metadata={"help": "Importance methods to compare attention with (BiLSTM models).",
                  "choices": sorted(IMPORTANCE_METHODS)},
    )
    select: str = field(
        default="random",
        metadata={"help": "Which examples the report shows: random (seeded by --seed), misclassified (by some "
                          "model), lowest_agreement / highest_agreement (Pearson r averaged over the models), "
                          "disagreement (largest difference in r between models).", "choices": list(SELECTIONS)},
    )
    num_examples: int = field(default=4, metadata={"help": "Examples shown in the report (>= 0)."})
    max_tokens: int = field(
        default=MAX_TOKENS, metadata={"help": "Texts (each text of a pair) longer than this are explained on their "
                                              "first N tokens, with a warning; recorded in metrics.json (BiLSTM "
                                              "models)."}
    )
    epsilon_runs: str | None = field(
        default=None, metadata={"help": "A json list of {method, epsilon, accuracy, pearson} for the ε figure."}
    )

    def __post_init__(self):
        for flag, value, least in (("--num_examples", self.num_examples, 0), ("--max_tokens", self.max_tokens, 1)):
            if value < least:
                raise ValueError(f"{flag} must be >= {least}, got {value}")


def make_parser() -> CommandParser:
    return CommandParser((ModelsArguments, EvaluationDataArguments, ExplainArguments, LoggingArguments),
                            prog="hf-attn-at explain", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Explain every model of `argv` over the same examples, write the report and print a summary table.

    Every input is checked and every model loaded before the first one is explained.
    """
    from ..interpret.evaluate import explain_model
    from ..interpret.inputs import load_models_and_data, model_labels, read_epsilon_runs
    from ..interpret.report import write_report
    from ..interpret.transformer import explain_transformer_examples

    models_args, data_args, args, _ = parse(make_parser(), argv or [], RENAMED)
    labels = model_labels(models_args.model_name_or_path, models_args.labels)
    epsilon_runs = read_epsilon_runs(args.epsilon_runs) if args.epsilon_runs else None
    inputs, models, num_rows, rows = load_models_and_data(models_args.model_name_or_path, labels, data_args)
    data = {"dataset": data_args.description, "split": data_args.split, "num_rows": num_rows,
            "max_test_samples": data_args.max_test_samples, "seed": data_args.seed, "rows": rows}
    kinds = {label: model.config.model_type == "bilstm_attention" for label, (model, _, _) in inputs.items()}
    if len(set(kinds.values())) > 1:
        raise ValueError(f"explain compares BiLSTM-attention models or Transformers encoders, not both: "
                         f"BiLSTM {[k for k, v in kinds.items() if v]}, others {[k for k, v in kinds.items() if not v]}")

    if all(kinds.values()):
        runs = {
            label: explain_model(model, tokenizer, dataset, batch_size=models_args.batch_size, methods=args.methods,
                                 max_tokens=args.max_tokens)
            for label, (model, tokenizer, dataset) in inputs.items()
        }
    else:  # Transformers encoders: a report row per model and attention kind (last layer, rollout)
        for flag, value, default in (("--methods", " ".join(args.methods), "gradient"),
                                     ("--epsilon_runs", args.epsilon_runs, None),
                                     ("--max_tokens", args.max_tokens, MAX_TOKENS)):
            if value != default:
                raise ValueError(f"{flag} {value} applies to BiLSTM-attention models; Transformers encoders are "
                                 f"explained with gradient importance over whole examples: drop {flag}")
        runs, infos = {}, {}
        for label, (model, tokenizer, dataset) in inputs.items():
            explained = explain_transformer_examples(model, tokenizer, dataset, batch_size=models_args.batch_size)
            for kind, explanation in explained.items():
                runs[f"{label} · {kind}"], infos[f"{label} · {kind}"] = explanation, models[label]
        models = infos
    report = write_report(runs, models_args.output_dir, epsilon_runs=epsilon_runs, num_examples=args.num_examples,
                          select=args.select, seed=data_args.seed, data=data, models=models)
    width = max(16, *(len(label) + 2 for label in runs))
    print(f"{'model':<{width}}{'method':<22}{'accuracy':>10}{'pearson':>18}{'kendall':>18}")
    for label, result in runs.items():
        s = result["summary"]
        for method in args.methods:
            print(f"{label:<{width}}{method:<22}{s['accuracy']:>10.4f}"
                  f"{s[f'{method}_pearson_mean']:>10.4f} ± {s[f'{method}_pearson_std']:.3f}"
                  f"{s[f'{method}_kendall_mean']:>10.4f} ± {s[f'{method}_kendall_std']:.3f}")
    print(f"report: {report}")
    return 0
