"""Importance scores: finite differences, completeness, leave-one-out against explicit re-runs."""

from __future__ import annotations

import pytest
import torch

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, build_word_tokenizer
from hf_attn_at.interpret import (
    gradient_importance,
    integrated_gradients_attributions,
    integrated_gradients_importance,
    leave_one_out_attributions,
    leave_one_out_importance,
)

TEXTS = ["a good film with a fine cast", "bad", "the plot is dull and the acting worse", "not good at all"]
PREMISES = ["a man plays a guitar on stage", "two dogs run", "a woman reads"]
HYPOTHESES = ["a person plays music", "animals are outside", "someone is sleeping now"]


def tiny_model(input_type: str = "single", dtype: torch.dtype = torch.float64):
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(
        vocab_size=99, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=2 if input_type ==
        "single" else 3, input_type=input_type
    )
    return BiLSTMAttentionForSequenceClassification(config).to(dtype).eval()


def batch_for(input_type: str):
    if input_type == "single":
        tokenizer = build_word_tokenizer(TEXTS)
        return tokenizer, tokenizer(TEXTS, padding=True, return_tensors="pt")
    tokenizer = build_word_tokenizer(PREMISES + HYPOTHESES)
    return tokenizer, tokenizer(PREMISES, HYPOTHESES, padding=True, return_tensors="pt")


def fixed_attention_prob(model, embeds, batch, attention, predicted):
    """ŷ per example with the pooling weights set to `attention`, computed from the model's parts."""
    enc = model.model.encode(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                             token_type_ids=batch.get("token_type_ids"))
    pooled = torch.bmm(attention.unsqueeze(1), enc.last_hidden_state).squeeze(1)
    probs = model.classifier(pooled, enc.question_hidden_state).softmax(-1)
    return probs.gather(1, predicted[:, None]).squeeze(1)


@pytest.mark.parametrize("input_type", ["single", "pair"])
def test_gradient_importance_matches_finite_differences(input_type):
    model = tiny_model(input_type)
    _, batch = batch_for(input_type)
    with torch.no_grad():
        out = model(**batch)
    attention, mask = out.attentions, out.encoder_outputs.attention_scores_mask
    predicted = out.logits.argmax(-1)
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach()
    scores = gradient_importance(model, batch, normalize=False)
    eps = 1e-6
    expected = torch.zeros_like(scores)
    for b, t in mask.nonzero().tolist():
        # Directional derivative along w_t: d/dε ŷ(w + ε w_t e_t) = ∇_{w_t} ŷ · w_t.
        step = torch.zeros_like(embeds)
        step[b, t] = embeds[b, t] * eps
        with torch.no_grad():
            plus = fixed_attention_prob(model, embeds + step, batch, attention, predicted)[b]
            minus = fixed_attention_prob(model, embeds - step, batch, attention, predicted)[b]
        expected[b, t] = ((plus - minus) / (2 * eps)).abs()
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-9)
    assert (scores[~mask] == 0).all()
    normalized = gradient_importance(model, batch)
    torch.testing.assert_close(normalized.sum(-1), torch.ones(len(scores), dtype=torch.float64))
    torch.testing.assert_close(normalized, scores / scores.sum(-1, keepdim=True))


def test_gradient_importance_is_batch_independent():
    model = tiny_model()
    _, batch = batch_for("single")
    together = gradient_importance(model, batch)
    for b in range(len(TEXTS)):
        n = int(batch["attention_mask"][b].sum())
        alone = gradient_importance(model, {k: v[b : b + 1, :n] for k, v in batch.items()})
        torch.testing.assert_close(together[b, :n], alone[0])


def test_gradient_importance_differs_from_free_attention_gradient():
    """Holding attention fixed matters: the plain input gradient gives different scores."""
    model = tiny_model()
    _, batch = batch_for("single")
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
    probs = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits.softmax(-1)
    probs.max(-1).values.sum().backward()
    free = (embeds.grad * embeds).sum(-1).abs() * batch["attention_mask"]
    assert not torch.allclose(free, gradient_importance(model, batch, normalize=False))


@pytest.mark.parametrize("input_type", ["single", "pair"])
def test_integrated_gradients_completeness(input_type):
    model = tiny_model(input_type)
    _, batch = batch_for(input_type)
    attributions = integrated_gradients_attributions(model, batch, n_steps=64)
    with torch.no_grad():
        out = model(**batch)
    predicted = out.logits.argmax(-1)
    embeds = model.get_input_embeddings()(batch["input_ids"])
    with torch.no_grad():
        at_input = fixed_attention_prob(model, embeds, batch, out.attentions, predicted)
        # Baseline: attended tokens zeroed; a pair's hypothesis keeps its embeddings.
        baseline = embeds * ~out.encoder_outputs.attention_scores_mask.unsqueeze(-1)
        at_baseline = fixed_attention_prob(model, baseline, batch, out.attentions, predicted)
    difference = at_input - at_baseline
    assert (difference.abs() > 1e-4).all()
    torch.testing.assert_close(attributions.sum(-1), difference, rtol=0.01, atol=1e-6)
    importance = integrated_gradients_importance(model, batch, n_steps=8)
    mask = out.encoder_outputs.attention_scores_mask
    assert (importance[~mask] == 0).all() and torch.allclose(importance.sum(-1), torch.ones(len(mask), dtype=torch.float64))


@pytest.mark.parametrize("input_type", ["single", "pair"])
def test_leave_one_out_equals_rerun_without_token(input_type):
    model = tiny_model(input_type)
    tokenizer, batch = batch_for(input_type)
    scores = leave_one_out_attributions(model, batch, chunk_size=5)  # several chunks
    with torch.no_grad():
        out = model(**batch)
    probs = out.logits.softmax(-1)
    predicted = probs.argmax(-1)
    mask = out.encoder_outputs.attention_scores_mask
    for b, t in mask.nonzero().tolist():
        n = int(batch["attention_mask"][b].sum())
        if int(mask[b].sum()) == 1:  # a one-token segment cannot lose its token
            assert scores[b, t] == 0
            continue
        if input_type == "single":
            words = tokenizer.convert_ids_to_tokens(batch["input_ids"][b, :n].tolist())
            rerun = tokenizer([" ".join(words[:t] + words[t + 1 :])], return_tensors="pt")
        else:
            words = PREMISES[b].split()
            rerun = tokenizer([" ".join(words[:t] + words[t + 1 :])], [HYPOTHESES[b]], return_tensors="pt")
        with torch.no_grad():
            reduced = model(**rerun).logits.softmax(-1)[0, predicted[b]]
        torch.testing.assert_close(scores[b, t], probs[b, predicted[b]] - reduced)
    assert (scores[~mask] == 0).all()
    importance = leave_one_out_importance(model, batch)
    expected = torch.nan_to_num(scores.abs() / scores.abs().sum(-1, keepdim=True))  # "bad" alone: all 0
    torch.testing.assert_close(importance, expected)


def test_training_mode_is_refused():
    model = tiny_model().train()
    _, batch = batch_for("single")
    with pytest.raises(ValueError, match="eval"):
        gradient_importance(model, batch)
