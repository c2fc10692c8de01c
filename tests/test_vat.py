"""Attention VAT / iVAT: perturbation math, the training step against full-forward references, unlabelled data."""

import copy
import math

import pytest
import torch

from hf_attn_at.perturbations import (
    attention_iat_perturbation,
    attention_iat_random_perturbation,
    gradient_perturbation,
    kl_divergence,
    random_perturbation,
)
from hf_attn_at.training_args import AdversarialMethod, AdversarialTrainingArguments
from tests.test_trainer import EPSILON, LAMBDA, collate, make_examples, make_trainer, tiny_model

VAT_METHODS = ["attention_vat", "attention_ivat"]
XI = 0.1


def make_mask(lengths, seq_len):
    return torch.arange(seq_len).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def unlabel(examples, rows):
    return [{**example, "labels": -100} if i in rows else example for i, example in enumerate(examples)]


def iat_directions_loop(scores, mask):
    """float64 loop: d[i][j] = unit((ã_i − ã_j) ⊙ m_i) (ã_j = 0 where j is padded), None when j = i or D_ij = 0."""
    scores = (scores.double() * mask).tolist()
    batch, length = len(scores), len(scores[0])
    directions = []
    for i in range(batch):
        row = []
        for j in range(batch):
            diff = torch.tensor([(scores[i][t] - scores[j][t]) * float(mask[i, t]) for t in range(length)], dtype=torch.float64)
            row.append(None if j == i or diff.norm() == 0 else diff / diff.norm())
        directions.append(row)
    return directions


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"adv_vat_xi": 0.0}, "adv_vat_xi"),
        ({"adv_vat_xi": float("inf")}, "adv_vat_xi"),
        ({"adv_vat_num_iterations": 0}, "adv_vat_num_iterations"),
        ({"adv_vat_num_iterations": 1.5}, "adv_vat_num_iterations"),
        ({"adv_epsilon": None}, "adv_epsilon"),
    ],
)
def test_vat_arguments_are_validated(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdversarialTrainingArguments(output_dir=str(tmp_path), **{"adv_method": "attention_vat", "adv_epsilon": 1.0, **kwargs})


def test_vat_arguments_parse_from_command_line(tmp_path):
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(AdversarialTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--adv_method", "attention_ivat", "--adv_epsilon", "0.1",
         "--adv_vat_xi", "0.01", "--adv_vat_num_iterations", "2"]
    )
    assert args.adv_method == AdversarialMethod.ATTENTION_IVAT and args.adv_method.is_virtual
    assert (args.adv_vat_xi, args.adv_vat_num_iterations) == (0.01, 2)


def test_attention_ivat_needs_two_examples_per_device(tmp_path):
    with pytest.raises(ValueError, match="'attention_ivat'.*per_device_train_batch_size must be >= 2"):
        make_trainer(tmp_path, "attention_ivat", tiny_model(), per_device_train_batch_size=1)


# ---------------------------------------------------------------- perturbation math


def test_kl_divergence_matches_loop_and_ignores_impossible_labels():
    torch.manual_seed(0)
    target, logits = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    expected = []
    for p_row, q_row in zip(torch.softmax(target, -1).tolist(), torch.softmax(logits, -1).tolist(), strict=True):
        expected.append(sum(p * math.log(p / q) for p, q in zip(p_row, q_row, strict=True)))
    torch.testing.assert_close(kl_divergence(target, logits), torch.tensor(expected, dtype=torch.float64))
    assert (kl_divergence(target, target) .abs() < 1e-12).all()
    # Candidate-masked labels (the dtype's minimum logit) have p = 0: finite, and equal to dropping them.
    masked_target = target.float().clone()
    masked_target[:, 3] = torch.finfo(torch.float32).min
    masked_logits = logits.float().clone()
    masked_logits[:, 3] = torch.finfo(torch.float32).min
    result = kl_divergence(masked_target, masked_logits)
    assert torch.isfinite(result).all()
    torch.testing.assert_close(result, kl_divergence(target[:, :3].float(), logits[:, :3].float()))


def test_iat_random_perturbation_is_in_span_and_masked():
    mask = make_mask([6, 4, 6, 2, 5], 6)
    scores = torch.randn(5, 6, dtype=torch.float64) * mask
    result = attention_iat_random_perturbation(scores, mask, EPSILON, generator=torch.Generator().manual_seed(0))
    delta = result.delta
    assert int(result.num_zeroed) == 0 and not delta.requires_grad and delta.dtype == torch.float64
    assert (delta[~mask] == 0).all()
    directions = iat_directions_loop(scores, mask)
    for i in range(5):
        basis = torch.stack([d for d in directions[i] if d is not None], dim=1)  # (T, N)
        alpha = torch.linalg.lstsq(basis, delta[i].unsqueeze(1)).solution
        torch.testing.assert_close(basis @ alpha, delta[i].unsqueeze(1))
    again = attention_iat_random_perturbation(scores, mask, EPSILON, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again.delta, delta)
    normalized = attention_iat_random_perturbation(scores, mask, EPSILON, normalize=True).delta
    torch.testing.assert_close(normalized.norm(dim=1), torch.full((5,), EPSILON, dtype=torch.float64))


def test_iat_random_perturbation_without_directions_is_zeroed():
    mask = make_mask([3, 3], 3)
    scores = torch.ones(2, 3)
    result = attention_iat_random_perturbation(scores, mask, EPSILON)
    assert int(result.num_zeroed) == 2 and (result.delta == 0).all()


# ---------------------------------------------------------------- the step's perturbation


def float64_setup(tmp_path, method, lengths=(7, 5, 3, 6), **overrides):
    model = tiny_model().double().train()
    examples = make_examples(len(lengths), seed=5, max_len=max(lengths))
    for example, length in zip(examples, lengths, strict=True):
        example["input_ids"] = (example["input_ids"] * 8)[:length]
    batch = collate(examples)
    trainer = make_trainer(tmp_path, method, model, adv_vat_xi=XI, **overrides)
    return model, batch, trainer


def kl_at(model, batch, target, perturbation):
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], attention_perturbation=perturbation)
    return kl_divergence(target, out.logits)


def test_vat_perturbation_norm_mask_and_finite_difference_gradient(tmp_path):
    """r = ε ∇_d KL(p ‖ p(ã + ξd)) / ‖·‖ per example; the gradient checked by central differences (float64)."""
    model, batch, trainer = float64_setup(tmp_path, "attention_vat")
    mask = batch["attention_mask"].bool()
    torch.manual_seed(7)
    _, _, _, perturbation = trainer._virtual_step(model, batch)
    torch.manual_seed(7)
    d = random_perturbation(mask, 1.0, dtype=torch.float64).delta
    delta = perturbation.delta
    assert delta.dtype == torch.float64 and (delta[~mask] == 0).all() and int(perturbation.num_zeroed) == 0
    torch.testing.assert_close(delta.norm(dim=1), torch.full((4,), EPSILON, dtype=torch.float64))
    with torch.no_grad():
        target = model(**batch).logits
        numeric = torch.zeros_like(d)
        step = 1e-3  # KL is tiny (~ξ²): smaller steps lose to round-off
        for i, t in mask.nonzero().tolist():
            bump = torch.zeros_like(d)
            bump[i, t] = step
            plus = kl_at(model, batch, target, XI * (d + bump))[i]
            minus = kl_at(model, batch, target, XI * (d - bump))[i]
            numeric[i, t] = (plus - minus) / (2 * step)
    # The autograd gradient w.r.t. d, for the same d (errors relative to the largest entry).
    leaf = d.clone().requires_grad_()
    (analytic,) = torch.autograd.grad(kl_at(model, batch, target, XI * leaf).sum(), leaf)
    scale = float(analytic.abs().max())
    assert scale > 0 and float((analytic - numeric).abs().max()) <= 1e-4 * scale
    expected = EPSILON * numeric / numeric.norm(dim=1, keepdim=True)
    torch.testing.assert_close(delta, expected, atol=1e-4 * EPSILON, rtol=0)
    torch.testing.assert_close(delta, EPSILON * analytic / analytic.norm(dim=1, keepdim=True))


@pytest.mark.parametrize("num_iterations", [1, 2])
def test_ivat_perturbation_equals_float64_loop_reference(tmp_path, num_iterations):
    """iVAT: random unit α over the d_ij, ∇ KL at ã + ξ r(α), projected on the d_ij; r in their span."""
    model, batch, trainer = float64_setup(tmp_path, "attention_ivat", adv_vat_num_iterations=num_iterations)
    mask = batch["attention_mask"].bool()
    torch.manual_seed(11)
    outputs, _, _, perturbation = trainer._virtual_step(model, batch)
    delta = perturbation.delta
    assert (delta[~mask] == 0).all() and int(perturbation.num_zeroed) == 0
    scores = outputs.encoder_outputs.attention_scores.detach()
    directions = iat_directions_loop(scores, mask)
    batch_size = len(directions)
    torch.manual_seed(11)
    alpha = torch.randn(batch_size, batch_size, dtype=torch.float64)
    alpha = [[float(alpha[i, j]) if directions[i][j] is not None else 0.0 for j in range(batch_size)] for i in range(batch_size)]
    target = outputs.logits.detach()
    for iteration in range(num_iterations):
        size = EPSILON if iteration == num_iterations - 1 else 1.0
        norms = [math.sqrt(sum(a * a for a in row)) for row in alpha]
        r = torch.zeros_like(scores)
        for i in range(batch_size):
            for j in range(batch_size):
                if directions[i][j] is not None:
                    r[i] += alpha[i][j] / norms[i] * directions[i][j]
        leaf = (XI * r).requires_grad_()
        (grad,) = torch.autograd.grad(kl_at(model, batch, target, leaf).sum(), leaf)
        alpha = [
            [float(directions[i][j] @ grad[i]) if directions[i][j] is not None else 0.0 for j in range(batch_size)]
            for i in range(batch_size)
        ]
    norms = [math.sqrt(sum(a * a for a in row)) for row in alpha]
    expected = torch.zeros_like(scores)
    for i in range(batch_size):
        for j in range(batch_size):
            if directions[i][j] is not None:
                expected[i] += size * alpha[i][j] / norms[i] * directions[i][j]
    torch.testing.assert_close(delta, expected, atol=1e-10, rtol=1e-7)
    for i in range(batch_size):  # in the span of the d_ij
        basis = torch.stack([d for d in directions[i] if d is not None], dim=1)
        coefficients = torch.linalg.lstsq(basis, delta[i].unsqueeze(1)).solution
        torch.testing.assert_close(basis @ coefficients, delta[i].unsqueeze(1))


# ---------------------------------------------------------------- one step = reference objective


def reference_vat_loss(model, batch, method, num_iterations=1):
    """L_sup + λ·KL with full forwards (probes included): the reference for the head-only, detached-probe step."""
    mask = batch["attention_mask"].bool()
    clean = model(**batch)
    target = clean.logits.detach()
    scores = clean.encoder_outputs.attention_scores.detach()
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if method == "attention_vat":
        delta = random_perturbation(mask, 1.0).delta
    else:
        delta = attention_iat_random_perturbation(scores, mask, 1.0).delta
    for iteration in range(num_iterations):
        size = EPSILON if iteration == num_iterations - 1 else 1.0
        leaf = (XI * delta).requires_grad_()
        probe = model(**inputs, attention_perturbation=leaf)
        (grad,) = torch.autograd.grad(kl_divergence(target, probe.logits).sum(), leaf)
        if method == "attention_vat":
            delta = gradient_perturbation(grad, mask, size).delta
        else:
            delta = attention_iat_perturbation(scores, grad, mask, size).delta
    adversarial = model(**inputs, attention_perturbation=delta)
    supervised = clean.loss if clean.loss is not None else torch.zeros(())
    return supervised + LAMBDA * kl_divergence(target, adversarial.logits).mean()


def assert_step_matches_reference(tmp_path, method, batch, num_iterations=1):
    model = tiny_model()
    reference = copy.deepcopy(model)
    trainer = make_trainer(tmp_path, method, model, adv_vat_xi=XI, adv_vat_num_iterations=num_iterations)
    trainer.current_gradient_accumulation_steps = 1
    torch.manual_seed(123)
    loss = trainer.training_step(model, batch)
    torch.manual_seed(123)
    expected = reference_vat_loss(reference.train(), batch, method, num_iterations)
    expected.backward()
    torch.testing.assert_close(loss, expected.detach())
    for (name, param), ref_param in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(param.grad, ref_param.grad, atol=1e-6, rtol=1e-5, msg=name)
    return trainer, model


@pytest.mark.parametrize("method", VAT_METHODS)
@pytest.mark.parametrize("num_iterations", [1, 2])
def test_mixed_batch_step_gradients_equal_reference(tmp_path, method, num_iterations):
    batch = collate(unlabel(make_examples(8), {1, 4, 5}))
    trainer, _ = assert_step_matches_reference(tmp_path, method, batch, num_iterations)
    assert set(trainer._metrics["train"]) == {"clean_loss", "adv_loss", "adv_perturbation_norm", "adv_num_zeroed"}


@pytest.mark.parametrize("method", VAT_METHODS)
def test_unlabelled_batch_trains_through_kl(tmp_path, method):
    examples = unlabel(make_examples(8), set(range(8)))
    batch = collate(examples)
    trainer, model = assert_step_matches_reference(tmp_path, method, batch)
    metrics = trainer._metrics["train"]
    assert float(metrics["clean_loss"][0]) == 0.0 and float(metrics["adv_loss"][0]) > 0
    assert any(param.grad.abs().sum() > 0 for param in model.parameters())
    # No label column at all: the same step.
    no_labels = {key: value for key, value in batch.items() if key != "labels"}
    assert_step_matches_reference(tmp_path / "no_labels", method, no_labels)


@pytest.mark.parametrize("method", ["attention_at", "word_at"])
def test_label_methods_need_labels(tmp_path, method):
    trainer = make_trainer(tmp_path, method, tiny_model())
    batch = {key: value for key, value in collate(make_examples(4)).items() if key != "labels"}
    with pytest.raises(ValueError, match="needs `labels`"):
        trainer.compute_loss(trainer.model.train(), batch)


# ---------------------------------------------------------------- training, logging, evaluation


@pytest.mark.parametrize("method", VAT_METHODS)
def test_training_logs_and_evaluation_unaffected(tmp_path, method):
    data = unlabel(make_examples(16, seed=6), {0, 3, 9, 10, 11})
    model = tiny_model()
    eval_data = make_examples(12, seed=1)
    before = make_trainer(tmp_path / "v", "vanilla", model).evaluate(eval_data)
    trainer = make_trainer(tmp_path / "a", method, model, data, max_steps=2, adv_vat_xi=XI)
    assert trainer.evaluate(eval_data)["eval_loss"] == before["eval_loss"]
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "adv_loss" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert entry["adv_num_zeroed"] == 0 and entry["adv_loss"] > 0
        assert entry["loss"] == pytest.approx(entry["clean_loss"] + LAMBDA * entry["adv_loss"], rel=1e-5)
        if method == "attention_vat":
            assert entry["adv_perturbation_norm"] == pytest.approx(EPSILON, rel=1e-5)
    after = make_trainer(tmp_path / "v2", "vanilla", model).evaluate(eval_data)
    assert trainer.evaluate(eval_data)["eval_loss"] == after["eval_loss"] != before["eval_loss"]
