"""The method registry (`hf_attn_at.methods`), the direction lookup (`perturbations.DIRECTIONS`) and the one
(grouped) attention iAT."""

import subprocess
import sys
from enum import Enum

import pytest
import torch
from testing_utils import REPO_ROOT, subprocess_env

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.integrations import transformer_attention_perturbation
from hf_attn_at.methods import METHODS, AdversarialMethod, MethodSpec, check_registry
from hf_attn_at.perturbations import (
    DIRECTIONS,
    Perturbation,
    attention_iat_perturbation,
    attention_iat_random_perturbation,
)
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialTrainingArguments

PERTURBING = [name for name, spec in METHODS.items() if spec.target is not None]
NEW_SPEC = MethodSpec("attention_scores", "a new method", "A method added in a test.", ("adv_epsilon",), gradient=True)

# A throwaway enum: every AdversarialMethod member and one more.
Extended = Enum(
    "Extended", {**{member.name: member.value for member in AdversarialMethod}, "ATTENTION_NEW": "attention_new"}, type=str
)


def test_the_registry_is_complete():
    check_registry(AdversarialMethod, METHODS, DIRECTIONS)
    assert METHODS["vanilla"].target is None and "vanilla" not in DIRECTIONS


def test_member_without_registry_entry_is_rejected():
    with pytest.raises(ValueError, match=r"missing \['attention_new'\]"):
        check_registry(Extended, METHODS, DIRECTIONS)


def test_registry_entry_out_of_enum_order_is_rejected():
    reordered = dict(reversed(list(METHODS.items())))
    with pytest.raises(ValueError, match="in this order"):
        check_registry(AdversarialMethod, reordered, DIRECTIONS)


def test_member_without_direction_is_rejected():
    specs = {**METHODS, "attention_new": NEW_SPEC}
    with pytest.raises(ValueError, match=r"DIRECTIONS.*missing \['attention_new'\]"):
        check_registry(Extended, specs, DIRECTIONS)
    check_registry(Extended, specs, {**DIRECTIONS, "attention_new": DIRECTIONS["attention_at"]})


def test_direction_for_a_method_that_perturbs_nothing_is_rejected():
    with pytest.raises(ValueError, match=r"not perturbing methods \['vanilla'\]"):
        check_registry(AdversarialMethod, METHODS, {**DIRECTIONS, "vanilla": DIRECTIONS["attention_at"]})


def test_missing_direction_fails_at_import():
    code = (
        "import importlib, sys\n"
        "import hf_attn_at.perturbations as perturbations\n"
        "del perturbations.DIRECTIONS['attention_iat']\n"
        "del sys.modules['hf_attn_at.methods']\n"
        "importlib.import_module('hf_attn_at.methods')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ValueError: perturbations.DIRECTIONS must have a direction" in result.stderr
    assert "missing ['attention_iat']" in result.stderr


# ---------------------------------------------------------------- dispatch through the lookup


def tiny_batch():
    ids = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0], [13, 14, 15, 16, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.tensor([0, 1, 1])}


@pytest.mark.parametrize("method", PERTURBING)
def test_trainer_takes_every_direction_from_the_lookup(tmp_path, monkeypatch, method):
    calls = []

    def recording(inputs, grad, epsilon, direction=DIRECTIONS[method]):
        calls.append(grad is None)
        return direction(inputs, grad, epsilon)

    monkeypatch.setitem(DIRECTIONS, method, recording)
    torch.manual_seed(0)
    model = BiLSTMAttentionForSequenceClassification(
        BiLSTMAttentionConfig(vocab_size=20, embedding_size=8, hidden_size=4, attention_hidden_size=4, num_labels=2)
    )
    args = AdversarialTrainingArguments(
        output_dir=str(tmp_path), adv_method=method, adv_epsilon=0.5, per_device_train_batch_size=3, use_cpu=True,
        report_to="none", **{name: 2 for name in ("adv_num_neighbors", "adv_vat_num_iterations")
                             if name in METHODS[method].settings},
    )
    AdversarialTrainer(model=model, args=args).compute_loss(model.train(), tiny_batch())
    spec = METHODS[method]
    if spec.virtual:  # the random start, then one call per power iteration
        assert calls == [True, False, False]
    else:
        assert calls == [not spec.gradient]


def test_transformer_perturbation_takes_its_direction_from_the_lookup(monkeypatch):
    logits = torch.randn(2, 2, 3, 4, 4)  # (B, L, H, T, T)
    seen = {}

    def fake(inputs, grad, epsilon):
        seen["shape"] = tuple(inputs.values.shape)
        return Perturbation(torch.ones_like(inputs.values), torch.tensor(7))

    monkeypatch.setitem(DIRECTIONS, "attention_iat", fake)
    mask = torch.ones(2, 1, 1, 4, 4, dtype=torch.bool)
    result = transformer_attention_perturbation("attention_iat", logits, logits, mask, 0.5)
    assert seen["shape"] == (2, 6, 16) and result.delta.shape == (12, 16) and int(result.num_zeroed) == 7
    transformer_attention_perturbation("attention_iat", logits, logits, mask, 0.5, "global")
    assert seen["shape"] == (2, 1, 96)


# ---------------------------------------------------------------- one attention iAT


def grouped_inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(4, 3, 6, generator=generator, dtype=torch.float64)  # (B, G, D)
    grad = torch.randn(4, 3, 6, generator=generator, dtype=torch.float64)
    mask = torch.rand(4, 3, 6, generator=generator) > 0.3
    mask[:, :, 0] = True
    return scores, grad, mask


@pytest.mark.parametrize("normalize", [False, True])
def test_grouped_attention_iat_is_attention_iat_per_group(normalize):
    scores, grad, mask = grouped_inputs()
    grad[2, 1, 0] = float("nan")  # one (example, group) unit with a non-finite gradient
    result = attention_iat_perturbation(scores, grad, mask, 0.3, normalize)
    assert result.delta.shape == scores.shape
    num_zeroed = 0
    for group in range(scores.shape[1]):
        single = attention_iat_perturbation(scores[:, group], grad[:, group], mask[:, group], 0.3, normalize)
        torch.testing.assert_close(result.delta[:, group], single.delta, atol=1e-14, rtol=0)
        num_zeroed += int(single.num_zeroed)
    assert int(result.num_zeroed) == num_zeroed == 1
    assert (result.delta[2, 1] == 0).all() and (result.delta[2, 0] != 0).any()


def test_grouped_random_attention_iat_has_norm_epsilon_in_the_direction_span():
    scores, _, mask = grouped_inputs(1)
    result = attention_iat_random_perturbation(scores, mask, 0.3, normalize=True, generator=torch.Generator().manual_seed(0))
    norms = torch.linalg.vector_norm(result.delta, dim=-1)
    torch.testing.assert_close(norms, torch.full_like(norms, 0.3), atol=1e-12, rtol=0)
    assert (result.delta[~mask] == 0).all() and int(result.num_zeroed) == 0
    # Each r_i in the span of its differences D_ij = (s_i − s_j) ⊙ m_i (s_j = 0 where j is padded): the least-squares
    # residual vanishes.
    s = scores * mask
    for b in range(4):
        for group in range(3):
            others = torch.stack([(s[b, group] - s[j, group]) * mask[b, group] for j in range(4) if j != b], dim=1)
            solution = torch.linalg.lstsq(others, result.delta[b, group].unsqueeze(1)).solution
            torch.testing.assert_close(others @ solution, result.delta[b, group].unsqueeze(1), atol=1e-12, rtol=0)


def test_differences_at_rounding_level_give_no_direction():
    """‖D_ij‖² below 1e-12 (‖s_i‖² + ⟨m_i, s_j²⟩) is cancellation noise: the pair has no direction (one threshold
    for every iAT caller)."""
    base = torch.randn(1, 5, dtype=torch.float64).expand(3, 5)
    scores = base * (1 + 1e-8 * torch.randn(3, 5, dtype=torch.float64))
    mask = torch.ones(3, 5, dtype=torch.bool)
    result = attention_iat_perturbation(scores, torch.randn(3, 5, dtype=torch.float64), mask, 0.3)
    assert (result.delta == 0).all() and int(result.num_zeroed) == 3
    scores = base * (1 + 1e-4 * torch.randn(3, 5, dtype=torch.float64))
    result = attention_iat_perturbation(scores, torch.randn(3, 5, dtype=torch.float64), mask, 0.3)
    assert int(result.num_zeroed) == 0


def test_mask_of_another_shape_is_rejected():
    scores = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"`mask` must have the scores' shape \(2, 3, 4\), got \(2, 4\)"):
        attention_iat_perturbation(scores, scores, torch.ones(2, 4, dtype=torch.bool), 0.3)


@pytest.mark.parametrize("where", ["docs/TRAINER.md", "AdversarialTrainingArguments", "build_model_card"])
def test_hand_written_method_lists_name_every_method(where):
    """The lists of methods written by hand (the trainer guide's `adv_method` line, the arguments' and the card
    builder's docstrings) name every registered method, so a new method cannot be left out of them."""
    from hf_attn_at import model_card

    if where == "docs/TRAINER.md":
        text = (REPO_ROOT / where).read_text(encoding="utf-8")
        text = text[text.index("adv_method="):text.index("\n\n", text.index("adv_method="))]
    else:
        text = (AdversarialTrainingArguments if where == "AdversarialTrainingArguments" else getattr(model_card, where)).__doc__
    words = set(text.replace("|", " ").replace("`", " ").replace(",", " ").split())
    missing = [name for name in METHODS if name not in words]
    assert not missing, f"{where} does not name {missing}"
