"""Multi-step adversarial training (`adv_num_steps`, `adv_step_size`): projected gradient ascent in each method's
directions, its arguments, the trainer step against full-forward references, and the recorded settings."""

import copy
import json

import pytest
import torch
from test_trainer import EPSILON, LAMBDA, SPECIAL_IDS, collate, make_examples, make_trainer, tiny_model
from test_vat import iat_directions_loop

from hf_attn_at.interpret.report import json_safe
from hf_attn_at.methods import METHODS
from hf_attn_at.model_card import build_model_card, summarize_training_args
from hf_attn_at.perturbations import (
    DIRECTIONS,
    DirectionInputs,
    gradient_perturbation,
    project_to_ball,
    projected_gradient_ascent,
    token_neighbors,
    word_iat_perturbation,
)
from hf_attn_at.training_args import AdversarialTrainingArguments

MULTI_STEP_METHODS = ["attention_at", "attention_iat", "word_at", "word_iat"]


def make_mask(lengths, seq_len):
    return torch.arange(seq_len).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def one_line_error(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------- arguments and registry


def test_registry_lists_the_multi_step_methods():
    accepting = [name for name, spec in METHODS.items() if "adv_num_steps" in spec.settings]
    assert accepting == MULTI_STEP_METHODS
    for name in accepting:
        spec = METHODS[name]
        assert spec.gradient and not spec.virtual and "adv_step_size" in spec.settings


@pytest.mark.parametrize("method", ["vanilla", "attention_rp", "attention_iat_released", "attention_vat", "attention_ivat"])
def test_more_than_one_step_is_refused_for_other_methods(tmp_path, method):
    epsilon = None if method == "vanilla" else EPSILON
    with pytest.raises(ValueError) as excinfo:
        AdversarialTrainingArguments(output_dir=str(tmp_path), adv_method=method, adv_epsilon=epsilon, adv_num_steps=3)
    message = one_line_error(excinfo)
    assert "`adv_num_steps=3`" in message and f"not {method!r}" in message
    assert "attention_at, attention_iat, word_at and word_iat" in message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"adv_num_steps": 0}, "`adv_num_steps` must be an integer >= 1, got 0"),
        ({"adv_num_steps": 2.0}, "`adv_num_steps` must be an integer >= 1, got 2.0"),
        ({"adv_num_steps": True}, "`adv_num_steps` must be an integer >= 1, got True"),
        ({"adv_num_steps": 3, "adv_step_size": 0.0}, "`adv_step_size` must be a finite float > 0, got 0.0"),
        ({"adv_num_steps": 3, "adv_step_size": -0.1}, "`adv_step_size` must be a finite float > 0, got -0.1"),
        ({"adv_num_steps": 3, "adv_step_size": float("inf")}, "`adv_step_size` must be a finite number, got inf"),
        ({"adv_num_steps": 3, "adv_step_size": float("nan")}, "`adv_step_size` must be a finite number, got nan"),
        ({"adv_step_size": 0.1}, "`adv_step_size=0.1` is the step of adv_num_steps > 1"),
    ],
)
def test_multi_step_arguments_are_validated(tmp_path, kwargs, message):
    with pytest.raises(ValueError) as excinfo:
        AdversarialTrainingArguments(output_dir=str(tmp_path), adv_method="word_at", adv_epsilon=EPSILON, **kwargs)
    assert message in one_line_error(excinfo)


def test_step_size_defaults_to_madry_rule_and_parses_from_command_line(tmp_path):
    from transformers import HfArgumentParser

    args = AdversarialTrainingArguments(output_dir=str(tmp_path), adv_method="attention_at", adv_epsilon=0.6, adv_num_steps=4)
    assert args.adv_step_size == pytest.approx(2.5 * 0.6 / 4, rel=1e-15)
    one_step = AdversarialTrainingArguments(output_dir=str(tmp_path), adv_method="attention_at", adv_epsilon=0.6)
    assert (one_step.adv_num_steps, one_step.adv_step_size) == (1, None)
    (parsed,) = HfArgumentParser(AdversarialTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--adv_method", "word_iat", "--adv_epsilon", "0.1",
         "--adv_num_steps", "3", "--adv_step_size", "0.05"]
    )
    assert (parsed.adv_num_steps, parsed.adv_step_size) == (3, 0.05)


def test_transformers_encoders_refuse_more_than_one_step(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    with pytest.raises(ValueError) as excinfo:
        make_trainer(tmp_path, "attention_at", BertForSequenceClassification(config), adv_num_steps=2)
    assert one_line_error(excinfo) == (
        "adv_num_steps=2 supports only BiLSTM-attention models, got BertForSequenceClassification"
    )


def test_settings_are_recorded_in_training_args_and_card(tmp_path):
    """`training_args.json` is `to_dict()` (as `hf_attn_at.experiment` writes it); the card lists every adv_* field."""
    args = AdversarialTrainingArguments(output_dir=str(tmp_path), adv_method="attention_iat", adv_epsilon=0.3, adv_num_steps=5)
    recorded = args.to_dict()
    recorded["adv_method"] = args.adv_method.value
    recorded = json.loads(json.dumps(json_safe(recorded)))
    assert (recorded["adv_num_steps"], recorded["adv_step_size"]) == (5, pytest.approx(0.15, rel=1e-15))
    reloaded = AdversarialTrainingArguments(
        output_dir=str(tmp_path), **{key: recorded[key] for key in ("adv_method", "adv_epsilon", "adv_num_steps", "adv_step_size")}
    )
    assert (reloaded.adv_num_steps, reloaded.adv_step_size) == (args.adv_num_steps, args.adv_step_size)
    card = str(build_model_card(tiny_model(), method="attention_iat", epsilon=0.3, lambda_=1.0,
                                training_args=summarize_training_args(recorded)))
    assert "adv_num_steps" in card and "adv_step_size" in card
    assert "| adv_num_steps | 5 |" in card.replace("`", "") and "| adv_step_size | 0.15 |" in card.replace("`", "")


# ---------------------------------------------------------------- projection and ascent


def test_project_to_ball_matches_a_loop():
    torch.manual_seed(0)
    mask = make_mask([6, 4, 1, 5], 6)
    delta = torch.randn(4, 6, 3, dtype=torch.float64) * torch.tensor([3.0, 0.1, 5.0, 1.0], dtype=torch.float64).view(4, 1, 1)
    projected = project_to_ball(delta, mask, 1.0)
    for i in range(4):
        valid = [delta[i, t] for t in range(6) if mask[i, t]]
        norm = sum(float((v * v).sum()) for v in valid) ** 0.5
        expected = delta[i] * mask[i].view(6, 1) * (1.0 / norm if norm > 1.0 else 1.0)
        torch.testing.assert_close(projected[i], expected, rtol=1e-12, atol=0)
    assert torch.equal(projected[1], delta[1] * mask[1].view(6, 1))  # inside the ball: only the pads zeroed
    bad = torch.full((1, 3), float("nan"))
    assert torch.equal(project_to_ball(bad, torch.ones(1, 3), 1.0), torch.zeros(1, 3))
    half = project_to_ball(delta.to(torch.bfloat16), mask, 1.0)
    assert half.dtype == torch.bfloat16


def toy_problem(seed=0):
    """A concave toy loss `L(r) = −½ Σ a (r − t)²` per example over its valid positions, `t` outside the ball (norm
    1.5ε): the maximiser over `‖r‖ <= ε` is the trust-region point `r* = a t / (a + μ)`, `‖r*‖ = ε` (μ by bisection)."""
    generator = torch.Generator().manual_seed(seed)
    mask = make_mask([6, 4, 5], 6)
    a = torch.rand(3, 6, generator=generator, dtype=torch.float64) * 8 + 0.2
    t = torch.randn(3, 6, generator=generator, dtype=torch.float64) * mask
    t = 1.5 * EPSILON * t / t.norm(dim=1, keepdim=True)
    optimum = torch.zeros_like(t)
    for i in range(3):
        low, high = 0.0, 1e6
        for _ in range(200):
            mu = (low + high) / 2
            low, high = (mu, high) if float((a[i] * t[i] / (a[i] + mu)).norm()) > EPSILON else (low, mu)
        optimum[i] = a[i] * t[i] / (a[i] + high)
    return mask, (lambda r: -0.5 * (a * (r - t) ** 2 * mask).sum(1)), (lambda r: a * (t - r)), optimum


def test_ascent_reaches_the_known_optimum_of_a_concave_toy():
    mask, loss, gradient, optimum = toy_problem()
    inputs = DirectionInputs(torch.zeros_like(optimum), mask)
    start = gradient_perturbation(gradient(torch.zeros_like(optimum)), mask, EPSILON).delta  # the one-step r
    assert (start - optimum).abs().max() > 0.05  # the one step is not the optimum (a is anisotropic)
    result = projected_gradient_ascent(DIRECTIONS["attention_at"], inputs, gradient, start, EPSILON, 300, EPSILON / 50)
    torch.testing.assert_close(result.delta, optimum, rtol=0, atol=1e-4)
    assert (loss(result.delta) > loss(start) + 1e-4).all()
    assert int(result.num_zeroed) == 0 and not result.delta.requires_grad


@pytest.mark.parametrize("normalize", [False, True])
def test_iat_ascent_stays_in_the_span_and_the_ball(normalize):
    torch.manual_seed(1)
    mask = make_mask([6, 4, 6, 2, 5], 6)
    scores = torch.randn(5, 6, dtype=torch.float64) * mask
    target = torch.randn(5, 6, dtype=torch.float64)
    inputs = DirectionInputs(scores, mask, normalize)
    gradient = lambda r: (target - r) * 3.0  # noqa: E731
    start = DIRECTIONS["attention_iat"](inputs, gradient(torch.zeros_like(scores)), EPSILON).delta
    result = projected_gradient_ascent(DIRECTIONS["attention_iat"], inputs, gradient, start, EPSILON, 4, 0.3).delta
    assert (result.norm(dim=1) <= EPSILON * (1 + 1e-12)).all() and (result[~mask] == 0).all()
    directions = iat_directions_loop(scores, mask)
    for i in range(5):
        basis = torch.stack([d for d in directions[i] if d is not None], dim=1)  # (T, N)
        alpha = torch.linalg.lstsq(basis, result[i].unsqueeze(1)).solution
        torch.testing.assert_close(basis @ alpha, result[i].unsqueeze(1))


def test_ascent_rejects_bad_steps():
    mask = torch.ones(2, 3, dtype=torch.bool)
    inputs = DirectionInputs(torch.zeros(2, 3), mask)
    for steps, size, message in ((-1, 0.1, "`num_steps` must be an integer >= 0, got -1"),
                                 (2, 0.0, "`step_size` must be a finite float > 0, got 0.0"),
                                 (2, float("nan"), "`step_size` must be a finite float > 0, got nan")):
        with pytest.raises(ValueError) as excinfo:
            projected_gradient_ascent(DIRECTIONS["attention_at"], inputs, torch.ones_like, torch.zeros(2, 3), 1.0, steps, size)
        assert one_line_error(excinfo) == message


def test_word_iat_with_neighbours_found_once_is_the_same():
    torch.manual_seed(2)
    matrix = torch.randn(30, 5, dtype=torch.float64)
    ids = torch.randint(3, 30, (3, 7))
    mask = make_mask([7, 5, 2], 7)
    embeds, grad = matrix[ids], torch.randn(3, 7, 5, dtype=torch.float64)
    neighbors = token_neighbors(ids, matrix, 4, exclude_ids=[0, 1, 2])
    assert neighbors.shape == (3, 7, 4)
    searched = word_iat_perturbation(embeds, grad, mask, ids, matrix, EPSILON, 4, [0, 1, 2])
    given = word_iat_perturbation(embeds, grad, mask, ids, matrix, EPSILON, 4, [0, 1, 2], neighbor_ids=neighbors)
    assert torch.equal(searched.delta, given.delta) and int(searched.num_zeroed) == int(given.num_zeroed)
    with pytest.raises(ValueError) as excinfo:
        word_iat_perturbation(embeds, grad, mask, ids, matrix, EPSILON, 3, [0, 1, 2], neighbor_ids=neighbors)
    assert one_line_error(excinfo) == (
        "`neighbor_ids` must have shape (3, 7, 3) (batch_size, sequence_length, num_neighbors), got (3, 7, 4)"
    )


# ---------------------------------------------------------------- the trainer


def training_run(tmp_path, method, **overrides):
    model = tiny_model(dropout=0.2)
    make_trainer(tmp_path, method, model, make_examples(32, seed=5, max_len=20), max_steps=4, optim="adamw_torch",
                 learning_rate=1e-2, train_sampling_strategy="random", **overrides).train()
    return model.state_dict()


@pytest.mark.parametrize("method", MULTI_STEP_METHODS)
def test_one_step_is_bitwise_the_default(tmp_path, method):
    default = training_run(tmp_path / "default", method)
    one_step = training_run(tmp_path / "one", method, adv_num_steps=1)
    three_steps = training_run(tmp_path / "three", method, adv_num_steps=3)
    assert all(torch.equal(default[name], one_step[name]) for name in default)
    assert not all(torch.equal(default[name], three_steps[name]) for name in default)


def reference_multi_step_loss(model, batch, method, epsilon, num_steps, step_size, score_std=False):
    """L + λ·L(x + r_K) with full forwards: r_1 the one-step perturbation, then r ← Π(r + α d(g)) written out (d: ĝ
    for AT; word iAT: `word_iat_perturbation`, neighbours searched afresh at every step)."""
    mask = batch["attention_mask"].bool()
    if method.startswith("word"):
        embeds = model.get_input_embeddings()(batch["input_ids"])
        clean = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"])
        (grad,) = torch.autograd.grad(clean.loss, embeds, retain_graph=True)
        weight, keyword = mask.unsqueeze(-1), "embedding_perturbation"
    else:
        clean = model(**batch)
        scores = clean.encoder_outputs.attention_scores
        (grad,) = torch.autograd.grad(clean.loss, scores, retain_graph=True)
        weight, keyword = mask, "attention_perturbation"
    scale = torch.ones(mask.shape[0], 1)
    if score_std:  # r = std(ã_i) · u, the ascent taken on u
        scale = torch.stack([s[m].std(unbiased=False) for s, m in zip(scores.detach(), mask, strict=True)]).view(-1, 1)

    def direction(g, size):
        if method == "word_iat":
            matrix = model.get_input_embeddings().weight
            return word_iat_perturbation(embeds, g, mask, batch["input_ids"], matrix, size, 3, SPECIAL_IDS).delta
        g = g * weight
        return size * g / g.flatten(1).norm(dim=1).view(-1, *([1] * (g.dim() - 1)))

    r = direction(grad, epsilon)
    for _ in range(num_steps - 1):
        leaf = r.clone().requires_grad_()
        probe = model(**batch, **{keyword: leaf * scale.view(-1, *([1] * (leaf.dim() - 1)))})
        (g,) = torch.autograd.grad(probe.loss, leaf)
        r = r + direction(g, step_size)
        norm = r.flatten(1).norm(dim=1).view(-1, *([1] * (r.dim() - 1)))
        r = r * torch.clamp(epsilon / norm, max=1.0)
    adv = model(**batch, **{keyword: r * scale.view(-1, *([1] * (r.dim() - 1)))})
    return clean.loss + LAMBDA * adv.loss, adv.loss


@pytest.mark.parametrize(
    ("method", "score_std"), [("attention_at", False), ("attention_at", True), ("word_at", False), ("word_iat", False)]
)
def test_training_step_equals_full_forward_reference(tmp_path, method, score_std):
    model = tiny_model()
    reference = copy.deepcopy(model)
    batch = collate(make_examples(8))
    # score_std: ε large enough that std(ã_i) · ε moves the loss beyond the linear regime
    epsilon, extra = (40.0, {"adv_epsilon_scale": "score_std"}) if score_std else (EPSILON, {})
    trainer = make_trainer(tmp_path, method, model, adv_epsilon=epsilon, adv_num_steps=4, adv_step_size=0.6 * epsilon, **extra)
    trainer.current_gradient_accumulation_steps = 1
    loss = trainer.training_step(model, batch)
    expected, adv_loss = reference_multi_step_loss(reference.train(), batch, method, epsilon, 4, 0.6 * epsilon, score_std)
    expected.backward()
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(trainer._metrics["train"]["adv_loss"][0], adv_loss.detach())
    for (name, param), ref_param in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(param.grad, ref_param.grad, atol=1e-6, rtol=1e-5, msg=name)


def final_perturbation(tmp_path, method, batch, **overrides):
    """The perturbation the trainer's adversarial pass receives, and the logged adversarial loss."""
    model = tiny_model()
    seen = []
    model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("attention_perturbation", kwargs.get("embedding_perturbation"))),
        with_kwargs=True,
    )
    trainer = make_trainer(tmp_path, method, model, **overrides)
    trainer.current_gradient_accumulation_steps = 1
    trainer.training_step(model, batch)
    return seen[-1].detach(), float(trainer._metrics["train"]["adv_loss"][0])


@pytest.mark.parametrize("method", MULTI_STEP_METHODS)
def test_perturbation_stays_in_the_ball_and_off_pads(tmp_path, method):
    batch = collate(make_examples(8))
    delta, _ = final_perturbation(tmp_path, method, batch, adv_num_steps=3, adv_step_size=0.4)
    norms = delta.flatten(1).norm(dim=1)
    assert (norms <= EPSILON * (1 + 1e-6)).all() and (norms > 0).all()
    pads = batch["attention_mask"] == 0
    assert pads.any() and (delta[pads] == 0).all()


@pytest.mark.parametrize("method", MULTI_STEP_METHODS)
def test_more_steps_raise_the_adversarial_loss(tmp_path, method):
    """PGD ascends from the one-step perturbation: on a fixed model and batch (no dropout) the adversarial loss after
    5 steps exceeds the one-step loss (iAT rescaled to norm ε, so that both perturbations have the same size)."""
    batch = collate(make_examples(8))
    epsilon = 2.0 if method.startswith("attention") else 1.0
    common = {"adv_epsilon": epsilon, "adv_iat_normalize": True} if "iat" in method else {"adv_epsilon": epsilon}
    _, one_step = final_perturbation(tmp_path, method, batch, **common)
    _, five_steps = final_perturbation(tmp_path, method, batch, adv_num_steps=5, **common)
    assert five_steps > one_step + 1e-4, (one_step, five_steps)


def test_project_to_ball_with_one_radius_per_example():
    """Per-example radii (the robustness attacks' bisection) project each example onto its own ball."""
    delta = torch.tensor([[3.0, 4.0, 9.0], [0.3, 0.4, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]], dtype=torch.bool)
    projected = project_to_ball(delta, mask, torch.tensor([1.0, 1.0]))
    assert torch.allclose(projected, torch.tensor([[0.6, 0.8, 0.0], [0.3, 0.4, 0.0]]))
    assert torch.equal(project_to_ball(delta, mask, torch.tensor([0.0, 2.0]))[0], torch.zeros(3))
    for bad in (torch.tensor([1.0]), torch.tensor([1.0, -1.0]), torch.tensor([1.0, float("nan")])):
        with pytest.raises(ValueError, match="one finite radius >= 0 per example"):
            project_to_ball(delta, mask, bad)
