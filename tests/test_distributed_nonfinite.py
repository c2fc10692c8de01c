"""Non-finite steps under DDP: two gloo CPU processes skip the same steps as one process, and stop together.

The module is also the two-process script: `torchrun --nproc_per_node 2 tests/test_distributed_nonfinite.py OUT`.
"""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from distributed.train_ddp import collate, destroy_process_group
from testing_utils import REPO_ROOT

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialTrainingArguments

GLOBAL_BATCH = 8
POISON_ID = 2  # examples use ids >= 3; this id gets infinite embeddings
# run -> (poisoned example indices, max_consecutive_nonfinite_steps). Sequential order, 4 examples per rank: example
# 13 is in rank 1's half of step 2 only, so rank 0's own loss and local gradients are finite.
RUNS = {"one_rank": ([13], 10), "every_step": (list(range(48)), 2)}


def make_examples(poisoned: list[int]) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    examples = []
    for index in range(48):
        ids = torch.randint(3, 99, (int(torch.randint(3, 12, (1,), generator=generator)),), generator=generator)
        if index in poisoned:
            ids[0] = POISON_ID
        examples.append({"input_ids": ids.tolist(), "labels": int((ids < 50).float().mean() > 0.5)})
    return examples


def train_run(name: str, output_dir: str, world_size: int) -> tuple[AdversarialTrainer, str | None]:
    """Train 4 steps; return the trainer and the error message that stopped it (None if it finished)."""
    poisoned, limit = RUNS[name]
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=99, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=2)
    model = BiLSTMAttentionForSequenceClassification(config)
    embeddings = model.get_input_embeddings()
    embeddings.register_forward_hook(lambda module, args, out: out.masked_fill(args[0].eq(POISON_ID)[..., None], math.inf))
    args = AdversarialTrainingArguments(
        output_dir=str(Path(output_dir) / name), adv_method="attention_at", adv_epsilon=0.5,
        per_device_train_batch_size=GLOBAL_BATCH // world_size, max_steps=4, optim="sgd", learning_rate=0.5,
        lr_scheduler_type="constant", train_sampling_strategy="sequential", logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, disable_tqdm=True, max_consecutive_nonfinite_steps=limit,
    )
    trainer = AdversarialTrainer(model=model, args=args, train_dataset=make_examples(poisoned), data_collator=collate)
    if trainer.accelerator.num_processes != world_size:
        raise RuntimeError(f"expected world size {world_size}, got {trainer.accelerator.num_processes}")
    try:
        trainer.train()
    except ValueError as error:
        return trainer, str(error)
    return trainer, None


def save_run(name: str, output_dir: str) -> None:
    """Train run `name` on two processes; every rank records its parameters, skipped steps and error."""
    trainer, error = train_run(name, output_dir, world_size=2)
    state = {key: value.tolist() for key, value in trainer.model.state_dict().items()}
    logs = [entry for entry in trainer.state.log_history if "num_skipped_steps" in entry]
    record = {"state_dict": state, "skipped": [entry["num_skipped_steps"] for entry in logs], "error": error}
    (Path(output_dir) / f"{name}-rank{int(os.environ['RANK'])}.json").write_text(json.dumps(record))


def main(output_dir: str) -> None:
    try:
        for name in RUNS:
            save_run(name, output_dir)
    finally:  # trainers freed first, then the group: see destroy_process_group
        destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_ranks_skip_and_stop_together(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), __file__, str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    expected = {"one_rank": ([0, 1, 0, 0], None), "every_step": ([1], "training stopped at step 2: ")}
    for name, (skipped, message) in expected.items():
        single, error = train_run(name, str(tmp_path / "single"), world_size=1)
        assert [entry["num_skipped_steps"] for entry in single.state.log_history if "num_skipped_steps" in entry] == skipped
        assert error == message if message is None else error.startswith(message)
        for rank in (0, 1):
            record = json.loads((tmp_path / f"{name}-rank{rank}.json").read_text())
            assert record["error"] == error and record["skipped"] == skipped, (name, rank)
            for key, value in single.model.state_dict().items():
                torch.testing.assert_close(torch.tensor(record["state_dict"][key]), value, atol=1e-6, rtol=0, msg=key)


if __name__ == "__main__":
    main(sys.argv[1])
