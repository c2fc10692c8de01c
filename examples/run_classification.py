"""Train and evaluate a BiLSTM + attention model with adversarial training on attention, on any of the paper's
tasks or your own data: single texts (SST, IMDB, 20 Newsgroups, AG News), text pairs (SNLI, MultiNLI: the premise
is attended, conditioned on the hypothesis) and question answering as answer selection (bAbI 1-3, CNN: the
passage is attended, conditioned on the question; CNN's `candidate_mask` lets only the passage's entities win).

    # single text
    python examples/run_classification.py --task_name sst --data_source local --data_dir ../shared/data \
        --do_train --do_eval --do_predict --adv_method attention_iat --adv_epsilon 1.0 \
        --output_dir runs/sst-iat --num_train_epochs 8 --learning_rate 1e-3 --per_device_train_batch_size 32 \
        --eval_strategy epoch --train_sampling_strategy group_by_length  # batches of similar lengths

    # pairs (NLI) and QA: the same flags with another task
    python examples/run_classification.py --task_name snli --data_source local --data_dir ../shared/data ...
    python examples/run_classification.py --task_name babi1 --babi_size 1k --data_source local ...

    # your own data (csv/tsv/json/jsonl/parquet; pairs too): columns inferred or --text_column/--label_column
    python examples/run_classification.py --train_file reviews.csv --test_file reviews_test.csv \
        --do_train --do_predict --adv_method attention_at --adv_epsilon 1.0 --output_dir runs/reviews-at

    # all arguments from a JSON file (keys: the flags' names)
    python examples/run_classification.py args.json

    # evaluate a trained model folder only (its tokenizer encodes the data)
    python examples/run_classification.py --model_name_or_path runs/sst-iat --task_name sst \
        --data_source local --data_dir ../shared/data --do_eval --do_predict --output_dir runs/sst-iat-eval

    # two processes (GPUs; add --use_cpu and ACCELERATE_USE_CPU=1 for two CPU processes)
    accelerate launch --multi_gpu --num_processes 2 examples/run_classification.py --task_name sst ...

`--do_train` saves the model, tokenizer, code files (for `trust_remote_code`), model card, `train_results.json`
and `trainer_state.json`; `--do_eval` writes `eval_results.json` (validation split); `--do_predict` writes
`<split>_results.json` and `predict_results_<split>.txt` for every test split (MultiNLI has two; your data
without a test file: the validation split, as `test`).
"""

import logging
import os
import sys
from pathlib import Path

import datasets
import torch
import transformers
from transformers import AutoTokenizer, DataCollatorWithPadding, HfArgumentParser, set_seed

from hf_attn_at import (
    AdversarialTrainer,
    AdversarialTrainingArguments,
    DataArguments,
    ModelArguments,
    ModelCardCallback,
    build_model,
    compute_metrics,
    load_data,
    prepare_run_folder,
)

logger = logging.getLogger(__name__)


def main():
    parser = HfArgumentParser((ModelArguments, DataArguments, AdversarialTrainingArguments))
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(json_file=os.path.abspath(sys.argv[1]))
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses()
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        parser.error("nothing to do: give --do_train, --do_eval and/or --do_predict")
    if not training_args.do_train and model_args.model_name_or_path is None:
        parser.error("--do_eval/--do_predict without --do_train need a trained model (--model_name_or_path)")

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()  # the default of training_args.log_level is passive
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    logging.getLogger("hf_attn_at").setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.warning(
        f"Process rank: {training_args.process_index}, device: {training_args.device}, n_gpu: {training_args.n_gpu}, "
        f"distributed training: {training_args.parallel_mode.value == 'distributed'}"
    )
    logger.info(f"Training/evaluation parameters {training_args}")

    output_dir = Path(training_args.output_dir)
    set_seed(training_args.seed)

    # A saved model keeps its vocabulary; a new one gets a vocabulary built from the training split.
    saved_tokenizer = (AutoTokenizer.from_pretrained(model_args.model_name_or_path)
                       if model_args.model_name_or_path else None)
    data = load_data(data_args, training_args.seed, tokenizer=saved_tokenizer)
    logger.info(f"{data_args.dataset_label}: {data.num_examples} examples, {'pair' if data.is_pair else 'single'} "
                f"input, labels {data.label_names}" + (f", columns {data.columns}" if data.columns else ""))
    dataset, tokenizer = data.dataset, data.tokenizer
    # Resume only this run (same settings and data) from its newest complete checkpoint; another run's folder is
    # refused. The settings go into every checkpoint.
    last_checkpoint, settings = (prepare_run_folder(model_args, data_args, training_args, data)
                                 if training_args.do_train else (None, None))
    if last_checkpoint is not None:
        logger.info(f"Resuming training at {last_checkpoint}. To train from scratch, give another --output_dir or "
                    "add --overwrite_output_dir.")
    model = build_model(model_args, data)  # sized for the labels and input, or --model_name_or_path
    card = ModelCardCallback(dataset_name=data_args.dataset_label)  # a model card in every checkpoint
    trainer = AdversarialTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset["train"] if training_args.do_train else None,
        eval_dataset=dataset["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[card] if training_args.do_train else None,
        run_settings=settings,
    )

    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
        metrics = train_result.metrics
        metrics["train_samples"] = len(dataset["train"])
        trainer.save_model()  # model, tokenizer and the two code files for trust_remote_code
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        if trainer.is_world_process_zero():
            card.build_card(training_args, trainer.state, trainer.model, trainer.optimizer).save(
                output_dir / "README.md"
            )

    if training_args.do_eval:
        logger.info("*** Evaluate ***")
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(dataset["validation"])
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    if training_args.do_predict:
        logger.info("*** Predict ***")
        test_splits = {name: split for name, split in dataset.items() if name.startswith("test")}
        for name, split in (test_splits or {"test": dataset["validation"]}).items():
            output = trainer.predict(split, metric_key_prefix=name)
            output.metrics[f"{name}_samples"] = len(split)
            trainer.log_metrics(name, output.metrics)
            trainer.save_metrics(name, output.metrics)
            if trainer.is_world_process_zero():
                predictions = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
                labels = [trainer.model.config.id2label[i] for i in predictions.argmax(-1).tolist()]
                lines = "".join(f"{index}\t{label}\n" for index, label in enumerate(labels))
                (output_dir / f"predict_results_{name}.txt").write_text("index\tprediction\n" + lines)


if __name__ == "__main__":
    try:
        main()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # join the gloo/NCCL threads before the interpreter exits
