"""`load_custom`: a user's csv / tsv / json / jsonl / parquet files in the shared layout, and every bad input."""

from __future__ import annotations

import csv
import json
import logging
import re

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from testing_utils import SHARED_DATA, require_shared_data

from hf_attn_at.arguments import DataArguments
from hf_attn_at.data import load_custom, prepare_dataset
from hf_attn_at.data.custom import read_file, text_kind

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
    ("directory_csv", "is a directory: expected a data file (csv, tsv, json, jsonl or parquet)", None),
    ("directory_parquet", "is a directory: expected a data file (csv, tsv, json, jsonl or parquet)", None),
    ("columnar_json", "is a JSON object of columns (keys ['sentence', 'label']); that layout is not supported",
     "JSON Lines (one object per row, a line each) or, in a .json file, an array of row objects"),
    ("pretty_object_json", "is a single JSON object over several lines", "an array of row objects"),
    ("number_text_jsonl", "line 4: text column 'sentence' holds int 3, not a string", "must be strings"),
    ("list_text_json", "item 2: text column 'sentence' holds list ['a', 'b'], not a string", None),
    ("duplicate_csv_column", "column name(s) ['sentence'] occur more than once in the header "
     "['sentence', 'label', 'sentence']", "give every column a distinct name"),
    ("duplicate_tsv_column", "column name(s) ['label'] occur more than once", None),
    ("duplicate_parquet_column", "column name(s) ['sentence'] occur more than once", None),
    ("duplicate_jsonl_key", "line 2: key(s) ['sentence'] occur more than once in one object", None),
    ("two_rows", "its 2 labelled rows are too few to hold out 10% as validation with every class kept in train",
     "add rows, change --validation_split_percentage or give a --validation_file"),
    ("empty_jsonl", "is empty", None),
    ("header_only_tsv", "is empty (a header but no rows)", None),
    # An unquoted comma in every row: pandas would take the first cells as an index, losing a part of each
    # text.
    ("extra_cell_every_row", "line 2: 3 cells, but the header has 2 ['sentence', 'label']: every row needs "
     "one cell per column (quote a text that contains a comma)", None),
    ("missing_cell", "line 12: 1 cell, but the header has 2", None),
    # An unbalanced quote: the rows up to the next quote would become one text cell.
    ("unbalanced_quote_csv", "lines 4-6: malformed quoting (',' expected after '\"')",
     'a quote inside it is doubled ("")'),
    ("unbalanced_quote_tsv", "lines 4-6: malformed quoting ('\\t' expected after '\"')", None),
    ("unclosed_quote_at_end", "lines 10-12: malformed quoting (unexpected end of data)", None),
    ("float_labels_jsonl", "line 2: label 1.0 in column 'label' is a float; labels must be strings or "
     "integers", None),
    ("float_labels_parquet", "row 1: label 0.0 in column 'label' is a float64; labels must be strings or "
     "integers", None),
    ("bool_labels_jsonl", "line 1: label False in column 'label' is a bool", None),
    ("padded_label", "label 'positive ' in column 'label' has leading or trailing whitespace, which would "
     "make it a class apart from 'positive'; remove it", None),
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
    elif case.startswith("directory"):
        path = tmp_path / f"d.{case.split('_')[1]}"
        path.mkdir()
    elif case == "columnar_json":
        path = tmp_path / "d.json"
        path.write_text(json.dumps({k: [r[k] for r in rows] for k in rows[0]}), encoding="utf-8")
    elif case == "pretty_object_json":
        path = tmp_path / "d.json"
        path.write_text(json.dumps(rows[0], indent=2), encoding="utf-8")
    elif case == "number_text_jsonl":
        path = write_jsonl(tmp_path / "d.jsonl", [{**r, "sentence": 3} if i == 3 else r for i, r in enumerate(rows)])
    elif case == "list_text_json":
        path = tmp_path / "d.json"
        path.write_text(json.dumps([{**r, "sentence": ["a", "b"]} if i == 1 else r for i, r in enumerate(rows)]),
                        encoding="utf-8")
    elif case == "duplicate_csv_column":
        path = tmp_path / "d.csv"
        path.write_text("sentence,label,sentence\n" + "".join(f"{r['sentence']},{r['label']},other\n" for r in rows),
                        encoding="utf-8")
    elif case == "duplicate_tsv_column":
        path = tmp_path / "d.tsv"
        path.write_text("sentence\tlabel\tlabel\n" + "".join(f"{r['sentence']}\t{r['label']}\tx\n" for r in rows),
                        encoding="utf-8")
    elif case == "duplicate_parquet_column":
        path = tmp_path / "d.parquet"
        columns = [pa.array([r[k] for r in rows]) for k in ("sentence", "label", "sentence")]
        pq.write_table(pa.Table.from_arrays(columns, names=["sentence", "label", "sentence"]), path)
    elif case == "duplicate_jsonl_key":
        path = tmp_path / "d.jsonl"
        path.write_text(json.dumps(rows[0]) + "\n" + '{"sentence": "one", "label": "negative", "sentence": "two"}\n',
                        encoding="utf-8")
    elif case == "two_rows":
        path = write_csv(tmp_path / "d.csv", rows[:2])
    elif case == "empty_jsonl":
        path = tmp_path / "d.jsonl"
        path.write_bytes(b"")
    elif case == "header_only_tsv":
        path = tmp_path / "d.tsv"
        path.write_text("sentence\tlabel\n", encoding="utf-8")
    elif case == "extra_cell_every_row":
        path = tmp_path / "d.csv"
        lines = [f"Smith, John {i},{r['label']}\n" for i, r in enumerate(rows)]
        path.write_text("".join(["sentence,label\n", *lines]), encoding="utf-8")
    elif case == "missing_cell":
        path = tmp_path / "d.csv"
        lines = [f"{r['sentence']},{r['label']}\n" for r in rows]
        path.write_text("".join(["sentence,label\n", *lines, "lonely\n"]), encoding="utf-8")
    elif case.startswith("unbalanced_quote"):
        delimiter = "," if case.endswith("csv") else "\t"
        lines = [f"{r['sentence']}{delimiter}{r['label']}" for r in rows]
        lines[2] = '"' + lines[2]  # opens a quoted cell that the quote of line 6 closes
        lines[4] = '"Nice" one' + delimiter + "positive"
        path = tmp_path / f"d.{case[-3:]}"
        path.write_text("\n".join([f"sentence{delimiter}label", *lines]) + "\n", encoding="utf-8")
    elif case == "unclosed_quote_at_end":
        path = tmp_path / "d.csv"
        lines = [f"{r['sentence']},{r['label']}\n" for r in rows]
        path.write_text("".join(["sentence,label\n", *lines[:8], '"open,positive\n', *lines[8:]]),
                        encoding="utf-8")
    elif case == "float_labels_jsonl":
        path = write_jsonl(tmp_path / "d.jsonl", [{**r, "label": float(i % 2)} for i, r in enumerate(rows)])
        path.write_text(path.read_text().replace('"label": 0.0', '"label": 0'), encoding="utf-8")  # 0 and 1.0
    elif case == "float_labels_parquet":
        path = tmp_path / "d.parquet"
        labels = [i % 2 * 1.0 for i in range(10)]
        pq.write_table(pa.table({"sentence": [r["sentence"] for r in rows], "label": labels}), path)
    elif case == "bool_labels_jsonl":
        path = write_jsonl(tmp_path / "d.jsonl", [{**r, "label": bool(i % 2)} for i, r in enumerate(rows)])
    elif case == "padded_label":
        path = write_csv(tmp_path / "d.csv", [*rows, {"sentence": "one more", "label": "positive "}])
    with pytest.raises(ValueError) as info:
        load_custom(train_file=path, **kwargs)
    assert message in str(info.value)
    if detail:
        assert detail in str(info.value)
    assert "\n" not in str(info.value).strip()
    if case not in ("missing_column", "single_class", "mixed_csv", "no_text_column", "float_labels", "unseen_label"):
        assert str(path) in str(info.value)


def test_single_class_validation_is_a_warning(tmp_path, caplog):
    """A held-out validation with one class still trains (imbalanced data can split like that), and says so."""
    rows = [{"sentence": f"a fine sentence {i}", "label": ("positive", "negative")[i % 2]} for i in range(10)]
    path = write_csv(tmp_path / "d.csv", rows)  # 10% of 10 rows: one validation row
    with caplog.at_level(logging.WARNING, logger="hf_attn_at"):
        dsd = load_custom(train_file=path)
    assert len(set(dsd["validation"]["label"])) == 1
    assert f"{path}: holding out 10% of its 10 labelled rows (2 classes) as validation leaves train 9 row(s) of " \
           "2 class(es) and validation 1 row(s) of 1 class(es); validation metrics will cover a single class" \
           in caplog.text


def test_a_class_too_small_to_hold_out_stays_in_train(tmp_path, caplog):
    """One row of class `c`: a random (unstratifiable) split would hold it out for some seeds, training without it."""
    rows = [{"sentence": f"a fine sentence {i}", "label": ("a", "b")[i % 2]} for i in range(19)]
    path = write_csv(tmp_path / "d.csv", [*rows, {"sentence": "the rare one", "label": "c"}])
    seeds = range(30)
    plain = datasets.Dataset.from_list([*rows, {"sentence": "the rare one", "label": "c"}])
    assert any("c" in plain.train_test_split(test_size=0.1, seed=seed)["test"]["label"] for seed in seeds)
    for seed in seeds:
        with caplog.at_level(logging.WARNING, logger="hf_attn_at"):
            dsd = load_custom(train_file=path, seed=seed)
        names = dsd["train"].features["label"].names
        assert "the rare one" in dsd["train"]["text"] and "c" in names
        assert len(dsd["train"]) + len(dsd["validation"]) == 20 and len(dsd["validation"]) > 0
    assert "class(es) ['c'] have too few rows to hold out for validation: their 1 row(s) stay in train" in caplog.text


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_explain_reads_a_file_with_the_same_checks(tmp_path, suffix):
    """`read_file` (explain's `--dataset_dir FILE`) rejects what `load_custom` rejects."""
    path = tmp_path / f"d.{suffix}"
    if suffix == "jsonl":
        write_jsonl(path, [{"sentence": "fine", "label": 0}, {"sentence": 7, "label": 1}])
        message = "line 2: text column 'sentence' holds int 7"
    else:
        path.write_text("sentence,label,label\nfine,0,1\n", encoding="utf-8")
        message = "column name(s) ['label'] occur more than once"
    with pytest.raises(ValueError, match=re.escape(message)):
        read_file(path)


@pytest.mark.parametrize("suffix", ["csv", "tsv"])
def test_csv_column_of_numbers_is_read_as_text(tmp_path, suffix):
    """csv has no types: a text column that pandas would read as numbers is the written text, verbatim."""
    texts = [f"{10 + i}" for i in range(17)] + ["007", "0.10", "1e3"]  # not 7, 0.1, 1000.0
    rows = [{"sentence": text, "label": ("1", "2")[i % 2]} for i, text in enumerate(texts)]
    path = write_csv(tmp_path / f"d.{suffix}", rows, delimiter="," if suffix == "csv" else "\t")
    dsd = load_custom(train_file=path, validation_file=path)
    assert dsd["validation"]["text"] == texts
    assert dsd["train"].features["text"] == datasets.Value("string")
    assert dsd["train"].features["label"].names == ["1", "2"]  # integer labels are still class ids


def test_csv_decimal_labels_are_floats_as_in_json(tmp_path):
    """A csv cell "1.0" is a float label (refused, as a JSON 1.0 is), not a class named "1.0"; the message
    names the file and the line that hold it (not a row number counted after dropped rows)."""
    path = write_csv(tmp_path / "d.csv", [{"sentence": f"text {i}", "label": f"{i % 2}.0"} for i in range(10)])
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 2: label '0.0' in column 'label' is a float")):
        load_custom(train_file=path)
    train = write_csv(tmp_path / "train.csv", [{"sentence": f"text {i}", "label": i % 2} for i in range(10)])
    test = write_csv(tmp_path / "test.csv", [{"sentence": "", "label": "1"},
                                             {"sentence": "fine", "label": "1.5"}])
    message = f"{test}, line 3: label '1.5' in column 'label' is a float"  # line 2's row has no text
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        load_custom(train_file=train, test_file=test)
    assert "row" not in str(info.value)
    assert [text_kind(t) for t in ("1", " -07 ", "1.0", ".5", "1e3", "nan", "inf", "1.0.0", "pos")] == \
        ["int", "int", "float", "float", "float", "str", "str", "str", "str"]


def test_quoted_cells_long_texts_and_blank_lines_still_load(tmp_path):
    """What the row check must let through: quoted delimiters, quotes and line breaks, a text longer than the
    csv module's default field limit (restored afterwards), blank lines, a byte-order mark."""
    import csv as csv_module

    long_text = " ".join(f"word{i % 50}" for i in range(30_000))  # ~240 KB: over the 128 KiB default limit
    texts = ['Smith, John said "hi"', "two\nlines", long_text, *(f"text {i}" for i in range(7))]
    rows = [{"sentence": text, "label": ("positive", "negative")[i % 2]} for i, text in enumerate(texts)]
    path = write_csv(tmp_path / "d.csv", rows)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes() + b"\r\n   \r\n")
    limit = csv_module.field_size_limit()
    dsd = load_custom(train_file=path, validation_file=path)
    assert dsd["validation"]["text"] == texts
    assert csv_module.field_size_limit() == limit


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_integer_labels_beyond_2_53_stay_distinct(tmp_path, suffix):
    """Integer labels are converted exactly (not through a float, which merges 2**53 and 2**53 + 1); "+1"
    and "-0" are still the integers 1 and 0, but two spellings of one integer ("01" and "1") are refused: they
    would silently be one class."""
    big = [2**53, 2**53 + 1, 5]
    rows = [{"sentence": f"text {i}", "label": big[i % 3]} for i in range(30)]
    path = (write_jsonl if suffix == "jsonl" else write_csv)(tmp_path / f"d.{suffix}", rows)
    dsd = load_custom(train_file=path, validation_file=path)
    assert dsd["train"].features["label"].names == ["5", str(2**53), str(2**53 + 1)]
    assert dsd["validation"]["label"][:3] == [1, 2, 0]
    signed = write_csv(tmp_path / "signed.csv", [{"sentence": f"text {i}", "label": ("+1", "-0")[i % 2]}
                                                 for i in range(20)])
    dsd = load_custom(train_file=signed, validation_file=signed)
    assert dsd["train"].features["label"].names == ["0", "1"]
    assert dsd["validation"]["label"][:2] == [1, 0]
    for first, second in [("01", "1"), (" 1", "1"), ("0", "-0")]:
        two = write_csv(tmp_path / "two.csv", [{"sentence": f"text {i}", "label": (first, "7")[i % 2]}
                                               for i in range(20)])
        test = write_csv(tmp_path / "test.csv", [{"sentence": "text", "label": second}])
        message = (f"labels {first!r} (in {two}, line 2) and {second!r} (in {test}, line 2) in column 'label' are "
                   f"both class {int(first)}; write each class one way")
        with pytest.raises(ValueError, match=re.escape(message)):
            load_custom(train_file=two, validation_file=two, test_file=test)


def test_whitespace_only_labels_are_missing(tmp_path, caplog):
    """A label cell of spaces is no label: the row is dropped and logged (it was a class " " before)."""
    rows = [{"sentence": f"a fine sentence {i}", "label": ("positive", "negative")[i % 2]} for i in range(10)]
    path = write_csv(tmp_path / "d.csv", [*rows, {"sentence": "meh", "label": "  "}])
    with caplog.at_level(logging.WARNING, logger="hf_attn_at"):
        dsd = load_custom(train_file=path, validation_file=path)
    assert dsd["train"].features["label"].names == ["negative", "positive"] and len(dsd["train"]) == 10
    assert "train: dropped 1 of 11 rows without a label (empty or null)" in caplog.text


def test_parquet_text_column_of_numbers_is_refused(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"sentence": [0.5 * i for i in range(10)], "label": [i % 2 for i in range(10)]}), path)
    with pytest.raises(ValueError, match=re.escape(f"{path}, row 1: text column 'sentence' holds float64 0.0, not a "
                                                   "string; text cells must be strings")):
        load_custom(train_file=path)


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
        # Flags that custom data would record but never use.
        ({"train_file": "a.csv", "data_source": "local"},
         "--data_source local is for the built-in tasks (--task_name); --train_file reads your own data: "
         "drop --data_source"),
        ({"dataset_name": "org/x", "data_dir": "d"}, "--data_dir d is for the built-in tasks (--task_name); "
                                                     "--dataset_name reads your own data"),
        ({"train_file": "a.csv", "babi_size": "1k"}, "--babi_size 1k is for the built-in tasks"),
        ({"train_file": "a.csv", "validation_file": "b.csv", "validation_split_percentage": 20},
         "--validation_split_percentage 20 holds out part of train when there is no validation split, but "
         "--validation_file b.csv is one: drop --validation_split_percentage"),
        ({"train_file": "a.csv", "max_test_samples": 5}, "--max_test_samples 5 caps the test split, and "
                                                         "without --test_file there is none"),
    ],
)
def test_data_arguments_check_the_source(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        DataArguments(**kwargs)


def test_data_arguments_defaults():
    assert DataArguments().task_name == "sst" and not DataArguments().is_custom
    # the defaults of the refused flags, and the combinations that use them, are accepted
    DataArguments(train_file="a.csv", validation_file="b.csv", validation_split_percentage=10)
    DataArguments(train_file="a.csv", test_file="b.csv", max_test_samples=5)
    DataArguments(dataset_name="org/x", max_test_samples=5)  # its test split is checked when loaded
    DataArguments(task_name="babi1", data_source="local", data_dir="d", babi_size="1k")
    args = DataArguments(train_file="data/my_reviews.jsonl")
    assert args.is_custom and args.task_name is None and args.dataset_label == "my_reviews"
    assert DataArguments(dataset_name="org/reviews", dataset_config_name="en").dataset_label == "reviews-en"


def test_dataset_name_checks_types_as_a_parquet_file_does(tmp_path):
    """A Hub split's numeric text column is refused (it was turned into strings), as the same parquet file is;
    so are float labels; a --validation_split_percentage that a validation split makes unused is refused."""
    folder = tmp_path / "numbers"
    folder.mkdir()
    datasets.Dataset.from_dict({"text": list(range(10)), "label": [i % 2 for i in range(10)]}).to_parquet(
        str(folder / "train.parquet"))
    message = f"{folder} split 'train', row 1: text column 'text' holds int64 0, not a string"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_custom(dataset_name=str(folder))
    with pytest.raises(ValueError, match=re.escape(f"{folder / 'train.parquet'}, row 1: text column 'text' "
                                                   "holds int64 0")):
        load_custom(train_file=folder / "train.parquet")
    floats = tmp_path / "floats"
    floats.mkdir()
    texts = [f"text {i}" for i in range(10)]
    datasets.Dataset.from_dict({"text": texts, "label": [i % 2 * 1.0 for i in range(10)]}).to_parquet(
        str(floats / "train.parquet"))
    with pytest.raises(ValueError, match=re.escape(f"{floats} split 'train', row 1: label 0.0 in column "
                                                   "'label' is a float64")):
        load_custom(dataset_name=str(floats))
    split = tmp_path / "with_validation"
    split.mkdir()
    for name in ("train", "validation"):
        datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(10)]}).to_parquet(
            str(split / f"{name}.parquet"))
    assert len(load_custom(dataset_name=str(split))["validation"]) == 10
    message = (f"--validation_split_percentage 20 holds out part of train when there is no validation split, "
               f"but there is one ({split} split 'validation'): drop it")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_custom(dataset_name=str(split), validation_split_percentage=20)


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
