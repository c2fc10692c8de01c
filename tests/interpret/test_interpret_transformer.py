"""Attention (last layer, rollout) and gradient importance of Transformers encoders, and their agreement."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertTokenizerFast, RobertaConfig

from hf_attn_at.interpret import (
    attention_rollout,
    explain_transformer,
    explain_transformer_examples,
    transformer_attention,
    transformer_gradient_importance,
)

SPECIAL_IDS = [0, 1, 2]  # pad, cls, sep


def tiny_bert(num_layers=2):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=16, pad_token_id=0)
    return AutoModelForSequenceClassification.from_config(config).eval()


def make_batch():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 99, (3, 8), generator=generator)
    lengths = [8, 5, 4]
    for row, length in enumerate(lengths):
        ids[row, 0], ids[row, length - 1] = 1, 2
        ids[row, length:] = 0
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}


@pytest.mark.parametrize("kind", ["last_layer", "rollout"])
def test_attention_is_a_distribution_over_valid_tokens(kind):
    model, batch = tiny_bert(), make_batch()
    attention = transformer_attention(model, batch, kind)
    assert attention.shape == (3, 8)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3))
    assert torch.all(attention[batch["attention_mask"] == 0] == 0)
    assert model.config._attn_implementation == "sdpa"


def test_rollout_of_one_layer_mixes_identity():
    weights = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    expected = 0.5 * weights.mean(1) + 0.5 * torch.eye(4)
    torch.testing.assert_close(attention_rollout([weights]), expected)
    torch.testing.assert_close(attention_rollout([weights, weights]), expected @ expected)


def test_gradient_importance_is_normalised_and_padding_invariant():
    model, batch = tiny_bert(), make_batch()
    importance = transformer_gradient_importance(model, batch, SPECIAL_IDS)
    scored = (batch["input_ids"] > 2)
    torch.testing.assert_close(importance.sum(-1), torch.ones(3))
    assert torch.all(importance[~scored] == 0)
    alone = transformer_gradient_importance(model, {k: v[1:2, :5] for k, v in batch.items()}, SPECIAL_IDS)
    torch.testing.assert_close(alone[0], importance[1, :5], atol=1e-5, rtol=1e-4)


def test_gradient_importance_of_left_padded_roberta_is_the_gradient_of_its_prediction():
    """RoBERTa numbers positions from the padding (the first real token is `pad_token_id + 1`): the importance of a
    left-padded row is the gradient of the prediction its `input_ids` get, written out here with those positions
    (with `inputs_embeds` alone the positions moved and it was another function's gradient)."""
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=37, max_position_embeddings=20, pad_token_id=1)
    model = AutoModelForSequenceClassification.from_config(config).double().eval()
    generator = torch.Generator().manual_seed(1)
    examples = [[0, *torch.randint(5, 99, (n,), generator=generator).tolist(), 2] for n in (7, 3, 5)]
    width = max(map(len, examples))
    ids = torch.tensor([[1] * (width - len(e)) + e for e in examples])  # left padding with <pad> = 1
    batch = {"input_ids": ids, "attention_mask": (ids != 1).long()}
    valid = batch["attention_mask"].bool()
    positions = (valid.long().cumsum(-1) * valid + 1).long()  # fairseq positions, as RoBERTa makes them
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_()
    probs = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], position_ids=positions).logits.softmax(-1)
    torch.testing.assert_close(probs, model(**batch).logits.softmax(-1))
    probs.max(-1).values.sum().backward()
    expected = (embeds.grad * embeds).sum(-1).abs().detach()
    scored = ids > 4
    importance = transformer_gradient_importance(model, batch, [0, 1, 2], normalize=False)
    torch.testing.assert_close(importance[scored], expected[scored], atol=1e-12, rtol=1e-9)
    assert torch.all(importance[~scored] == 0)


def test_gradient_importance_matches_autograd_by_hand():
    model, batch = tiny_bert(), make_batch()
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_()
    probs = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits.softmax(-1)
    probs.max(-1).values[0].backward()
    expected = (embeds.grad[0] * embeds[0]).sum(-1).abs().detach()
    raw = transformer_gradient_importance(model, batch, SPECIAL_IDS, normalize=False)
    scored = batch["input_ids"][0] > 2
    torch.testing.assert_close(raw[0][scored], expected[scored])


def test_explain_transformer_reports_both_attentions():
    model, batch = tiny_bert(), make_batch()
    result = explain_transformer(model, [batch, batch], SPECIAL_IDS)
    assert result["num_examples"] == 6
    for kind in ("last_layer", "rollout"):
        assert result[kind]["pearson"].shape == (6,)
        assert -1 <= result[kind]["pearson_summary"]["mean"] <= 1


def tiny_tokenizer(tmp_path):
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", *(f"w{i}" for i in range(5, 99))]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"), model_max_length=16)


def test_examples_per_attention_kind_match_each_example_alone(tmp_path):
    """Padded batches of 2 give, per example and kind, what the unpadded example gives alone: its scored tokens,
    attention, gradient importance, prediction and agreement; accuracy counts the labelled examples."""
    model, batch, tokenizer = tiny_bert(), make_batch(), tiny_tokenizer(tmp_path)
    assert sorted(tokenizer.all_special_ids) == SPECIAL_IDS + [3, 4]  # [UNK], [MASK]: no example uses them
    lengths = batch["attention_mask"].sum(-1).tolist()
    ids = [batch["input_ids"][row, :n].tolist() for row, n in enumerate(lengths)]
    labels = [1, -1, 0]  # the second example unlabelled
    explained = explain_transformer_examples(model, tokenizer, {"input_ids": ids, "label": labels}, batch_size=2)
    assert set(explained) == {"last_layer", "rollout"}
    for row, example in enumerate(ids):
        alone = {"input_ids": torch.tensor([example]), "attention_mask": torch.ones(1, len(example), dtype=torch.long)}
        scored = torch.tensor(example) > 4
        importance = transformer_gradient_importance(model, alone, SPECIAL_IDS)[0][scored].numpy()
        prediction = int(model(**alone).logits.argmax(-1))
        for kind, explanation in explained.items():
            assert explanation.tokens[row] == tokenizer.convert_ids_to_tokens(torch.tensor(example)[scored].tolist())
            expected = transformer_attention(model, alone, kind)[0][scored].numpy()
            np.testing.assert_allclose(explanation.attention[row], expected, atol=1e-5)
            np.testing.assert_allclose(explanation.importance["gradient"][row], importance, atol=1e-5)
            assert explanation.predictions[row] == prediction and explanation.labels[row] == labels[row]
            r = explain_transformer(model, [alone], SPECIAL_IDS)[kind]["pearson"][0]
            assert explanation.agreement["gradient"]["pearson"][row] == pytest.approx(r, abs=1e-4)
    predictions = explained["rollout"].predictions
    accuracy = np.mean([predictions[0] == 1, predictions[2] == 0])
    for explanation in explained.values():
        assert explanation.summary["accuracy"] == accuracy and explanation.summary["num_examples"] == 3
        assert explanation.summary["gradient_pearson_mean"] == pytest.approx(
            np.nanmean(explanation.agreement["gradient"]["pearson"]))
    with pytest.raises(ValueError, match="longer than the 16 tokens"):
        explain_transformer_examples(model, tokenizer, {"input_ids": [[1, *range(5, 25), 2]]})


def test_training_mode_and_bad_kind_are_rejected():
    model, batch = tiny_bert(), make_batch()
    with pytest.raises(ValueError, match="`kind` must be one of"):
        transformer_attention(model, batch, "mean")
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        transformer_gradient_importance(model, batch)
