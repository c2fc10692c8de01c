"""Word-level tokenizer with Jain & Wallace normalisation, built on the `tokenizers` library.

This module holds the project's only implementation of the Jain & Wallace preprocessing
(lower-case; every token containing a digit becomes ``qqq``): the data loaders call
:func:`jain_wallace_tokenize` and the tokenizer runs the same `tokenizers` normaliser and
pre-tokeniser objects, so the two can never disagree.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
SEP_TOKEN = "<sep>"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, SEP_TOKEN)  # ids 0, 1, 2 in every vocabulary
DIGIT_TOKEN = "qqq"

# A token containing a digit ("1990", "5.50", "10:30", "b52s") becomes ``qqq``; a sentence-final
# period after a number stays its own token. CNN's entity markers (``@entity12``) keep their number: they are
# words of their own (Jain & Wallace add each to the vocabulary), which ``qqq`` would make one word.
_DIGIT = r"\w*\d(?:[\w.,:/-]*\w)?"
_DIGIT_PATTERN = rf"(?<![\w@]){_DIGIT}|(?<=@)(?!entity\d+\b){_DIGIT}"
# English word pieces in the spirit of spaCy's tokenizer: clitics split off, punctuation isolated; CNN's
# ``@entityN`` and ``@placeholder`` stay one token.
_WORD_PATTERN = r"@entity\d+|@placeholder|\w+(?=n't\b)|n't\b|'(?:s|re|ve|ll|d|m)\b|\w+|[^\w\s]"


def _normalizer() -> normalizers.Normalizer:
    return normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Lowercase(), normalizers.Replace(Regex(_DIGIT_PATTERN), DIGIT_TOKEN)]
    )


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_WORD_PATTERN), behavior="isolated")]
    )


_NORMALIZER = _normalizer()
_PRE_TOKENIZER = _pre_tokenizer()


def jain_wallace_tokenize(text: str) -> list[str]:
    """Split ``text`` into normalised word tokens (lower-cased, digit tokens replaced by ``qqq``).

    Example: ``"In 1990 I didn't!"`` -> ``["in", "qqq", "i", "did", "n't", "!"]``; ``"@entity12 met @placeholder"``
    -> ``["@entity12", "met", "@placeholder"]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r}")
    return [piece for piece, _ in _PRE_TOKENIZER.pre_tokenize_str(_NORMALIZER.normalize_str(text))]


def build_vocabulary(texts: Iterable[str], min_df: int = 1, max_size: int | None = None) -> dict[str, int]:
    """Build a word -> id vocabulary from training texts by minimum *document* frequency.

    Special tokens take ids 0 (``<pad>``), 1 (``<unk>``) and 2 (``<sep>``); words follow in order of
    decreasing document frequency (ties broken alphabetically, so the result is deterministic).

    Args:
        texts: the training split's texts (for pair tasks, pass both fields of every example).
        min_df: keep words that occur in at least this many texts.
        max_size: optional cap on the vocabulary size (special tokens included).
    """
    if not isinstance(min_df, int) or min_df < 1:
        raise ValueError(f"min_df must be an integer >= 1, got {min_df!r}")
    if max_size is not None and max_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"max_size must be > {len(SPECIAL_TOKENS)} (the special tokens), got {max_size!r}")
    doc_freq: Counter[str] = Counter()
    num_texts = 0
    for text in texts:
        doc_freq.update(set(jain_wallace_tokenize(text)))
        num_texts += 1
    if num_texts == 0:
        raise ValueError("cannot build a vocabulary from an empty list of texts")
    words = sorted((w for w, c in doc_freq.items() if c >= min_df and w not in SPECIAL_TOKENS),
                   key=lambda w: (-doc_freq[w], w))
    if max_size is not None:
        words = words[: max_size - len(SPECIAL_TOKENS)]
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    vocab.update({w: i + len(SPECIAL_TOKENS) for i, w in enumerate(words)})
    logger.info("vocabulary: %d words with min_df=%d from %d texts (%d distinct words seen)",
                len(vocab), min_df, num_texts, len(doc_freq))
    return vocab


def word_tokenizer_from_vocab(vocab: dict[str, int], model_max_length: int = 100_000) -> PreTrainedTokenizerFast:
    """Wrap a word -> id vocabulary as a `PreTrainedTokenizerFast` (WordLevel model).

    Single sequences encode as ``w_1 … w_n``; pairs as ``a_1 … a_n <sep> b_1 … b_m`` with
    ``token_type_ids`` 0 on the first segment and 1 on ``<sep>`` and the second segment, the layout
    that the pair models split on. A special token written in a text (``"<sep>"``) is not that token:
    it is split into words like any other text, so it can neither split a pair nor become padding.
    """
    for i, tok in enumerate(SPECIAL_TOKENS):
        if vocab.get(tok) != i:
            raise ValueError(f"vocabulary must map {tok!r} to id {i}, got {vocab.get(tok)!r}")
    backend = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    backend.normalizer = _normalizer()
    backend.pre_tokenizer = _pre_tokenizer()
    sep_id = vocab[SEP_TOKEN]
    backend.post_processor = processors.TemplateProcessing(
        single="$A:0", pair=f"$A:0 {SEP_TOKEN}:1 $B:1", special_tokens=[(SEP_TOKEN, sep_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        sep_token=SEP_TOKEN,
        model_max_length=model_max_length,
        padding_side="right",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        split_special_tokens=True,  # "<pad>" typed in a text is words, as `jain_wallace_tokenize` splits it
    )


def build_word_tokenizer(
    texts: Iterable[str], min_df: int = 1, max_vocab_size: int | None = None, model_max_length: int = 100_000
) -> PreTrainedTokenizerFast:
    """Build the word-level tokenizer from a training split (see :func:`build_vocabulary`).

    Words below ``min_df`` map to ``<unk>`` (id 1); nothing is dropped. The result saves and
    loads with ``save_pretrained`` / ``AutoTokenizer.from_pretrained``.
    """
    return word_tokenizer_from_vocab(build_vocabulary(texts, min_df, max_vocab_size), model_max_length)


def count_unknown(tokenizer: PreTrainedTokenizerFast, texts: Iterable[str]) -> tuple[int, int]:
    """Return ``(unknown_tokens, total_tokens)`` of ``texts`` under ``tokenizer``."""
    unk_id = tokenizer.unk_token_id
    unknown = total = 0
    for enc in tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False):
        total += len(enc.ids)
        unknown += sum(1 for i in enc.ids if i == unk_id)
    return unknown, total
