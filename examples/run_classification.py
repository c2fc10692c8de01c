"""Train a BiLSTM + attention classifier with adversarial training on attention (single sequence).

    python examples/run_classification.py --task_name sst --data_source local --data_dir ../shared/data \
        --adv_method attention_iat --adv_epsilon 1.0 --output_dir runs/sst-iat \
        --num_train_epochs 8 --learning_rate 1e-3 --per_device_train_batch_size 32 --eval_strategy epoch \
        --train_sampling_strategy group_by_length  # batches of similar lengths: less padding to run

    # the same on two processes (GPUs; add --use_cpu and ACCELERATE_USE_CPU=1 for two CPU processes)
    accelerate launch --multi_gpu --num_processes 2 examples/run_classification.py --task_name sst ...

    # your own data (csv/tsv/json/jsonl/parquet; pairs too): columns inferred or --text_column/--label_column
    python examples/run_classification.py --train_file reviews.csv --test_file reviews_test.csv \
        --adv_method attention_at --adv_epsilon 1.0 --output_dir runs/reviews-at

Tasks: sst, imdb, 20news, agnews, or your data. Saves the model, tokenizer, code files and model card to
--output_dir.
"""

import torch
from transformers import DataCollatorWithPadding, HfArgumentParser, set_seed

from hf_attn_at import (
    AdversarialTrainer,
    AdversarialTrainingArguments,
    ModelCardCallback,
)
from hf_attn_at.arguments import DataArguments, ModelArguments
from hf_attn_at.experiment import build_model, load_data
from hf_attn_at.metrics import compute_metrics


def main():
    parser = HfArgumentParser((ModelArguments, DataArguments, AdversarialTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses()
    set_seed(training_args.seed)

    dataset, tokenizer = load_data(data_args, training_args.seed)  # tokenized splits, vocabulary from train
    # A new model sized for the task (labels, single or pair input), or --model_name_or_path.
    model = build_model(model_args, tokenizer, dataset["train"], is_pair=data_args.is_pair)
    card = ModelCardCallback(dataset_name=data_args.dataset_label)  # a model card in every checkpoint
    trainer = AdversarialTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[card],
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    test = dataset["test"] if "test" in dataset else dataset["validation"]  # custom data without a test file
    metrics = trainer.evaluate(test, metric_key_prefix="test")
    trainer.log_metrics("test", metrics)
    trainer.save_metrics("test", metrics)
    trainer.save_model()  # model, tokenizer and the two code files for trust_remote_code
    card.build_card(training_args, trainer.state, trainer.model, trainer.optimizer).save(f"{training_args.output_dir}/README.md")


if __name__ == "__main__":
    try:
        main()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # join the gloo/NCCL threads before the interpreter exits
