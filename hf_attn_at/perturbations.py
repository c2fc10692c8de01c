"""Perturbations for adversarial training on attention scores and word embeddings (tensor math only).

Every function works per example, returns a detached perturbation that is exactly zero on invalid
(padded) positions, and never produces NaN: an example whose gradient norm is zero or not finite gets a
zero perturbation and is counted in `num_zeroed` (a 0-dim tensor, so that no host sync is needed).

Shapes: `mask` is `(batch_size, sequence_length)` (bool or 0/1); attention scores and their gradients are
`(batch_size, sequence_length)`; embeddings and their gradients are
`(batch_size, sequence_length, embedding_size)`. Norms are L2 over the whole example. Computation runs in
at least float32 and the result has the input's dtype.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch

__all__ = [
    "Perturbation",
    "attention_iat_perturbation",
    "attention_iat_random_perturbation",
    "attention_iat_released_perturbation",
    "gradient_perturbation",
    "kl_divergence",
    "nearest_neighbors",
    "random_perturbation",
    "scale_by_score_std",
    "word_iat_perturbation",
]


class Perturbation(NamedTuple):
    """A perturbation and the number of examples whose perturbation was set to zero.

    Args:
        delta (`torch.Tensor` of the input's shape):
            The perturbation r (detached, zero on invalid positions).
        num_zeroed (`torch.LongTensor` of shape `()`):
            Examples given r = 0 because their gradient (or direction weights) had a zero or non-finite norm.
    """

    delta: torch.Tensor
    num_zeroed: torch.Tensor


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _expand_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`mask` `(B, T)` -> bool mask broadcastable to `like` `(B, T)` or `(B, T, E)`."""
    mask = mask.bool()
    if mask.shape != like.shape[:2]:
        raise ValueError(f"`mask` must have shape {tuple(like.shape[:2])} (batch_size, sequence_length), got {tuple(mask.shape)}")
    return mask.view(*mask.shape, *([1] * (like.dim() - 2)))


def _check_epsilon(epsilon: float) -> None:
    if not epsilon > 0:
        raise ValueError(f"`epsilon` must be > 0, got {epsilon!r}")


def _scale_to_epsilon(vectors: torch.Tensor, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale each example of `vectors` `(B, ...)` to L2 norm `epsilon`.

    Examples with a zero or non-finite norm become zero. Returns the scaled vectors and the per-example
    `(B,)` bool tensor of zeroed examples.
    """
    flat = vectors.flatten(1)
    finite = torch.isfinite(flat).all(dim=1)
    flat = torch.where(finite.unsqueeze(1), flat, torch.zeros_like(flat))
    norm = torch.linalg.vector_norm(flat, dim=1)
    valid = finite & (norm > 0) & torch.isfinite(norm)
    scale = torch.where(valid, epsilon / torch.where(valid, norm, torch.ones_like(norm)), torch.zeros_like(norm))
    return (flat * scale.unsqueeze(1)).view_as(vectors), ~valid


def random_perturbation(
    mask: torch.Tensor,
    epsilon: float,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Perturbation:
    """Attention RP: `r = ε u / ‖u‖₂` per example with `u ~ N(0, I)` on the valid positions.

    Args:
        mask (`torch.Tensor` of shape `(batch_size, sequence_length)`): valid positions.
        epsilon (`float`): the perturbation norm.
        generator (`torch.Generator`, *optional*): source of randomness; the global RNG by default.
        dtype (`torch.dtype`, *optional*, defaults to `torch.float32`): dtype of the result.

    Returns a [`Perturbation`] whose `delta` has shape `(batch_size, sequence_length)`.
    """
    _check_epsilon(epsilon)
    noise = torch.randn(mask.shape, generator=generator, device=mask.device, dtype=_work_dtype(dtype))
    noise = noise * _expand_mask(mask, noise)
    delta, zeroed = _scale_to_epsilon(noise, epsilon)
    return Perturbation(delta.to(dtype), zeroed.sum())


def gradient_perturbation(grad: torch.Tensor, mask: torch.Tensor, epsilon: float) -> Perturbation:
    """AT (Goodfellow et al., Miyato et al.): `r = ε g / ‖g‖₂` per example.

    Args:
        grad (`torch.Tensor` of shape `(batch_size, sequence_length)` or `(batch_size, sequence_length, embedding_size)`):
            The loss gradient with respect to the attention scores or the word embeddings.
        mask (`torch.Tensor` of shape `(batch_size, sequence_length)`): valid positions.
        epsilon (`float`): the perturbation norm.

    Returns a [`Perturbation`] whose `delta` has `grad`'s shape; the norm is taken over all valid
    positions (and embedding dimensions) of the example.
    """
    _check_epsilon(epsilon)
    work = grad.detach().to(_work_dtype(grad.dtype))
    masked = torch.where(_expand_mask(mask, work), work, torch.zeros_like(work))
    delta, zeroed = _scale_to_epsilon(masked, epsilon)
    return Perturbation(delta.to(grad.dtype), zeroed.sum())


def attention_iat_released_perturbation(grad: torch.Tensor, mask: torch.Tensor, epsilon: float) -> Perturbation:
    """What the authors' released code computes for attention iAT (a diagnostic, not the paper's method):
    `r = −ε g / ‖g‖₂` per example, the negated AT direction.

    The released `TanhBCAttentioniAT` weighs its difference directions by a zero tensor, so its probe perturbation
    is 0 and the probe gradient is `g = ∂L/∂ã`; it then perturbs by `ξ · normalize(−g)`. To first order this lowers
    the loss: `⟨r, g⟩ = −ε ‖g‖₂ ≤ 0`.

    Args:
        grad (`torch.Tensor` of shape `(batch_size, sequence_length)`): ∂L/∂ã.
        mask (`torch.Tensor` of shape `(batch_size, sequence_length)`): valid positions.
        epsilon (`float`): the perturbation norm (the released code's ξ).

    Returns a [`Perturbation`] whose `delta` has shape `(batch_size, sequence_length)`: exactly
    `−gradient_perturbation(grad, mask, epsilon).delta`.
    """
    return gradient_perturbation(-grad, mask, epsilon)


def _weigh_directions(
    directions: torch.Tensor, weights: torch.Tensor, epsilon: float, normalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """`α = ε w / ‖w‖₂`, `r = Σ_n α_n d_n` (rescaled to norm ε if `normalize`) for unit directions `(B, N, D)` and
    weights `w` `(B, N)`. Returns `r` `(B, D)` and the `(B,)` bool tensor of zeroed examples."""
    alpha, zeroed = _scale_to_epsilon(weights, epsilon)
    delta = torch.bmm(alpha.unsqueeze(1), directions).squeeze(1)  # (B, D)
    if normalize:
        delta, zeroed_norm = _scale_to_epsilon(delta, epsilon)
        zeroed = zeroed | zeroed_norm
    return delta, zeroed


def _combine_directions(
    directions: torch.Tensor, grad: torch.Tensor, epsilon: float, normalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sato et al.'s iAT step on unit directions `(B, N, D)` and a gradient `(B, D)`.

    `g_n = ⟨d_n, grad⟩`, `α* = ε g / ‖g‖₂`, `r = Σ_n α*_n d_n` (rescaled to norm ε if `normalize`).
    Zero directions contribute nothing. Returns `r` `(B, D)` and the `(B,)` bool tensor of zeroed examples.
    """
    finite = torch.isfinite(grad).all(dim=1)
    grad = torch.where(finite.unsqueeze(1), grad, torch.zeros_like(grad))
    weights = torch.bmm(directions, grad.unsqueeze(-1)).squeeze(-1)  # (B, N)
    delta, zeroed = _weigh_directions(directions, weights, epsilon, normalize)
    return delta, zeroed | ~finite


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    """Normalise the last dimension to unit L2 norm; zero (or non-finite) vectors become zero."""
    norm = torch.linalg.vector_norm(vectors, dim=-1, keepdim=True)
    valid = (norm > 0) & torch.isfinite(norm)
    return torch.where(valid, vectors / torch.where(valid, norm, torch.ones_like(norm)), torch.zeros_like(vectors))


def attention_iat_perturbation(
    scores: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, epsilon: float, normalize: bool = False
) -> Perturbation:
    """Attention iAT (Kitada & Iyatomi 2021): a perturbation in the span of the differences between the
    example's attention scores and those of the other examples of the batch.

    For example i and every j ≠ i: `D_ij = (ã_i − ã_j) ⊙ m_i` (with `ã_j = 0` where j is padded),
    `d_ij = D_ij / ‖D_ij‖` (pairs with `D_ij = 0` are dropped), `g_ij = ⟨d_ij, ∂L/∂ã_i⟩`,
    `α*_i = ε g_i / ‖g_i‖`, `r_i = Σ_j α*_ij d_ij`.

    Args:
        scores (`torch.Tensor` of shape `(batch_size, sequence_length)`): the clean pre-softmax scores ã.
        grad (`torch.Tensor` of shape `(batch_size, sequence_length)`): ∂L/∂ã.
        mask (`torch.Tensor` of shape `(batch_size, sequence_length)`): valid positions.
        epsilon (`float`): the norm of α*_i.
        normalize (`bool`, *optional*, defaults to `False`): rescale each r_i to norm ε (the d_ij are not
            orthogonal, so ‖r_i‖ ≠ ε in general).

    Returns a [`Perturbation`] whose `delta` has shape `(batch_size, sequence_length)`. Examples with no
    direction (batch of one, or all other examples equal on its positions) get r = 0 and are counted.
    """
    _check_epsilon(epsilon)
    directions = _iat_directions(scores, mask)
    valid = _expand_mask(mask, scores)
    grad = torch.where(valid, grad.detach().to(directions.dtype), torch.zeros((), dtype=directions.dtype, device=grad.device))
    delta, zeroed = _combine_directions(directions, grad, epsilon, normalize)
    return Perturbation(delta.to(scores.dtype), zeroed.sum())


def attention_iat_random_perturbation(
    scores: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
    normalize: bool = False,
    generator: torch.Generator | None = None,
) -> Perturbation:
    """A random perturbation in the span of the attention-iAT directions (the random start of Attention iVAT).

    `r_i = Σ_j α_ij d_ij` with the `d_ij` of [`attention_iat_perturbation`] and `α_i = ε u_i / ‖u_i‖₂`,
    `u_ij ~ N(0, 1)` over the example's non-zero directions.

    Args:
        scores (`torch.Tensor` of shape `(batch_size, sequence_length)`): the clean pre-softmax scores ã.
        mask (`torch.Tensor` of shape `(batch_size, sequence_length)`): valid positions.
        epsilon (`float`): the norm of α_i.
        normalize (`bool`, *optional*, defaults to `False`): rescale each r_i to norm ε.
        generator (`torch.Generator`, *optional*): source of randomness; the global RNG by default.

    Returns a [`Perturbation`] whose `delta` has shape `(batch_size, sequence_length)`; examples with no
    direction get r = 0 and are counted.
    """
    _check_epsilon(epsilon)
    directions = _iat_directions(scores, mask)
    has_direction = directions.abs().sum(dim=-1) > 0  # (B, B)
    noise = torch.randn(has_direction.shape, generator=generator, device=scores.device, dtype=directions.dtype)
    delta, zeroed = _weigh_directions(directions, noise * has_direction, epsilon, normalize)
    return Perturbation(delta.to(scores.dtype), zeroed.sum())


def _iat_directions(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The unit directions `d_ij = D_ij / ‖D_ij‖`, `D_ij = (ã_i − ã_j) ⊙ m_i` (`ã_j = 0` where j is padded;
    zero for j = i and for `D_ij = 0`): `(B, B, T)` in the work dtype."""
    dtype = _work_dtype(scores.dtype)
    valid = _expand_mask(mask, scores)
    scores = torch.where(valid, scores.detach().to(dtype), torch.zeros((), dtype=dtype, device=scores.device))
    not_self = ~torch.eye(scores.shape[0], dtype=torch.bool, device=scores.device)
    differences = (scores.unsqueeze(1) - scores.unsqueeze(0)) * (valid.unsqueeze(1) & not_self.unsqueeze(-1))
    return _unit(differences)


def kl_divergence(target_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """`KL(p ‖ q)` per example with `p = softmax(target_logits)` (detached: a constant target) and
    `q = softmax(logits)`: the virtual adversarial loss of Miyato et al. (VAT).

    Args:
        target_logits (`torch.Tensor` of shape `(batch_size, num_labels)`): the clean logits.
        logits (`torch.Tensor` of shape `(batch_size, num_labels)`): the perturbed logits.

    Returns a `(batch_size,)` tensor in at least float32, differentiable with respect to `logits`. Labels with
    probability 0 under p (e.g. logits filled with the dtype's minimum) contribute 0.
    """
    dtype = _work_dtype(logits.dtype)
    log_p = torch.log_softmax(target_logits.detach().to(dtype), dim=-1)
    log_q = torch.log_softmax(logits.to(dtype), dim=-1)
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros((), dtype=dtype, device=p.device)).sum(dim=-1)


def nearest_neighbors(
    token_ids: torch.Tensor,
    embedding_matrix: torch.Tensor,
    num_neighbors: int,
    exclude_ids: Iterable[int] = (),
    chunk_size: int = 1024,
) -> torch.Tensor:
    """The `num_neighbors` nearest vocabulary entries (Euclidean) of each token id, excluding itself and
    `exclude_ids`.

    Args:
        token_ids (`torch.LongTensor` of shape `(num_tokens,)`): the (unique) ids to look up.
        embedding_matrix (`torch.Tensor` of shape `(vocab_size, embedding_size)`).
        num_neighbors (`int`): K; must leave K candidates after the exclusions.
        exclude_ids (`Iterable[int]`): ids never returned as neighbours (special tokens).
        chunk_size (`int`): rows of the distance matrix computed at once.

    Returns a `torch.LongTensor` of shape `(num_tokens, num_neighbors)`, nearest first.
    """
    vocab_size = embedding_matrix.shape[0]
    excluded = torch.zeros(vocab_size, dtype=torch.bool, device=embedding_matrix.device)
    exclude = sorted({int(i) for i in exclude_ids})
    if exclude:
        excluded[torch.tensor(exclude, device=excluded.device)] = True
    candidates = vocab_size - int(excluded.sum()) - 1
    if not 1 <= num_neighbors <= candidates:
        raise ValueError(
            f"`num_neighbors` must be in [1, {candidates}] (vocabulary {vocab_size} minus the token itself and "
            f"{len(exclude)} excluded ids), got {num_neighbors!r}"
        )
    matrix = embedding_matrix.detach().to(_work_dtype(embedding_matrix.dtype))
    neighbors = []
    for chunk in token_ids.split(chunk_size):
        distances = torch.cdist(matrix[chunk], matrix)  # (n, V)
        distances.masked_fill_(excluded, float("inf"))
        distances.scatter_(1, chunk.unsqueeze(1), float("inf"))
        neighbors.append(distances.topk(num_neighbors, dim=1, largest=False).indices)
    return torch.cat(neighbors)


def scale_by_score_std(perturbation: Perturbation, scores: torch.Tensor, mask: torch.Tensor) -> Perturbation:
    """Rescale each example's attention perturbation by the standard deviation of its valid attention scores:
    for perturbations linear in ε (RP, AT, iAT), the same as `ε_i = ε · std(ã_i)`, a size relative to the
    example's own score scale, which a model cannot escape by growing its scores (our extension, not the paper's).

    Args:
        perturbation ([`Perturbation`]): `delta` of shape `(batch_size, sequence_length)`.
        scores (`torch.Tensor` of shape `(batch_size, sequence_length)`): the attention scores ã (detached here).
        mask (`torch.Tensor` of shape `(batch_size, sequence_length)`): valid positions.

    Returns a [`Perturbation`]; examples with fewer than two valid positions (std 0) get r = 0 and are counted in
    `num_zeroed`.
    """
    dtype = _work_dtype(scores.dtype)
    valid = mask.to(torch.bool)
    count = valid.sum(dim=1, keepdim=True).clamp(min=1)
    values = torch.where(valid, scores.detach().to(dtype), torch.zeros((), dtype=dtype, device=scores.device))
    mean = values.sum(dim=1, keepdim=True) / count
    centred = torch.where(valid, values - mean, torch.zeros((), dtype=dtype, device=scores.device))
    std = (centred.square().sum(dim=1, keepdim=True) / count).sqrt()  # (B, 1), population std over valid positions
    usable = (std > 0) & torch.isfinite(std)
    zeroed = ~usable.squeeze(1) & perturbation.delta.ne(0).any(dim=1)
    delta = perturbation.delta.to(dtype) * torch.where(usable, std, torch.zeros_like(std))
    return Perturbation(delta.to(perturbation.delta.dtype), perturbation.num_zeroed + zeroed.sum())


def word_iat_perturbation(
    embeds: torch.Tensor,
    grad: torch.Tensor,
    mask: torch.Tensor,
    input_ids: torch.Tensor,
    embedding_matrix: torch.Tensor,
    epsilon: float,
    num_neighbors: int = 10,
    exclude_ids: Iterable[int] = (),
    normalize: bool = False,
) -> Perturbation:
    """Word iAT (Sato et al. 2018): a perturbation of each token's embedding toward its K nearest
    vocabulary neighbours.

    `d_tk = (w_k − w_t) / ‖w_k − w_t‖`, `g_tk = ⟨d_tk, ∂L/∂w_t⟩`, `α* = ε g / ‖g‖₂` over all (t, k) of the
    example, `r_t = Σ_k α*_tk d_tk`. Neighbours are found for the batch's unique ids only.

    Args:
        embeds (`torch.Tensor` of shape `(batch_size, sequence_length, embedding_size)`): the embeddings w.
        grad (`torch.Tensor` of shape `(batch_size, sequence_length, embedding_size)`): ∂L/∂w.
        mask (`torch.Tensor` of shape `(batch_size, sequence_length)`): valid positions.
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): the tokens' ids.
        embedding_matrix (`torch.Tensor` of shape `(vocab_size, embedding_size)`): the current embeddings.
        epsilon (`float`): the norm of α* per example.
        num_neighbors (`int`, *optional*, defaults to 10): K.
        exclude_ids (`Iterable[int]`, *optional*): ids never used as neighbours (special tokens).
        normalize (`bool`, *optional*, defaults to `False`): rescale each example's r to norm ε.

    Returns a [`Perturbation`] whose `delta` has `embeds`' shape.
    """
    _check_epsilon(epsilon)
    dtype = _work_dtype(embeds.dtype)
    valid = _expand_mask(mask, embeds)  # (B, T, 1)
    unique_ids, inverse = torch.unique(input_ids, return_inverse=True)
    neighbor_ids = nearest_neighbors(unique_ids, embedding_matrix, num_neighbors, exclude_ids)[inverse]  # (B, T, K)
    # The only (B, T, K, E) tensor: the differences w_k − w_t, kept unnormalised; 1/‖w_k − w_t‖ is folded into the
    # (B, T, K) weights. Zero or non-finite differences and padding give zero directions.
    diffs = embedding_matrix.detach().to(dtype)[neighbor_ids]
    diffs.sub_(embeds.detach().to(dtype).unsqueeze(2))
    norms = torch.linalg.vector_norm(diffs, dim=-1)  # (B, T, K)
    usable = (norms > 0) & torch.isfinite(norms) & valid
    diffs.masked_fill_(~usable.unsqueeze(-1), 0.0)
    inv_norms = torch.where(usable, norms, torch.inf).reciprocal()  # 1 / ‖w_k − w_t‖, 0 where unusable
    grad = torch.where(valid, grad.detach().to(dtype), torch.zeros((), dtype=dtype, device=grad.device))
    finite = torch.isfinite(grad).flatten(1).all(dim=1)
    grad = torch.where(finite.view(-1, 1, 1), grad, torch.zeros_like(grad))
    weights = torch.matmul(diffs, grad.unsqueeze(-1)).squeeze(-1) * inv_norms  # g_tk = ⟨d_tk, ∂L/∂w_t⟩, (B, T, K)
    alpha, zeroed = _scale_to_epsilon(weights.flatten(1), epsilon)  # over all (t, k) of an example
    coefficients = alpha.view_as(weights) * inv_norms  # α*_tk / ‖w_k − w_t‖
    delta = torch.matmul(coefficients.unsqueeze(-2), diffs).squeeze(-2)  # r_t = Σ_k α*_tk d_tk, (B, T, E)
    zeroed = zeroed | ~finite
    if normalize:
        delta, zeroed_norm = _scale_to_epsilon(delta, epsilon)
        zeroed = zeroed | zeroed_norm
    return Perturbation(delta.to(embeds.dtype), zeroed.sum())
