"""Split sizes and label counts of the local copies in ``../shared/data``."""

import csv
import logging
from collections import Counter

import pytest
from testing_utils import SHARED_DATA, require_shared_data

from hf_attn_at.data import babi as babi_module
from hf_attn_at.data import load_task, newsgroups, padding_efficiency, prepare_task


def sizes(dsd):
    return {split: len(ds) for split, ds in dsd.items()}


def label_counts(ds):
    return dict(sorted(Counter(ds["label"]).items()))


@require_shared_data("sst")
def test_sst_binary_counts_match_jain_wallace_csv():
    dsd = load_task("sst", "local", SHARED_DATA, apply_filters=False)
    assert sizes(dsd) == {"train": 6920, "validation": 872, "test": 1821}
    with open(SHARED_DATA / "sst" / "sst_dataset.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for split, exp_split in (("train", "train"), ("validation", "dev"), ("test", "test")):
        expected = [int(r["label"]) for r in rows if r["exp_split"] == exp_split]
        assert dsd[split]["label"] == expected  # same sentences in the same order
    assert dsd["train"].features["label"].names == ["negative", "positive"]
    assert "-LRB-" not in " ".join(dsd["train"]["text"])


@require_shared_data("sst")
def test_sst_length_filter(caplog):
    with caplog.at_level(logging.INFO):
        dsd = load_task("sst", "local", SHARED_DATA)
    assert sizes(dsd) == {"train": 6734, "validation": 864, "test": 1801}
    assert "kept 6734 of 6920 (dropped 186)" in caplog.text


@require_shared_data("20news")
def test_20news_counts(caplog):
    path = SHARED_DATA / "20news" / newsgroups.ARCHIVE
    with caplog.at_level(logging.INFO):
        rows = newsgroups.read_archive(path)
    assert len(rows) == 1993
    assert Counter(r["label"] for r in rows) == {0: 597 + 397, 1: 600 + 399}
    assert "13 decoded as latin-1" in caplog.text
    assert not any(line.startswith("From:") for r in rows for line in r["text"].splitlines()[:1])
    assert sizes(load_task("20news", "local", SHARED_DATA, apply_filters=False)) == {
        "train": 1275, "validation": 319, "test": 399}
    dsd = load_task("20news", "local", SHARED_DATA)
    assert sizes(dsd) == {"train": 1128, "validation": 285, "test": 338}
    assert label_counts(dsd["test"]) == {0: 169, 1: 169}


@require_shared_data("babi/en")
@pytest.mark.parametrize("task", [1, 2, 3])
def test_babi_1k_counts(task):
    folder = SHARED_DATA / "babi" / "en"
    for split in ("train", "test"):
        assert len(babi_module.read_babi(next(folder.glob(f"qa{task}_*_{split}.txt")))) == 1000
    dsd = load_task(f"babi{task}", "local", SHARED_DATA, babi_size="1k")
    assert sizes(dsd) == {"train": 850, "validation": 150, "test": 1000}
    assert dsd["train"].features["label"].names == ["bathroom", "bedroom", "garden", "hallway", "kitchen", "office"]


@require_shared_data("babi/en-10k")
def test_babi_10k_counts():
    dsd = load_task("babi1", "local", SHARED_DATA)
    assert sizes(dsd) == {"train": 8500, "validation": 1500, "test": 1000}
    assert "  " not in "".join(dsd["train"]["text"]) + "".join(dsd["train"]["text_pair"])


@require_shared_data("snli")
def test_snli_local_counts(caplog):
    with caplog.at_level(logging.WARNING):
        dsd = load_task("snli", "local", SHARED_DATA)
    assert "SNLI local: no" in caplog.text and "training on a seeded split of dev" in caplog.text
    assert len(dsd["train"]) + len(dsd["validation"]) == 9842
    assert sizes(dsd) == {"train": 7873, "validation": 1969, "test": 9824}
    assert label_counts(dsd["test"]) == {0: 3368, 1: 3219, 2: 3237}


@require_shared_data("mnli")
def test_mnli_local_counts(caplog):
    with caplog.at_level(logging.WARNING):
        dsd = load_task("mnli", "local", SHARED_DATA)
    assert "there is no test_mismatched split" in caplog.text
    assert sum(sizes(dsd).values()) == 9815
    assert sizes(dsd) == {"train": 6281, "validation": 1571, "test_matched": 1963}


@pytest.fixture(scope="module")
def imdb_prepared():
    return prepare_task("imdb", "local", SHARED_DATA)


@require_shared_data("imdb")
def test_imdb_raw_counts():
    from hf_attn_at.data.imdb import read_jsonl_xz

    for split in ("train", "test"):
        rows = read_jsonl_xz(SHARED_DATA / "imdb" / f"{split}.jsonl.xz")
        assert len(rows) == 25000
        assert Counter(r["label"] for r in rows) == {0: 12500, 1: 12500}


@require_shared_data("imdb")
def test_imdb_prepared(imdb_prepared):
    dsd, tokenizer = imdb_prepared
    assert sizes(dsd) == {"train": 16348, "validation": 4088, "test": 4136}
    assert len(tokenizer) == 11316
    lengths = dsd["train"]["length"]
    assert 6 < min(lengths) and max(lengths) < 400
    grouped = padding_efficiency(lengths, 32, grouped=True, seed=0)
    shuffled = padding_efficiency(lengths, 32, grouped=False, seed=0)
    assert grouped > 0.9 > 0.6 > shuffled
