"""Perturbations for adversarial training on attention scores and word embeddings (tensor math only).

Every function works per example, returns a detached perturbation that is exactly zero on invalid
(padded) positions, and never produces NaN: an example whose gradient norm is zero or not finite gets a
zero perturbation and is counted in `num_zeroed` (a 0-dim tensor, so that no host sync is needed).

Shapes: `mask` is `(batch_size, sequence_length)` (bool or 0/1); attention scores and their gradients are
`(batch_size, sequence_length)`; embeddings and their gradients are
`(batch_size, sequence_length, embedding_size)`. Norms are L2 over the whole example. Computation runs in
at least float32 (attention iAT: float64) and the result has the input's dtype. Attention iAT also takes grouped
scores `(batch_size, num_groups, group_size)` (a Transformers encoder's layer-heads), with directions and norms per
group. `DIRECTIONS` gives each method's direction function under one signature; `projected_gradient_ascent` takes
several steps of one inside the per-example ε-ball (multi-step training, and any PGD attack).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch

__all__ = [
    "DIRECTIONS",
    "Direction",
    "DirectionInputs",
    "NeighborCache",
    "Perturbation",
    "attention_iat_perturbation",
    "attention_iat_random_perturbation",
    "attention_iat_released_perturbation",
    "gradient_perturbation",
    "kl_divergence",
    "nearest_neighbors",
    "project_to_ball",
    "projected_gradient_ascent",
    "random_perturbation",
    "scale_by_score_std",
    "token_neighbors",
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
    """Scale each vector along the last dimension of `vectors` `(..., D)` to L2 norm `epsilon`: the one safe
    normalisation of this module. Vectors with a zero or non-finite norm become zero. Returns the scaled vectors and
    the `(...)` bool tensor of zeroed vectors."""
    norm = torch.linalg.vector_norm(vectors, dim=-1, keepdim=True)
    valid = (norm > 0) & torch.isfinite(norm)
    scale = torch.where(valid, epsilon / torch.where(valid, norm, torch.ones_like(norm)), torch.zeros_like(norm))
    return torch.where(valid, vectors * scale, torch.zeros_like(vectors)), ~valid.squeeze(-1)


def _scale_examples(vectors: torch.Tensor, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[`_scale_to_epsilon`] over all dimensions but the first of `vectors` `(B, ...)`: per example."""
    delta, zeroed = _scale_to_epsilon(vectors.flatten(1), epsilon)
    return delta.view_as(vectors), zeroed


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
    delta, zeroed = _scale_examples(noise, epsilon)
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
    delta, zeroed = _scale_examples(masked, epsilon)
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


def _iat_groups(tensor: torch.Tensor) -> torch.Tensor:
    """`(B, T)` -> `(1, B, T)`, grouped `(B, G, D)` -> `(G, B, D)`: iAT's directions are taken within a group."""
    return tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.transpose(0, 1)


def _iat_directions(scores: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The iAT directions `d_ij = D_ij / ‖D_ij‖`, `D_ij = (ã_i − ã_j) ⊙ m_i` (`ã_j = 0` where j is padded) of each
    group, never materialised: returns the float64 scores `s` `(G, B, D)` (0 where padded), the norms `‖D_ij‖`
    `(G, B, B)` (1 where unusable) and the usable pairs `(G, B, B)`: j ≠ i and `‖D_ij‖² > 1e-12 (‖s_i‖² + ⟨m_i, s_j²⟩)`
    (below, the difference is cancellation noise: `D_ij = 0`)."""
    if mask.shape != scores.shape:
        raise ValueError(f"`mask` must have the scores' shape {tuple(scores.shape)}, got {tuple(mask.shape)}")
    mask = _iat_groups(mask.bool())
    s = torch.where(mask, _iat_groups(scores.detach()).to(torch.float64), 0.0)
    # ‖D_ij‖² = ‖s_i‖² − 2⟨s_i, s_j⟩ + ⟨m_i, s_j²⟩: inner products by matrix products.
    own = (s * s).sum(-1).unsqueeze(-1)
    other = mask.to(torch.float64) @ (s * s).transpose(1, 2)
    norm2 = own - 2 * s @ s.transpose(1, 2) + other
    not_self = ~torch.eye(s.shape[1], dtype=torch.bool, device=s.device)
    usable = (norm2 > 1e-12 * (own + other)) & not_self
    return s, torch.where(usable, norm2, 1.0).sqrt(), usable


def _weigh_iat_directions(
    s: torch.Tensor, mask: torch.Tensor, norm: torch.Tensor, weights: torch.Tensor, epsilon: float, normalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """`α_i = ε w_i / ‖w_i‖₂`, `r_i = Σ_j α_ij d_ij = Σ_j (α_ij / ‖D_ij‖) (s_i − s_j) ⊙ m_i` (rescaled to norm ε if
    `normalize`) per group, from [`_iat_directions`]' `s`, `norm` and the weights `w` `(G, B, B)` (0 on unusable
    pairs). Returns `r` `(G, B, D)` and the `(G, B)` bool tensor of zeroed units."""
    alpha, zeroed = _scale_to_epsilon(weights, epsilon)
    coefficients = alpha / norm
    delta = _iat_groups(mask.bool()) * (s * coefficients.sum(-1, keepdim=True) - coefficients @ s)
    if normalize:
        delta, zeroed_norm = _scale_to_epsilon(delta, epsilon)
        zeroed = zeroed | zeroed_norm
    return delta, zeroed


def _iat_result(delta: torch.Tensor, zeroed: torch.Tensor, like: torch.Tensor) -> Perturbation:
    """`r` `(G, B, D)` back to `like`'s layout and dtype; zeroed units `(G, B)` counted."""
    delta = delta.squeeze(0) if like.dim() == 2 else delta.transpose(0, 1)
    return Perturbation(delta.to(like.dtype), zeroed.sum())


def attention_iat_perturbation(
    scores: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, epsilon: float, normalize: bool = False
) -> Perturbation:
    """Attention iAT (Kitada & Iyatomi 2021): a perturbation in the span of the differences between the
    example's attention scores and those of the other examples of the batch.

    For example i and every j ≠ i: `D_ij = (ã_i − ã_j) ⊙ m_i` (with `ã_j = 0` where j is padded),
    `d_ij = D_ij / ‖D_ij‖` (pairs with `D_ij = 0` are dropped), `g_ij = ⟨d_ij, ∂L/∂ã_i⟩`,
    `α*_i = ε g_i / ‖g_i‖`, `r_i = Σ_j α*_ij d_ij`. Grouped scores (Transformers encoders: one group per layer-head)
    get all of this per group. Computed in float64 from inner products, without the `(B, B, ...)` differences.

    Args:
        scores (`torch.Tensor` of shape `(batch_size, sequence_length)` or `(batch_size, num_groups, group_size)`):
            the clean pre-softmax scores ã.
        grad (`torch.Tensor` of the same shape): ∂L/∂ã.
        mask (`torch.Tensor` of the same shape): valid positions.
        epsilon (`float`): the norm of α*_i.
        normalize (`bool`, *optional*, defaults to `False`): rescale each r_i to norm ε (the d_ij are not
            orthogonal, so ‖r_i‖ ≠ ε in general).

    Returns a [`Perturbation`] whose `delta` has `scores`' shape. Units (examples, or groups of an example) with no
    direction (batch of one, or all other examples equal on its positions) or a non-finite gradient get r = 0 and
    are counted.
    """
    _check_epsilon(epsilon)
    s, norm, usable = _iat_directions(scores, mask)
    g = torch.where(_iat_groups(mask.bool()), _iat_groups(grad.detach()).to(torch.float64), 0.0)
    finite = torch.isfinite(g).all(-1)  # (G, B); non-finite values on invalid positions are ignored
    g = torch.where(finite.unsqueeze(-1), g, 0.0)
    dots = (s * g).sum(-1).unsqueeze(-1) - g @ s.transpose(1, 2)  # ⟨D_ij, g_i⟩ = ⟨s_i, g_i⟩ − ⟨s_j, g_i⟩ on m_i
    weights = torch.where(usable, dots / norm, 0.0)  # g_ij = ⟨d_ij, g_i⟩
    delta, zeroed = _weigh_iat_directions(s, mask, norm, weights, epsilon, normalize)
    return _iat_result(delta, zeroed | ~finite, scores)


def attention_iat_random_perturbation(
    scores: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
    normalize: bool = False,
    generator: torch.Generator | None = None,
) -> Perturbation:
    """A random perturbation in the span of the attention-iAT directions (the random start of Attention iVAT).

    `r_i = Σ_j α_ij d_ij` with the `d_ij` of [`attention_iat_perturbation`] and `α_i = ε u_i / ‖u_i‖₂`,
    `u_ij ~ N(0, 1)` over the example's usable directions.

    Args:
        scores (`torch.Tensor` of shape `(batch_size, sequence_length)` or `(batch_size, num_groups, group_size)`):
            the clean pre-softmax scores ã.
        mask (`torch.Tensor` of the same shape): valid positions.
        epsilon (`float`): the norm of α_i.
        normalize (`bool`, *optional*, defaults to `False`): rescale each r_i to norm ε.
        generator (`torch.Generator`, *optional*): source of randomness; the global RNG by default.

    Returns a [`Perturbation`] whose `delta` has `scores`' shape; units with no direction get r = 0 and are counted.
    """
    _check_epsilon(epsilon)
    s, norm, usable = _iat_directions(scores, mask)
    noise = torch.randn(usable.shape, generator=generator, device=scores.device, dtype=_work_dtype(scores.dtype))
    delta, zeroed = _weigh_iat_directions(s, mask, norm, noise.to(torch.float64) * usable, epsilon, normalize)
    return _iat_result(delta, zeroed, scores)


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


def token_neighbors(
    input_ids: torch.Tensor, embedding_matrix: torch.Tensor, num_neighbors: int, exclude_ids: Iterable[int] = ()
) -> torch.LongTensor:
    """[`nearest_neighbors`] of every token of a batch, searched for its unique ids only.

    Args:
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): the tokens' ids.
        embedding_matrix (`torch.Tensor` of shape `(vocab_size, embedding_size)`).
        num_neighbors (`int`): K.
        exclude_ids (`Iterable[int]`): ids never returned as neighbours (special tokens).

    Returns a `torch.LongTensor` of shape `(batch_size, sequence_length, num_neighbors)`, nearest first.
    """
    unique_ids, inverse = torch.unique(input_ids, return_inverse=True)
    return nearest_neighbors(unique_ids, embedding_matrix, num_neighbors, exclude_ids)[inverse]


class NeighborCache:
    """Word iAT's neighbour lists kept across optimizer steps: an amortised [`token_neighbors`].

    A token's K nearest neighbours are searched ([`nearest_neighbors`]) at its first look-up and again at the first
    look-up once its list is `refresh_steps` optimizer steps old; in between the stored ids are reused. Only the ids
    are reused: the directions w_k − w_t are always taken from the current embeddings. Guarantee: if no embedding
    row has moved by more than δ since a list was searched, its i-th neighbour is at most 4δ farther from the token
    than the exact i-th nearest neighbour (each distance changes by at most 2δ).

    Args:
        num_neighbors (`int`): K.
        exclude_ids (`Iterable[int]`, *optional*): ids never returned as neighbours (special tokens).
        refresh_steps (`int`, *optional*, defaults to `1`): N >= 1, the age in optimizer steps at which a list is
            searched again (1: every list is searched again at each new step).

    Attributes `num_looked_up` and `num_searched` count the unique ids of each look-up and those searched.
    """

    def __init__(self, num_neighbors: int, exclude_ids: Iterable[int] = (), refresh_steps: int = 1):
        if isinstance(refresh_steps, bool) or not isinstance(refresh_steps, int) or refresh_steps < 1:
            raise ValueError(f"`refresh_steps` must be an integer >= 1, got {refresh_steps!r}")
        self.num_neighbors = num_neighbors
        self.exclude_ids = tuple(sorted({int(i) for i in exclude_ids}))
        self.refresh_steps = refresh_steps
        self.neighbors: torch.Tensor | None = None  # (vocab_size, K), valid where searched_at >= 0
        self.searched_at: torch.Tensor | None = None  # (vocab_size,), the step of the last search, -1 for never
        self.num_looked_up = 0
        self.num_searched = 0

    def lookup(self, input_ids: torch.Tensor, embedding_matrix: torch.Tensor, step: int) -> torch.LongTensor:
        """The neighbours of every token of a batch at optimizer step `step`, searching the missing and stale lists.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): the tokens' ids.
            embedding_matrix (`torch.Tensor` of shape `(vocab_size, embedding_size)`): the current embeddings.
            step (`int`): the optimizer step (a list searched at step s is reused while `step − s < refresh_steps`;
                a step before s, as after loading an older state, searches again).

        Returns a `torch.LongTensor` of shape `(batch_size, sequence_length, num_neighbors)`, nearest first as of the
        list's search.
        """
        vocab_size, device = embedding_matrix.shape[0], embedding_matrix.device
        if self.neighbors is None or self.neighbors.shape[0] != vocab_size or self.neighbors.device != device:
            self.neighbors = torch.zeros(vocab_size, self.num_neighbors, dtype=torch.long, device=device)
            self.searched_at = torch.full((vocab_size,), -1, dtype=torch.long, device=device)
        unique_ids = torch.unique(input_ids)
        last = self.searched_at[unique_ids]
        stale = (last < 0) | (step - last >= self.refresh_steps) | (last > step)
        ids = unique_ids[stale]
        if ids.numel():
            self.neighbors[ids] = nearest_neighbors(ids, embedding_matrix, self.num_neighbors, self.exclude_ids)
            self.searched_at[ids] = step
        self.num_looked_up += unique_ids.numel()
        self.num_searched += ids.numel()
        return self.neighbors[input_ids]

    def state_dict(self) -> dict[str, object]:
        """The stored lists and their search steps, with the settings they were searched for."""
        return {
            "num_neighbors": self.num_neighbors,
            "exclude_ids": list(self.exclude_ids),
            "neighbors": self.neighbors,
            "searched_at": self.searched_at,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore [`state_dict`]'s lists. Raises `ValueError` when they were searched for another K or other
        excluded ids."""
        saved = (state["num_neighbors"], tuple(state["exclude_ids"]))
        if saved != (self.num_neighbors, self.exclude_ids):
            raise ValueError(
                f"the saved neighbour lists are for num_neighbors={saved[0]} and exclude_ids={list(saved[1])}, "
                f"not num_neighbors={self.num_neighbors} and exclude_ids={list(self.exclude_ids)}"
            )
        self.neighbors, self.searched_at = state["neighbors"], state["searched_at"]


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
    neighbor_ids: torch.Tensor | None = None,
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
        neighbor_ids (`torch.LongTensor` of shape `(batch_size, sequence_length, num_neighbors)`, *optional*):
            the neighbours [`token_neighbors`] gives for these arguments, found once for several calls (multi-step);
            searched here when not given.

    Returns a [`Perturbation`] whose `delta` has `embeds`' shape.
    """
    _check_epsilon(epsilon)
    dtype = _work_dtype(embeds.dtype)
    valid = _expand_mask(mask, embeds)  # (B, T, 1)
    if neighbor_ids is None:
        neighbor_ids = token_neighbors(input_ids, embedding_matrix, num_neighbors, exclude_ids)  # (B, T, K)
    elif neighbor_ids.shape != (*input_ids.shape, num_neighbors):
        raise ValueError(
            f"`neighbor_ids` must have shape {(*input_ids.shape, num_neighbors)} (batch_size, sequence_length, "
            f"num_neighbors), got {tuple(neighbor_ids.shape)}"
        )
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
        delta, zeroed_norm = _scale_examples(delta, epsilon)
        zeroed = zeroed | zeroed_norm
    return Perturbation(delta.to(embeds.dtype), zeroed.sum())


# ---------------------------------------------------------------- one direction function per method


class DirectionInputs(NamedTuple):
    """What a method's direction function reads besides the gradient.

    Args:
        values (`torch.Tensor`): the clean tensor to perturb: attention scores `(batch_size, sequence_length)` or
            grouped attention logits `(batch_size, num_groups, group_size)` (norms, and iAT directions, per group),
            or word embeddings `(batch_size, sequence_length, embedding_size)` (norms per example).
        mask (`torch.Tensor`): valid positions: `values`' shape for attention, `(batch_size, sequence_length)` for
            word embeddings.
        normalize (`bool`, *optional*, defaults to `False`): iAT/iVAT/word iAT: rescale each r to norm ε.
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): word iAT.
        embedding_matrix (`torch.Tensor` of shape `(vocab_size, embedding_size)`, *optional*): word iAT.
        num_neighbors (`int`, *optional*, defaults to 10): word iAT's K.
        exclude_ids (`tuple[int, ...]`, *optional*): word iAT: ids never used as neighbours.
        neighbor_ids (`torch.LongTensor` of shape `(batch_size, sequence_length, num_neighbors)`, *optional*): word
            iAT: the neighbours found once ([`token_neighbors`]) for all the directions of a multi-step ascent.
    """

    values: torch.Tensor
    mask: torch.Tensor
    normalize: bool = False
    input_ids: torch.Tensor | None = None
    embedding_matrix: torch.Tensor | None = None
    num_neighbors: int = 10
    exclude_ids: tuple[int, ...] = ()
    neighbor_ids: torch.Tensor | None = None


Direction = Callable[[DirectionInputs, torch.Tensor | None, float], Perturbation]


def _per_unit(values: torch.Tensor, perturbation: Perturbation) -> Perturbation:
    return Perturbation(perturbation.delta.view_as(values), perturbation.num_zeroed)


def _attention_random(inputs: DirectionInputs, grad: torch.Tensor | None, epsilon: float) -> Perturbation:
    """Attention RP (and the random start of VAT): `grad` is not used."""
    mask = inputs.mask.flatten(0, -2)  # grouped (B, G, D): one unit per (example, group)
    return _per_unit(inputs.values, random_perturbation(mask, epsilon, dtype=inputs.values.dtype))


def _attention_gradient(inputs: DirectionInputs, grad: torch.Tensor | None, epsilon: float) -> Perturbation:
    """Attention AT / VAT; `grad=None`: VAT's random start."""
    if grad is None:
        return _attention_random(inputs, grad, epsilon)
    return _per_unit(inputs.values, gradient_perturbation(grad.flatten(0, -2), inputs.mask.flatten(0, -2), epsilon))


def _attention_iat(inputs: DirectionInputs, grad: torch.Tensor | None, epsilon: float) -> Perturbation:
    """Attention iAT / iVAT; `grad=None`: iVAT's random start."""
    if grad is None:
        return attention_iat_random_perturbation(inputs.values, inputs.mask, epsilon, inputs.normalize)
    return attention_iat_perturbation(inputs.values, grad, inputs.mask, epsilon, inputs.normalize)


def _attention_iat_released(inputs: DirectionInputs, grad: torch.Tensor | None, epsilon: float) -> Perturbation:
    released = attention_iat_released_perturbation(_required(grad).flatten(0, -2), inputs.mask.flatten(0, -2), epsilon)
    return _per_unit(inputs.values, released)


def _word_gradient(inputs: DirectionInputs, grad: torch.Tensor | None, epsilon: float) -> Perturbation:
    return gradient_perturbation(_required(grad), inputs.mask, epsilon)


def _word_iat(inputs: DirectionInputs, grad: torch.Tensor | None, epsilon: float) -> Perturbation:
    if inputs.input_ids is None or inputs.embedding_matrix is None:
        raise ValueError("word iAT needs `input_ids` and `embedding_matrix` in its DirectionInputs")
    return word_iat_perturbation(
        inputs.values, _required(grad), inputs.mask, inputs.input_ids, inputs.embedding_matrix, epsilon,
        num_neighbors=inputs.num_neighbors, exclude_ids=inputs.exclude_ids, normalize=inputs.normalize,
        neighbor_ids=inputs.neighbor_ids,
    )


def _required(grad: torch.Tensor | None) -> torch.Tensor:
    if grad is None:
        raise ValueError("this method's direction needs `grad`, the loss gradient with respect to the perturbed tensor")
    return grad


# Method name -> its direction `(inputs, grad, epsilon) -> Perturbation` (r detached, in `inputs.values`' shape).
# `hf_attn_at.methods` checks at import that every perturbing method has exactly one.
DIRECTIONS: dict[str, Direction] = {
    "attention_rp": _attention_random,
    "attention_at": _attention_gradient,
    "attention_iat": _attention_iat,
    "attention_iat_released": _attention_iat_released,
    "word_at": _word_gradient,
    "word_iat": _word_iat,
    "attention_vat": _attention_gradient,
    "attention_ivat": _attention_iat,
}


# ---------------------------------------------------------------- multi-step (projected gradient ascent)


def project_to_ball(delta: torch.Tensor, mask: torch.Tensor, epsilon: float | torch.Tensor) -> torch.Tensor:
    """The Euclidean projection of each example's `delta` onto the ball of radius `epsilon`: zero on invalid
    positions, then `r · min(1, ε / ‖r‖₂)` with the norm over the example's valid positions (and embedding
    dimensions). A rescaling, so a perturbation in the span of a method's directions stays in it.

    Args:
        delta (`torch.Tensor` of shape `(batch_size, sequence_length)` or `(batch_size, sequence_length, embedding_size)`):
            the perturbation r.
        mask (`torch.Tensor` of shape `(batch_size, sequence_length)`): valid positions.
        epsilon (`float`, or `torch.Tensor` of shape `(batch_size,)`): the radius (> 0), or one radius (>= 0) per
            example.

    Returns a tensor of `delta`'s shape and dtype (computed in at least float32). Examples with a non-finite norm
    become zero.
    """
    work = delta.detach().to(_work_dtype(delta.dtype))
    work = torch.where(_expand_mask(mask, work), work, torch.zeros_like(work))
    norm = torch.linalg.vector_norm(work.flatten(1), dim=1).view(-1, *([1] * (work.dim() - 1)))
    if isinstance(epsilon, torch.Tensor):
        if epsilon.shape != (delta.shape[0],) or not bool(torch.isfinite(epsilon).all()) or bool((epsilon < 0).any()):
            raise ValueError(f"`epsilon` as a tensor must hold one finite radius >= 0 per example (shape "
                             f"({delta.shape[0]},)), got shape {tuple(epsilon.shape)}")
        epsilon = epsilon.to(device=norm.device, dtype=norm.dtype).view_as(norm)
    else:
        _check_epsilon(epsilon)
    scale = torch.where(norm > epsilon, epsilon / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.ones_like(norm))
    projected = torch.where(torch.isfinite(norm), work * scale, torch.zeros_like(work))
    return projected.to(delta.dtype)


def projected_gradient_ascent(
    direction: Direction,
    inputs: DirectionInputs,
    loss_gradient: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    epsilon: float,
    num_steps: int,
    step_size: float,
) -> Perturbation:
    """Multi-step adversarial perturbation (PGD, Madry et al. 2018, in a method's own directions):
    `r ← Π_ε(r + direction(∇_r L(x + r), α))` `num_steps` times from `r = Π_ε(start)`.

    Each step moves by the method's direction function at size α = `step_size` (AT: `α g / ‖g‖₂`; iAT: a step in
    the span of its difference directions, which the projection, a rescaling, keeps); [`project_to_ball`] then
    brings each example back to `‖r‖₂ ≤ ε`, zero on invalid positions.

    Args:
        direction ([`Direction`]): the method's direction function (`DIRECTIONS[name]`).
        inputs ([`DirectionInputs`]): its inputs (the clean tensor: iAT spans stay those of the clean values).
        loss_gradient (`Callable[[torch.Tensor], torch.Tensor]`): `r ↦ ∂L/∂r` at the perturbed point, of `r`'s shape.
        start (`torch.Tensor` of `inputs.values`' shape): the first perturbation (the one-step direction, or zeros).
        epsilon (`float`): the radius ε of the per-example L2 ball.
        num_steps (`int`): gradient steps after `start` (>= 0).
        step_size (`float`): α (> 0).

    Returns a [`Perturbation`] whose `delta` (detached, `start`'s shape and dtype) has per-example norm <= ε;
    `num_zeroed` counts the examples whose final r is zero.
    """
    if not 0 < step_size < float("inf"):
        raise ValueError(f"`step_size` must be a finite float > 0, got {step_size!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"`num_steps` must be an integer >= 0, got {num_steps!r}")
    delta = project_to_ball(start, inputs.mask, epsilon)
    for _ in range(num_steps):
        step = direction(inputs, loss_gradient(delta), step_size).delta
        delta = project_to_ball(delta + step.to(delta.dtype), inputs.mask, epsilon)
    return Perturbation(delta, delta.flatten(1).eq(0).all(dim=1).sum())
