"""Test-time robustness of a trained BiLSTM-attention classifier: attacks on its attention scores and word
embeddings, and Jain & Wallace's (2019) attention experiments (pure evaluation: torch and the model API).

- `attention_pgd` / `word_pgd`: projected gradient ascent on the gold-label loss in a per-example L2 ball of
  radius ε over the valid tokens (zero on pads). The attention attack runs the encoder once and re-runs only the
  head (`encoder_outputs=`, `attention_perturbation=`); the word attack re-runs the model on `inputs_embeds` with
  `embedding_perturbation=`. One step of size ε is the AT perturbation of the trainer, `gradient_perturbation`.
- `min_flip_epsilon`: per example, the smallest PGD radius (by bisection) that flips the clean prediction.
- `permutation_tvd`: the output change when the attention weights are permuted over the valid tokens.
- `adversarial_attention`: attention as far as possible (JS divergence) from the model's while the output
  distribution stays within total variation δ.
- `evaluate_robustness`: all of the above over a tokenized dataset, as plain numbers.
- `RobustnessArguments`, `evaluate_run_robustness`: the evaluation a run record stores after training.

Only BiLSTM-attention models (`model_type="bilstm_attention"`) are supported. Attention is replaced through the
additive `attention_perturbation` `r = s' − ã` (softmax is shift-invariant), so no model change is needed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .data import EVAL_SAMPLE_SEED, sample_examples
from .interpret.evaluate import _collate
from .perturbations import gradient_perturbation, project_to_ball

__all__ = [
    "ATTACKS",
    "FIXED_EPSILONS",
    "RUN_ATTACKS",
    "AttackResult",
    "RobustnessArguments",
    "adversarial_attention",
    "attention_pgd",
    "check_model",
    "check_settings",
    "evaluate_robustness",
    "evaluate_run_robustness",
    "jensen_shannon",
    "min_flip_epsilon",
    "permutation_tvd",
    "resolve_bisection",
    "total_variation",
    "word_pgd",
]

# What `evaluate_robustness` can run.
ATTACKS = ("attention", "word", "permutation", "adversarial_attention")
# Quantiles of the smallest flipping ε that are reported.
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


class AttackResult(NamedTuple):
    """The outcome of a PGD attack on a batch.

    Args:
        delta (`torch.Tensor` of shape `(batch_size, sequence_length)` or `(batch_size, sequence_length, embedding_size)`):
            The last iterate (detached, zero on pads, per-example L2 norm ≤ ε).
        wrong (`torch.BoolTensor` of shape `(batch_size,)`): some iterate (the clean input included) predicts
            a class other than the gold label.
        flipped (`torch.BoolTensor` of shape `(batch_size,)`): some iterate predicts a class other than the clean
            prediction.
    """

    delta: torch.Tensor
    wrong: torch.Tensor
    flipped: torch.Tensor


def check_model(model: nn.Module) -> None:
    """Raise a one-line `ValueError` unless `model` is a BiLSTM-attention model (it exposes its attention scores
    and accepts additive attention and embedding perturbations)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type != "bilstm_attention":
        raise ValueError(f"robustness needs a BiLSTM-attention model (model_type 'bilstm_attention') that exposes "
                         f"its attention scores, got {type(model).__name__} (model_type {model_type!r})")


def _check_radius(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}")


def _check_steps(num_steps: int, step_size: float) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"`num_steps` must be an integer >= 1, got {num_steps!r}")
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"`step_size` (a fraction of ε) must be a finite number > 0, got {step_size!r}")


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """`TVD(p, q) = ½ Σ_c |p_c − q_c|` per row of two `(batch_size, num_classes)` distributions: `(batch_size,)`."""
    return 0.5 * (p - q).abs().sum(dim=-1)


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """`JSD(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m)`, `m = (p + q) / 2`, natural log (at most ln 2), per row of two
    `(batch_size, n)` distributions (zeros allowed): `(batch_size,)`."""
    m = 0.5 * (p + q)

    def kl(a: torch.Tensor) -> torch.Tensor:
        ratio = torch.where(a > 0, a / torch.where(m > 0, m, torch.ones_like(m)), torch.ones_like(a))
        return (a * ratio.log()).sum(dim=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def _states_with(encoder_outputs: Any, scores: torch.Tensor, repeat: int = 1) -> Any:
    """The cached encoder states detached (each example repeated `repeat` times, consecutively), with `scores`."""

    def expand(tensor: torch.Tensor | None) -> torch.Tensor | None:
        if tensor is None:
            return None
        return tensor.detach().repeat_interleave(repeat, dim=0) if repeat > 1 else tensor.detach()

    return type(encoder_outputs)(
        last_hidden_state=expand(encoder_outputs.last_hidden_state),
        attention_scores=scores,
        attention_scores_mask=expand(encoder_outputs.attention_scores_mask),
        question_hidden_state=expand(encoder_outputs.question_hidden_state),
    )


def _step(grad: torch.Tensor, mask: torch.Tensor, size: float | torch.Tensor) -> torch.Tensor:
    """`size · g / ‖g‖₂` per example (zero on pads; zero for a zero or non-finite gradient); `size` a number (then
    exactly `gradient_perturbation`) or a `(batch_size,)` tensor."""
    if isinstance(size, torch.Tensor):
        unit = gradient_perturbation(grad, mask, 1.0).delta
        return unit * size.to(unit.dtype).view(-1, *([1] * (unit.dim() - 1)))
    return gradient_perturbation(grad, mask, size).delta


def _pgd(
    forward: Callable[[torch.Tensor], Any],
    like: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    clean_predictions: torch.Tensor,
    epsilon: float | torch.Tensor,
    num_steps: int,
    step_size: float,
) -> AttackResult:
    """K steps of `δ ← Π_ε(δ + α ε g/‖g‖₂)` from δ = 0, `g = ∂L/∂δ` of the model's loss on the gold labels
    (`forward(δ)` returns the model output with `loss` and `logits`; δ has the shape and dtype of `like`).

    The first step is `gradient_perturbation(g, min(α, 1) ε)`, the exact projection of `α ε g/‖g‖₂` onto the ball,
    so K = 1, α = 1 is the trainer's AT step. Every iterate's prediction counts in `wrong` and `flipped`."""
    delta = torch.zeros_like(like)
    wrong = torch.zeros_like(labels, dtype=torch.bool)
    flipped = torch.zeros_like(wrong)
    for step in range(num_steps + 1):
        leaf = delta.requires_grad_(step < num_steps)
        with torch.set_grad_enabled(step < num_steps):
            output = forward(leaf)
        predictions = output.logits.detach().argmax(dim=-1)
        wrong |= predictions != labels
        flipped |= predictions != clean_predictions
        if step == num_steps:
            break
        (grad,) = torch.autograd.grad(output.loss, leaf)
        if step == 0:
            delta = _step(grad, mask, epsilon * min(step_size, 1.0))
        else:
            delta = project_to_ball(delta.detach() + _step(grad, mask, epsilon * step_size), mask, epsilon)
    return AttackResult(delta.detach(), wrong, flipped)


def _head_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: batch[key] for key in ("candidate_mask",) if key in batch}


def attention_pgd(
    model: nn.Module,
    encoder_outputs: Any,
    labels: torch.Tensor,
    clean_predictions: torch.Tensor,
    epsilon: float | torch.Tensor,
    num_steps: int = 10,
    step_size: float = 0.25,
    head_inputs: dict[str, torch.Tensor] | None = None,
) -> AttackResult:
    """PGD on the pre-softmax attention scores ã: maximise the gold-label loss over `‖r_i‖₂ ≤ ε` (valid tokens).

    Every step is a head-only re-run on the cached (detached) encoder states, so no parameter gradient is touched.

    Args:
        model: a BiLSTM-attention classifier in eval mode.
        encoder_outputs: its `encoder_outputs` for the batch (`attention_scores` `(batch_size, sequence_length)`).
        labels (`torch.LongTensor` of shape `(batch_size,)`): the gold labels.
        clean_predictions (`torch.LongTensor` of shape `(batch_size,)`): the unperturbed predictions.
        epsilon (`float` or `torch.Tensor` of shape `(batch_size,)`): the radius (> 0), or one per example (≥ 0).
        num_steps (`int`, *optional*, defaults to 10): K.
        step_size (`float`, *optional*, defaults to 0.25): the step as a fraction of ε (K = 1 with 1.0: the FGM step).
        head_inputs (`dict`, *optional*): `candidate_mask` for models that use one.

    Returns an [`AttackResult`] whose `delta` has shape `(batch_size, sequence_length)`.
    """
    _check_steps(num_steps, step_size)
    if not isinstance(epsilon, torch.Tensor):
        _check_radius("epsilon", epsilon)
    mask = encoder_outputs.attention_scores_mask
    states = _states_with(encoder_outputs, encoder_outputs.attention_scores.detach())
    head_inputs = head_inputs or {}

    def forward(delta: torch.Tensor) -> Any:
        return model(encoder_outputs=states, attention_perturbation=delta, labels=labels, **head_inputs)

    return _pgd(forward, states.attention_scores, mask, labels, clean_predictions, epsilon, num_steps, step_size)


def word_pgd(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    labels: torch.Tensor,
    clean_predictions: torch.Tensor,
    epsilon: float | torch.Tensor,
    num_steps: int = 10,
    step_size: float = 0.25,
) -> AttackResult:
    """PGD on the word embeddings w (`inputs_embeds`): maximise the gold-label loss over `‖r_i‖₂ ≤ ε`, the norm
    over the valid tokens and embedding dimensions of the example. Each step is a full forward.

    Args:
        model: a BiLSTM-attention classifier in eval mode.
        batch: `input_ids` `(batch_size, sequence_length)`, `attention_mask`, optional `token_type_ids` and
            `candidate_mask`.
        labels, clean_predictions, epsilon, num_steps, step_size: as in [`attention_pgd`].

    Returns an [`AttackResult`] whose `delta` has shape `(batch_size, sequence_length, embedding_size)`.
    """
    _check_steps(num_steps, step_size)
    if not isinstance(epsilon, torch.Tensor):
        _check_radius("epsilon", epsilon)
    inputs = {key: value for key, value in batch.items() if key != "input_ids"}
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach()
    mask = batch["attention_mask"].bool()

    def forward(delta: torch.Tensor) -> Any:
        return model(inputs_embeds=embeds, embedding_perturbation=delta, labels=labels, **inputs)

    return _pgd(forward, embeds, mask, labels, clean_predictions, epsilon, num_steps, step_size)


def min_flip_epsilon(
    attack: Callable[[torch.Tensor], AttackResult],
    low: torch.Tensor,
    high: torch.Tensor,
    tolerance: float,
) -> torch.Tensor:
    """Bisection on the attack radius: for each example with a flip at `high` and none at `low`, a radius within
    `tolerance` above one without a flip at which `attack` flips the clean prediction.

    Args:
        attack: runs the attack with a `(batch_size,)` radius tensor and returns its [`AttackResult`].
        low (`torch.Tensor` of shape `(batch_size,)`): radii known not to flip (0 is always one).
        high (`torch.Tensor` of shape `(batch_size,)`): radii known to flip (`inf` where none does: left as is).
        tolerance (`float`): stop when `high − low ≤ tolerance` for every example.

    Returns the `(batch_size,)` flipping radii (`inf` where `high` was `inf`).
    """
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"`tolerance` must be a finite number > 0, got {tolerance!r}")
    finite = torch.isfinite(high)
    low, high = low.clone(), high.clone()
    gap = (high - low)[finite]
    num_rounds = math.ceil(math.log2(float(gap.max()) / tolerance)) if gap.numel() and gap.max() > tolerance else 0
    for _ in range(num_rounds):
        middle = torch.where(finite, (low + high) / 2, torch.zeros_like(low))
        flipped = attack(middle).flipped & finite
        high = torch.where(flipped, middle, high)
        low = torch.where(flipped | ~finite, low, middle)
    return high


def _permuted_scores(
    scores: torch.Tensor, mask: torch.Tensor, num_permutations: int, generator: torch.Generator
) -> torch.Tensor:
    """`num_permutations` random permutations of each example's scores `(batch_size, sequence_length)` over its
    valid positions (pads stay in place): `(batch_size, num_permutations, sequence_length)`."""
    batch_size, seq_len = scores.shape
    keys = torch.rand(batch_size, num_permutations, seq_len, generator=generator, device=scores.device)
    keys = keys.masked_fill(~mask.unsqueeze(1), float("inf"))  # right-padded: pads sort last, in place
    index = keys.argsort(dim=-1, stable=True)
    return scores.unsqueeze(1).expand(-1, num_permutations, -1).gather(-1, index)


def permutation_tvd(
    model: nn.Module,
    encoder_outputs: Any,
    num_permutations: int,
    generator: torch.Generator,
    head_inputs: dict[str, torch.Tensor] | None = None,
    chunk_size: int = 20,
) -> torch.Tensor:
    """Jain & Wallace's permutation test: the attention weights permuted at random over the valid tokens.

    The scores are permuted (softmax commutes with permutations, so the weights are too) and given to the head as
    the perturbation `r = ã_π − ã`. Permutations are drawn for all examples at once, `chunk_size` at a time.

    Args:
        model: a BiLSTM-attention classifier in eval mode.
        encoder_outputs: its `encoder_outputs` for the batch.
        num_permutations (`int`): n permutations per example.
        generator (`torch.Generator`): the seeded source of the permutations.
        head_inputs (`dict`, *optional*): `candidate_mask` for models that use one.
        chunk_size (`int`, *optional*, defaults to 20): permutations run in one head call.

    Returns a `(batch_size, num_permutations)` tensor: `TVD(ŷ_π, ŷ)` per example and permutation.
    """
    _check_count("num_permutations", num_permutations)
    head_inputs = head_inputs or {}
    scores = encoder_outputs.attention_scores.detach()
    mask = encoder_outputs.attention_scores_mask
    batch_size, seq_len = scores.shape
    with torch.no_grad():
        clean = torch.softmax(model(encoder_outputs=_states_with(encoder_outputs, scores), **head_inputs).logits, -1)
        changes = []
        for start in range(0, num_permutations, chunk_size):
            n = min(chunk_size, num_permutations - start)
            permuted = _permuted_scores(scores, mask, n, generator).reshape(batch_size * n, seq_len)
            repeated = scores.repeat_interleave(n, dim=0)
            inputs = {key: value.repeat_interleave(n, dim=0) for key, value in head_inputs.items()}
            output = model(encoder_outputs=_states_with(encoder_outputs, repeated, n),
                           attention_perturbation=permuted - repeated, **inputs)
            probs = torch.softmax(output.logits, -1).view(batch_size, n, -1)
            changes.append(total_variation(probs, clean.unsqueeze(1)))
    return torch.cat(changes, dim=1)


def adversarial_attention(
    model: nn.Module,
    encoder_outputs: Any,
    delta: float = 0.01,
    num_iterations: int = 300,
    learning_rate: float = 0.01,
    penalty: float = 500.0,
    generator: torch.Generator | None = None,
    head_inputs: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Jain & Wallace's adversarial attention: attention logits s' optimised (Adam) to maximise
    `JSD(α', α) − penalty · max(0, TVD(ŷ', ŷ) − δ)` per example, `α' = softmax(s')` over the valid tokens, from
    `s' = ã + N(0, 1)` noise. The kept attention of an example is its iterate of largest JSD among those with
    `TVD ≤ δ` (the constraint holds for it); examples with no such iterate keep the last one.

    Args:
        model: a BiLSTM-attention classifier in eval mode.
        encoder_outputs: its `encoder_outputs` for the batch.
        delta (`float`, *optional*, defaults to 0.01): the largest total variation of the output allowed.
        num_iterations (`int`, *optional*, defaults to 300): Adam steps.
        learning_rate (`float`, *optional*, defaults to 0.01): Adam's learning rate.
        penalty (`float`, *optional*, defaults to 500.0): weight of the constraint violation.
        generator (`torch.Generator`, *optional*): source of the initial noise.
        head_inputs (`dict`, *optional*): `candidate_mask` for models that use one.

    Returns `(attention, jsd, satisfied)`: the adversarial weights `(batch_size, sequence_length)` (as the model
    computes them, zero on pads), `JSD(α', α)` `(batch_size,)` and the `(batch_size,)` bool tensor of examples with
    `TVD(ŷ', ŷ) ≤ δ`.
    """
    if not (math.isfinite(delta) and 0 < delta <= 1):
        raise ValueError(f"`delta` (a total variation distance) must be in (0, 1], got {delta!r}")
    _check_count("num_iterations", num_iterations)
    head_inputs = head_inputs or {}
    scores = encoder_outputs.attention_scores.detach()
    mask = encoder_outputs.attention_scores_mask
    states = _states_with(encoder_outputs, scores)
    with torch.no_grad():
        clean = model(encoder_outputs=states, **head_inputs)
    clean_attention, clean_probs = clean.attentions.detach(), torch.softmax(clean.logits, -1).detach()
    noise = torch.randn(scores.shape, generator=generator, device=scores.device, dtype=scores.dtype)
    logits = (scores + noise).masked_fill(~mask, 0.0).requires_grad_()
    optimizer = torch.optim.Adam([logits], lr=learning_rate)
    best_attention = clean_attention.clone()
    best_jsd = torch.full_like(scores[:, 0], -1.0)
    for iteration in range(num_iterations + 1):
        output = model(encoder_outputs=states, attention_perturbation=logits - scores, **head_inputs)
        jsd = jensen_shannon(output.attentions, clean_attention)
        tvd = total_variation(torch.softmax(output.logits, -1), clean_probs)
        with torch.no_grad():
            better = (tvd <= delta) & (jsd > best_jsd)
            best_jsd = torch.where(better, jsd, best_jsd)
            best_attention = torch.where(better.unsqueeze(1), output.attentions, best_attention)
            last_attention, last_jsd = output.attentions.detach(), jsd.detach()
        if iteration == num_iterations:
            break
        objective = (jsd - penalty * torch.relu(tvd - delta)).sum()
        (logits.grad,) = torch.autograd.grad(-objective, logits)  # no parameter gradient is touched
        optimizer.step()
    satisfied = best_jsd >= 0
    attention = torch.where(satisfied.unsqueeze(1), best_attention, last_attention)
    return attention, torch.where(satisfied, best_jsd, last_jsd), satisfied


def _quantiles(values: np.ndarray) -> dict[str, float | None]:
    """Quantiles without interpolation (`inf`, no flip, stays `None`)."""
    if not values.size:
        return {str(q): None for q in QUANTILES}
    result = np.quantile(values, QUANTILES, method="inverted_cdf")
    return {str(q): float(v) if math.isfinite(v) else None for q, v in zip(QUANTILES, result, strict=True)}


def _summary(values: np.ndarray) -> dict[str, float | None]:
    return {"mean": float(values.mean()) if values.size else None,
            "median": float(np.median(values)) if values.size else None}


def _check_count(name: str, value: int, least: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"`{name}` must be an integer >= {least}, got {value!r}")


def check_settings(
    epsilons: Sequence[float],
    attacks: Sequence[str] = ATTACKS,
    num_steps: int = 10,
    step_size: float = 0.25,
    tolerance: float | None = None,
    bisection: bool = True,
    num_permutations: int = 100,
    tvd_delta: float = 0.01,
    adversarial_iterations: int = 300,
    batch_size: int = 64,
    seed: int = 0,
) -> None:
    """Raise a one-line `ValueError` naming the first bad setting of [`evaluate_robustness`] (same arguments)."""
    if not epsilons:
        raise ValueError("`epsilons` must list at least one radius, e.g. [0, 0.5, 1, 2, 4]")
    for epsilon in epsilons:
        _check_radius("epsilons", epsilon)
    if len(set(epsilons)) != len(epsilons):
        raise ValueError(f"`epsilons` must be distinct, got {list(epsilons)}")
    unknown = [attack for attack in attacks if attack not in ATTACKS]
    if unknown or not attacks:
        raise ValueError(f"`attacks` must be a non-empty subset of {list(ATTACKS)}, got {list(attacks)}")
    _check_steps(num_steps, step_size)
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance)
                                      and tolerance > 0):
        raise ValueError(f"`tolerance` must be a finite number > 0, got {tolerance!r}")
    _check_count("num_permutations", num_permutations)
    if not (isinstance(tvd_delta, (int, float)) and math.isfinite(tvd_delta) and 0 < tvd_delta <= 1):
        raise ValueError(f"`tvd_delta` (a total variation distance) must be in (0, 1], got {tvd_delta!r}")
    _check_count("adversarial_iterations", adversarial_iterations)
    _check_count("batch_size", batch_size)
    _check_count("seed", seed, least=0)


def resolve_bisection(
    epsilons: Sequence[float],
    attacks: Sequence[str] = ATTACKS,
    tolerance: float | None = None,
    bisection: bool = True,
) -> tuple[bool, float | None]:
    """Whether [`evaluate_robustness`] bisects the smallest flipping ε with these settings, and to which
    tolerance: only with a PGD attack (`attention`, `word`) and a radius > 0; the tolerance defaults to 1% of
    the largest ε, and is `None` without bisection."""
    bisection = bisection and max(epsilons) > 0 and any(attack in attacks for attack in ("attention", "word"))
    if not bisection:
        return False, None
    return True, 0.01 * max(epsilons) if tolerance is None else tolerance


def evaluate_robustness(
    model: nn.Module,
    dataset: Any,
    epsilons: Sequence[float],
    attacks: Sequence[str] = ATTACKS,
    num_steps: int = 10,
    step_size: float = 0.25,
    tolerance: float | None = None,
    bisection: bool = True,
    num_permutations: int = 100,
    tvd_delta: float = 0.01,
    adversarial_iterations: int = 300,
    batch_size: int = 64,
    seed: int = 0,
    label_column: str = "label",
) -> dict[str, Any]:
    """Robustness of `model` on `dataset`: accuracy and prediction flips under the PGD attacks at every ε, the
    smallest flipping ε, and Jain & Wallace's permutation and adversarial-attention experiments.

    Accuracy under attack at ε counts an example correct only if every iterate of every attack with radius ≤ ε of
    the grid predicts its gold label (a perturbation found in a smaller ball lies in the larger one), so it is
    non-increasing in ε by construction and equals the clean accuracy at ε = 0; the flip rate likewise.

    Args:
        model: a BiLSTM-attention classifier (evaluated in eval mode; its train/eval mode is restored afterwards).
        dataset: a tokenized `datasets.Dataset` or dict of lists: `input_ids`, optional `token_type_ids` and
            `candidate_mask`, and `label_column`.
        epsilons (`Sequence[float]`): distinct finite radii ≥ 0 (reported in increasing order).
        attacks (`Sequence[str]`, *optional*): a non-empty subset of `ATTACKS`.
        num_steps (`int`, *optional*, defaults to 10): PGD steps K.
        step_size (`float`, *optional*, defaults to 0.25): the PGD step as a fraction of ε.
        tolerance (`float`, *optional*): bisection tolerance on ε (default: 1% of the largest ε).
        bisection (`bool`, *optional*, defaults to `True`): compute the smallest flipping ε.
        num_permutations (`int`, *optional*, defaults to 100): permutations per example.
        tvd_delta (`float`, *optional*, defaults to 0.01): δ of the adversarial-attention constraint.
        adversarial_iterations (`int`, *optional*, defaults to 300): Adam steps of the adversarial attention.
        batch_size (`int`, *optional*, defaults to 64): examples per batch (batches of similar lengths).
        seed (`int`, *optional*, defaults to 0): seeds the permutations and the adversarial start.
        label_column (`str`, *optional*, defaults to `"label"`): the gold-label column.

    Returns a dict of plain numbers (JSON-ready): `num_examples`, `clean_accuracy`, and per attack run:
    `attention`/`word` (`epsilons`, `accuracy`, `flip_rate`, and with bisection `min_flip_epsilon`: `median`,
    `quantiles`, `num_no_flip`, `max_epsilon`, `tolerance`), `permutation` (`num_permutations`, `median_tvd`: the
    median over examples of each example's median TVD, `mean_tvd`), `adversarial_attention` (`delta`, `mean_jsd`,
    `median_jsd` over the examples satisfying the constraint, `fraction_satisfied`).
    """
    check_model(model)
    check_settings(epsilons, attacks, num_steps, step_size, tolerance, bisection, num_permutations, tvd_delta,
                   adversarial_iterations, batch_size)
    epsilons = sorted(float(epsilon) for epsilon in epsilons)
    max_epsilon = epsilons[-1]
    bisection, tolerance = resolve_bisection(epsilons, attacks, tolerance, bisection)
    columns = dataset.column_names if hasattr(dataset, "column_names") else list(dataset)
    if "input_ids" not in columns or label_column not in columns:
        raise ValueError(f"the dataset needs `input_ids` and `{label_column}` columns; it has {columns}")

    was_training = model.training  # restored at the end: a caller may go on training
    model.eval()
    try:
        device = model.get_input_embeddings().weight.device
        generator = torch.Generator(device=device).manual_seed(seed)
        num_examples = len(dataset["input_ids"])
        order = np.argsort([len(ids) for ids in dataset["input_ids"]], kind="stable")
        keep = ["input_ids", *(c for c in ("token_type_ids", "candidate_mask", label_column) if c in columns)]
        pgd_attacks = [attack for attack in ("attention", "word") if attack in attacks]
        wrong = {attack: np.zeros((len(epsilons), num_examples), dtype=bool) for attack in pgd_attacks}
        flipped = {attack: np.zeros((len(epsilons), num_examples), dtype=bool) for attack in pgd_attacks}
        min_flip = {attack: np.full(num_examples, np.inf) for attack in pgd_attacks}
        permutation = np.zeros(num_examples)
        adversarial_jsd, adversarial_ok = np.zeros(num_examples), np.zeros(num_examples, dtype=bool)
        correct = np.zeros(num_examples, dtype=bool)
        for start in range(0, num_examples, batch_size):
            index = order[start : start + batch_size]
            if hasattr(dataset, "select"):
                rows = dataset.select(index).to_dict()
            else:
                rows = {c: [dataset[c][i] for i in index] for c in keep}
            batch = {k: v.to(device) for k, v in _collate(rows, model.config.pad_token_id).items()}
            labels = torch.as_tensor(rows[label_column], device=device)
            head_inputs = _head_inputs(batch)
            with torch.no_grad():
                outputs = model(**batch)
            predictions = outputs.logits.argmax(dim=-1)
            correct[index] = (predictions == labels).cpu().numpy()
            encoder_outputs = outputs.encoder_outputs
            for attack in pgd_attacks:
                steps = {"num_steps": num_steps, "step_size": step_size}
                run = (partial(attention_pgd, model, encoder_outputs, labels, predictions, head_inputs=head_inputs, **steps)
                       if attack == "attention" else partial(word_pgd, model, batch, labels, predictions, **steps))
                first_flip = torch.full_like(labels, len(epsilons))  # index into epsilons of the first flip
                for k, epsilon in enumerate(epsilons):
                    if epsilon == 0:
                        is_wrong, is_flipped = predictions != labels, torch.zeros_like(labels, dtype=torch.bool)
                    else:
                        result = run(epsilon)
                        is_wrong, is_flipped = result.wrong, result.flipped
                    first_flip = torch.where(is_flipped & (first_flip == len(epsilons)), k, first_flip)
                    wrong[attack][k, index] = is_wrong.cpu().numpy()
                    flipped[attack][k, index] = is_flipped.cpu().numpy()
                if bisection:
                    grid = torch.tensor([*epsilons, math.inf], device=device)
                    low = torch.where(first_flip > 0, grid[(first_flip - 1).clamp(min=0)], torch.zeros_like(grid[:1]))
                    low = torch.where(torch.isfinite(grid[first_flip]), low, torch.zeros_like(low))
                    min_flip[attack][index] = min_flip_epsilon(run, low, grid[first_flip], tolerance).cpu().numpy()
            if "permutation" in attacks:
                changes = permutation_tvd(model, encoder_outputs, num_permutations, generator, head_inputs)
                permutation[index] = changes.median(dim=1).values.cpu().numpy()
            if "adversarial_attention" in attacks:
                _, jsd, satisfied = adversarial_attention(model, encoder_outputs, tvd_delta, adversarial_iterations,
                                                          generator=generator, head_inputs=head_inputs)
                adversarial_jsd[index], adversarial_ok[index] = jsd.detach().cpu().numpy(), satisfied.cpu().numpy()

        report: dict[str, Any] = {"num_examples": num_examples, "clean_accuracy": float(correct.mean()),
                                  "num_steps": num_steps, "step_size": step_size}
        for attack in pgd_attacks:
            ever_wrong = np.logical_or.accumulate(wrong[attack], axis=0)  # best attack of radius ≤ ε
            ever_flipped = np.logical_or.accumulate(flipped[attack], axis=0)
            report[attack] = {
                "epsilons": epsilons,
                "accuracy": [float(1 - row.mean()) for row in ever_wrong],
                "flip_rate": [float(row.mean()) for row in ever_flipped],
            }
            if bisection:
                values = min_flip[attack]
                median = float(np.quantile(values, 0.5, method="inverted_cdf"))
                report[attack]["min_flip_epsilon"] = {
                    "median": median if math.isfinite(median) else None, "quantiles": _quantiles(values),
                    "num_no_flip": int(np.isinf(values).sum()), "max_epsilon": max_epsilon, "tolerance": tolerance,
                }
        if "permutation" in attacks:
            report["permutation"] = {"num_permutations": num_permutations, "median_tvd": float(np.median(permutation)),
                                     "mean_tvd": float(permutation.mean()), "quantiles": _quantiles(permutation)}
        if "adversarial_attention" in attacks:
            report["adversarial_attention"] = {
                "delta": tvd_delta, "iterations": adversarial_iterations,
                **{f"{key}_jsd": value for key, value in _summary(adversarial_jsd[adversarial_ok]).items()},
                "fraction_satisfied": float(adversarial_ok.mean()),
            }
        return report
    finally:
        model.train(was_training)


# The attention-attack radii of a run record besides 0, ε and 2ε of the run's trained ε: comparable across methods.
FIXED_EPSILONS = (0.5, 1.0, 2.0, 4.0)
# What a run record evaluates (the word attack is the slow one: opt in with `--robustness_attacks`).
RUN_ATTACKS = ("attention", "permutation", "adversarial_attention")


@dataclass
class RobustnessArguments:
    """The robustness evaluation after training (`hf-attn-at train --eval_robustness`, every `hf-attn-at reproduce`
    run): `evaluate_robustness` on a seeded sample of the test split, stored as the run record's `robustness`."""

    eval_robustness: bool = field(
        default=False, metadata={"help": "After training, evaluate robustness on a seeded sample of the test split "
                                         "and store it in results.json (`robustness`)."}
    )
    robustness_max_samples: int = field(
        default=500, metadata={"help": "Test examples attacked (a seeded random sample; all when fewer)."}
    )
    robustness_epsilons: list[float] = field(
        default_factory=lambda: list(FIXED_EPSILONS),
        metadata={"help": "Fixed attention-attack radii (comparable across methods); 0, ε and 2ε of the run's "
                          "trained ε are added."},
    )
    robustness_attacks: list[str] = field(
        default_factory=lambda: list(RUN_ATTACKS), metadata={"help": "What to evaluate.", "choices": list(ATTACKS)}
    )
    robustness_num_steps: int = field(default=10, metadata={"help": "PGD steps K of the attacks."})

    def __post_init__(self):
        _check_count("robustness_max_samples", self.robustness_max_samples)
        for epsilon in self.robustness_epsilons:
            if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
                raise ValueError(f"--robustness_epsilons must be finite numbers > 0, got {epsilon!r}")
        check_settings(self.robustness_epsilons, self.robustness_attacks, self.robustness_num_steps)

    def check_used(self) -> None:
        """`ValueError` naming a `--robustness_*` flag given without the evaluation that reads it (the command
        lines of `train` and `reproduce`: it would be ignored)."""
        if self.eval_robustness:
            return
        for spec in dataclasses.fields(self):
            default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default
            if spec.name != "eval_robustness" and getattr(self, spec.name) != default:
                raise ValueError(f"--{spec.name} {getattr(self, spec.name)} is read only when robustness is "
                                 f"evaluated: add --eval_robustness (or drop --no_eval_robustness), or drop "
                                 f"--{spec.name}")

    def settings(self, trained_epsilon: float | None, split: str) -> dict[str, Any]:
        """The settings recorded with the numbers of a run trained with `trained_epsilon` (`None`: vanilla),
        evaluated on `split`; a record whose `robustness["settings"]` equals them needs no new evaluation."""
        relative = [] if trained_epsilon is None else [float(trained_epsilon), 2.0 * trained_epsilon]
        return {
            "split": split, "max_samples": self.robustness_max_samples, "sample_seed": EVAL_SAMPLE_SEED,
            "trained_epsilon": trained_epsilon, "fixed_epsilons": sorted(map(float, self.robustness_epsilons)),
            "epsilons": sorted({0.0, *map(float, self.robustness_epsilons), *relative}),
            "attacks": list(self.robustness_attacks), "num_steps": self.robustness_num_steps, "attack_seed": 0,
        }


def evaluate_run_robustness(model: nn.Module, dataset: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """`evaluate_robustness` of a run's `model` on the seeded sample of its test split `dataset` that
    `settings` (from [`RobustnessArguments.settings`]) describe: `{"settings": settings, "seconds": ..., **report}`
    (the other attack settings are `evaluate_robustness`'s defaults and appear in the report)."""
    sample = sample_examples(dataset, settings["max_samples"], settings["sample_seed"])
    start = time.perf_counter()
    report = evaluate_robustness(model, sample, settings["epsilons"], settings["attacks"],
                                 num_steps=settings["num_steps"], seed=settings["attack_seed"])
    return {"settings": settings, "seconds": round(time.perf_counter() - start, 1), **report}
