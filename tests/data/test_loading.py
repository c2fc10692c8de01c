"""`load_data`: settings are only read; what it resolves (columns, pair input, labels, samples) is returned."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from hf_attn_at.arguments import DataArguments
from hf_attn_at.data import EVAL_SAMPLE_SEED, LoadedData, load_custom, load_data

WORDS = "good bad fine awful great poor nice dull".split()


@pytest.fixture
def pairs(tmp_path):
    """40 premise/hypothesis pairs with string labels, in a jsonl file whose columns must be inferred."""
    rows = [{"premise": f"{WORDS[i % 8]} movie {i}", "hypothesis": f"it was {WORDS[(i * 3) % 8]}",
             "label": ["yes", "no"][i % 2]} for i in range(40)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_custom_columns_are_returned_and_settings_untouched(pairs):
    settings = DataArguments(train_file=str(pairs))
    before = dataclasses.asdict(settings)
    data = load_data(settings, seed=0)
    assert dataclasses.asdict(settings) == before  # nothing written back
    assert isinstance(data, LoadedData)
    assert data.columns == {"text_column": "premise", "text_pair_column": "hypothesis", "label_column": "label"}
    assert data.is_pair and data.label_names == ["no", "yes"]
    assert data.num_examples == {split: len(ds) for split, ds in data.dataset.items()}
    assert sum(data.num_examples.values()) == 40 and data.sampled_indices == {}
    assert data.tokenizer.sep_token in data.tokenizer.decode(data.dataset["train"][0]["input_ids"])


def test_single_text_is_not_a_pair(tmp_path):
    path = tmp_path / "single.csv"
    path.write_text("text,label\n" + "".join(f"{WORDS[i % 8]} film {i},{i % 3}\n" for i in range(30)),
                    encoding="utf-8")
    data = load_data(DataArguments(train_file=str(path)), seed=0)
    assert not data.is_pair and data.columns["text_pair_column"] is None
    assert data.label_names == ["0", "1", "2"]


def test_caps_keep_the_recorded_rows(pairs):
    """The capped splits are exactly the uncapped splits' rows at `sampled_indices` (train seeded by `seed`)."""
    full = load_custom(train_file=str(pairs), seed=5)  # the same validation split as load_data(seed=5)
    settings = DataArguments(train_file=str(pairs), max_train_samples=7, max_eval_samples=2)
    data = load_data(settings, seed=5)
    assert set(data.sampled_indices) == {"train", "validation"}
    assert data.num_examples == {"train": 7, "validation": 2}
    for split, indices in data.sampled_indices.items():
        assert len(set(indices)) == len(indices) and all(0 <= i < len(full[split]) for i in indices)
        expected = [data.tokenizer(full[split][i]["text"], full[split][i]["text_pair"])["input_ids"] for i in indices]
        assert list(data.dataset[split]["input_ids"]) == expected
        assert list(data.dataset[split]["label"]) == [full[split][i]["label"] for i in indices]
    other = load_data(dataclasses.replace(settings), seed=6)
    assert other.sampled_indices["validation"] == data.sampled_indices["validation"]  # EVAL_SAMPLE_SEED
    assert other.sampled_indices["train"] != data.sampled_indices["train"]
    assert EVAL_SAMPLE_SEED == 0


def test_a_given_tokenizer_encodes_every_split(pairs, tmp_path):
    """A saved model's tokenizer (here: one built on other texts) is used as is, not rebuilt from train."""
    from hf_attn_at import build_word_tokenizer

    other = build_word_tokenizer(["good movie", "it was bad"], min_df=1)
    data = load_data(DataArguments(train_file=str(pairs)), seed=0, tokenizer=other)
    full = load_custom(train_file=str(pairs), seed=0)
    assert data.tokenizer is other
    for split in data.dataset:
        expected = [other(row["text"], row["text_pair"])["input_ids"] for row in full[split]]
        assert list(data.dataset[split]["input_ids"]) == expected


def test_settings_a_run_would_not_use_are_refused(pairs, tmp_path):
    """`min_df` with a saved model's tokenizer (its vocabulary is kept) and `max_test_samples` without a test
    split (here a dataset folder without one) would be recorded but never used."""
    from hf_attn_at import build_word_tokenizer

    other = build_word_tokenizer(["good movie", "it was bad"], min_df=1)
    message = ("--min_df 3 builds a new vocabulary, but the data are encoded with the saved model's "
               "tokenizer (--model_name_or_path keeps its vocabulary): drop --min_df")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        load_data(DataArguments(train_file=str(pairs), min_df=3), seed=0, tokenizer=other)
    folder = tmp_path / "hub_like"
    folder.mkdir()
    (folder / "train.jsonl").write_text(pairs.read_text(), encoding="utf-8")
    message = ("--max_test_samples 5 caps the test split, and hub_like has none (test metrics are reported "
               "on validation, capped by --max_eval_samples): drop --max_test_samples")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        load_data(DataArguments(dataset_name=str(folder), max_test_samples=5), seed=0)
    (folder / "test.jsonl").write_text(pairs.read_text(), encoding="utf-8")
    data = load_data(DataArguments(dataset_name=str(folder), max_test_samples=5), seed=0)
    assert data.num_examples["test"] == 5
