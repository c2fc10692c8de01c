"""`adv_epsilon_scale="score_std"`: each example's attention perturbation sized ε · std of its valid scores."""

import math

import pytest
import torch
from test_trainer import EPSILON, collate, make_examples, make_trainer, tiny_model

from hf_attn_at.perturbations import (
    Perturbation,
    gradient_perturbation,
    random_perturbation,
    scale_by_score_std,
)
from hf_attn_at.training_args import AdversarialTrainingArguments


def test_scale_is_the_std_of_valid_scores_in_float64():
    torch.manual_seed(0)
    scores = torch.randn(4, 6, dtype=torch.float64) * torch.tensor([[1.0], [3.0], [0.2], [5.0]], dtype=torch.float64)
    mask = torch.arange(6) < torch.tensor([[6], [4], [1], [3]])
    scores = scores.masked_fill(~mask, 1e6)  # padded scores must not enter the std
    base = gradient_perturbation(torch.randn(4, 6, dtype=torch.float64), mask, EPSILON)
    scaled = scale_by_score_std(base, scores, mask)
    for i in range(4):
        valid = scores[i][mask[i]]
        std = math.sqrt(sum((v - valid.mean()) ** 2 for v in valid.tolist()) / len(valid))  # population std
        torch.testing.assert_close(scaled.delta[i], base.delta[i] * std, rtol=1e-12, atol=0)
        if std > 0:
            assert math.isclose(float(scaled.delta[i].norm()), EPSILON * std, rel_tol=1e-12)
    assert torch.equal(scaled.delta[~mask], torch.zeros_like(scaled.delta[~mask]))
    assert int(scaled.num_zeroed) == 1  # the one-token example: std 0, r = 0, counted


def test_scale_keeps_dtype_and_counts():
    mask = torch.ones(2, 3, dtype=torch.bool)
    scores = torch.tensor([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]], dtype=torch.bfloat16)
    base = random_perturbation(mask, 1.0, dtype=torch.bfloat16)
    scaled = scale_by_score_std(Perturbation(base.delta, torch.tensor(2)), scores, mask)
    assert scaled.delta.dtype == torch.bfloat16 and int(scaled.num_zeroed) == 3  # 2 before + the constant row


@pytest.mark.parametrize("method", ["attention_rp", "attention_at", "attention_iat"])
def test_trainer_logs_the_relative_norm(tmp_path, method):
    model = tiny_model()
    batch = collate(make_examples(8))
    normalize = {"adv_iat_normalize": True} if method == "attention_iat" else {}
    trainer = make_trainer(tmp_path, method, model, adv_epsilon_scale="score_std", **normalize)
    trainer.current_gradient_accumulation_steps = 1
    model.train()
    trainer.training_step(model, batch)
    logged = float(trainer._metrics["train"]["adv_perturbation_norm"][0])
    with torch.no_grad():
        enc = model(**batch).encoder_outputs
    stds = [float(s[m].std(unbiased=False)) for s, m in zip(enc.attention_scores, enc.attention_scores_mask, strict=True)]
    assert math.isclose(logged, EPSILON * sum(stds) / len(stds), rel_tol=1e-4)  # iAT rescaled to ε: ‖r_i‖ = ε·std_i


@pytest.mark.parametrize("method", ["word_at", "word_iat", "attention_vat"])
def test_score_std_is_refused_for_other_methods(tmp_path, method):
    with pytest.raises(ValueError, match=r"`adv_epsilon_scale='score_std'` scales attention perturbations"):
        AdversarialTrainingArguments(output_dir=str(tmp_path), adv_method=method, adv_epsilon=1.0,
                                     adv_epsilon_scale="score_std")
    with pytest.raises(ValueError, match="`adv_epsilon_scale` must be one of"):
        AdversarialTrainingArguments(output_dir=str(tmp_path), adv_method="attention_at", adv_epsilon=1.0,
                                     adv_epsilon_scale="relative")
