import pytest
from transformers import AutoTokenizer

import hf_attn_at
from hf_attn_at.tokenization import build_vocabulary, count_unknown, jain_wallace_tokenize


def test_jain_wallace_normalisation():
    assert jain_wallace_tokenize("In 1990, I didn't LIKE $5.50 films!") == [
        "in", "qqq", ",", "i", "did", "n't", "like", "$", "qqq", "films", "!",
    ]
    assert jain_wallace_tokenize("B52s at 10:30.") == ["qqq", "at", "qqq", "."]
    # CNN's entity markers keep their number and stay one word; other @-words follow the digit rule.
    assert jain_wallace_tokenize("@Entity12 met @entity3. @placeholder") == ["@entity12", "met", "@entity3", ".",
                                                                         "@placeholder"]
    assert jain_wallace_tokenize("@user12 @entity12abc (@entity4)") == ["@", "qqq", "@", "qqq", "(", "@entity4", ")"]
    with pytest.raises(TypeError, match="must be a str"):
        jain_wallace_tokenize(None)


def test_min_df_counts_documents_not_occurrences():
    vocab = build_vocabulary(["good good good film", "bad film", "film noir"], min_df=2)
    assert list(vocab) == ["<pad>", "<unk>", "<sep>", "film"]  # "good" occurs 3 times in 1 document
    vocab1 = build_vocabulary(["good good film", "bad film"], min_df=1)
    assert list(vocab1)[3:] == ["film", "bad", "good"]  # by document frequency, ties alphabetical
    with pytest.raises(ValueError, match="min_df must be an integer >= 1, got 0"):
        build_vocabulary(["a"], min_df=0)
    with pytest.raises(ValueError, match="empty list of texts"):
        build_vocabulary([], min_df=1)


def test_unknown_words_map_to_unk_never_dropped():
    tok = hf_attn_at.build_word_tokenizer(["a good film", "a bad film"], min_df=1)
    ids = tok("A splendid film from 1999")["input_ids"]
    assert len(ids) == 5
    assert tok.convert_ids_to_tokens(ids) == ["a", "<unk>", "film", "<unk>", "<unk>"]
    assert count_unknown(tok, ["A splendid film from 1999"]) == (3, 5)


def test_pair_encoding_and_round_trip(tmp_path):
    tok = hf_attn_at.build_word_tokenizer(["a man sleeps", "a person rests"], min_df=1)
    enc = tok("A man sleeps", "a person rests")
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == ["a", "man", "sleeps", "<sep>", "a", "person", "rests"]
    assert enc["token_type_ids"] == [0, 0, 0, 1, 1, 1, 1]
    assert tok.pad_token_id == 0 and tok.unk_token_id == 1 and tok.sep_token_id == 2
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded("A man sleeps", "a person rests") == enc
    assert loaded.vocab_size == tok.vocab_size
    batch = loaded(["a man", "a person rests now"], padding=True, return_tensors="pt")
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]  # right padding


def test_special_tokens_written_in_a_text_are_words(tmp_path):
    """A text holding "<pad>" or "<sep>" is tokenized as the vocabulary was built (`jain_wallace_tokenize`): it
    neither becomes padding nor splits a pair (it did, as the special tokens were matched in the raw text)."""
    tokenizer = hf_attn_at.build_word_tokenizer(["a good movie <pad> with a pad", "a bad film"])
    tokenizer.save_pretrained(tmp_path)
    for tok in (tokenizer, AutoTokenizer.from_pretrained(tmp_path)):
        encoded = tok("a <pad> movie <sep> film", "a film")
        tokens = tok.convert_ids_to_tokens(encoded["input_ids"])
        assert tokens[:9] == [t if t in tok.get_vocab() else "<unk>"
                              for t in jain_wallace_tokenize("a <pad> movie <sep> film")]
        assert tokens == ["a", "<", "pad", ">", "movie", "<", "<unk>", ">", "film", "<sep>", "a", "film"]
        assert encoded["token_type_ids"] == [0] * 9 + [1] * 3  # one separator: the template's
        assert tok.pad_token_id not in encoded["input_ids"]
