"""`AdversarialTrainer`: adversarial training on attention scores (Kitada & Iyatomi 2021) or word embeddings.

One training step (docs/METHODS.md#cost-of-a-training-step):

- attention methods: one forward → `L`; `g = ∂L/∂ã` from a head-only probe on a detached leaf of the scores
  (no parameter `.grad` touched, no DDP hook); `r` from `g` (detached); a head-only re-run on the cached encoder
  states with `attention_perturbation=r` → `L_adv`;
- attention VAT/iVAT (Kitada & Iyatomi 2022): the same single encoder pass; the direction comes from
  `KL(p(y|ã) ‖ p(y|ã + ξd))` (p detached, d random then refined by power iteration), each probe a head-only run
  on detached states; the adversarial term is `KL(p(y|ã) ‖ p(y|ã + r))` over every example, labelled or not;
- word methods: the embeddings are looked up outside the forward and passed as `inputs_embeds`, so that
  `g = ∂L/∂w` is a gradient with respect to a tensor of ours (DDP-safe); a second full forward with
  `embedding_perturbation=r` → `L_adv`;
- multi-step (`adv_num_steps=K > 1`, attention/word AT and iAT, beyond the paper): `r` above is the start of K − 1
  projected ascent steps in the method's directions, each `∂L/∂r` from a probe: head-only on the detached states
  for attention methods (still one encoder pass), a full forward of the unwrapped model for word methods (K + 1
  encoder passes); neither touches a parameter gradient;
- Transformers encoders (BERT, RoBERTa, DistilBERT, ...): attention RP/AT/iAT only, through
  `integrations.transformer_attention` (a second full forward; `g` taken on the clean forward's logits);
- the trainer returns `L + λ · L_adv` (VAT/iVAT: `L_sup + λ · KL`; the diagnostic `attention_iat_released`:
  `2 · L + λ · L_adv`, the update of the authors' released code) and runs its single backward;
- after the last micro-batch of an optimizer step, the step is skipped (gradients dropped) when a loss or a gradient
  is not finite on any process.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Trainer
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from .integrations.transformer_attention import (
    SUPPORTED_MODEL_TYPES,
    check_supported,
    transformer_attention_step,
)
from .methods import METHODS, AdversarialMethod
from .model_card import ModelCardCallback, card_from_run_dir
from .models.bilstm_attention import BiLSTMAttentionConfig
from .perturbations import (
    DIRECTIONS,
    Direction,
    DirectionInputs,
    NeighborCache,
    Perturbation,
    kl_divergence,
    projected_gradient_ascent,
    scale_by_score_std,
    token_neighbors,
)
from .run_folder import mark_checkpoint_complete, write_settings
from .runs import RESULTS_FILE
from .training_args import AdversarialTrainingArguments, AttentionNorm

logger = logging.getLogger(__name__)

_HEAD_INPUTS = ("labels", "candidate_mask")
# Hyperparameters of a parameter group that `describe_optimizer` records (those the optimizer has).
_OPTIMIZER_HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay", "amsgrad", "momentum", "dampening", "nesterov")


class AdversarialTrainer(Trainer):
    """[`~transformers.Trainer`] whose training loss is `L + λ · L_adv` (see [`AdversarialTrainingArguments`]; the
    diagnostic `attention_iat_released` returns `2 · L + λ · L_adv`, as the authors' released code updates).

    A BiLSTM-attention model (`model_type="bilstm_attention"`) follows its forward contract: it returns `loss` and
    `encoder_outputs` (with `attention_scores`, `attention_scores_mask`, `last_hidden_state`), accepts
    `encoder_outputs=` to re-run only the head, and accepts `inputs_embeds`, `embedding_perturbation` and
    `attention_perturbation`. Any other model must be a Transformers encoder using the attention interface
    (`hf_attn_at.integrations.SUPPORTED_MODEL_TYPES`): the attention methods then perturb the self-attention logits
    of every layer and head (see `hf_attn_at.integrations.transformer_attention`); word methods are BiLSTM-only.

    Every checkpoint gets `run_settings.json` (the `run_settings` given, if any) and then the marker
    `checkpoint_complete.json`, written after every other file (of every process: the processes meet first) and
    before older checkpoints are rotated away, so that a save cut short (killed, disk full) is recognisable
    (`hf_attn_at.run_folder.last_complete_checkpoint`).

    Logged metrics (training, averaged over the steps since the last log and over processes): `clean_loss` (L; for
    VAT/iVAT the supervised loss over the labelled examples, 0 if none), `adv_loss` (L_adv; for VAT/iVAT the mean KL), `adv_perturbation_norm` (mean per-example ‖r‖₂), `adv_num_zeroed` (examples given r = 0
    because their gradient norm was zero or not finite, summed), and for every method `num_skipped_steps` (optimizer
    steps skipped since the last log because a loss or a gradient was not finite). Evaluation and prediction are
    unaffected.

    The optimizer is `Trainer`'s (from `optim`, `learning_rate`, `adam_*`, `weight_decay`), or with
    `args.paper_optimizer` the paper's `torch.optim.Adam(amsgrad=True)` with the same settings (see
    `get_optimizer_cls_and_kwargs`); `describe_optimizer(trainer.optimizer)` states the one built. `save_model` (final
    saves and checkpoints) raises rather than write non-finite weights.
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        args: AdversarialTrainingArguments | None = None,
        run_settings: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        self.run_settings = run_settings
        if args is not None and not isinstance(args, AdversarialTrainingArguments):
            raise ValueError(f"`args` must be AdversarialTrainingArguments, got {type(args).__name__}")
        super().__init__(model=model, args=args, **kwargs)
        if not isinstance(self.args, AdversarialTrainingArguments):
            raise ValueError("AdversarialTrainer needs `args=AdversarialTrainingArguments(...)`")
        method = self.args.adv_method
        if method == AdversarialMethod.VANILLA:
            # Trainer's rule (a `compute_loss_func` loss normalised by `num_items_in_batch` is not divided), except
            # for Transformers encoders' classification heads: they take `**kwargs`, so Trainer counts their loss as
            # normalised by `num_items_in_batch`, but it is a per-batch mean (N accumulated steps: N times the update).
            if self.compute_loss_func is None and self.label_smoother is None and _loss_is_batch_mean(self.model):
                self.loss_is_scaled_for_ga = False
        else:
            # `L + λ · L_adv` is a per-batch mean: Trainer divides it by the gradient-accumulation steps.
            self.loss_is_scaled_for_ga = False
            if self.label_smoother is not None or self.compute_loss_func is not None:
                raise ValueError(
                    f"adv_method={method.value!r} uses the model's own loss: label_smoothing_factor and "
                    "compute_loss_func are not supported with it"
                )
            if self.args.per_device_train_batch_size < 2 and method.uses_batch_directions:
                raise ValueError(
                    f"adv_method={method.value!r} takes its directions from the differences between the examples "
                    f"of a batch: per_device_train_batch_size must be >= 2, got {self.args.per_device_train_batch_size}"
                )
            if self.model is not None:
                self._check_model(self.model)
        if self.args.paper_optimizer and (self.optimizer is not None or self.optimizer_cls_and_kwargs is not None):
            raise ValueError(
                "`paper_optimizer=True` builds Adam(amsgrad=True) itself: pass no `optimizers` or "
                "`optimizer_cls_and_kwargs`, or drop paper_optimizer"
            )
        self._metrics: dict[str, defaultdict[str, list[torch.Tensor]]] = {"train": defaultdict(list)}
        # Non-finite steps. The current optimizer step: its loss and finiteness so far (None before its first
        # micro-batch), the number of metric entries before it. Since the last log: the loss summed over the kept
        # steps, the kept and the skipped steps. Then the skipped steps in a row, and whether the last was skipped.
        self._step_loss: torch.Tensor | None = None
        self._step_is_finite: torch.Tensor | None = None
        self._step_metrics_start = 0
        self._kept_loss: torch.Tensor | float = 0.0
        self._num_kept_steps = 0
        self._num_skipped_steps = 0
        self._num_consecutive_skipped = 0
        self._last_step_skipped = False
        # Word iAT with adv_neighbor_refresh_steps > 1: the neighbour lists, made at the first word step.
        self._neighbor_cache: NeighborCache | None = None

    @staticmethod
    def get_optimizer_cls_and_kwargs(args: AdversarialTrainingArguments, model: nn.Module | None = None) -> tuple[Any, Any]:
        """With `args.paper_optimizer`, `torch.optim.Adam` with `lr=learning_rate`, `betas=(adam_beta1, adam_beta2)`,
        `eps=adam_epsilon` and `amsgrad=True` (`create_optimizer` adds `weight_decay` to the decay parameter group:
        L2 decay); otherwise `Trainer`'s optimizer for `args.optim`."""
        if getattr(args, "paper_optimizer", False):
            return torch.optim.Adam, {
                "lr": args.learning_rate,
                "betas": (args.adam_beta1, args.adam_beta2),
                "eps": args.adam_epsilon,
                "amsgrad": True,
            }
        return Trainer.get_optimizer_cls_and_kwargs(args, model)

    def training_step(
        self, model: nn.Module, inputs: dict[str, torch.Tensor | Any], num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """`Trainer.training_step`; after the last micro-batch of an optimizer step, `_skip_if_not_finite`."""
        first = self._step_is_finite is None
        if first:
            self._step_metrics_start = len(next(iter(self._metrics["train"].values()), []))
        loss = super().training_step(model, inputs, num_items_in_batch)
        finite = torch.isfinite(loss)
        self._step_loss = loss if first else self._step_loss + loss
        self._step_is_finite = finite if first else self._step_is_finite & finite
        if self.accelerator.sync_gradients:
            self._skip_if_not_finite(model)
        return loss

    def _skip_if_not_finite(self, model: nn.Module) -> None:
        """Skip the optimizer step when a micro-batch loss or a gradient is not finite on any process: the gradients
        are dropped (`None`: torch optimizers then change neither the weights nor their state) and the step's
        adversarial metrics discarded. Raise after `max_consecutive_nonfinite_steps` skipped steps in a row.

        With fp16 loss scaling only the loss is checked: the `GradScaler` skips steps with overflowed gradients
        itself, and a non-finite loss fills the gradients with NaN so that it skips that step too.
        """
        finite, step_loss = self._step_is_finite, self._step_loss
        self._step_is_finite = self._step_loss = None
        scaler = self.accelerator.scaler
        grads = [param.grad for param in model.parameters() if param.grad is not None]
        if scaler is None:
            finite = torch.stack([finite, *(torch.isfinite(grad).all().to(finite.device) for grad in grads)]).all()
        # Every process must take the same decision (DDP all-reduced gradients already agree; losses need not).
        num_bad = self.accelerator.reduce(finite.logical_not().float(), reduction="sum")
        self._last_step_skipped = bool(num_bad.item() > 0)
        if not self._last_step_skipped:
            self._kept_loss = self._kept_loss + step_loss
            self._num_kept_steps += 1
            self._num_consecutive_skipped = 0
            return
        if scaler is None:
            model.zero_grad(set_to_none=True)
        else:
            for grad in grads:
                grad.fill_(float("nan"))
        metrics = self._metrics["train"]
        for key in list(metrics):
            del metrics[key][self._step_metrics_start :]
            if not metrics[key]:
                del metrics[key]
        self._num_skipped_steps += 1
        self._num_consecutive_skipped += 1
        step, limit = self.state.global_step + 1, self.args.max_consecutive_nonfinite_steps
        logger.warning(
            "step %d: the loss or a gradient is not finite: optimizer step skipped (%d in a row, limit %d)",
            step, self._num_consecutive_skipped, limit,
        )
        if self._num_consecutive_skipped >= limit:
            raise ValueError(
                f"training stopped at step {step}: the loss or a gradient was not finite in {limit} optimizer steps in "
                f"a row (max_consecutive_nonfinite_steps={limit}); lower learning_rate, adv_epsilon or adv_lambda, "
                "or check the data"
            )

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """`Trainer.save_model` (final saves and checkpoints), raising instead if a weight is not finite."""
        bad = [name for name, param in self.model.named_parameters() if not torch.isfinite(param).all()]
        if bad:
            raise ValueError(
                f"not saving to {output_dir or self.args.output_dir}: non-finite weights in {', '.join(bad[:3])}"
                + (f" and {len(bad) - 3} more parameters" if len(bad) > 3 else "")
            )
        super().save_model(output_dir, _internal_call)

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
    ) -> None:
        """Write our model card (`hf_attn_at.model_card`) as `README.md` into `args.output_dir`, in place of
        Trainer's generic one (`push_to_hub` calls this): the card of the finished run when the folder holds its
        record (`results.json`, see `hf_attn_at.runs`), else of the model with the metrics of the evaluation of its
        weights (`model_card.evaluation_of_weights`).

        `language`, `license`, `model_name`, `finetuned_from` (the base model) and `dataset` (one name) fill the card;
        `tags`, `tasks`, `dataset_tags` and `dataset_args` are Trainer's own card's and are refused. Other models
        (BERT-family attention AT) get Trainer's card.
        """
        if not _is_bilstm(self.model):
            return super().create_model_card(
                language=language, license=license, tags=tags, model_name=model_name, finetuned_from=finetuned_from,
                tasks=tasks, dataset_tags=dataset_tags, dataset=dataset, dataset_args=dataset_args,
            )
        unused = {"tags": tags, "tasks": tasks, "dataset_tags": dataset_tags, "dataset_args": dataset_args}
        given = [name for name, value in unused.items() if value]
        if given:
            raise ValueError(f"create_model_card: {given} are not part of hf_attn_at cards; pass language, license, "
                             "model_name, finetuned_from or dataset")
        if isinstance(dataset, list):
            if len(dataset) != 1:
                raise ValueError(f"create_model_card: `dataset` must name one dataset, got {dataset!r}")
            dataset = dataset[0]
        if not self.is_world_process_zero():
            return
        options = {"language": language, "license": license, "model_name": model_name, "base_model": finetuned_from}
        output_dir = Path(self.args.output_dir)
        if (output_dir / RESULTS_FILE).is_file():
            card = card_from_run_dir(output_dir, self.model, repo_id=self.args.hub_model_id, dataset_name=dataset,
                                     **options)
        else:
            card = ModelCardCallback(dataset_name=dataset).build_card(
                self.args, self.state, self.model, self.optimizer, **options
            )
        output_dir.mkdir(parents=True, exist_ok=True)
        card.save(output_dir / "README.md")

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor | Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """`L + λ · L_adv` in training (`2 · L + λ · L_adv` for `attention_iat_released`); the plain loss otherwise
        (evaluation, prediction, vanilla)."""
        method = self.args.adv_method
        if method == AdversarialMethod.VANILLA or not (model.training and torch.is_grad_enabled()):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if not method.is_virtual and "labels" not in inputs:
            raise ValueError(f"adv_method={method.value!r} needs `labels` in the batch (only VAT/iVAT train without)")
        unwrapped = self.accelerator.unwrap_model(model)
        if not _is_bilstm(unwrapped):
            self._check_model(unwrapped)
            outputs, adv_outputs, perturbation = transformer_attention_step(
                model, unwrapped, inputs, method, self.args.adv_epsilon, self.args.adv_attention_norm,
                self.args.adv_iat_normalize,
            )
            clean_loss, adv_loss = outputs.loss, adv_outputs.loss
        elif method.is_virtual:
            outputs, clean_loss, adv_loss, perturbation = self._virtual_step(model, inputs)
        else:
            step = {"attention_scores": self._attention_step, "word_embeddings": self._word_step}[method.spec.target]
            outputs, adv_outputs, perturbation = step(model, inputs)
            clean_loss, adv_loss = outputs.loss, adv_outputs.loss
        # (The released code's probe backward is never cleared: its clean_loss_weight is 2.)
        loss = method.spec.clean_loss_weight * clean_loss + self.args.adv_lambda * adv_loss
        metrics = self._metrics["train"]
        metrics["clean_loss"].append(clean_loss.detach())
        metrics["adv_loss"].append(adv_loss.detach())
        metrics["adv_perturbation_norm"].append(
            torch.linalg.vector_norm(perturbation.delta.flatten(1).float(), dim=1).mean()
        )
        metrics["adv_num_zeroed"].append(perturbation.num_zeroed)
        return (loss, outputs) if return_outputs else loss

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        """Trainer's checkpoint, then `run_settings.json` and the completion marker, then the rotation of older
        checkpoints (Trainer rotates before returning, which would leave no complete checkpoint if the process died
        between its rotation and our marker). A checkpoint resumed from may predate one of the stateful callbacks
        (one of older code): Trainer's state then lacks its entry, which Trainer's save reads."""
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, ExportableState):
                self.state.stateful_callbacks.setdefault(type(callback).__name__, callback.state())
        save_total_limit = self.args.save_total_limit
        self.args.save_total_limit = None
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = save_total_limit
        run_dir = self._get_output_dir(trial=trial)
        checkpoint = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        if self._neighbor_cache is not None:  # every process keeps its own lists
            os.makedirs(checkpoint, exist_ok=True)
            torch.save(self._neighbor_cache.state_dict(), os.path.join(checkpoint, self._neighbor_cache_file()))
        # Every process has written its files (RNG state, neighbour lists) before the marker says "complete".
        self.accelerator.wait_for_everyone()
        if not self.args.should_save:
            return
        if self.run_settings is not None:
            write_settings(checkpoint, self.run_settings)
        mark_checkpoint_complete(checkpoint, self.state.global_step)
        rotate_checkpoints(
            output_dir=run_dir, save_total_limit=save_total_limit,
            best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True,
        )

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """`Trainer._load_from_checkpoint`, then word iAT's neighbour lists when the checkpoint has them (a
        checkpoint without them, or from another method, starts with none: every list is searched at first use)."""
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, self._neighbor_cache_file())
        args = self.args
        if args.adv_neighbor_refresh_steps == 1 or not os.path.isfile(path):
            return
        self._neighbor_cache = NeighborCache(
            args.adv_num_neighbors, self._special_token_ids(self.accelerator.unwrap_model(self.model)),
            args.adv_neighbor_refresh_steps,
        )
        self._neighbor_cache.load_state_dict(torch.load(path, map_location=args.device, weights_only=True))

    def _neighbor_cache_file(self) -> str:
        """This process's neighbour-list file in a checkpoint (one per process, as Trainer's RNG states)."""
        return "neighbor_cache.pt" if self.args.world_size <= 1 else f"neighbor_cache_{self.args.process_index}.pt"

    def _check_model(self, model: nn.Module) -> None:
        """Raise unless `model` is a BiLSTM-attention model or a supported Transformers encoder for this method."""
        if _is_bilstm(model):
            if self.args.adv_attention_norm != AttentionNorm.PER_LAYER_HEAD:
                raise ValueError(f"adv_attention_norm={self.args.adv_attention_norm.value!r} chooses where the norm of a "
                                 "Transformers encoder's perturbation is taken; a BiLSTM-attention model has one "
                                 "attention layer: leave it at 'per_layer_head'")
            return
        method = self.args.adv_method
        if not method.spec.transformer_encoders:
            supported = [name for name, spec in METHODS.items() if spec.transformer_encoders]
            raise ValueError(
                f"adv_method={method.value!r} supports only BiLSTM-attention models, got {type(model).__name__}; "
                f"Transformers encoders support {', '.join(supported[:-1])} and {supported[-1]}"
            )
        for name, value, default in (
            ("adv_epsilon_scale", self.args.adv_epsilon_scale, "absolute"), ("adv_num_steps", self.args.adv_num_steps, 1)
        ):
            if value != default:
                raise ValueError(f"{name}={value!r} supports only BiLSTM-attention models, got {type(model).__name__}")
        check_supported(model)
        if self.args.gradient_checkpointing:
            raise ValueError(
                f"adv_method={method.value!r} on {type(model).__name__} needs the attention logits of the clean forward: "
                "gradient_checkpointing=True is not supported"
            )

    def _attention_step(self, model: nn.Module, inputs: dict[str, Any]) -> tuple[Any, Any, Perturbation]:
        """Attention RP / AT / iAT / iAT-released on a BiLSTM-attention model: `(outputs, adv_outputs, r)`."""
        outputs = model(**inputs)
        encoder_outputs = outputs.encoder_outputs
        mask = encoder_outputs.attention_scores_mask
        scores = encoder_outputs.attention_scores
        unwrapped = self.accelerator.unwrap_model(model)
        head_inputs = {key: inputs[key] for key in _HEAD_INPUTS if key in inputs}
        args = self.args
        grad = None
        if args.adv_method.spec.gradient:
            # Head-only probe on detached states: ∂L/∂ã without touching parameter gradients (DDP-safe).
            leaf = scores.detach().requires_grad_()
            probe = unwrapped(encoder_outputs=_detached_states(encoder_outputs, leaf), **head_inputs)
            (grad,) = torch.autograd.grad(probe.loss, leaf)
        direction = DIRECTIONS[args.adv_method.value]
        direction_inputs = DirectionInputs(scores, mask, args.adv_iat_normalize)
        perturbation = direction(direction_inputs, grad, args.adv_epsilon)
        if args.adv_num_steps > 1:
            probe_states = _detached_states(encoder_outputs, scores.detach())

            def loss_gradient(delta: torch.Tensor) -> torch.Tensor:
                """∂L/∂r at ã + r (score_std: r is the unscaled perturbation) from a head-only probe."""
                leaf = delta.detach().requires_grad_()
                scaled = self._scale_scores(Perturbation(leaf, perturbation.num_zeroed), scores, mask).delta
                probe = unwrapped(encoder_outputs=probe_states, attention_perturbation=scaled, **head_inputs)
                return torch.autograd.grad(probe.loss, leaf)[0]

            perturbation = self._multi_step(direction, direction_inputs, loss_gradient, perturbation)
        perturbation = self._scale_scores(perturbation, scores, mask)
        adv_outputs = unwrapped(
            encoder_outputs=encoder_outputs, attention_perturbation=perturbation.delta, **head_inputs
        )
        return outputs, adv_outputs, perturbation

    def _virtual_step(self, model: nn.Module, inputs: dict[str, Any]) -> tuple[Any, torch.Tensor, torch.Tensor, Perturbation]:
        """Attention VAT/iVAT: `(outputs, L_sup, mean KL(p(y|ã) ‖ p(y|ã + r)), r)`.

        d starts random (unit norm; iVAT: unit-norm random weights α over the d_ij), each power iteration takes
        `∇ KL(p(y|ã) ‖ p(y|ã + ξd))` from a head-only probe on detached states (p detached) and makes it the new d
        (iVAT: projected onto the d_ij, like the iAT loss gradient); the last gradient gives r at size ε.
        """
        outputs = model(**inputs)
        encoder_outputs = outputs.encoder_outputs
        mask = encoder_outputs.attention_scores_mask
        scores = encoder_outputs.attention_scores
        unwrapped = self.accelerator.unwrap_model(model)
        head_inputs = {key: inputs[key] for key in ("candidate_mask",) if key in inputs}
        target = outputs.logits.detach()
        args = self.args
        direction = DIRECTIONS[args.adv_method.value]  # grad=None: the random start
        direction_inputs = DirectionInputs(scores, mask, args.adv_iat_normalize)

        probe_states = _detached_states(encoder_outputs, scores.detach())
        perturbation = direction(direction_inputs, None, 1.0)
        num_iterations = args.adv_vat_num_iterations
        for iteration in range(num_iterations):
            leaf = (args.adv_vat_xi * perturbation.delta).requires_grad_()
            probe = unwrapped(encoder_outputs=probe_states, attention_perturbation=leaf, **head_inputs)
            (grad,) = torch.autograd.grad(kl_divergence(target, probe.logits).sum(), leaf)
            epsilon = args.adv_epsilon if iteration == num_iterations - 1 else 1.0
            perturbation = direction(direction_inputs, grad, epsilon)
        adv_outputs = unwrapped(
            encoder_outputs=encoder_outputs, attention_perturbation=perturbation.delta, **head_inputs
        )
        clean_loss = outputs.loss if outputs.loss is not None else target.new_zeros((), dtype=torch.float32)
        return outputs, clean_loss, kl_divergence(target, adv_outputs.logits).mean(), perturbation

    def _word_step(self, model: nn.Module, inputs: dict[str, Any]) -> tuple[Any, Any, Perturbation]:
        if "input_ids" not in inputs:
            raise ValueError(f"adv_method={self.args.adv_method.value!r} needs `input_ids` in the batch")
        unwrapped = self.accelerator.unwrap_model(model)
        input_ids = inputs["input_ids"]
        other_inputs = {key: value for key, value in inputs.items() if key != "input_ids"}
        embedding = unwrapped.get_input_embeddings()
        # Embeddings looked up here, so that ∂L/∂w is taken on our own tensor (DDP wraps the model's outputs).
        embeds = embedding(input_ids)
        outputs = model(inputs_embeds=embeds, **other_inputs)
        (grad,) = torch.autograd.grad(outputs.loss, embeds, retain_graph=True)
        mask = inputs.get("attention_mask")
        if mask is None:
            mask = input_ids != unwrapped.config.pad_token_id
        args = self.args
        direction_inputs = DirectionInputs(
            embeds, mask, args.adv_iat_normalize, input_ids, embedding.weight, args.adv_num_neighbors,
            tuple(self._special_token_ids(unwrapped)),
        )
        if "adv_num_neighbors" in args.adv_method.spec.settings:
            # Word iAT: the neighbours of the clean tokens, for all the ascent's directions.
            neighbor_ids = self._token_neighbors(input_ids, embedding.weight, direction_inputs.exclude_ids)
            direction_inputs = direction_inputs._replace(neighbor_ids=neighbor_ids)
        direction = DIRECTIONS[args.adv_method.value]
        perturbation = direction(direction_inputs, grad, args.adv_epsilon)
        if args.adv_num_steps > 1:
            clean_embeds = embeds.detach()

            def loss_gradient(delta: torch.Tensor) -> torch.Tensor:
                """∂L/∂r at w + r from a full forward of the unwrapped model (no parameter gradient)."""
                leaf = delta.detach().requires_grad_()
                probe = unwrapped(inputs_embeds=clean_embeds, embedding_perturbation=leaf, **other_inputs)
                return torch.autograd.grad(probe.loss, leaf)[0]

            perturbation = self._multi_step(direction, direction_inputs, loss_gradient, perturbation)
        adv_outputs = unwrapped(inputs_embeds=embeds, embedding_perturbation=perturbation.delta, **other_inputs)
        return outputs, adv_outputs, perturbation

    def _token_neighbors(
        self, input_ids: torch.Tensor, embedding_matrix: torch.Tensor, exclude_ids: tuple[int, ...]
    ) -> torch.LongTensor:
        """Word iAT's `(batch_size, sequence_length, K)` neighbour ids: searched now (`adv_neighbor_refresh_steps=1`)
        or from the [`~perturbations.NeighborCache`] at the current optimizer step."""
        args = self.args
        if args.adv_neighbor_refresh_steps == 1:
            return token_neighbors(input_ids, embedding_matrix, args.adv_num_neighbors, exclude_ids)
        if self._neighbor_cache is None:
            self._neighbor_cache = NeighborCache(args.adv_num_neighbors, exclude_ids, args.adv_neighbor_refresh_steps)
        return self._neighbor_cache.lookup(input_ids, embedding_matrix, self.state.global_step)

    def _scale_scores(self, perturbation: Perturbation, scores: torch.Tensor, mask: torch.Tensor) -> Perturbation:
        """`perturbation` sized by `adv_epsilon_scale`: unchanged (`absolute`) or `scale_by_score_std`."""
        if self.args.adv_epsilon_scale == "score_std":
            return scale_by_score_std(perturbation, scores, mask)
        return perturbation

    def _multi_step(
        self,
        direction: Direction,
        inputs: DirectionInputs,
        loss_gradient: Callable[[torch.Tensor], torch.Tensor],
        start: Perturbation,
    ) -> Perturbation:
        """`adv_num_steps − 1` projected ascent steps of size `adv_step_size` from the one-step perturbation `start`
        (`perturbations.projected_gradient_ascent`), inside the per-example `adv_epsilon` ball."""
        args = self.args
        return projected_gradient_ascent(
            direction, inputs, loss_gradient, start.delta, args.adv_epsilon, args.adv_num_steps - 1, args.adv_step_size
        )

    def _special_token_ids(self, model: nn.Module) -> list[int]:
        """Ids never used as word-iAT neighbours: the tokenizer's special tokens, else the config's pad/sep."""
        special = getattr(self.processing_class, "all_special_ids", None)
        if special is None:
            special = [getattr(model.config, name, None) for name in ("pad_token_id", "sep_token_id")]
        return [token_id for token_id in special if token_id is not None]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the adversarial metrics (averaged over steps, reduced over processes) and `num_skipped_steps` to
        training logs. With skipped steps since the last log, `loss` is the mean over the kept steps (NaN if none:
        Trainer would count a skipped step as 0 or a running mean), and a skipped last step logs `grad_norm` as NaN
        (its gradients were dropped before clipping)."""
        metrics = self._metrics["train"]
        if "loss" in logs:
            if self._num_skipped_steps:
                kept_loss = torch.as_tensor(self._kept_loss, dtype=torch.float32, device=self.args.device)
                kept_loss = self.accelerator.reduce(kept_loss, reduction="mean").item()
                logs["loss"] = kept_loss / self._num_kept_steps if self._num_kept_steps else float("nan")
                if self._last_step_skipped and "grad_norm" in logs:
                    logs["grad_norm"] = float("nan")
            logs["num_skipped_steps"] = self._num_skipped_steps
            self._kept_loss, self._num_kept_steps, self._num_skipped_steps = 0.0, 0, 0
        if "loss" in logs and metrics:
            for key, values in metrics.items():
                stacked = torch.stack([value.float() for value in values])
                if key == "adv_num_zeroed":
                    logs[key] = self.accelerator.reduce(stacked.sum(), reduction="sum").item()
                else:
                    logs[key] = self.accelerator.reduce(stacked.mean(), reduction="mean").item()
            metrics.clear()
        super().log(logs, start_time)


def describe_optimizer(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer actually built, for `training_args.json` and model cards: `class` (module path) and the
    hyperparameters of its first parameter group (Trainer's decay group; its second group, biases and norms, has
    `weight_decay` 0). `lr` is the group's `initial_lr` (before any schedule) when a scheduler set it.

    Args:
        optimizer (`torch.optim.Optimizer`): the optimizer, or accelerate's wrapper around it.
    """
    optimizer = getattr(optimizer, "optimizer", optimizer)
    group = optimizer.param_groups[0]
    summary: dict[str, Any] = {"class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"}
    for key in _OPTIMIZER_HYPERPARAMETERS:
        if key in group:
            summary[key] = group.get("initial_lr", group["lr"]) if key == "lr" else group[key]
    if isinstance(summary.get("betas"), tuple):
        summary["betas"] = list(summary["betas"])
    return summary


def _detached_states(encoder_outputs: Any, scores: torch.Tensor) -> Any:
    """The cached encoder states detached from the graph, with `scores` as the attention scores: a head-only probe
    on them touches no parameter and no DDP hook."""
    question, embeds = encoder_outputs.question_hidden_state, encoder_outputs.inputs_embeds
    return type(encoder_outputs)(
        last_hidden_state=encoder_outputs.last_hidden_state.detach(),
        attention_scores=scores,
        attention_scores_mask=encoder_outputs.attention_scores_mask,
        question_hidden_state=None if question is None else question.detach(),
        inputs_embeds=None if embeds is None else embeds.detach(),
    )


def _is_bilstm(model: nn.Module) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) == BiLSTMAttentionConfig.model_type


def _loss_is_batch_mean(model: nn.Module | None) -> bool:
    """Whether `model` is a supported Transformers encoder's sequence classifier, whose loss is the batch's mean."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return model_type in SUPPORTED_MODEL_TYPES and type(model).__name__.endswith("ForSequenceClassification")


__all__ = ["AdversarialTrainer", "describe_optimizer"]
