"""Short adversarial trainings of the BiLSTM-attention model, for the two-process DDP test.

    torchrun --nproc_per_node 2 tests/distributed/train_ddp.py OUTPUT_DIR
    accelerate launch --multi_gpu --num_processes 2 --main_process_port PORT tests/distributed/train_ddp.py OUTPUT_DIR

(with `ACCELERATE_USE_CPU=1` on a machine without GPUs). Every rank checks that the world size is 2; rank 0
saves each run's final parameters to `OUTPUT_DIR/<run>.pt`; every rank destroys the process group at the end, also
on errors. `train_run` is also called in-process by the test with `world_size=1` and the global batch size, as the
single-process reference.
"""

import sys
from pathlib import Path

import torch

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialTrainingArguments

GLOBAL_BATCH = 8
RUNS = {
    "attention_at": {"adv_method": "attention_at"},
    "attention_at_static": {"adv_method": "attention_at", "ddp_find_unused_parameters": False},
    "attention_iat": {"adv_method": "attention_iat"},
    "word_at": {"adv_method": "word_at"},
    "word_iat": {"adv_method": "word_iat"},
}


def make_examples(num: int = 48) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(num):
        length = int(torch.randint(3, 12, (1,), generator=generator))
        ids = torch.randint(3, 99, (length,), generator=generator)
        examples.append({"input_ids": ids.tolist(), "labels": int((ids < 50).float().mean() > 0.5)})
    return examples


def collate(features: list[dict]) -> dict[str, torch.Tensor]:
    length = max(len(f["input_ids"]) for f in features)
    ids = torch.zeros(len(features), length, dtype=torch.long)
    for row, feature in enumerate(features):
        ids[row, : len(feature["input_ids"])] = torch.tensor(feature["input_ids"])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.tensor([f["labels"] for f in features])}


def train_run(name: str, output_dir: str, world_size: int) -> AdversarialTrainer:
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=99, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=2)
    model = BiLSTMAttentionForSequenceClassification(config)
    args = AdversarialTrainingArguments(
        output_dir=str(Path(output_dir) / name),
        adv_epsilon=0.5,
        adv_num_neighbors=3,
        per_device_train_batch_size=GLOBAL_BATCH // world_size,
        max_steps=4,
        optim="sgd",
        learning_rate=0.5,
        lr_scheduler_type="constant",
        train_sampling_strategy="sequential",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        **RUNS[name],
    )
    trainer = AdversarialTrainer(model=model, args=args, train_dataset=make_examples(), data_collator=collate)
    if trainer.accelerator.num_processes != world_size:
        raise RuntimeError(f"expected world size {world_size}, got {trainer.accelerator.num_processes}")
    trainer.train()
    return trainer


def main(output_dir: str) -> None:
    for name in RUNS:
        trainer = train_run(name, output_dir, world_size=2)
        if not torch.distributed.is_initialized() or torch.distributed.get_world_size() != 2:
            raise RuntimeError("not running under a two-process torch.distributed group")
        if trainer.accelerator.is_main_process:
            logs = [entry for entry in trainer.state.log_history if "adv_loss" in entry]
            state = {key: value.detach().clone() for key, value in trainer.model.state_dict().items()}
            torch.save({"state_dict": state, "logs": logs}, Path(output_dir) / f"{name}.pt")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    finally:
        # Join the gloo threads now: left to interpreter shutdown, one can release a finished collective's tensors
        # after Python has finalised, which aborts the rank (SIGABRT) once the work is done.
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
