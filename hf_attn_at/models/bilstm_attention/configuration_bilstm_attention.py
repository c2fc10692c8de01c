"""BiLSTM + attention model configuration (Jain & Wallace 2019 models, as used by Kitada & Iyatomi 2021)."""

from transformers import PreTrainedConfig

ATTENTION_TYPES = ("additive", "dot")
INPUT_TYPES = ("single", "pair")


class BiLSTMAttentionConfig(PreTrainedConfig):
    r"""
    Configuration of the BiLSTM + attention models. Defaults are the sizes of Jain & Wallace (2019).

    Args:
        vocab_size (`int`, *optional*, defaults to 30000):
            Size of the word vocabulary (the tokenizer's `vocab_size`).
        embedding_size (`int`, *optional*, defaults to 300):
            Dimension E of the word embeddings.
        hidden_size (`int`, *optional*, defaults to 128):
            Hidden size H of each LSTM direction; encoder states have size 2H.
        attention_hidden_size (`int`, *optional*, defaults to 128):
            Size of the additive attention's hidden layer (`W ∈ R^{attention_hidden_size × 2H}`).
        attention_type (`str`, *optional*, defaults to `"additive"`):
            `"additive"` (`ã_t = cᵀ tanh(W h_t + b)`) or `"dot"` (`ã_t = uᵀ h_t / √(2H)`, or
            `h_t · q / √(2H)` for pair inputs).
        input_type (`str`, *optional*, defaults to `"single"`):
            `"single"` for one sequence, `"pair"` for passage/premise + question/hypothesis, encoded by
            the tokenizer as one sequence `a <sep> b` with `token_type_ids` 0 then 1.
        dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the embeddings and on the pooled representation.
        initializer_range (`float`, *optional*, defaults to 0.1):
            Standard deviation of the normal initialiser of the word embeddings.
        use_candidate_mask (`bool`, *optional*, defaults to `False`):
            For answer selection over entities (CNN): only labels marked in the `candidate_mask` input may
            win; the others get the lowest logit before softmax, loss and argmax.
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of the padding token.
        sep_token_id (`int`, *optional*, defaults to 2):
            Id of the token separating the two segments of a pair.
        word_vectors (`dict`, *optional*):
            Where the embeddings were initialised from, as the library's `load_word_vectors` reports it (`name`,
            `dim`, `found`, `vocab_size`, `coverage`); provenance only, the model does not read it.
        output_attentions (`bool`, *optional*, defaults to `True`):
            Whether forward returns the attention weights (`attentions`) unless told otherwise. Unlike
            Transformers' default (`False`): the weights are what these models are read for. Like
            `output_hidden_states` (defaults to `False`) and `return_dict` (defaults to `True`), a runtime
            setting: `save_pretrained` does not record it.
    """

    model_type = "bilstm_attention"
    keys_to_ignore_at_inference = ["hidden_states", "attentions", "attention_scores", "encoder_outputs"]

    def __init__(
        self,
        vocab_size: int = 30000,
        embedding_size: int = 300,
        hidden_size: int = 128,
        attention_hidden_size: int = 128,
        attention_type: str = "additive",
        input_type: str = "single",
        dropout: float = 0.0,
        initializer_range: float = 0.1,
        use_candidate_mask: bool = False,
        pad_token_id: int = 0,
        sep_token_id: int = 2,
        word_vectors: dict | None = None,
        **kwargs,
    ):
        for name, value in (
            ("vocab_size", vocab_size),
            ("embedding_size", embedding_size),
            ("hidden_size", hidden_size),
            ("attention_hidden_size", attention_hidden_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"`attention_type` must be one of {ATTENTION_TYPES}, got {attention_type!r}")
        if input_type not in INPUT_TYPES:
            raise ValueError(f"`input_type` must be one of {INPUT_TYPES}, got {input_type!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be a float in [0, 1), got {dropout!r}")
        if not isinstance(initializer_range, (int, float)) or initializer_range <= 0:
            raise ValueError(f"`initializer_range` must be a positive float, got {initializer_range!r}")
        for name, value in (("pad_token_id", pad_token_id), ("sep_token_id", sep_token_id)):
            if not isinstance(value, int) or not 0 <= value < vocab_size:
                raise ValueError(f"`{name}` must be an integer in [0, vocab_size={vocab_size}), got {value!r}")
        if use_candidate_mask and input_type != "pair":
            raise ValueError(
                f"`use_candidate_mask=True` is for answer selection over a passage and needs "
                f"input_type='pair', got input_type={input_type!r}"
            )
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.attention_hidden_size = attention_hidden_size
        self.attention_type = attention_type
        self.input_type = input_type
        self.dropout = float(dropout)
        self.initializer_range = float(initializer_range)
        self.use_candidate_mask = use_candidate_mask
        self.pad_token_id = pad_token_id
        self.sep_token_id = sep_token_id
        self.word_vectors = word_vectors
        kwargs.setdefault("output_attentions", True)
        super().__init__(**kwargs)


__all__ = ["BiLSTMAttentionConfig"]
