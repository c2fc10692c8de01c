"""Question answering as answer selection over a passage (bAbI 1-3, CNN) with adversarial training on attention.

    python examples/run_qa.py --task_name babi1 --babi_size 1k --data_source local --data_dir ../shared/data \
        --adv_method attention_iat --adv_epsilon 1.0 --output_dir runs/babi1-iat --num_train_epochs 10 \
        --learning_rate 1e-3 --per_device_train_batch_size 32 --eval_strategy epoch \
        --train_sampling_strategy group_by_length  # batches of similar lengths: less padding to run

The passage is attended, conditioned on the question. bAbI's labels are the answer words; CNN's are the
anonymised entities, and its `candidate_mask` column lets only the entities of the passage win (top-3 accuracy
is reported when there are more than three answers).
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
    # A new model sized for the task (labels, pair input), or --model_name_or_path.
    model = build_model(model_args, tokenizer, dataset["train"], is_pair=True)
    card = ModelCardCallback(dataset_name=data_args.task_name)  # a model card in every checkpoint
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
    metrics = trainer.evaluate(dataset["test"], metric_key_prefix="test")
    trainer.log_metrics("test", metrics)
    trainer.save_metrics("test", metrics)
    trainer.save_model()
    card.build_card(training_args, trainer.state, trainer.model).save(f"{training_args.output_dir}/README.md")


if __name__ == "__main__":
    try:
        main()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # join the gloo/NCCL threads before the interpreter exits
