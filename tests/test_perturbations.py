"""Numerical tests of `hf_attn_at.perturbations` against float64 loop references."""

import pytest
import torch

from hf_attn_at import (
    BiLSTMAttentionConfig,
    BiLSTMAttentionEncoderOutput,
    BiLSTMAttentionForSequenceClassification,
)
from hf_attn_at.perturbations import (
    attention_iat_perturbation,
    gradient_perturbation,
    nearest_neighbors,
    random_perturbation,
    word_iat_perturbation,
)

EPS = 0.3


def make_mask(lengths, seq_len):
    return torch.arange(seq_len).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


@pytest.fixture
def mask():
    return make_mask([7, 5, 3, 6], 7)


def per_example_norm(delta):
    return torch.linalg.vector_norm(delta.flatten(1), dim=1)


@pytest.mark.parametrize("kind", ["rp", "at_scores", "at_embeds"])
def test_norm_is_epsilon_and_zero_on_padding(kind, mask):
    torch.manual_seed(0)
    if kind == "rp":
        result = random_perturbation(mask, EPS)
    elif kind == "at_scores":
        result = gradient_perturbation(torch.randn(4, 7), mask, EPS)
    else:
        result = gradient_perturbation(torch.randn(4, 7, 5), mask, EPS)
    delta = result.delta
    assert not delta.requires_grad
    torch.testing.assert_close(per_example_norm(delta), torch.full((4,), EPS))
    padded = ~mask if delta.dim() == 2 else (~mask).unsqueeze(-1).expand_as(delta)
    assert (delta[padded] == 0).all()
    assert int(result.num_zeroed) == 0


def test_gradient_perturbation_direction_and_dtypes(mask):
    grad = torch.randn(4, 7, dtype=torch.float64)
    delta = gradient_perturbation(grad, mask, EPS).delta
    assert delta.dtype == torch.float64
    masked = grad * mask
    expected = EPS * masked / masked.norm(dim=1, keepdim=True)
    torch.testing.assert_close(delta, expected)
    for dtype in (torch.float16, torch.bfloat16):
        out = gradient_perturbation(grad.to(dtype), mask, EPS).delta
        assert out.dtype == dtype and torch.isfinite(out).all()


def test_random_perturbation_generator_reproducible(mask):
    first = random_perturbation(mask, EPS, generator=torch.Generator().manual_seed(3)).delta
    second = random_perturbation(mask, EPS, generator=torch.Generator().manual_seed(3)).delta
    torch.testing.assert_close(first, second)


@pytest.mark.parametrize("fault", ["nan", "inf", "zero"])
def test_faulty_gradient_gives_zero_and_is_counted(fault, mask):
    scores = torch.randn(4, 7) * mask
    grad = torch.randn(4, 7)
    grad[1] = {"nan": float("nan"), "inf": float("inf"), "zero": 0.0}[fault]
    embeds, egrad = torch.randn(4, 7, 5), torch.randn(4, 7, 5)
    egrad[1] = grad[1, 0]
    ids = torch.randint(3, 20, (4, 7))
    matrix = torch.randn(20, 5)
    results = [
        gradient_perturbation(grad, mask, EPS),
        gradient_perturbation(egrad, mask, EPS),
        attention_iat_perturbation(scores, grad, mask, EPS),
        attention_iat_perturbation(scores, grad, mask, EPS, normalize=True),
        word_iat_perturbation(embeds, egrad, mask, ids, matrix, EPS, num_neighbors=3, exclude_ids=[0, 1, 2]),
    ]
    for result in results:
        assert torch.isfinite(result.delta).all()
        assert (result.delta[1] == 0).all()
        assert int(result.num_zeroed) == 1
        assert (per_example_norm(result.delta)[[0, 2, 3]] > 0).all()


def test_nan_only_on_padding_is_ignored(mask):
    grad = torch.randn(4, 7)
    grad[2, 5] = float("nan")  # example 2 has length 3
    result = gradient_perturbation(grad, mask, EPS)
    assert int(result.num_zeroed) == 0
    torch.testing.assert_close(per_example_norm(result.delta), torch.full((4,), EPS))


# ---------------------------------------------------------------- attention iAT


def reference_attention_iat(scores, grad, mask, epsilon, normalize=False):
    """docs/METHODS.md#attention-iat with Python loops in float64."""
    scores, grad = scores.double(), grad.double()
    batch_size = scores.shape[0]
    out = torch.zeros_like(scores)
    for i in range(batch_size):
        m = mask[i].double()
        directions = []
        for j in range(batch_size):
            if j == i:
                continue
            other = scores[j] * mask[j].double()
            d = (scores[i] * m - other) * m
            if d.norm() > 0:
                directions.append(d / d.norm())
        if not directions:
            continue
        g = torch.stack([torch.dot(d, grad[i] * m) for d in directions])
        if g.norm() == 0:
            continue
        alpha = epsilon * g / g.norm()
        r = sum(a * d for a, d in zip(alpha, directions, strict=True))
        if normalize:
            r = epsilon * r / r.norm()
        out[i] = r
    return out


def in_span_residual(vector, directions):
    """Least-squares residual of `vector` on the columns of `directions` (D, N)."""
    return directions @ (torch.linalg.pinv(directions) @ vector) - vector


@pytest.mark.parametrize("normalize", [False, True])
def test_attention_iat_matches_reference_and_lies_in_span(normalize):
    torch.manual_seed(1)
    mask = make_mask([6, 4, 6, 2, 5], 6)
    scores = torch.randn(5, 6) * mask
    scores[3] = scores[1] * make_mask([2], 6)[0]  # partly equal rows keep a non-zero difference
    grad = torch.randn(5, 6) * mask
    result = attention_iat_perturbation(scores, grad, mask, EPS, normalize=normalize)
    expected = reference_attention_iat(scores, grad, mask, EPS, normalize)
    torch.testing.assert_close(result.delta.double(), expected, atol=1e-6, rtol=1e-5)
    assert (result.delta[~mask] == 0).all()
    for i in range(5):
        diffs = torch.stack([(scores[i] - scores[j]) * mask[i] for j in range(5) if j != i], dim=1).double()
        assert in_span_residual(result.delta[i].double(), diffs).abs().max() < 1e-6
    # First order: <r_i, g_i> = ε ‖g_i‖ >= 0 (raises the loss).
    assert ((result.delta * grad).sum(1) > 0).all()
    if normalize:
        torch.testing.assert_close(per_example_norm(result.delta), torch.full((5,), EPS))


def test_attention_iat_float64_exact():
    torch.manual_seed(2)
    mask = make_mask([5, 5, 3], 5)
    scores = torch.randn(3, 5, dtype=torch.float64) * mask
    grad = torch.randn(3, 5, dtype=torch.float64) * mask
    result = attention_iat_perturbation(scores, grad, mask, EPS)
    assert result.delta.dtype == torch.float64
    torch.testing.assert_close(result.delta, reference_attention_iat(scores, grad, mask, EPS), atol=1e-12, rtol=1e-10)


def test_attention_iat_without_directions_is_zero():
    mask = make_mask([4], 4)
    result = attention_iat_perturbation(torch.randn(1, 4), torch.randn(1, 4), mask, EPS)
    assert (result.delta == 0).all() and int(result.num_zeroed) == 1
    same = torch.randn(1, 4).expand(3, 4)
    result = attention_iat_perturbation(same, torch.randn(3, 4), make_mask([4, 4, 4], 4), EPS)
    assert (result.delta == 0).all() and int(result.num_zeroed) == 3


# ---------------------------------------------------------------- word iAT


def reference_word_iat(embeds, grad, mask, ids, matrix, epsilon, k, exclude):
    embeds, grad, matrix = embeds.double(), grad.double(), matrix.double()
    batch_size, seq_len, _ = embeds.shape
    out = torch.zeros_like(embeds)
    all_directions = []
    for b in range(batch_size):
        directions, weights = [], []
        for t in range(seq_len):
            if not mask[b, t]:
                continue
            token = int(ids[b, t])
            dist = sorted(
                (float((matrix[v] - matrix[token]).norm()), v) for v in range(matrix.shape[0]) if v != token and v not in exclude
            )
            for _, v in dist[:k]:
                d = torch.zeros_like(embeds[b])
                d[t] = (matrix[v] - embeds[b, t]) / (matrix[v] - embeds[b, t]).norm()
                directions.append(d)
                weights.append(float((d[t] * grad[b, t]).sum()))
        g = torch.tensor(weights, dtype=torch.float64)
        alpha = epsilon * g / g.norm()
        out[b] = sum(a * d for a, d in zip(alpha, directions, strict=True))
        all_directions.append(torch.stack([d.flatten() for d in directions], dim=1))
    return out, all_directions


def test_nearest_neighbors_excludes_self_and_specials():
    matrix = torch.tensor([[0.0], [0.1], [0.2], [1.0], [1.05], [1.2], [3.0]])
    got = nearest_neighbors(torch.tensor([3, 6]), matrix, 2, exclude_ids=[0, 1, 2], chunk_size=1)
    assert got.tolist() == [[4, 5], [5, 4]]
    with pytest.raises(ValueError, match="num_neighbors"):
        nearest_neighbors(torch.tensor([3]), matrix, 4, exclude_ids=[0, 1, 2])


def test_word_iat_matches_reference_and_lies_in_span():
    torch.manual_seed(3)
    mask = make_mask([4, 2, 3], 4)
    vocab, dim, k = 15, 3, 4
    matrix = torch.randn(vocab, dim)
    ids = torch.randint(3, vocab, (3, 4)).masked_fill(~mask, 0)
    embeds = matrix[ids]
    grad = torch.randn(3, 4, dim) * mask.unsqueeze(-1)
    result = word_iat_perturbation(embeds, grad, mask, ids, matrix, EPS, num_neighbors=k, exclude_ids=[0, 1, 2])
    expected, spans = reference_word_iat(embeds, grad, mask, ids, matrix, EPS, k, {0, 1, 2})
    torch.testing.assert_close(result.delta.double(), expected, atol=1e-6, rtol=1e-5)
    assert (result.delta[~mask] == 0).all()
    for b in range(3):
        assert in_span_residual(result.delta[b].double().flatten(), spans[b]).abs().max() < 1e-6
    assert ((result.delta * grad).flatten(1).sum(1) > 0).all()


def test_word_iat_duplicate_neighbour_gives_zero_direction():
    # Token 3 at the origin; its neighbours: 4 (a duplicate, distance 0), 5 = (1, 0) and 6 = (0, 2).
    matrix = torch.tensor([[9.0, 9.0], [9.0, -9.0], [-9.0, 9.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    ids = torch.tensor([[3]])
    grad = torch.tensor([[[3.0, 4.0]]])
    result = word_iat_perturbation(matrix[ids], grad, torch.ones(1, 1), ids, matrix, EPS, num_neighbors=3, exclude_ids=[0, 1, 2])
    # g = (0, 3, 4) over the directions (0, e1, e2): α* = ε g / 5, r = ε (0.6, 0.8).
    torch.testing.assert_close(result.delta, torch.tensor([[[0.6 * EPS, 0.8 * EPS]]]))
    assert int(result.num_zeroed) == 0


# ---------------------------------------------------------------- AT on the real model (float64)


def tiny_model():
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=99, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=2)
    return BiLSTMAttentionForSequenceClassification(config).double().eval()


def head_loss(model, enc, scores, labels):
    probe = BiLSTMAttentionEncoderOutput(
        last_hidden_state=enc.last_hidden_state,
        attention_scores=scores,
        attention_scores_mask=enc.attention_scores_mask,
    )
    return model(encoder_outputs=probe, labels=labels).loss


def test_attention_at_raises_loss_to_first_order():
    model = tiny_model()
    torch.manual_seed(5)
    mask = make_mask([7, 5, 3, 6], 7)
    ids = torch.randint(3, 99, (4, 7)).masked_fill(~mask, 0)
    labels = torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        enc = model(input_ids=ids, attention_mask=mask.long()).encoder_outputs
    leaf = enc.attention_scores.detach().requires_grad_()
    base = head_loss(model, enc, leaf, labels)
    (grad,) = torch.autograd.grad(base, leaf)
    # Finite differences of the head loss confirm g = ∂L/∂ã.
    h = 1e-6
    for b, t in [(0, 0), (1, 4), (2, 2), (3, 5)]:
        bump = torch.zeros_like(leaf)
        bump[b, t] = h
        with torch.no_grad():
            numeric = (head_loss(model, enc, leaf + bump, labels) - head_loss(model, enc, leaf - bump, labels)) / (2 * h)
        torch.testing.assert_close(numeric, grad[b, t], atol=1e-8, rtol=1e-6)
    # L(ã + r) − L(ã) ≈ ε‖g‖ (loss is a batch mean: the mean of per-example terms), beats random directions.
    epsilon = 1e-4
    delta = gradient_perturbation(grad, mask, epsilon).delta
    with torch.no_grad():
        rise = head_loss(model, enc, leaf + delta, labels) - base
        predicted = epsilon * grad.norm(dim=1).sum()
        torch.testing.assert_close(rise, predicted, rtol=1e-3, atol=0)
        for seed in range(5):
            random = random_perturbation(mask, epsilon, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
            assert head_loss(model, enc, leaf + random.delta, labels) - base < rise
