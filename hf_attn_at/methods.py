"""The training methods: the `AdversarialMethod` enum and its registry `METHODS`, one entry per member.

A method is one `MethodSpec` here and one direction function in `perturbations.DIRECTIONS` (same name); the trainer,
the Transformers integration, model cards and `hf-attn-at reproduce` read everything else from the entry.
`check_registry` runs at import: a member without an entry or without a direction raises there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from .perturbations import DIRECTIONS


class AdversarialMethod(str, Enum):
    """Training objectives; their properties read [`METHODS`]."""

    VANILLA = "vanilla"
    ATTENTION_RP = "attention_rp"
    ATTENTION_AT = "attention_at"
    ATTENTION_IAT = "attention_iat"
    ATTENTION_IAT_RELEASED = "attention_iat_released"
    WORD_AT = "word_at"
    WORD_IAT = "word_iat"
    ATTENTION_VAT = "attention_vat"
    ATTENTION_IVAT = "attention_ivat"

    @property
    def spec(self) -> MethodSpec:
        return METHODS[self.value]

    @property
    def is_attention(self) -> bool:
        return self.spec.target == "attention_scores"

    @property
    def is_word(self) -> bool:
        return self.spec.target == "word_embeddings"

    @property
    def is_virtual(self) -> bool:
        """Virtual adversarial training (Kitada & Iyatomi 2022): the direction and the adversarial loss come from
        `KL(p(y|ã) ‖ p(y|ã + r))`, so unlabelled examples (label -100) train too."""
        return self.spec.virtual

    @property
    def is_diagnostic(self) -> bool:
        """Not a paper's method (`attention_iat_released`: what the authors' released code computes for iAT)."""
        return self.spec.diagnostic

    @property
    def uses_batch_directions(self) -> bool:
        """iAT and iVAT: directions are differences between the examples of a batch (needs >= 2 per device)."""
        return self.spec.batch_directions


@dataclass(frozen=True)
class MethodSpec:
    """What the code needs to know about one [`AdversarialMethod`].

    Args:
        target (`str` or `None`): what is perturbed: `"attention_scores"` (a BiLSTM-attention model's pre-softmax
            scores, or a Transformers encoder's attention logits when `transformer_encoders`), `"word_embeddings"`,
            or `None` (vanilla: nothing).
        title (`str`): the method's name in model cards.
        description (`str`): one paragraph for model cards.
        settings (`tuple[str, ...]`): the `AdversarialTrainingArguments` fields it reads (`adv_epsilon`, ...);
            `adv_num_steps` and `adv_step_size` among them: it accepts multi-step training (`adv_num_steps > 1`).
        gradient (`bool`): its direction needs a gradient (∂L/∂target; ∂KL for virtual methods) from a probe.
        virtual (`bool`): the adversarial loss is `KL(p(y|x) ‖ p(y|x + r))` (unlabelled examples train too).
        batch_directions (`bool`): directions are differences between the examples of a batch (>= 2 per device).
        diagnostic (`bool`): not a paper's method (left out of the paper grids of `hf-attn-at reproduce`).
        clean_loss_weight (`float`): the weight of `L` in the training loss `w · L + λ · L_adv`.
        transformer_encoders (`bool`): also implemented on Transformers encoders' attention logits.
    """

    target: Literal["attention_scores", "word_embeddings"] | None
    title: str
    description: str
    settings: tuple[str, ...] = ()
    gradient: bool = False
    virtual: bool = False
    batch_directions: bool = False
    diagnostic: bool = False
    clean_loss_weight: float = 1.0
    transformer_encoders: bool = False


_ATTENTION = ("adv_epsilon", "adv_lambda", "adv_epsilon_scale")
_VIRTUAL = ("adv_epsilon", "adv_lambda", "adv_vat_xi", "adv_vat_num_iterations")
_MULTI_STEP = ("adv_num_steps", "adv_step_size")

METHODS: dict[str, MethodSpec] = {
    "vanilla": MethodSpec(
        None,
        "vanilla training",
        "No perturbation: the model minimises the cross-entropy loss L alone (the paper's baseline).",
    ),
    "attention_rp": MethodSpec(
        "attention_scores",
        "random perturbation on attention (Attention RP)",
        "Random perturbation of the pre-softmax attention scores ã: r = ε u / ‖u‖₂ with u ~ N(0, I) on the "
        "valid positions of each example; the loss is L(ã) + λ · L(ã + r).",
        (*_ATTENTION, "adv_attention_norm"),
        transformer_encoders=True,
    ),
    "attention_at": MethodSpec(
        "attention_scores",
        "adversarial training on attention (Attention AT)",
        "Adversarial perturbation of the pre-softmax attention scores ã: r = ε g / ‖g‖₂ with g = ∂L/∂ã "
        "per example; the loss is L(ã) + λ · L(ã + r), r held constant.",
        (*_ATTENTION, "adv_attention_norm", *_MULTI_STEP),
        gradient=True,
        transformer_encoders=True,
    ),
    "attention_iat": MethodSpec(
        "attention_scores",
        "interpretable adversarial training on attention (Attention iAT)",
        "Adversarial perturbation of the attention scores restricted to the directions d_ij from the "
        "example's scores to those of the other examples j of the mini-batch: r_i = Σ_j α_ij d_ij with "
        "α_i = ε g_i / ‖g_i‖₂, g_ij = ⟨d_ij, ∂L/∂ã_i⟩. It enhances the differences in attention between "
        "sentences; the loss is L(ã) + λ · L(ã + r).",
        (*_ATTENTION, "adv_attention_norm", "adv_iat_normalize", *_MULTI_STEP),
        gradient=True,
        batch_directions=True,
        transformer_encoders=True,
    ),
    "attention_iat_released": MethodSpec(
        "attention_scores",
        "the authors' released code's Attention iAT arithmetic (a diagnostic, not the paper's method)",
        "What the authors' released code computes for iAT, not the method the paper describes: its direction "
        "weights are zero, so the perturbation is the negated AT direction r = −ε g / ‖g‖₂ with g = ∂L/∂ã per "
        "example (it lowers the loss to first order), and its probe's gradient is never cleared, so the update is "
        "∇(2 · L(ã) + λ · L(ã + r)), r held constant. Trained for comparison with Attention AT/iAT only.",
        _ATTENTION,
        gradient=True,
        diagnostic=True,
        clean_loss_weight=2.0,
    ),
    "word_at": MethodSpec(
        "word_embeddings",
        "adversarial training on word embeddings (Word AT, Miyato et al. 2017)",
        "Adversarial perturbation of the word embeddings w: r = ε g / ‖g‖₂ with g = ∂L/∂w over the whole "
        "embedded sequence of each example; the loss is L(w) + λ · L(w + r).",
        ("adv_epsilon", "adv_lambda", *_MULTI_STEP),
        gradient=True,
    ),
    "word_iat": MethodSpec(
        "word_embeddings",
        "interpretable adversarial training on word embeddings (Word iAT, Sato et al. 2018)",
        "Adversarial perturbation of each word embedding restricted to the directions towards its K nearest "
        "vocabulary embeddings, weighted by α = ε g / ‖g‖₂; the loss is L(w) + λ · L(w + r).",
        (
            "adv_epsilon", "adv_lambda", "adv_num_neighbors", "adv_neighbor_refresh_steps", "adv_iat_normalize",
            *_MULTI_STEP,
        ),
        gradient=True,
    ),
    "attention_vat": MethodSpec(
        "attention_scores",
        "virtual adversarial training on attention (Attention VAT, Kitada & Iyatomi 2022)",
        "Virtual adversarial perturbation of the attention scores ã: r = ε g / ‖g‖₂ with "
        "g = ∇_d KL(p(y|ã) ‖ p(y|ã + ξd)) from a random unit d (power iteration); the loss is "
        "L_sup + λ · KL(p(y|ã) ‖ p(y|ã + r)) over labelled and unlabelled examples (semi-supervised).",
        _VIRTUAL,
        gradient=True,
        virtual=True,
    ),
    "attention_ivat": MethodSpec(
        "attention_scores",
        "interpretable virtual adversarial training on attention (Attention iVAT, Kitada & Iyatomi 2022)",
        "Attention VAT restricted to the Attention iAT directions d_ij between the example's scores and those "
        "of the other examples of the mini-batch: r_i = Σ_j α_ij d_ij with α_i = ε g_i / ‖g_i‖₂, "
        "g_ij = ⟨d_ij, ∇ KL⟩; the loss is L_sup + λ · KL(p(y|ã) ‖ p(y|ã + r)) over labelled and unlabelled examples.",
        (*_VIRTUAL, "adv_iat_normalize"),
        gradient=True,
        virtual=True,
        batch_directions=True,
    ),
}


def check_registry(members: Iterable[Enum], specs: Mapping[str, MethodSpec], directions: Mapping[str, object]) -> None:
    """Raise a `ValueError` unless `specs` has exactly one entry per member of `members`, in the enum's order, and
    `directions` has a direction for exactly the members with a `target`."""
    names = [member.value for member in members]
    if list(specs) != names:
        missing = [name for name in names if name not in specs]
        extra = [name for name in specs if name not in names]
        raise ValueError(
            f"the method registry must list {names} in this order; missing {missing}, not methods {extra}"
        )
    perturbed = [name for name in names if specs[name].target is not None]
    if sorted(directions) != sorted(perturbed):
        missing = [name for name in perturbed if name not in directions]
        extra = [name for name in directions if name not in perturbed]
        raise ValueError(
            f"perturbations.DIRECTIONS must have a direction for each of {perturbed}; missing {missing}, "
            f"not perturbing methods {extra}"
        )


check_registry(AdversarialMethod, METHODS, DIRECTIONS)

__all__ = ["METHODS", "AdversarialMethod", "MethodSpec", "check_registry"]
