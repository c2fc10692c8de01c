"""BiLSTM + attention models (Jain & Wallace 2019) as Transformers models.

This file is copied next to the weights for `trust_remote_code` loading: it imports only torch,
transformers and its sibling configuration file.

Every forward exposes the pre-softmax attention scores and accepts additive perturbations of the
scores and of the word embeddings, and every head can be re-run on cached encoder states
(`encoder_outputs=`) without recomputing the embedding and BiLSTM: the hooks that adversarial training
on attention needs, without module hooks or in-place weight edits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs
from transformers.utils.generic import can_return_tuple

from .configuration_bilstm_attention import BiLSTMAttentionConfig


@dataclass
class BiLSTMAttentionEncoderOutput(ModelOutput):
    r"""
    Cached encoder states: everything the attention head needs to run again.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, 2 * hidden_size)`):
            BiLSTM states of the attended sequence (the passage/premise for pair inputs), aligned with the
            input positions; zero where `attention_scores_mask` is 0.
        attention_scores (`torch.FloatTensor` of shape `(batch_size, sequence_length)`):
            Clean pre-softmax attention scores ã; 0 where `attention_scores_mask` is 0.
        attention_scores_mask (`torch.BoolTensor` of shape `(batch_size, sequence_length)`):
            Positions that attention may weigh: the valid tokens (single) or the first segment's (pair).
        question_hidden_state (`torch.FloatTensor` of shape `(batch_size, 2 * hidden_size)`, *optional*):
            Final states of the question/hypothesis BiLSTM (pair inputs only).
        inputs_embeds (`torch.FloatTensor` of shape `(batch_size, sequence_length, embedding_size)`):
            The word embeddings fed to the encoder, perturbation included.
    """

    last_hidden_state: torch.FloatTensor | None = None
    attention_scores: torch.FloatTensor | None = None
    attention_scores_mask: torch.BoolTensor | None = None
    question_hidden_state: torch.FloatTensor | None = None
    inputs_embeds: torch.FloatTensor | None = None


@dataclass
class BiLSTMAttentionModelOutput(ModelOutput):
    r"""
    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, 2 * hidden_size)`):
            BiLSTM states of the attended sequence.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, 2 * hidden_size)`):
            Attention-weighted sum of `last_hidden_state`.
        question_hidden_state (`torch.FloatTensor` of shape `(batch_size, 2 * hidden_size)`, *optional*):
            Final states of the question/hypothesis BiLSTM (pair inputs only).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The embedding output (word embeddings, perturbation included, before dropout) of shape
            `(batch_size, sequence_length, embedding_size)`, then the BiLSTM output of the attended sequence
            (`last_hidden_state`) of shape `(batch_size, sequence_length, 2 * hidden_size)`.
        attentions (`torch.FloatTensor` of shape `(batch_size, sequence_length)`, *optional*, returned when `output_attentions=True`):
            Attention weights; they sum to 1 over the attended positions and are exactly 0 elsewhere.
            Unlike Transformers' per-layer tuple, this is one vector per example.
        attention_scores (`torch.FloatTensor` of shape `(batch_size, sequence_length)`):
            The pre-softmax scores that produced `attentions` (perturbation included); 0 outside the
            attended positions.
        encoder_outputs ([`BiLSTMAttentionEncoderOutput`]):
            Cached encoder states (clean scores), to re-run the head with `encoder_outputs=`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    question_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, torch.FloatTensor] | None = None
    attentions: torch.FloatTensor | None = None
    attention_scores: torch.FloatTensor | None = None
    encoder_outputs: BiLSTMAttentionEncoderOutput | None = None


@dataclass
class BiLSTMAttentionSequenceClassifierOutput(ModelOutput):
    r"""
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Mean cross-entropy over the labelled examples.
        logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
            Classification scores (before softmax).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            Embedding output and BiLSTM output (see [`BiLSTMAttentionModelOutput`]).
        attentions (`torch.FloatTensor` of shape `(batch_size, sequence_length)`, *optional*, returned when `output_attentions=True`):
            Attention weights (see [`BiLSTMAttentionModelOutput`]).
        attention_scores (`torch.FloatTensor` of shape `(batch_size, sequence_length)`):
            Pre-softmax scores that produced `attentions` (perturbation included).
        encoder_outputs ([`BiLSTMAttentionEncoderOutput`]):
            Cached encoder states, to re-run the head with `encoder_outputs=`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, torch.FloatTensor] | None = None
    attentions: torch.FloatTensor | None = None
    attention_scores: torch.FloatTensor | None = None
    encoder_outputs: BiLSTMAttentionEncoderOutput | None = None


def _run_lstm(lstm: nn.LSTM, embeds: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a one-layer bidirectional LSTM on right-padded `embeds` `(B, T, E)` with `lengths` `(B,)`.

    Padding never enters a valid state. Returns the states `(B, T, 2H)` (zero past each length) and the
    final states `(B, 2H)` (last step of the forward direction, first step of the backward one).
    Unpacked on CPU (`_run_lstm_unpacked`, faster there), packed elsewhere (`_run_lstm_packed`).
    """
    run = _run_lstm_unpacked if embeds.device.type == "cpu" else _run_lstm_packed
    return run(lstm, embeds, lengths)


def _run_lstm_packed(lstm: nn.LSTM, embeds: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`_run_lstm` on a packed sequence."""
    packed = pack_padded_sequence(embeds, lengths.cpu(), batch_first=True, enforce_sorted=False)
    outputs, (h_n, _) = lstm(packed)
    outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=embeds.shape[1])
    return outputs, torch.cat([h_n[-2], h_n[-1]], dim=-1)


def _run_lstm_unpacked(
    lstm: nn.LSTM, embeds: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`_run_lstm` without packing: the outputs of `_run_lstm_packed`, up to float rounding.

    The forward direction runs over the first max(lengths) steps as they are (a state never sees a later
    step, so padding at the end cannot reach a valid one); the backward direction runs forward over each
    example reversed within its length, and its states are reversed back. Unpacked sequences keep the fused
    CPU (oneDNN) LSTM kernel, ~4x faster than a packed sequence on 300-token batches (docs/BENCHMARKS.md).
    """
    batch_size, seq_len, _ = embeds.shape
    steps = int(lengths.max())
    inputs = embeds[:, :steps]
    positions = torch.arange(steps, device=embeds.device).unsqueeze(0)  # (1, L)
    valid = positions < lengths.unsqueeze(1)  # (B, L)
    # Position t <-> length - 1 - t inside each example, padding in place: its own inverse.
    reverse = torch.where(valid, lengths.unsqueeze(1) - 1 - positions, positions)
    initial = embeds.new_zeros(1, batch_size, lstm.hidden_size)

    def direction(x: torch.Tensor, suffix: str) -> torch.Tensor:
        weights = [getattr(lstm, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        # The op behind nn.LSTM.forward, called with one direction's weights: (B, L, E) -> (B, L, H).
        return torch.lstm(x, (initial, initial), weights, True, 1, 0.0, lstm.training, False, True)[0]

    forward_states = direction(inputs, "")
    backward_states = direction(inputs.gather(1, reverse.unsqueeze(-1).expand_as(inputs)), "_reverse")
    backward_states = backward_states.gather(1, reverse.unsqueeze(-1).expand_as(backward_states))
    outputs = torch.cat([forward_states, backward_states], dim=-1) * valid.unsqueeze(-1)
    last = forward_states[torch.arange(batch_size, device=embeds.device), lengths - 1]
    final = torch.cat([last, backward_states[:, 0]], dim=-1)
    return F.pad(outputs, (0, 0, 0, seq_len - steps)), final


class BiLSTMAttentionScorer(nn.Module):
    """Pre-softmax attention scores ã over encoder states, optionally conditioned on a question vector."""

    def __init__(self, config: BiLSTMAttentionConfig):
        super().__init__()
        self.attention_type = config.attention_type
        self.is_pair = config.input_type == "pair"
        state_size = 2 * config.hidden_size
        self.scale = 1.0 / math.sqrt(state_size)
        if self.attention_type == "additive":
            self.dense = nn.Linear(state_size, config.attention_hidden_size)
            self.question_dense = (
                nn.Linear(state_size, config.attention_hidden_size, bias=False) if self.is_pair else None
            )
            self.context = nn.Linear(config.attention_hidden_size, 1, bias=False)
        elif not self.is_pair:
            self.context = nn.Linear(state_size, 1, bias=False)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, question: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`hidden_states` `(B, T, 2H)`, `mask` `(B, T)` bool, `question` `(B, 2H)` -> scores `(B, T)`."""
        if self.attention_type == "additive":
            projected = self.dense(hidden_states)  # (B, T, A)
            if self.is_pair:
                projected = projected + self.question_dense(question).unsqueeze(1)
            scores = self.context(torch.tanh(projected)).squeeze(-1)
        elif self.is_pair:
            scores = (hidden_states * question.unsqueeze(1)).sum(-1) * self.scale
        else:
            scores = self.context(hidden_states).squeeze(-1) * self.scale
        return scores.masked_fill(~mask, 0.0)


class BiLSTMAttentionClassificationHead(nn.Module):
    """Single sequence: `logits = W_o h_a + b_o`."""

    def __init__(self, config: BiLSTMAttentionConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.dropout)
        self.out_proj = nn.Linear(2 * config.hidden_size, config.num_labels)

    def forward(self, pooled: torch.Tensor, question: torch.Tensor | None = None) -> torch.Tensor:
        return self.out_proj(self.dropout(pooled))


class BiLSTMAttentionPairClassificationHead(nn.Module):
    """Pair: `logits = W_o tanh(W_1 h_a + W_2 q + b_1) + b_o`."""

    def __init__(self, config: BiLSTMAttentionConfig):
        super().__init__()
        state_size = 2 * config.hidden_size
        self.dropout = nn.Dropout(config.dropout)
        self.dense = nn.Linear(state_size, state_size)
        self.question_dense = nn.Linear(state_size, state_size, bias=False)
        self.out_proj = nn.Linear(state_size, config.num_labels)

    def forward(self, pooled: torch.Tensor, question: torch.Tensor | None = None) -> torch.Tensor:
        hidden = torch.tanh(self.dense(self.dropout(pooled)) + self.question_dense(question))
        return self.out_proj(hidden)


class BiLSTMAttentionPreTrainedModel(PreTrainedModel):
    config_class = BiLSTMAttentionConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    # The loss is a per-batch mean: let Trainer divide it by the gradient-accumulation steps.
    accepts_loss_kwargs = False
    _no_split_modules = []

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.padding_idx is not None:
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LSTM):
            bound = 1.0 / math.sqrt(module.hidden_size)
            for name, param in module.named_parameters():
                if name.startswith("weight"):
                    init.uniform_(param, -bound, bound)
                else:
                    init.zeros_(param)


class BiLSTMAttentionModel(BiLSTMAttentionPreTrainedModel):
    """Embedding, BiLSTM encoder(s) and attention pooling, without a classification head."""

    def __init__(self, config: BiLSTMAttentionConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = nn.LSTM(config.embedding_size, config.hidden_size, batch_first=True, bidirectional=True)
        self.question_encoder = (
            nn.LSTM(config.embedding_size, config.hidden_size, batch_first=True, bidirectional=True)
            if config.input_type == "pair"
            else None
        )
        self.attention = BiLSTMAttentionScorer(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding):
        self.embeddings = value

    def _embed(
        self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None
    ) -> torch.Tensor:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` and `inputs_embeds`.")
        if inputs_embeds is not None:
            if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.embedding_size:
                raise ValueError(
                    f"`inputs_embeds` must have shape (batch_size, sequence_length, {self.config.embedding_size}),"
                    f" got {tuple(inputs_embeds.shape)}"
                )
            return inputs_embeds
        if input_ids.dim() != 2:
            raise ValueError(f"`input_ids` must have shape (batch_size, sequence_length), got {tuple(input_ids.shape)}")
        if input_ids.numel() == 0:
            raise ValueError(f"`input_ids` is empty: shape {tuple(input_ids.shape)}")
        low, high = torch.stack(torch.aminmax(input_ids)).tolist()  # one host sync
        if low < 0 or high >= self.config.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(
                f"`input_ids` holds token id {bad}, outside the vocabulary [0, {self.config.vocab_size}): "
                "was the tokenizer built for this model?"
            )
        return self.embeddings(input_ids)

    def encode(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        embedding_perturbation: torch.FloatTensor | None = None,
    ) -> BiLSTMAttentionEncoderOutput:
        """Embedding + BiLSTM(s) + clean attention scores. Arguments as in `forward`."""
        embeds = self._embed(input_ids, inputs_embeds)
        batch_size, seq_len = embeds.shape[:2]
        if attention_mask is None:
            attention_mask = (
                input_ids != self.config.pad_token_id
                if input_ids is not None
                else torch.ones(batch_size, seq_len, dtype=torch.bool, device=embeds.device)
            )
        if attention_mask.shape != (batch_size, seq_len):
            raise ValueError(
                f"`attention_mask` must have shape {(batch_size, seq_len)} like the inputs, got {tuple(attention_mask.shape)}"
            )
        mask = attention_mask.bool()
        lengths = mask.sum(1)
        positions = torch.arange(seq_len, device=mask.device).unsqueeze(0)  # (1, T)
        if not torch.equal(mask, positions < lengths.unsqueeze(1)):
            raise ValueError("`attention_mask` must be right-padded (ones then zeros); use padding_side='right'.")
        empty = (lengths == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"examples {empty} of the batch have no tokens; every sequence needs at least one.")
        if embedding_perturbation is not None:
            if embedding_perturbation.shape != embeds.shape:
                raise ValueError(
                    f"`embedding_perturbation` must have the embeddings' shape {tuple(embeds.shape)}, "
                    f"got {tuple(embedding_perturbation.shape)}"
                )
            embeds = embeds + embedding_perturbation * mask.unsqueeze(-1)
        hidden_in = self.dropout(embeds)

        if self.question_encoder is None:
            states, _ = _run_lstm(self.encoder, hidden_in, lengths)
            score_mask, question = mask, None
        else:
            if token_type_ids is None:
                raise ValueError(
                    "this pair model needs two sequences: pass `token_type_ids` from the tokenizer's pair "
                    "encoding, tokenizer(text, text_pair)."
                )
            if token_type_ids.shape != (batch_size, seq_len):
                raise ValueError(
                    f"`token_type_ids` must have shape {(batch_size, seq_len)}, got {tuple(token_type_ids.shape)}"
                )
            second = (token_type_ids == 1) & mask
            second_len = second.sum(1)
            first_len = lengths - second_len
            one_segment = ((first_len == 0) | (second_len == 0)).nonzero().flatten().tolist()
            if one_segment:
                raise ValueError(
                    f"this pair model was given one sequence in examples {one_segment}: encode both texts with "
                    "tokenizer(text, text_pair)."
                )
            score_mask = positions < first_len.unsqueeze(1)
            if not torch.equal(second, mask & ~score_mask):
                raise ValueError("`token_type_ids` must be 0 on the first segment, then 1 on the second segment.")
            states, _ = _run_lstm(self.encoder, hidden_in, first_len)
            # Gather the second segment into its own right-padded (B, T_q, E) batch.
            q_len = int(second_len.max())
            index = (first_len.unsqueeze(1) + torch.arange(q_len, device=mask.device)).clamp(max=seq_len - 1)
            question_in = hidden_in.gather(1, index.unsqueeze(-1).expand(-1, -1, hidden_in.shape[-1]))
            _, question = _run_lstm(self.question_encoder, question_in, second_len)
        scores = self.attention(states, score_mask, question)
        return BiLSTMAttentionEncoderOutput(
            last_hidden_state=states,
            attention_scores=scores,
            attention_scores_mask=score_mask,
            question_hidden_state=question,
            inputs_embeds=embeds,
        )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        embedding_perturbation: torch.FloatTensor | None = None,
        attention_perturbation: torch.FloatTensor | None = None,
        encoder_outputs: BiLSTMAttentionEncoderOutput | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BiLSTMAttentionModelOutput | tuple:
        r"""
        token_type_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Pair models only: 0 on the passage/premise, 1 on `<sep>` and the question/hypothesis.
        embedding_perturbation (`torch.FloatTensor` of shape `(batch_size, sequence_length, embedding_size)`, *optional*):
            Added to the word embeddings (zeroed on padding) before the encoder.
        attention_perturbation (`torch.FloatTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Added to the pre-softmax attention scores (ignored outside the attended positions).
        encoder_outputs ([`BiLSTMAttentionEncoderOutput`], *optional*):
            Cached encoder states from an earlier forward: the embedding and BiLSTM are skipped and only
            attention pooling (and the head) run again.
        output_attentions, output_hidden_states, return_dict (`bool`, *optional*):
            As in Transformers, defaulting to the config's values. The other keyword arguments of
            `TransformersKwargs` (e.g. `num_items_in_batch`) are accepted and ignored; any other name raises
            `TypeError`.
        """
        output_attentions, output_hidden_states = _output_flags(self, kwargs)
        if encoder_outputs is None:
            encoder_outputs = self.encode(input_ids, attention_mask, token_type_ids, inputs_embeds, embedding_perturbation)
        mask = encoder_outputs.attention_scores_mask
        scores = encoder_outputs.attention_scores
        if attention_perturbation is not None:
            if attention_perturbation.shape != scores.shape:
                raise ValueError(
                    f"`attention_perturbation` must have the scores' shape {tuple(scores.shape)}, "
                    f"got {tuple(attention_perturbation.shape)}"
                )
            # Added in at least float32: on the bf16/fp16 grid of the scores (autocast) a small r rounds away.
            work = torch.promote_types(scores.dtype, torch.float32)
            scores = scores.to(work) + attention_perturbation.to(work).masked_fill(~mask, 0.0)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # exactly 0 where masked
        states = encoder_outputs.last_hidden_state
        pooled = torch.bmm(weights.unsqueeze(1).to(states.dtype), states).squeeze(1)  # (B, 2H)
        hidden_states = None
        if output_hidden_states:
            if encoder_outputs.inputs_embeds is None:
                raise ValueError(
                    "output_hidden_states=True needs the embedding output: the cached `encoder_outputs` have no "
                    "`inputs_embeds`"
                )
            hidden_states = (encoder_outputs.inputs_embeds, states)
        return BiLSTMAttentionModelOutput(
            last_hidden_state=states,
            pooler_output=pooled,
            question_hidden_state=encoder_outputs.question_hidden_state,
            hidden_states=hidden_states,
            attentions=weights if output_attentions else None,
            attention_scores=scores,
            encoder_outputs=encoder_outputs,
        )


def _output_flags(model: PreTrainedModel, kwargs: dict) -> tuple[bool, bool]:
    """`(output_attentions, output_hidden_states)` from `kwargs`, else from the config; `TypeError` on a keyword
    argument that is not one of `TransformersKwargs` (a misspelt perturbation must not be ignored)."""
    unknown = sorted(set(kwargs) - set(TransformersKwargs.__annotations__))
    if unknown:
        raise TypeError(f"{type(model).__name__}.forward() got an unexpected keyword argument {unknown[0]!r}")
    output_attentions = kwargs.get("output_attentions")
    output_hidden_states = kwargs.get("output_hidden_states")
    return (
        model.config.output_attentions if output_attentions is None else output_attentions,
        model.config.output_hidden_states if output_hidden_states is None else output_hidden_states,
    )


def _classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over labelled examples (label -100 = unlabelled); 0 if none is labelled."""
    num_labels = logits.shape[-1]
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"`labels` must have shape (batch_size,) = {tuple(logits.shape[:1])}, got {tuple(labels.shape)}")
    labelled = labels != -100
    bad = labels[labelled & ((labels < 0) | (labels >= num_labels))]
    if bad.numel():
        raise ValueError(f"label {int(bad[0])} is outside [0, num_labels={num_labels}) (use -100 for unlabelled)")
    if not bool(labelled.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels.long(), ignore_index=-100)


class BiLSTMAttentionForSequenceClassification(BiLSTMAttentionPreTrainedModel):
    """Single-sequence classification (SST, IMDB, 20News, AGNews) or, with `input_type="pair"`, sentence-pair
    classification (SNLI, MultiNLI) and answer selection over a fixed answer vocabulary (bAbI)."""

    def __init__(self, config: BiLSTMAttentionConfig):
        super().__init__(config)
        if config.num_labels < 2:
            raise ValueError(f"`num_labels` must be >= 2 for classification, got {config.num_labels}")
        self.num_labels = config.num_labels
        self.model = BiLSTMAttentionModel(config)
        self.classifier = (
            BiLSTMAttentionPairClassificationHead(config)
            if config.input_type == "pair"
            else BiLSTMAttentionClassificationHead(config)
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embeddings

    def set_input_embeddings(self, value: nn.Embedding):
        self.model.embeddings = value

    def _mask_logits(
        self, logits: torch.Tensor, candidate_mask: torch.Tensor | None, labels: torch.Tensor | None
    ) -> torch.Tensor:
        """Give the labels outside `candidate_mask` the lowest finite logit (only with use_candidate_mask)."""
        if not self.config.use_candidate_mask:
            if candidate_mask is not None:
                raise ValueError("`candidate_mask` was given but the config has use_candidate_mask=False")
            return logits
        if candidate_mask is None:
            raise ValueError("this model has use_candidate_mask=True: pass `candidate_mask` (batch_size, num_labels)")
        if candidate_mask.shape != logits.shape:
            raise ValueError(
                f"`candidate_mask` must have shape (batch_size, num_labels) = {tuple(logits.shape)}, "
                f"got {tuple(candidate_mask.shape)}"
            )
        allowed = candidate_mask.bool()
        no_candidate = (~allowed.any(-1)).nonzero().flatten().tolist()
        if no_candidate:
            raise ValueError(f"examples {no_candidate} have no answer candidate in `candidate_mask`")
        if labels is not None:
            in_range = (labels >= 0) & (labels < logits.shape[-1])
            rows = in_range.nonzero().flatten()
            outside = rows[~allowed[rows, labels[rows]]]
            if outside.numel():
                raise ValueError(
                    f"the label {int(labels[outside[0]])} of example {int(outside[0])} is not among its "
                    "candidates in `candidate_mask`"
                )
        return logits.masked_fill(~allowed, torch.finfo(logits.dtype).min)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        embedding_perturbation: torch.FloatTensor | None = None,
        attention_perturbation: torch.FloatTensor | None = None,
        encoder_outputs: BiLSTMAttentionEncoderOutput | None = None,
        labels: torch.LongTensor | None = None,
        candidate_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BiLSTMAttentionSequenceClassifierOutput | tuple:
        r"""
        token_type_ids, embedding_perturbation, attention_perturbation, encoder_outputs:
            See [`BiLSTMAttentionModel.forward`].
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices in `[0, num_labels)`, or -100 for unlabelled examples (ignored by the loss).
        candidate_mask (`torch.Tensor` of shape `(batch_size, num_labels)`, *optional*):
            With `config.use_candidate_mask`: 1 for the labels that may win (CNN: entities in the passage).
        output_attentions, output_hidden_states, return_dict (`bool`, *optional*):
            See [`BiLSTMAttentionModel.forward`].
        """
        output_attentions, output_hidden_states = _output_flags(self, kwargs)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
            embedding_perturbation=embedding_perturbation,
            attention_perturbation=attention_perturbation,
            encoder_outputs=encoder_outputs,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(outputs.pooler_output, outputs.question_hidden_state)
        logits = self._mask_logits(logits, candidate_mask, labels)
        loss = _classification_loss(logits, labels) if labels is not None else None
        return BiLSTMAttentionSequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            attention_scores=outputs.attention_scores,
            encoder_outputs=outputs.encoder_outputs,
        )


class BiLSTMAttentionForAnswerSelection(BiLSTMAttentionForSequenceClassification):
    """Question answering as answer selection over a passage (CNN, bAbI): a pair classifier whose labels are
    the answer candidates (bAbI: the answer vocabulary; CNN: entity ids). With `config.use_candidate_mask`,
    only the labels marked in `candidate_mask` (the entities present in the passage) can win: the others get
    the lowest finite logit before softmax, loss and argmax. Same weights and outputs as the sequence
    classifier, so `AutoModelForSequenceClassification` loads its checkpoints too."""

    def __init__(self, config: BiLSTMAttentionConfig):
        if config.input_type != "pair":
            raise ValueError(
                f"answer selection reads a passage and a question: needs input_type='pair', got {config.input_type!r}"
            )
        super().__init__(config)


__all__ = [
    "BiLSTMAttentionEncoderOutput",
    "BiLSTMAttentionModelOutput",
    "BiLSTMAttentionSequenceClassifierOutput",
    "BiLSTMAttentionPreTrainedModel",
    "BiLSTMAttentionModel",
    "BiLSTMAttentionForSequenceClassification",
    "BiLSTMAttentionForAnswerSelection",
]
