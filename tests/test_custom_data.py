"""Your own data through the CLI: csv and jsonl files written from real SST / SNLI sentences, end to end."""

from __future__ import annotations

import csv
import json
import logging
import re
import subprocess
import sys

import pytest
from testing_utils import SHARED_DATA, require_shared_data, subprocess_env

from hf_attn_at.cli.main import main

TINY = ["--embedding_size", "16", "--hidden_size", "8", "--attention_hidden_size", "8"]
FAST = ["--num_train_epochs", "1", "--per_device_train_batch_size", "16", "--report_to", "none",
        "--disable_tqdm", "true"]


@pytest.fixture
def reviews(tmp_path):
    """SST sentences as `review,sentiment` csv files (string labels), with one empty review in train."""
    with (SHARED_DATA / "sst" / "sst_dataset.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["exp_split"] == "train"][:120]
    rows = [{"review": r["text"], "sentiment": "pos" if r["label"] == "1" else "neg"} for r in rows]
    paths = {}
    for name, part in (("reviews_train", [*rows[:96], {"review": "", "sentiment": "pos"}]), ("reviews_test", rows[96:])):
        paths[name] = tmp_path / f"{name}.csv"
        with paths[name].open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["review", "sentiment"])
            writer.writeheader()
            writer.writerows(part)
    return paths


@pytest.fixture
def nli_jsonl(tmp_path):
    """SNLI dev pairs as jsonl with the obvious names premise / hypothesis / label (integer labels)."""
    with (SHARED_DATA / "snli" / "dev.tsv").open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        rows = [{"premise": p, "hypothesis": h, "label": int(y)} for (p, h, y), _ in zip(reader, range(80),
                                                                                           strict=False)]
    path = tmp_path / "nli.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@require_shared_data("sst")
def test_train_on_a_csv_with_named_columns(tmp_path, reviews, caplog):
    run = tmp_path / "run"
    argv = ["train", "--train_file", str(reviews["reviews_train"]), "--test_file", str(reviews["reviews_test"]),
            "--text_column", "review", "--label_column", "sentiment", "--adv_method", "attention_iat",
            "--adv_epsilon", "1.0", "--output_dir", str(run), *TINY, *FAST]
    with caplog.at_level(logging.INFO, logger="hf_attn_at"):
        assert main(argv) == 0
    assert "train: dropped 1 of 97 rows with empty text" in caplog.text
    assert "reviews_train: vocabulary of" in caplog.text
    assert "test: " in caplog.text and "tokens unknown" in caplog.text
    results = json.loads((run / "results.json").read_text())
    assert results["task"] == "reviews_train" and results["agreement_split"] == "test"
    assert results["num_examples"] == {"train": 86, "validation": 10, "test": 24}
    config = json.loads((run / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["input_type"] == "single"
    assert json.loads((run / "training_args.json").read_text())["adv_method"] == "attention_iat"


@require_shared_data("snli")
def test_train_on_pairs_in_jsonl_without_test_file(tmp_path, nli_jsonl, caplog):
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="hf_attn_at"):
        assert main(["train", "--train_file", str(nli_jsonl), "--validation_split_percentage", "20",
                     "--task_label", "my_nli", "--output_dir", str(run), *TINY, *FAST]) == 0
    assert "columns: text='premise', text_pair='hypothesis', label='label'" in caplog.text
    assert "no test split" in caplog.text
    results = json.loads((run / "results.json").read_text())
    assert results["task"] == "my_nli" and results["agreement_split"] == "validation"
    assert results["data_args"]["text_pair_column"] == "hypothesis"
    assert results["num_examples"] == {"train": 64, "validation": 16}
    config = json.loads((run / "config.json").read_text())
    assert config["input_type"] == "pair" and config["id2label"] == {"0": "0", "1": "1", "2": "2"}
    assert json.loads((run / "metrics.json").read_text())["dataset_split"] == "validation"


@require_shared_data("sst")
def test_reproduce_compares_methods_on_your_data_then_explain(tmp_path, reviews, capsys):
    out = tmp_path / "grid"
    argv = ["reproduce", "--grid", "ci", "--train_file", str(reviews["reviews_train"]), "--test_file",
            str(reviews["reviews_test"]), "--text_column", "review", "--label_column", "sentiment",
            "--task_label", "reviews", "--methods", "vanilla", "attention_iat", "--output_dir", str(out)]
    assert main(argv) == 0
    runs = out / "runs" / "reviews"
    for name in ("vanilla/seed1", "attention_iat-eps1/seed1"):
        assert json.loads((runs / name / "results.json").read_text())["task"] == "reviews"
    results_md = (out / "RESULTS.md").read_text()
    # († marks a tiny model that predicts one class for all 24 test reviews.)
    assert "### reviews (test split: `test`)" in results_md and re.search(r"\| attention_iat( †)? \| 1 \|", results_md)
    capsys.readouterr()

    report = tmp_path / "report"
    assert main(["explain", "--model_name_or_path", str(runs / "vanilla" / "seed1"),
                 str(runs / "attention_iat-eps1" / "seed1"), "--labels", "vanilla", "iat",
                 "--test_file", str(reviews["reviews_test"]), "--text_column", "review",
                 "--label_column", "sentiment", "--output_dir", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "vanilla" in printed and "iat" in printed
    assert (report / "report.html").is_file()


COLUMNS = "its columns are ['review', 'sentiment']"


@pytest.mark.parametrize(
    "extra,message,detail",
    [
        (["--label_column", "stars"], "--label_column 'stars' is not a column of", COLUMNS),
        (["--text_column", "review"], "cannot infer the label column", COLUMNS),
        (["--task_name", "sst"], "give either --task_name ('sst', a built-in task) or your own data", "--train_file"),
    ],
)
@require_shared_data("sst")
def test_bad_custom_data_is_one_clear_line(tmp_path, reviews, capsys, extra, message, detail):
    code = main(["train", "--train_file", str(reviews["reviews_train"]), *extra, "--output_dir",
                 str(tmp_path / "run"), *TINY, *FAST])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and detail in err
    assert "Traceback" not in err


@require_shared_data("sst")
def test_reproduce_rejects_tasks_with_your_data(reviews, capsys):
    assert main(["reproduce", "--train_file", str(reviews["reviews_train"]), "--tasks", "sst"]) == 2
    assert "with --train_file/--dataset_name the grid has one task" in capsys.readouterr().err


def test_reproduce_passes_your_data_only_flags_a_run_uses(tmp_path, capsys):
    """The built-in tasks' flags are refused with your data (they were ignored), and the `ci` grid's test cap
    is dropped when there is no test file or test split (it would be refused: there is no test split to cap)."""
    from hf_attn_at.arguments import CustomDataArguments
    from hf_attn_at.cli.reproduce import ReproduceArguments, Run, run_arguments

    cases = (["--data_source", "local", "--data_dir", "data"], ["--data_dir", "data"], ["--babi_size", "1k"])
    for flags in cases:
        assert main(["reproduce", "--train_file", "reviews.csv", *flags, "--output_dir", str(tmp_path)]) == 2
        assert (f"{flags[0]} {flags[1]} is for the built-in tasks (--tasks); your own data (--train_file / "
                f"--dataset_name) is read as it is: drop {flags[0]}") in capsys.readouterr().err
    run = Run("reviews", "vanilla", None, 1, "reviews")
    for test_file, cap in ((None, None), ("reviews_test.csv", 200)):
        custom = CustomDataArguments(train_file="reviews.csv", test_file=test_file)
        data = run_arguments(ReproduceArguments(grid="ci"), run, tmp_path / "run", custom)[1]
        assert (data.max_test_samples, data.max_eval_samples) == (cap, 100)
    # A --dataset_name (here a local folder of split files) with and without a test split.
    for splits, cap in ((("train", "validation"), None), (("train", "validation", "test"), 200)):
        folder = tmp_path / "-".join(splits)
        folder.mkdir()
        for split in splits:
            (folder / f"{split}.csv").write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-8")
        custom = CustomDataArguments(dataset_name=str(folder))
        data = run_arguments(ReproduceArguments(grid="ci"), run, tmp_path / "run", custom)[1]
        assert (data.max_test_samples, data.max_eval_samples) == (cap, 100)


@require_shared_data("sst")
def test_train_on_your_csv_with_accelerate_on_two_processes(tmp_path, reviews):
    run = tmp_path / "run"
    env = subprocess_env(ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--main_process_port", "0", "-m", "hf_attn_at.cli.main", "train",
         "--train_file", str(reviews["reviews_train"]), "--test_file", str(reviews["reviews_test"]),
         "--text_column", "review", "--label_column", "sentiment", "--adv_method", "attention_at",
         "--adv_epsilon", "1.0", "--use_cpu", "--log_level", "info", "--output_dir", str(run), *TINY, *FAST],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Total train batch size (w. parallel, distributed & accumulation) = 32" in proc.stdout + proc.stderr
    assert json.loads((run / "results.json").read_text())["num_examples"]["train"] == 86


@require_shared_data("snli")
def test_prepare_saves_your_data_tokenized(tmp_path, nli_jsonl, capsys):
    from datasets import load_from_disk

    out = tmp_path / "prepared"
    assert main(["prepare", "--train_file", str(nli_jsonl), "--output_dir", str(out)]) == 0
    assert "nli: vocabulary" in capsys.readouterr().out
    dsd = load_from_disk(str(out))
    assert set(dsd) == {"train", "validation"} and len(dsd["train"]) == 72
    assert {"input_ids", "token_type_ids", "label"} <= set(dsd["train"].column_names)
    assert main(["prepare", "--task_name", "sst", "--output_dir", str(tmp_path / "sst")]) == 2  # offline
    err = capsys.readouterr().err
    assert "hf-attn-at prepare: error:" in err and "Hub" in err and "local" in err


def _bad_file(tmp_path, case):
    """A data file (or folder) that `train`, `reproduce` and `explain` must refuse in one line."""
    rows = [{"text": f"sentence number {i}", "label": ("pos", "neg")[i % 2]} for i in range(8)]
    if case == "folder.csv":
        path = tmp_path / case
        path.mkdir()
    elif case == "columns.json":
        path = tmp_path / case
        path.write_text(json.dumps({k: [r[k] for r in rows] for k in rows[0]}), encoding="utf-8")
    elif case == "number_text.jsonl":
        path = tmp_path / case
        path.write_text("".join(json.dumps({**r, "text": 4} if i == 2 else r) + "\n" for i, r in enumerate(rows)),
                        encoding="utf-8")
    elif case == "repeated.csv":
        path = tmp_path / case
        path.write_text("text,label,text\n" + "".join(f"{r['text']},{r['label']},x\n" for r in rows), encoding="utf-8")
    elif case == "two_rows.csv":
        path = tmp_path / case
        path.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows[:2]), encoding="utf-8")
    elif case == "empty.jsonl":
        path = tmp_path / case
        path.write_bytes(b"")
    else:  # header only
        path = tmp_path / case
        path.write_text("text,label\n", encoding="utf-8")
    return path


BAD_FILES = [
    ("folder.csv", "is a directory: expected a data file"),
    ("columns.json", "is a JSON object of columns (keys ['text', 'label']); that layout is not supported"),
    ("number_text.jsonl", "line 3: text column 'text' holds int 4, not a string"),
    ("repeated.csv", "column name(s) ['text'] occur more than once in the header"),
    ("two_rows.csv", "2 labelled rows are too few to hold out 10% as validation with every class kept in train"),
    ("empty.jsonl", "is empty"),
    ("header_only.csv", "is empty (a header but no rows)"),
]


@pytest.mark.parametrize("verb", ["train", "reproduce"])
@pytest.mark.parametrize("case,message", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_data_file_is_one_line(tmp_path, capsys, verb, case, message):
    path = _bad_file(tmp_path, case)
    extra = [*TINY, *FAST] if verb == "train" else ["--grid", "ci", "--methods", "vanilla"]
    code = main([verb, "--train_file", str(path), "--output_dir", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"hf-attn-at {verb}: error: {path}") and message in last
    assert "Traceback" not in err


@pytest.mark.parametrize("case,message", [c for c in BAD_FILES if c[0] != "two_rows.csv"],
                         ids=[c[0] for c in BAD_FILES if c[0] != "two_rows.csv"])
def test_explain_refuses_a_bad_data_file_in_one_line(tmp_path, capsys, case, message):
    """`explain --test_file FILE` reads the file before loading any model (none exists here)."""
    path = _bad_file(tmp_path, case)
    code = main(["explain", "--model_name_or_path", str(tmp_path / "no_model"), "--test_file", str(path),
                 "--output_dir", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"hf-attn-at explain: error: {path}") and message in err
    assert "Traceback" not in err


@require_shared_data("sst")
@require_shared_data("snli")
def test_continue_training_keeps_the_saved_vocabulary_and_refuses_other_data(tmp_path, reviews, nli_jsonl, capsys):
    """`--model_name_or_path` continues with the saved tokenizer: a vocabulary rebuilt from the new training file
    would give the saved embeddings other words' rows. A model for single texts refuses pair data in one line."""
    first = tmp_path / "first"
    assert main(["train", "--train_file", str(reviews["reviews_train"]), "--text_column", "review",
                 "--label_column", "sentiment", "--output_dir", str(first), *TINY, *FAST]) == 0
    second = tmp_path / "second"
    assert main(["train", "--model_name_or_path", str(first), "--train_file", str(reviews["reviews_test"]),
                 "--text_column", "review", "--label_column", "sentiment", "--validation_split_percentage", "20",
                 "--output_dir", str(second), *FAST]) == 0
    vocab = [json.loads((run / "tokenizer.json").read_text())["model"]["vocab"] for run in (first, second)]
    assert vocab[0] == vocab[1] and len(vocab[0]) == json.loads((second / "config.json").read_text())["vocab_size"]
    # It keeps the saved architecture, and records it (not the new-model defaults); a size flag that differs is
    # refused, not ignored; --dropout replaces the saved dropout.
    saved = json.loads((first / "config.json").read_text())
    recorded = json.loads((second / "run_settings.json").read_text())["model"]
    for name in ("embedding_size", "hidden_size", "attention_hidden_size", "attention_type", "dropout"):
        assert recorded[name] == saved[name], name
    capsys.readouterr()
    assert main(["train", "--model_name_or_path", str(first), "--train_file", str(reviews["reviews_test"]),
                 "--text_column", "review", "--label_column", "sentiment", "--output_dir", str(tmp_path / "wider"),
                 "--hidden_size", "64", *FAST]) == 2
    assert f"--hidden_size 64 differs from the saved model's {saved['hidden_size']} (--model_name_or_path {first}): " \
           "continuing keeps its architecture; drop --hidden_size" in capsys.readouterr().err
    assert main(["train", "--model_name_or_path", str(first), "--train_file", str(reviews["reviews_test"]),
                 "--text_column", "review", "--label_column", "sentiment", "--validation_split_percentage", "20",
                 "--output_dir", str(tmp_path / "dropout"), "--dropout", "0.3", *FAST]) == 0
    assert json.loads((tmp_path / "dropout" / "config.json").read_text())["dropout"] == 0.3
    assert json.loads((tmp_path / "dropout" / "run_settings.json").read_text())["model"]["dropout"] == 0.3
    capsys.readouterr()
    assert main(["train", "--model_name_or_path", str(first), "--train_file", str(nli_jsonl),
                 "--validation_split_percentage", "20", "--output_dir", str(tmp_path / "third"), *FAST]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hf-attn-at")]  # no progress bars
    assert len(err) == 1 and err[0].startswith(
        f"hf-attn-at train: error: --model_name_or_path {first} was trained with labels ['neg', 'pos'], the data has "
    ) and err[0].endswith(": continue on data of the same task, or train a new model")
