"""Semi-supervised attention VAT/iVAT against supervised baselines trained on the labelled part only.

The labels of all but a seeded `--labelled_fraction` of the (optionally capped) training split are set to -100.
`attention_vat` / `attention_ivat` train on every training example (the KL term uses the unlabelled ones); every
other method trains on the labelled examples only. Same seed, model size and settings for all; each method's model
is evaluated on the test split (accuracy) and its attention–gradient agreement measured there.

    OMP_NUM_THREADS=1 python examples/run_semi_supervised.py --task_name sst --data_source local \
        --data_dir ../shared/data --labelled_fraction 0.1 \
        --methods vanilla attention_at attention_iat attention_vat attention_ivat \
        --epsilon 1.0 --embedding_size 32 --hidden_size 32 --attention_hidden_size 32 \
        --max_steps 600 --per_device_train_batch_size 32 --paper_optimizer --learning_rate 1e-3 --seed 1 \
        --output_dir runs/semi-sst --save_strategy no --report_to none --disable_tqdm true --logging_steps 100

`--max_steps` gives every method the same number of updates (the labelled-only baselines then see their few
examples for many epochs; `--num_train_epochs` would give them ten times fewer steps). `OMP_NUM_THREADS=1`: on a
busy 2-core machine torch's default threads made a step ~13x slower.
Writes `<output_dir>/semi_supervised.json` and prints a Markdown table. `--epsilon` is the `adv_epsilon` of every
method but `vanilla` (which reads none: the `--adv_*` flags describe one method and are refused here). `--paper_optimizer` trains with the paper's Adam(amsgrad=True) (as docs/VAT.md's numbers were);
without it the optimizer is `--optim` (Trainer's AdamW by default), with `--learning_rate`, `--adam_*` and
`--weight_decay` either way.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import DataCollatorWithPadding, HfArgumentParser, set_seed

from hf_attn_at import (
    AdversarialMethod,
    AdversarialTrainer,
    AdversarialTrainingArguments,
    DataArguments,
    ModelArguments,
    build_model,
    compute_metrics,
    explain_model,
    load_data,
)
from hf_attn_at.data import labelled_subset


@dataclass
class SemiSupervisedArguments:
    methods: list[str] = field(
        default_factory=lambda: ["vanilla", "attention_at", "attention_iat", "attention_vat", "attention_ivat"],
        metadata={"help": "Methods to compare (VAT/iVAT use the unlabelled examples, the others do not)."},
    )
    epsilon: float = field(default=1.0, metadata={"help": "adv_epsilon of every method but vanilla."})


def main():
    parser = HfArgumentParser((ModelArguments, DataArguments, AdversarialTrainingArguments, SemiSupervisedArguments))
    model_args, data_args, training_args, semi_args = parser.parse_args_into_dataclasses()
    if data_args.labelled_fraction is None:
        parser.error("--labelled_fraction is required")
    data = load_data(data_args, training_args.seed)  # train labels hidden, eval splits intact
    dataset, tokenizer = data.dataset, data.tokenizer
    train_all, train_labelled = dataset["train"], labelled_subset(dataset["train"])
    rows = []
    for name in semi_args.methods:
        method = AdversarialMethod(name)
        args = dataclasses.replace(
            training_args,
            adv_method=method,
            adv_epsilon=None if method == AdversarialMethod.VANILLA else semi_args.epsilon,
            output_dir=str(Path(training_args.output_dir) / name),
        )
        train = train_all if method.is_virtual else train_labelled
        set_seed(args.seed)  # the same initial model for every method
        model = build_model(model_args, data)  # sized for the task's labels and input
        trainer = AdversarialTrainer(
            model=model, args=args, train_dataset=train, processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
        )
        train_output = trainer.train()
        metrics = trainer.evaluate(dataset["test"], metric_key_prefix="test")
        summary = explain_model(trainer.model, tokenizer, dataset["test"], show_progress=False)["summary"]
        rows.append({
            "method": name,
            "train_examples": len(train),
            "labelled_examples": len(train_labelled),
            "test_accuracy": metrics["test_accuracy"],
            "test_auc": metrics.get("test_auc"),
            "pearson_mean": summary["gradient_pearson_mean"],
            "pearson_std": summary["gradient_pearson_std"],
            "kendall_mean": summary["gradient_kendall_mean"],
            "kendall_std": summary["gradient_kendall_std"],
            "train_runtime_s": train_output.metrics["train_runtime"],
        })
    Path(training_args.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(training_args.output_dir) / "semi_supervised.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\n{data_args.task_name}: {len(train_labelled)} labelled of {len(train_all)} training examples, "
          f"test {len(dataset['test'])}, seed {training_args.seed}\n")
    print("| method | trained on | test accuracy | test AUC | Pearson r (attn vs grad) | Kendall τ | train s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['method']} | {row['train_examples']} | {row['test_accuracy']:.4f} | {row['test_auc']:.4f} "
              f"| {row['pearson_mean']:.3f} ± {row['pearson_std']:.3f} | {row['kendall_mean']:.3f} ± "
              f"{row['kendall_std']:.3f} | {row['train_runtime_s']:.0f} |")


if __name__ == "__main__":
    try:
        main()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # join the gloo/NCCL threads before the interpreter exits
