"""`load_custom`: a user's csv / tsv / json / jsonl / parquet files in the shared layout, and every bad input."""

from __future__ import annotations

import csv
import json
import logging

import datasets
import pytest
from testing_utils import SHARED_DATA, require_shared_data

from hf_attn_at.arguments import DataArguments
from hf_attn_at.data import load_custom, prepare_dataset

SST = SHARED_DATA / "sst" / "sst_dataset.csv"
SNLI = SHARED_DATA / "snli" / "dev.tsv"


def sst_rows(n: int = 40) -> list[dict]:
    with SST.open(newline="", encoding="utf-8") as f:
        rows = [r for r, _ in zip(csv.DictReader(f), range(n), strict=False)]
    return [{"sentence": r["text"], "label": "positive" if r["label"] == "1" else "negative"} for r in rows]


def snli_rows(n: int = 40) -> list[dict]:
    with SNLI.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        return [{"premise": p, "hypothesis": h, "label": int(y)} for (p, h, y), _ in zip(reader, range(n),
                                                                                           strict=False)]


def write_csv(path, rows, delimiter=","):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@require_shared_data("sst")
def test_csv_with_string_labels_and_carved_validation(tmp_path, caplog):
    path = write_csv(tmp_path / "reviews.csv", [*sst_rows(40), {"sentence": "  ", "label": "positive"}])
    with caplog.at_level(logging.INFO, logger="hf_attn_at"):
        dsd = load_custom(train_file=path, seed=3)
    assert set(dsd) == {"train", "validation"}
    assert len(dsd["train"]) + len(dsd["validation"]) == 40 and len(dsd["validation"]) == 4
    assert dsd["train"].features["label"].names == ["negative", "positive"]
    assert set(dsd["train"].column_names) == {"text", "label"}
    assert "train: dropped 1 of 41 rows with empty text" in caplog.text
    assert "no test split" in caplog.text and "reported on the validation split" in caplog.text
    # Seeded: the same seed gives the same split.
    again = load_custom(train_file=path, seed=3)
    assert again["validation"]["text"] == dsd["validation"]["text"]

    tokenized, tokenizer = prepare_dataset(dsd, min_df=1)
    assert {"input_ids", "label", "length"} <= set(tokenized["train"].column_names)


@require_shared_data("snli")
@pytest.mark.parametrize("suffix", ["jsonl", "json", "tsv", "parquet"])
def test_pair_files_in_every_format(tmp_path, suffix):
    rows = snli_rows(30)
    train, test = tmp_path / f"train.{suffix}", tmp_path / f"test.{suffix}"
    for path, part in ((train, rows[:20]), (test, rows[20:])):
        if suffix == "jsonl":
            write_jsonl(path, part)
        elif suffix == "json":
            path.write_text(json.dumps(part), encoding="utf-8")
        elif suffix == "tsv":
            write_csv(path, part, delimiter="\t")
        else:
            datasets.Dataset.from_list(part).to_parquet(str(path))
    dsd, columns = load_custom(train_file=train, test_file=test, validation_split_percentage=20, seed=0,
                               return_columns=True)
    assert columns == ("premise", "hypothesis", "label")
    assert set(dsd) == {"train", "validation", "test"}
    assert len(dsd["test"]) == 10 and len(dsd["validation"]) == 4
    assert dsd["test"][0]["text"] == rows[20]["premise"] and dsd["test"][0]["text_pair"] == rows[20]["hypothesis"]
    names = dsd["train"].features["label"].names
    assert names == sorted({str(r["label"]) for r in rows[:20]}, key=int)
    assert names[dsd["test"][0]["label"]] == str(rows[20]["label"])


def test_explicit_columns_and_integer_labels_kept_as_names(tmp_path):
    rows = [{"body": f"text number {i}", "stars": 1 + i % 3, "extra": i} for i in range(12)]
    path = write_csv(tmp_path / "stars.csv", rows)
    dsd = load_custom(train_file=path, validation_file=path, text_column="body", label_column="stars")
    assert dsd["train"].features["label"].names == ["1", "2", "3"]
    assert dsd["validation"]["label"][:3] == [0, 1, 2]


BAD_INPUTS = [
    ("missing_column", "--label_column 'sentiment' is not a column of", "its columns are ['sentence', 'label']"),
    ("empty_file", "is empty", None),
    ("header_only", "is empty (a header but no rows)", None),
    ("single_class", "label column 'label' has a single class ('positive') in the training data", None),
    ("mixed_jsonl", "label column 'label' mixes label types: int (first at", "str (first at"),
    ("mixed_csv", "label column 'label' mixes label types", "use all strings or all integers"),
    ("latin1", "line 3: not valid UTF-8", "iconv"),
    ("unsupported", "unsupported file type '.xlsx'; allowed: .csv, .tsv, .json, .jsonl, .parquet", None),
    ("no_text_column", "cannot infer the text column", "give --text_column; its columns are ['body', 'label']"),
    ("float_labels", "is a float; labels must be strings or integers", None),
    ("unseen_label", "test has labels ['neutral'] that the training data lacks", None),
]


@pytest.mark.parametrize("case,message,detail", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_clear_error(tmp_path, case, message, detail):
    rows = [{"sentence": f"a fine sentence {i}", "label": ("positive", "negative")[i % 2]} for i in range(10)]
    kwargs = {}
    if case == "missing_column":
        path = write_csv(tmp_path / "d.csv", rows)
        kwargs["label_column"] = "sentiment"
    elif case == "empty_file":
        path = tmp_path / "d.csv"
        path.write_bytes(b"")
    elif case == "header_only":
        path = tmp_path / "d.csv"
        path.write_text("sentence,label\n", encoding="utf-8")
    elif case == "single_class":
        path = write_csv(tmp_path / "d.csv", [{**r, "label": "positive"} for r in rows])
    elif case == "mixed_jsonl":
        path = write_jsonl(tmp_path / "d.jsonl", [{**r, "label": i if i < 5 else "pos"} for i, r in enumerate(rows)])
    elif case == "mixed_csv":
        path = write_csv(tmp_path / "d.csv", [{**r, "label": i if i < 5 else "pos"} for i, r in enumerate(rows)])
    elif case == "latin1":
        path = tmp_path / "d.csv"
        path.write_bytes("sentence,label\nok,1\ncafé crème,0\n".encode("latin-1"))
    elif case == "unsupported":
        path = tmp_path / "d.xlsx"
        path.write_text("x", encoding="utf-8")
    elif case == "no_text_column":
        path = write_csv(tmp_path / "d.csv", [{"body": r["sentence"], "label": r["label"]} for r in rows])
    elif case == "float_labels":
        path = write_jsonl(tmp_path / "d.jsonl", [{**r, "label": i / 3} for i, r in enumerate(rows)])
    elif case == "unseen_label":
        path = write_csv(tmp_path / "d.csv", rows)
        kwargs["test_file"] = write_csv(tmp_path / "t.csv", [{"sentence": "meh", "label": "neutral"}])
    with pytest.raises(ValueError) as info:
        load_custom(train_file=path, **kwargs)
    assert message in str(info.value)
    if detail:
        assert detail in str(info.value)
    if case in ("latin1", "empty_file", "missing_column"):
        assert str(path) in str(info.value) or case == "missing_column"


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv not found"):
        load_custom(train_file=tmp_path / "nope.csv")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"train_file": "a.csv", "dataset_name": "imdb"}, "give either --train_file"),
        ({"validation_file": "a.csv"}, "--validation_file needs --train_file"),
        ({"train_file": "a.txt"}, "--train_file 'a.txt': unsupported file type; allowed: .csv"),
        ({"text_column": "body"}, "--text_column is for your own data: add --train_file or --dataset_name"),
        ({"train_file": "a.csv", "task_name": "sst"}, "give either --task_name ('sst', a built-in task)"),
        ({"train_file": "a.csv", "validation_split_percentage": 0}, "--validation_split_percentage must be in"),
    ],
)
def test_data_arguments_check_the_source(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        DataArguments(**kwargs)


def test_data_arguments_defaults():
    assert DataArguments().task_name == "sst" and not DataArguments().is_custom
    args = DataArguments(train_file="data/my_reviews.jsonl")
    assert args.is_custom and args.task_name is None and args.dataset_label == "my_reviews"
    assert DataArguments(dataset_name="org/reviews", dataset_config_name="en").dataset_label == "reviews-en"


def test_dataset_name_reads_a_dataset_folder_with_class_labels(tmp_path, caplog):
    """--dataset_name goes through `datasets.load_dataset` (a local folder here: no network in tests)."""
    features = datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["yes", "no"])})
    rows = [{"sentence1": f"first {i}", "sentence2": f"second {i}", "label": i % 2} for i in range(20)]
    folder = tmp_path / "hub_like"
    folder.mkdir()
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(folder / "train.parquet"))
    unlabelled = [{**r, "label": -1} for r in rows[:3]]
    datasets.Dataset.from_list(unlabelled, features=features).to_parquet(str(folder / "test.parquet"))
    with caplog.at_level(logging.INFO, logger="hf_attn_at"):
        dsd, columns = load_custom(dataset_name=str(folder), seed=0, return_columns=True)
    assert columns == ("sentence1", "sentence2", "label")
    assert dsd["train"].features["label"].names == ["yes", "no"]  # the ClassLabel's names and order
    assert dsd["train"].filter(lambda r: r["text"] == "first 1")["label"] == [1]
    assert set(dsd) == {"train", "validation"}  # the unlabelled test split is dropped
    assert "test: dropped 3 of 3 rows without a label (empty, null or -1)" in caplog.text
    assert "no labelled rows left" in caplog.text
