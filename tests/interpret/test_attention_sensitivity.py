"""`attention_sensitivity`: ‖∂L/∂ã‖ per example from a head-only re-run equals the gradient of a full forward
with respect to an additive score perturbation at zero; the score range is over valid positions only."""

import pytest
import torch

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.interpret.evaluate import attention_sensitivity


@pytest.mark.parametrize("input_type", ["single", "pair"])
def test_gradient_norm_and_range_match_an_independent_computation(input_type):
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=30, embedding_size=6, hidden_size=5, attention_hidden_size=4,
                                   num_labels=3, input_type=input_type)
    model = BiLSTMAttentionForSequenceClassification(config).double().eval()
    ids = torch.randint(3, 30, (4, 7))
    ids[1, 5:] = 0
    ids[3, 5:] = 0
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long()}
    if input_type == "pair":
        ids[:, 2] = config.sep_token_id
        batch["token_type_ids"] = (torch.arange(7) > 2).long().expand(4, 7) * (ids != 0)
    target = torch.tensor([0, 2, 1, 2])
    with torch.no_grad():
        outputs = model(**batch)
    norms, ranges = attention_sensitivity(model, outputs.encoder_outputs, target, batch)

    zero = torch.zeros(ids.shape, dtype=torch.float64, requires_grad=True)
    logits = model(**batch, attention_perturbation=zero).logits
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, target, reduction="sum"), zero)
    mask = outputs.encoder_outputs.attention_scores_mask
    assert torch.equal(grad[~mask], torch.zeros_like(grad[~mask]))
    torch.testing.assert_close(torch.from_numpy(norms).double(), grad.norm(dim=1), rtol=1e-5, atol=1e-7)
    scores = outputs.encoder_outputs.attention_scores
    expected = [float(s[m].max() - s[m].min()) for s, m in zip(scores, mask, strict=True)]
    torch.testing.assert_close(torch.from_numpy(ranges).double(), torch.tensor(expected, dtype=torch.float64),
                               rtol=1e-6, atol=1e-6)
    assert all(param.grad is None for param in model.parameters())
