"""The diagnostic `attention_iat_released`: what the authors' released code computes for attention iAT.

r = −ε g/‖g‖ (g = ∂L/∂ã, per example over valid positions) and the update ∇(2·L + λ·L_adv). Checked against the AT
direction, a float64 computation by hand (full forwards, no trainer code) and central finite differences.
"""

import math

import pytest
import torch

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.cli.aggregate import ALL_METHODS, PAPER_METHODS
from hf_attn_at.model_card import METHODS as CARD_METHODS
from hf_attn_at.model_card import build_model_card
from hf_attn_at.perturbations import attention_iat_released_perturbation, gradient_perturbation
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialMethod, AdversarialTrainingArguments

METHOD = "attention_iat_released"
EPSILON, LAMBDA = 0.5, 0.7


def tiny_model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    config = BiLSTMAttentionConfig(vocab_size=99, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=2)
    return BiLSTMAttentionForSequenceClassification(config).to(dtype).train()


def make_batch(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(3, 99, (length,), generator=generator)
    labels = torch.randint(0, 2, (len(lengths),), generator=generator)
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": labels}


def make_trainer(tmp_path, model, **overrides):
    values = {
        "output_dir": str(tmp_path), "adv_method": METHOD, "adv_epsilon": EPSILON, "adv_lambda": LAMBDA,
        "per_device_train_batch_size": 4, "optim": "sgd", "learning_rate": 0.5, "lr_scheduler_type": "constant",
        "train_sampling_strategy": "sequential", "report_to": "none", "save_strategy": "no", "logging_steps": 1,
        "use_cpu": True, "seed": 0, "disable_tqdm": True,
    }
    return AdversarialTrainer(model=model, args=AdversarialTrainingArguments(**{**values, **overrides}))


def released_perturbation_by_hand(grad, mask):
    """−ε g/‖g‖ per example over the valid positions, in float64."""
    g = grad.double() * mask.double()
    return -EPSILON * g / g.norm(dim=1, keepdim=True)


def objective_by_hand(model, batch, delta=None):
    """`(2·L + λ·L_adv, r)` from two full forwards; r = −ε g/‖g‖ from the clean graph unless `delta` is given."""
    clean = model(**batch)
    if delta is None:
        (grad,) = torch.autograd.grad(clean.loss, clean.encoder_outputs.attention_scores, retain_graph=True)
        delta = released_perturbation_by_hand(grad, batch["attention_mask"]).to(grad.dtype)
    adv = model(**batch, attention_perturbation=delta)
    return 2 * clean.loss + LAMBDA * adv.loss, delta


# ---------------------------------------------------------------- the perturbation


def test_direction_is_the_negated_at_direction():
    generator = torch.Generator().manual_seed(0)
    grad = torch.randn(5, 9, generator=generator)
    mask = torch.arange(9) < torch.tensor([9, 4, 1, 7, 6]).unsqueeze(1)
    grad[3] = 0.0  # no gradient: r = 0, counted
    result = attention_iat_released_perturbation(grad, mask, EPSILON)
    at = gradient_perturbation(grad, mask, EPSILON)
    assert torch.equal(result.delta, -at.delta)
    assert result.num_zeroed.item() == at.num_zeroed.item() == 1
    assert (result.delta[~mask] == 0).all() and (result.delta[3] == 0).all()
    kept = torch.tensor([0, 1, 2, 4])
    torch.testing.assert_close(
        result.delta[kept].double(), released_perturbation_by_hand(grad, mask)[kept], atol=1e-7, rtol=1e-6
    )
    torch.testing.assert_close(result.delta[kept].norm(dim=1), torch.full((4,), EPSILON))
    # To first order r lowers the loss: ⟨r, g⟩ = −ε ‖g‖ (g over the valid positions).
    valid_grad = grad * mask
    torch.testing.assert_close((result.delta * grad).sum(dim=1)[kept], -EPSILON * valid_grad.norm(dim=1)[kept])


def test_perturbation_rejects_a_bad_epsilon():
    with pytest.raises(ValueError, match="`epsilon` must be > 0, got 0.0"):
        attention_iat_released_perturbation(torch.ones(2, 3), torch.ones(2, 3), 0.0)


# ---------------------------------------------------------------- the objective


def test_training_step_loss_and_gradients_are_those_of_2l_plus_lambda_ladv(tmp_path):
    """float64: the trainer's returned loss and parameter gradients equal 2·L + λ·L_adv computed by hand."""
    model = tiny_model(dtype=torch.float64)
    reference = tiny_model(dtype=torch.float64)
    batch = make_batch([7, 3, 5, 7])
    trainer = make_trainer(tmp_path, model)
    trainer.current_gradient_accumulation_steps = 1
    loss = trainer.training_step(model, batch)
    expected, _ = objective_by_hand(reference, batch)
    expected.backward()
    torch.testing.assert_close(loss, expected.detach(), atol=1e-12, rtol=1e-12)
    for (name, param), ref_param in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(param.grad, ref_param.grad, atol=1e-12, rtol=1e-10, msg=name)
    metrics = trainer._metrics["train"]
    clean, adv = metrics["clean_loss"][0], metrics["adv_loss"][0]
    torch.testing.assert_close(loss, 2 * clean + LAMBDA * adv)
    assert metrics["adv_perturbation_norm"][0].item() == pytest.approx(EPSILON, rel=1e-12)


def test_parameter_gradient_matches_finite_differences(tmp_path):
    """Central differences of θ ↦ 2·L(θ) + λ·L_adv(θ; r) (r fixed at its value at θ) along random directions."""
    model = tiny_model(dtype=torch.float64)
    batch = make_batch([6, 2, 6])
    trainer = make_trainer(tmp_path, model)
    trainer.current_gradient_accumulation_steps = 1
    trainer.training_step(model, batch)
    grads = [param.grad.clone() for param in model.parameters()]
    _, delta = objective_by_hand(model, batch)
    generator = torch.Generator().manual_seed(1)
    step = 1e-6
    for _ in range(3):
        directions = [torch.randn(param.shape, generator=generator, dtype=param.dtype) for param in model.parameters()]
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                for param, direction in zip(model.parameters(), directions, strict=True):
                    param.add_(sign * step * direction)
                values.append(objective_by_hand(model, batch, delta)[0].item())
                for param, direction in zip(model.parameters(), directions, strict=True):
                    param.sub_(sign * step * direction)
        numeric = (values[0] - values[1]) / (2 * step)
        analytic = sum((grad * direction).sum() for grad, direction in zip(grads, directions, strict=True)).item()
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_logged_losses_and_perturbation_norm(tmp_path):
    """Two optimizer steps: `clean_loss` and `adv_loss` are logged as for AT, `loss` is 2·clean + λ·adv, ‖r‖ = ε."""
    batch = make_batch([5, 3, 8, 6, 4, 7, 2, 5], seed=1)
    examples = [
        {"input_ids": ids.tolist(), "labels": int(label)} for ids, label in zip(batch["input_ids"], batch["labels"], strict=True)
    ]

    def collate(features):
        ids = torch.stack([torch.tensor(f["input_ids"]) for f in features])
        return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.tensor([f["labels"] for f in features])}

    trainer = make_trainer(tmp_path, tiny_model(), max_steps=2)
    trainer.train_dataset, trainer.data_collator = examples, collate
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "adv_loss" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert entry["loss"] == pytest.approx(2 * entry["clean_loss"] + LAMBDA * entry["adv_loss"], rel=1e-5)
        assert entry["adv_perturbation_norm"] == pytest.approx(EPSILON, rel=1e-5)
        assert entry["adv_num_zeroed"] == 0 and math.isfinite(entry["loss"])


def test_one_example_per_device_is_allowed(tmp_path):
    """No batch directions (unlike attention_iat): r depends on the example alone."""
    model = tiny_model()
    trainer = make_trainer(tmp_path, model, per_device_train_batch_size=1)
    loss = trainer.compute_loss(model, make_batch([4]))
    assert math.isfinite(loss.item()) and trainer._metrics["train"]["adv_num_zeroed"][0].item() == 0


# ---------------------------------------------------------------- where the method is listed


def test_method_is_a_diagnostic_not_a_paper_method(tmp_path):
    method = AdversarialMethod(METHOD)
    assert method.is_diagnostic and method.is_attention
    assert not (method.is_word or method.is_virtual or method.uses_batch_directions)
    assert [m for m in AdversarialMethod if m.is_diagnostic] == [method]
    assert METHOD in ALL_METHODS and METHOD not in PAPER_METHODS and len(PAPER_METHODS) == 6
    assert set(CARD_METHODS) == set(ALL_METHODS)
    card = str(build_model_card(tiny_model(), method=METHOD, epsilon=EPSILON, lambda_=1.0))
    assert "a diagnostic, not the paper's method" in card and "2 · L(ã) + λ · L(ã + r)" in card
