"""Training arguments for adversarial training on attention and word embeddings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import Enum

from transformers import TrainingArguments

from .methods import METHODS, AdversarialMethod

_METHODS = [method.value for method in AdversarialMethod]


class AttentionNorm(str, Enum):
    """Where the perturbation norm of a Transformers encoder's attention logits is taken (per example)."""

    PER_LAYER_HEAD = "per_layer_head"
    GLOBAL = "global"


_NORMS = [norm.value for norm in AttentionNorm]
EPSILON_SCALES = ("absolute", "score_std")


@dataclass
class AdversarialTrainingArguments(TrainingArguments):
    r"""
    [`~transformers.TrainingArguments`] for [`AdversarialTrainer`]: the loss is `L + λ · L_adv`, where `L_adv` is the
    loss under a perturbation of the attention scores or of the word embeddings.

    Parameters that control the objective:

        adv_method (`str` or [`AdversarialMethod`], *optional*, defaults to `"vanilla"`):
            One of `vanilla`, `attention_rp`, `attention_at`, `attention_iat`, `word_at`, `word_iat`,
            `attention_vat`, `attention_ivat` (virtual adversarial: the loss is `L_sup + λ · KL`, and examples
            labelled -100 train through the KL term), or the diagnostic `attention_iat_released` (what the authors'
            released code computes for iAT, not the paper's method: r = −ε g/‖g‖ and the loss `2 · L + λ · L_adv`;
            BiLSTM-attention models only).
        adv_epsilon (`float`, *optional*):
            Perturbation size ε (the norm of r, or of the direction weights α for iAT/iVAT). Required for every
            method but `vanilla`; when given it must be finite and > 0 (`vanilla` does not use it).
        adv_lambda (`float`, *optional*, defaults to `1.0`):
            Weight λ of the adversarial loss (finite, >= 0).
        adv_num_neighbors (`int`, *optional*, defaults to `10`):
            Word iAT: the number K of nearest vocabulary embeddings that give each token's directions.
        adv_neighbor_refresh_steps (`int`, *optional*, defaults to `1`):
            Word iAT: reuse a token's neighbour list for this many optimizer steps after it was searched
            ([`~perturbations.NeighborCache`]; the directions always use the current embeddings). `1` searches
            every step (exact); larger values trade exactness for speed (see docs/BENCHMARKS.md). The lists are
            saved in each checkpoint, so a resumed run continues as the uninterrupted one would.
        adv_iat_normalize (`bool`, *optional*, defaults to `False`):
            iAT/iVAT: rescale each example's perturbation to norm ε (by default ‖r‖ ≠ ε, as in Sato et al.).
        adv_vat_xi (`float`, *optional*, defaults to `0.1`):
            VAT/iVAT: size ξ of the probe perturbation `ξ d` at which the KL gradient is taken (> 0; the norm of d,
            or of its direction weights for iVAT, is 1).
        adv_vat_num_iterations (`int`, *optional*, defaults to `1`):
            VAT/iVAT: power iterations (head-only probes) that refine the direction from its random start (>= 1).
        adv_epsilon_scale (`str`, *optional*, defaults to `"absolute"`):
            BiLSTM attention RP/AT/iAT (and iAT-released): `"absolute"` sizes r by ε as in the paper; `"score_std"`
            multiplies each example's r by the standard deviation of its valid attention scores (ε relative to the
            example's score scale, which a model cannot escape by saturating its softmax; our extension).
        adv_num_steps (`int`, *optional*, defaults to `1`):
            Attention AT/iAT and word AT/iAT on BiLSTM-attention models: K >= 1 ascent steps per training step
            (multi-step adversarial training in the style of PGD/FreeLB, beyond the paper). 1 is the paper's one-step
            perturbation; K > 1 starts from it and takes K − 1 more steps `r ← Π_ε(r + direction(∇_r L(x + r), α))`
            in the method's own directions, Π_ε the projection onto the per-example L2 ball `‖r‖₂ <= ε` (for iAT a
            bound on r itself, not on its direction weights).
        adv_step_size (`float`, *optional*):
            The step α of `adv_num_steps > 1` (finite, > 0); unset, it becomes `2.5 · adv_epsilon / adv_num_steps`
            (Madry et al. 2018: the steps together can cross the ball whatever the start). Must stay unset for
            `adv_num_steps=1`.
        adv_attention_norm (`str` or [`AttentionNorm`], *optional*, defaults to `"per_layer_head"`):
            Transformers encoders only: `per_layer_head` perturbs every layer-head of an example with norm ε over its
            valid logits (iAT: directions per layer-head); `global` takes the norm over all layer-heads together.

    Parameters that control the optimizer and faults:

        paper_optimizer (`bool`, *optional*, defaults to `False`):
            Build the paper's optimizer, `torch.optim.Adam(lr=learning_rate, betas=(adam_beta1, adam_beta2),
            eps=adam_epsilon, weight_decay=weight_decay, amsgrad=True)` (L2 weight decay, on Trainer's decay
            parameter group only), instead of `optim`; `optim` and `optim_args` must then keep their defaults.
        max_consecutive_nonfinite_steps (`int`, *optional*, defaults to `10`):
            An optimizer step whose loss or gradients are not finite is skipped (weights and optimizer state
            untouched) and counted in the logs as `num_skipped_steps`; this many skipped steps in a row stop the
            training with an error (>= 1; 1 stops at the first).

        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            Run-folder setting (`hf_attn_at.run_folder`, used by `hf-attn-at train`/`reproduce`): write into an
            `output_dir` that holds other files or a run with other settings, starting afresh: the earlier run's
            checkpoints are removed, other files are overwritten where the run writes the same names.

    Every float setting must be finite. No default of [`~transformers.TrainingArguments`] is changed: the trainer
    takes its gradients on detached leaves and re-runs on the unwrapped module, which works under DDP with any
    `ddp_find_unused_parameters`.
    """

    adv_method: str = field(
        default=AdversarialMethod.VANILLA.value,
        metadata={"help": "Adversarial training method.", "choices": _METHODS},
    )
    adv_epsilon: float | None = field(
        default=None,
        metadata={"help": "Perturbation size epsilon (finite, > 0); required for every method but vanilla (which does "
                  "not use it)."},
    )
    adv_lambda: float = field(default=1.0, metadata={"help": "Weight lambda of the adversarial loss (finite, >= 0)."})
    adv_num_neighbors: int = field(
        default=10, metadata={"help": "Word iAT: nearest vocabulary embeddings per token (K >= 1)."}
    )
    adv_neighbor_refresh_steps: int = field(
        default=1,
        metadata={"help": "Word iAT: reuse a token's nearest-neighbour list for this many optimizer steps after it "
                  "was searched (>= 1; 1 searches every step, exact)."},
    )
    adv_iat_normalize: bool = field(
        default=False, metadata={"help": "iAT/iVAT: rescale each example's perturbation to norm epsilon."}
    )
    adv_vat_xi: float = field(
        default=0.1, metadata={"help": "VAT/iVAT: size xi of the probe perturbation for the KL gradient (> 0)."}
    )
    adv_vat_num_iterations: int = field(
        default=1, metadata={"help": "VAT/iVAT: power iterations (head-only probes) per step (>= 1)."}
    )
    adv_epsilon_scale: str = field(
        default="absolute",
        metadata={"help": "BiLSTM attention RP/AT/iAT: 'absolute' (the paper: ||r|| set by epsilon) or 'score_std' "
                          "(ours: epsilon times the std of each example's valid attention scores).",
                  "choices": list(EPSILON_SCALES)},
    )
    adv_num_steps: int = field(
        default=1,
        metadata={"help": "Attention/word AT and iAT: ascent steps per training step (K >= 1; K > 1: projected "
                          "gradient ascent in the method's directions, beyond the paper)."},
    )
    adv_step_size: float | None = field(
        default=None,
        metadata={"help": "Step size alpha of adv_num_steps > 1 (finite, > 0; default 2.5 * adv_epsilon / "
                          "adv_num_steps)."},
    )
    adv_attention_norm: str = field(
        default=AttentionNorm.PER_LAYER_HEAD.value,
        metadata={"help": "Transformers encoders: perturbation norm per layer-head or global.", "choices": _NORMS},
    )

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Write into a non-empty --output_dir that holds no run of the same settings, starting "
                          "afresh (earlier checkpoints there are removed)."},
    )
    paper_optimizer: bool = field(
        default=False,
        metadata={
            "help": "Use the paper's Adam(amsgrad=True) with learning_rate, adam_beta1/2, adam_epsilon and "
            "weight_decay (L2) instead of --optim."
        },
    )
    max_consecutive_nonfinite_steps: int = field(
        default=10,
        metadata={"help": "Stop with an error after this many optimizer steps in a row skipped for a non-finite "
                  "loss or gradient (>= 1)."},
    )

    def __post_init__(self):
        try:
            self.adv_method = AdversarialMethod(self.adv_method)
        except ValueError:
            raise ValueError(f"`adv_method` must be one of {_METHODS}, got {self.adv_method!r}") from None
        if self.adv_epsilon_scale not in EPSILON_SCALES:
            raise ValueError(f"`adv_epsilon_scale` must be one of {list(EPSILON_SCALES)}, got {self.adv_epsilon_scale!r}")
        if self.adv_epsilon_scale != "absolute" and "adv_epsilon_scale" not in self.adv_method.spec.settings and (
            self.adv_method != AdversarialMethod.VANILLA
        ):
            scaled = [name for name, spec in METHODS.items() if "adv_epsilon_scale" in spec.settings]
            raise ValueError(
                f"`adv_epsilon_scale={self.adv_epsilon_scale!r}` scales attention perturbations: it applies to "
                f"{', '.join(scaled[:-1])} and {scaled[-1]}, not {self.adv_method.value!r}"
            )
        try:
            self.adv_attention_norm = AttentionNorm(self.adv_attention_norm)
        except ValueError:
            raise ValueError(f"`adv_attention_norm` must be one of {_NORMS}, got {self.adv_attention_norm!r}") from None
        for setting in fields(self):
            value = getattr(self, setting.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"`{setting.name}` must be a finite number, got {value!r}")
        vanilla = self.adv_method == AdversarialMethod.VANILLA
        if not ((self.adv_epsilon is None and vanilla) or (self.adv_epsilon is not None and self.adv_epsilon > 0)):
            raise ValueError(
                f"`adv_epsilon` must be a float > 0 for adv_method={self.adv_method.value!r}, got {self.adv_epsilon!r}"
                + (" (vanilla does not use it: leave it unset)" if vanilla else "")
            )
        if not self.adv_lambda >= 0:
            raise ValueError(f"`adv_lambda` must be a finite float >= 0, got {self.adv_lambda!r}")
        if isinstance(self.adv_num_neighbors, bool) or not isinstance(self.adv_num_neighbors, int) or self.adv_num_neighbors < 1:
            raise ValueError(f"`adv_num_neighbors` must be an integer >= 1, got {self.adv_num_neighbors!r}")
        refresh = self.adv_neighbor_refresh_steps
        if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 1:
            raise ValueError(f"`adv_neighbor_refresh_steps` must be an integer >= 1, got {refresh!r}")
        if self.adv_iat_normalize and "adv_iat_normalize" not in self.adv_method.spec.settings:
            normalized = [name for name, spec in METHODS.items() if "adv_iat_normalize" in spec.settings]
            raise ValueError(
                f"`adv_iat_normalize=True` rescales interpretable perturbations: it applies to "
                f"{', '.join(normalized[:-1])} and {normalized[-1]}, not {self.adv_method.value!r}"
            )
        if refresh > 1 and "adv_neighbor_refresh_steps" not in self.adv_method.spec.settings:
            raise ValueError(
                f"`adv_neighbor_refresh_steps={refresh}` reuses word iAT's neighbour lists: it applies to word_iat, "
                f"not {self.adv_method.value!r}"
            )
        if not (isinstance(self.adv_vat_xi, (int, float)) and 0 < self.adv_vat_xi < float("inf")):
            raise ValueError(f"`adv_vat_xi` must be a finite float > 0, got {self.adv_vat_xi!r}")
        iterations = self.adv_vat_num_iterations
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"`adv_vat_num_iterations` must be an integer >= 1, got {iterations!r}")
        self._check_multi_step_settings()
        self._check_unused_settings()
        steps = self.max_consecutive_nonfinite_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"`max_consecutive_nonfinite_steps` must be an integer >= 1, got {steps!r}")
        self._check_optimizer_settings()
        super().__post_init__()

    def _check_multi_step_settings(self) -> None:
        """Validate `adv_num_steps` and `adv_step_size`; with `adv_num_steps > 1`, fill the default step size."""
        num_steps = self.adv_num_steps
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"`adv_num_steps` must be an integer >= 1, got {num_steps!r}")
        if num_steps > 1 and "adv_num_steps" not in self.adv_method.spec.settings:
            multi_step = [name for name, spec in METHODS.items() if "adv_num_steps" in spec.settings]
            raise ValueError(
                f"`adv_num_steps={num_steps}` takes gradient steps: it applies to {', '.join(multi_step[:-1])} and "
                f"{multi_step[-1]}, not {self.adv_method.value!r}"
            )
        if self.adv_step_size is None:
            if num_steps > 1:
                self.adv_step_size = 2.5 * self.adv_epsilon / num_steps
        elif num_steps == 1:
            raise ValueError(
                f"`adv_step_size={self.adv_step_size!r}` is the step of adv_num_steps > 1; with adv_num_steps=1 leave it "
                "unset"
            )
        elif isinstance(self.adv_step_size, bool) or not self.adv_step_size > 0:
            raise ValueError(f"`adv_step_size` must be a finite float > 0, got {self.adv_step_size!r}")

    def _check_unused_settings(self) -> None:
        """Raise on an `adv_*` setting changed from its default that `adv_method` does not read (it would be
        recorded in `training_args.json` and the model card without having been used)."""
        settings = self.adv_method.spec.settings
        for setting in fields(self):
            name = setting.name
            if not name.startswith("adv_") or name in ("adv_method", *settings) or getattr(self, name) == setting.default:
                continue
            users = [method for method, spec in METHODS.items() if name in spec.settings]
            value = getattr(self, name)
            raise ValueError(
                f"`{name}={value.value if isinstance(value, Enum) else value!r}` is not used by adv_method={self.adv_method.value!r}; it applies to "
                f"{', '.join(users)} (leave it at its default {setting.default!r})"
            )

    def _check_optimizer_settings(self) -> None:
        """Raise on a setting the optimizer would reject later, or on `paper_optimizer` with a chosen `optim`."""
        for name, low, high in (
            ("learning_rate", 0.0, None),
            ("weight_decay", 0.0, None),
            ("adam_epsilon", 0.0, None),
            ("adam_beta1", 0.0, 1.0),
            ("adam_beta2", 0.0, 1.0),
        ):
            value = getattr(self, name)
            if not (value >= low and (high is None or value < high)):
                allowed = f">= {low:g}" if high is None else f"in [{low:g}, {high:g})"
                raise ValueError(f"`{name}` must be {allowed}, got {value!r}")
        if self.paper_optimizer:
            default_optim = self.__dataclass_fields__["optim"].default
            optim = getattr(self.optim, "value", self.optim)
            if optim != default_optim or self.optim_args is not None:
                chosen = f"optim={optim!r}" if optim != default_optim else f"optim_args={self.optim_args!r}"
                raise ValueError(
                    f"`paper_optimizer` builds Adam(amsgrad=True) itself: drop {chosen} or drop paper_optimizer"
                )


__all__ = ["AdversarialMethod", "AdversarialTrainingArguments", "AttentionNorm"]
