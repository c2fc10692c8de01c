"""`hf-attn-at explain` on bad input: label mapping, one-line errors, the token cap, literal labels in figures."""

from __future__ import annotations

import csv
import json
import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, build_word_tokenizer
from hf_attn_at.cli.main import main as cli_main
from hf_attn_at.interpret import explain_model
from hf_attn_at.interpret.inputs import _label_ids
from hf_attn_at.interpret.report import plot_heatmap, write_report

TEXTS = ["a good film", "a bad film", "the plot is good but the acting is bad", "good", "bad bad film"]


def tiny_config(class_names, **kwargs) -> BiLSTMAttentionConfig:
    """A tiny model's config with the class names and ids that `train` writes."""
    return BiLSTMAttentionConfig(embedding_size=8, hidden_size=8, attention_hidden_size=8, num_labels=len(class_names),
                                 id2label=dict(enumerate(class_names)),
                                 label2id={name: i for i, name in enumerate(class_names)}, **kwargs)


def save_tiny_model(path, class_names=("negative", "positive")):
    """An untrained tiny model whose classes are `class_names`, with its word tokenizer, saved in `path`."""
    tokenizer = build_word_tokenizer(TEXTS)
    torch.manual_seed(0)
    BiLSTMAttentionForSequenceClassification(tiny_config(class_names, vocab_size=len(tokenizer))).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_csv(path, labels, texts=TEXTS):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


def explain(capsys, *args) -> tuple[int, str]:
    """Run `hf-attn-at explain ARGS`; the exit code and the error line (asserting it is one line, no traceback)."""
    code = cli_main(["explain", *map(str, args)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("hf-attn-at explain: error: ")]
    assert len(errors) == (code != 0), err
    return code, errors[0] if errors else ""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model"))


def test_integer_class_names_never_read_as_ids():
    # Trained on labels 1/2: class names "1" (id 0) and "2" (id 1). A file labelled 0/1 must not map to ids.
    config = tiny_config(["1", "2"])
    with pytest.raises(ValueError, match=r"labels \[0\] are not classes of m: labels must be its class names "
                                         r"\['1', '2'\] \(ids are not accepted"):
        _label_ids([0, 1, 1, 0], config, "m")
    assert _label_ids([1, "2", "01", " 2 "], config, "m") == [0, 1, 0, 1]


@pytest.mark.parametrize("names", [["1", "2"], ["negative", "positive"]])
def test_float_labels_are_refused_as_in_training(names):
    """A float is no class id, even when whole (training refuses it too): `2.0` and a csv cell `"1.0"`."""
    with pytest.raises(ValueError, match=r"labels \[2.0, '1.0'\] are floats; labels must be its class names"):
        _label_ids([1, 2.0, "1.0", 2.0], tiny_config(names), "m")


def test_ids_accepted_when_class_names_are_not_integers():
    config = tiny_config(["negative", "positive"])
    assert _label_ids([0, "1", "positive", "negative"], config, "m") == [0, 1, 1, 0]
    with pytest.raises(ValueError, match=r"labels \[2, 'neutral'\] are not classes of m: labels must be its "
                                         r"class names \['negative', 'positive'\] or ids 0..1"):
        _label_ids([0, 2, "neutral", 2], config, "m")
    with pytest.raises(ValueError, match=r"labels \[\[0\], 2, 3, 4, 5, 6, 7, 8, 9, 10\] \.\.\. are not classes"):
        _label_ids([[0], *range(2, 100)], config, "m")


def test_explain_rejects_a_file_labelled_with_ids_for_integer_class_names(tmp_path, capsys):
    """The reported repro: a model trained on labels 1/2 and a file labelled 0/1 gave a wrong accuracy."""
    model = save_tiny_model(tmp_path / "model", class_names=("1", "2"))
    data = write_csv(tmp_path / "test.csv", [0, 1, 1, 0, 1])
    code, error = explain(capsys, "--model_name_or_path", model, "--test_file", data, "--output_dir", tmp_path / "out")
    assert code == 2 and "labels ['0'] are not classes of" in error and "['1', '2']" in error
    assert not (tmp_path / "out").exists()
    # The same texts labelled with the class names are explained.
    data = write_csv(tmp_path / "named.csv", [1, 2, 2, 1, 2])
    assert explain(capsys, "--model_name_or_path", model, "--test_file", data, "--output_dir", tmp_path / "out",
                   "--num_examples", "0") == (0, "")
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["models"]["model"]["summary"]["num_examples"] == 5


def test_explain_bad_paths_and_values_are_one_line(model_dir, tmp_path, capsys):
    data = write_csv(tmp_path / "test.csv", [0, 1, 1, 0, 1])
    common = ["--model_name_or_path", model_dir, "--output_dir", tmp_path / "out"]
    code, error = explain(capsys, *common, "--test_file", tmp_path / "missing.csv")
    assert code == 2 and f"--test_file {tmp_path / 'missing.csv'}: no such file" in error
    code, error = explain(capsys, *common, "--prepared_dir", tmp_path / "missing_folder")
    assert code == 2 and f"--prepared_dir {tmp_path / 'missing_folder'}: no such folder;" in error
    (tmp_path / "not_a_dataset").mkdir()
    code, error = explain(capsys, *common, "--prepared_dir", tmp_path / "not_a_dataset")
    assert code == 2 and "is not a `save_to_disk` dataset: give a folder written by `hf-attn-at prepare`" in error
    code, error = explain(capsys, *common)
    assert code == 2 and error.endswith("give exactly one of --test_file, --prepared_dir or --task_name, got none")
    code, error = explain(capsys, *common, "--test_file", data, "--task_name", "sst")
    assert code == 2 and error.endswith("got ['--test_file', '--task_name']")
    code, error = explain(capsys, *common, "--task_name", "sst", "--label_column", "stars")
    assert code == 2 and error.endswith("--label_column names a column of --test_file; it cannot be used with "
                                        "--task_name")
    for flag, value, message in (("--num_examples", -3, "must be >= 0"), ("--max_tokens", 0, "must be >= 1"),
                                 ("--batch_size", 0, "must be >= 1"), ("--max_test_samples", 0,
                                                                       "must be a positive integer")):
        code, error = explain(capsys, *common, "--test_file", data, flag, value)
        assert code == 2 and error.endswith(f"{flag} {message}, got {value}")
    for old, new in (("--max_examples", "--max_test_samples"), ("--num_heatmaps", "--num_examples"),
                     ("--dataset_dir", "--test_file (a data file) or --prepared_dir")):
        code, error = explain(capsys, *common, "--test_file", data, old, 3)
        assert code == 2 and f"{old} is no longer a flag: use {new}" in error
    code, error = explain(capsys, *common, "--test_file", data, "--select", "worst")
    assert code == 2 and "argument --select: invalid choice: 'worst' (choose from 'random', 'misclassified'" in error
    code, error = explain(capsys, "--model_name_or_path", tmp_path / "no_model", "--test_file", data,
                          "--output_dir", tmp_path / "out")
    assert code == 2 and f"--model_name_or_path {tmp_path / 'no_model'} is not a folder" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("content", "problem"), [
    ("[{'method': 'at'}]", "Expecting property name"),
    ('{"method": "at", "epsilon": 1, "accuracy": 0.8, "pearson": 0.3}', "must be a list of"),
    ('[{"method": "at", "epsilon": "1", "accuracy": 0.8, "pearson": 0.3}]', "epsilon must be a number > 0"),
])
def test_explain_checks_epsilon_runs_before_explaining(model_dir, tmp_path, capsys, content, problem):
    data = write_csv(tmp_path / "test.csv", [0, 1, 1, 0, 1])
    (tmp_path / "sweep.json").write_text(content)
    code, error = explain(capsys, "--model_name_or_path", model_dir, "--test_file", data, "--output_dir",
                          tmp_path / "out", "--epsilon_runs", tmp_path / "sweep.json")
    assert code == 2 and f"--epsilon_runs {tmp_path / 'sweep.json'}: " in error and problem in error
    assert not (tmp_path / "out").exists()


def test_explain_names_corrupt_or_unsafe_weights(model_dir, tmp_path, capsys):
    import shutil

    data = write_csv(tmp_path / "test.csv", [0, 1, 1, 0, 1])
    truncated = shutil.copytree(model_dir, tmp_path / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    # A good model first: nothing is explained or written before every model has loaded.
    code, error = explain(capsys, "--model_name_or_path", model_dir, truncated, "--test_file", data,
                          "--output_dir", tmp_path / "out")
    assert code == 2 and f"cannot load {weights}: the file is corrupt or truncated" in error
    assert not (tmp_path / "out").exists()

    class Unsafe:
        def __reduce__(self):
            return os.getcwd, ()

    no_weights = shutil.copytree(model_dir, tmp_path / "no_weights")
    (no_weights / "model.safetensors").unlink()
    code, error = explain(capsys, "--model_name_or_path", no_weights, "--test_file", data, "--output_dir", tmp_path / "out")
    assert code == 2 and f"--model_name_or_path {no_weights} has no weights: expected one of" in error
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    shutil.copy(model_dir / "config.json", no_tokenizer)
    code, error = explain(capsys, "--model_name_or_path", no_tokenizer, "--test_file", data, "--output_dir", tmp_path / "out")
    assert code == 2 and f"--model_name_or_path {no_tokenizer}: cannot load its tokenizer" in error

    unsafe = shutil.copytree(model_dir, tmp_path / "unsafe")
    (unsafe / "model.safetensors").unlink()
    torch.save({"weights": Unsafe()}, unsafe / "pytorch_model.bin")
    code, error = explain(capsys, "--model_name_or_path", unsafe, "--test_file", data, "--output_dir", tmp_path / "o")
    assert code == 2 and f"cannot load {unsafe / 'pytorch_model.bin'}: torch refuses to unpickle it" in error


def test_labels_and_tokens_with_dollars_are_drawn_literally(tmp_path):
    from test_interpret_report import fake_run

    tokens = [["costs", "$5", "$x$", "$$"], ["$\\alpha$", "b"]]
    runs = {"$$": fake_run(tokens, 0), "$\\foo$": fake_run(tokens, 1)}  # mathtext fails on both
    sweep = [{"method": "$$", "epsilon": e, "accuracy": 0.8, "pearson": 0.3} for e in (0.1, 1.0)]
    write_report(runs, tmp_path, epsilon_runs=sweep, num_examples=2)
    plot_heatmap(runs, 0, tmp_path / "heatmap_0.png")
    for name in ("agreement.png", "epsilon.png", "heatmap_0.png"):
        Image.open(tmp_path / name).verify()
    with pytest.raises(ValueError, match=r"num_examples must be >= 0, got -3"):
        write_report(runs, tmp_path, num_examples=-3)


def test_truncate_keeps_the_separator_of_a_pair():
    from hf_attn_at.interpret.evaluate import _truncate

    rows = {"input_ids": [[5, 6, 7, 2, 8, 9, 10], [5, 2, 8], [5, 6, 7, 8]],
            "token_type_ids": [[0, 0, 0, 1, 1, 1, 1], [0, 1, 1], [0, 0, 0, 0]]}
    assert _truncate(rows, 2) == 2
    assert rows == {"input_ids": [[5, 6, 2, 8, 9], [5, 2, 8], [5, 6]],
                    "token_type_ids": [[0, 0, 1, 1, 1], [0, 1, 1], [0, 0]]}


def test_long_texts_are_explained_on_their_first_tokens_with_a_warning(model_dir, caplog):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BiLSTMAttentionForSequenceClassification.from_pretrained(model_dir)
    data = {"input_ids": tokenizer(TEXTS)["input_ids"], "label": [0, 1, 1, 0, 1]}
    lengths = [len(ids) for ids in data["input_ids"]]
    with caplog.at_level(logging.WARNING, logger="hf_attn_at.interpret.evaluate"):
        result = explain_model(model, tokenizer, data, show_progress=False, max_tokens=3)
    long = [i for i, n in enumerate(lengths) if n > 3]
    assert long and f"{len(long)} of 5 examples have a text longer than 3 tokens" in caplog.text
    assert result["summary"]["max_tokens"] == 3 and result["summary"]["num_truncated"] == len(long)
    assert [len(t) for t in result["tokens"]] == [min(n, 3) for n in lengths]
    # A cut example is explained exactly as its first 3 tokens alone.
    first = {"input_ids": [data["input_ids"][long[0]][:3]], "label": [1]}
    alone = explain_model(model, tokenizer, first, show_progress=False)
    np.testing.assert_allclose(result["attention"][long[0]], alone["attention"][0], rtol=1e-5)
    assert alone["summary"]["max_tokens"] is None and alone["summary"]["num_truncated"] == 0


def test_a_cut_pair_is_explained_as_its_cut_texts():
    tokenizer = build_word_tokenizer(TEXTS)
    torch.manual_seed(0)
    model = BiLSTMAttentionForSequenceClassification(tiny_config(
        ["no", "yes"], vocab_size=len(tokenizer), input_type="pair", pad_token_id=tokenizer.pad_token_id,
        sep_token_id=tokenizer.sep_token_id)).eval()
    premises, hypotheses = ["the plot is good but the acting is bad", "good"], ["a bad film", "a good film"]
    full = explain_model(model, tokenizer, dict(tokenizer(premises, hypotheses)), show_progress=False, max_tokens=2)
    cut = [" ".join(t.split()[:2]) for t in premises], [" ".join(t.split()[:2]) for t in hypotheses]
    alone = explain_model(model, tokenizer, dict(tokenizer(*cut)), show_progress=False)
    assert full["summary"]["num_truncated"] == 2 and full["tokens"] == alone["tokens"] == [["the", "plot"], ["good"]]
    for i in range(2):
        np.testing.assert_allclose(full["attention"][i], alone["attention"][i], rtol=1e-5)
        np.testing.assert_allclose(full["importance"]["gradient"][i], alone["importance"]["gradient"][i], rtol=1e-4)


def test_explain_records_the_token_cap(model_dir, tmp_path, capsys):
    data = write_csv(tmp_path / "test.csv", [0, 1, 1, 0, 1])
    assert explain(capsys, "--model_name_or_path", model_dir, "--test_file", data, "--output_dir", tmp_path / "out",
                   "--max_tokens", "3", "--num_examples", "1") == (0, "")
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())["models"][model_dir.name]["summary"]
    assert summary["max_tokens"] == 3 and summary["num_truncated"] == sum(len(t.split()) > 3 for t in TEXTS)
    assert "cut to 3 tokens" in (tmp_path / "out" / "report.html").read_text()
    assert explain(capsys, "--model_name_or_path", model_dir, "--test_file", data, "--output_dir", tmp_path / "d",
                   "--num_examples", "0") == (0, "")
    assert json.loads((tmp_path / "d" / "metrics.json").read_text())["models"][model_dir.name]["summary"][
        "max_tokens"] == 5000


def test_explain_never_overwrites_a_report_silently(model_dir, tmp_path, capsys):
    """A second report into the same folder stops in one line (before any model is loaded) and changes nothing;
    `--overwrite_output_dir` replaces it. `robustness` shares the flag and the check."""
    data = write_csv(tmp_path / "test.csv", [0, 1, 1, 0, 1])
    out = tmp_path / "out"
    assert explain(capsys, "--model_name_or_path", model_dir, "--test_file", data, "--output_dir", out,
                   "--num_examples", "1") == (0, "")
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    code, error = explain(capsys, "--model_name_or_path", model_dir, "--test_file", data, "--output_dir", out,
                          "--max_tokens", "3")
    assert code == 2 and error == (
        f"hf-attn-at explain: error: --output_dir {out} is not empty (agreement.png, metrics.json, report.html): give a "
        "new folder, or --overwrite_output_dir to replace its report"
    )
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert explain(capsys, "--model_name_or_path", model_dir, "--test_file", data, "--output_dir", out,
                   "--max_tokens", "3", "--overwrite_output_dir") == (0, "")
    assert json.loads((out / "metrics.json").read_text())["models"][model_dir.name]["summary"]["max_tokens"] == 3
    code, error = explain(capsys, "--model_name_or_path", model_dir, "--test_file", data, "--output_dir", data)
    assert code == 2 and error == f"hf-attn-at explain: error: --output_dir {data} is a file: give a folder"
    assert cli_main(["robustness", "--model_name_or_path", str(model_dir), "--test_file", str(data),
                     "--output_dir", str(out)]) == 2
    assert f"hf-attn-at robustness: error: --output_dir {out} is not empty" in capsys.readouterr().err


def test_a_model_is_evaluated_only_on_inputs_of_its_kind(model_dir, tmp_path, capsys):
    """A model for single texts given text pairs read them as one text joined by `<sep>`; both ways are
    refused, in `explain` and `robustness` (which load their inputs alike)."""
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="") as f:
        rows = [(text, "a film", i % 2) for i, text in enumerate(TEXTS)]
        csv.writer(f).writerows([("text", "text_pair", "label"), *rows])
    code, error = explain(capsys, "--model_name_or_path", model_dir, "--test_file", pairs, "--output_dir",
                          tmp_path / "out")
    assert code == 2 and error.endswith(f"--model_name_or_path {model_dir} is a model for single texts "
                                        f"(input_type 'single'), but --test_file {pairs} holds text pairs: "
                                        "evaluate it on data of its kind")
    assert cli_main(["robustness", "--model_name_or_path", str(model_dir), "--test_file", str(pairs),
                     "--output_dir", str(tmp_path / "robust")]) == 2
    assert "is a model for single texts (input_type 'single')" in capsys.readouterr().err
    tokenizer = build_word_tokenizer([*TEXTS, "a film"])
    config = tiny_config(["negative", "positive"], vocab_size=len(tokenizer), input_type="pair")
    BiLSTMAttentionForSequenceClassification(config).save_pretrained(tmp_path / "pair_model")
    tokenizer.save_pretrained(tmp_path / "pair_model")
    single = write_csv(tmp_path / "single.csv", [0, 1, 1, 0, 1])
    code, error = explain(capsys, "--model_name_or_path", tmp_path / "pair_model", "--test_file", single,
                          "--output_dir", tmp_path / "out")
    assert code == 2 and error.endswith("is a model for text pairs (input_type 'pair'), but --test_file "
                                        f"{single} holds single texts: evaluate it on data of its kind")
    assert explain(capsys, "--model_name_or_path", tmp_path / "pair_model", "--test_file", pairs,
                   "--output_dir", tmp_path / "out", "--num_examples", "0") == (0, "")


def test_a_split_that_selects_nothing_is_refused(model_dir, tmp_path, capsys):
    """`--split` picks the rows of a file's `exp_split` column; a file without one is the test split, and
    another `--split` was reported though never applied. The same for a saved `Dataset` without splits."""
    import datasets

    data = write_csv(tmp_path / "test.csv", [0, 1, 1, 0, 1])
    common = ["--model_name_or_path", model_dir, "--num_examples", "0"]
    code, error = explain(capsys, *common, "--test_file", data, "--split", "validation", "--output_dir",
                          tmp_path / "a")
    assert code == 2 and error.endswith(f"--split 'validation' selects the rows of a file's exp_split "
                                        f"column, and {data} has none: the whole file is the 'test' split; "
                                        "drop --split, or give a file with an exp_split column")
    assert cli_main(["robustness", "--model_name_or_path", str(model_dir), "--test_file", str(data),
                     "--split", "dev", "--output_dir", str(tmp_path / "robust")]) == 2
    assert "--split 'dev' selects the rows of a file's exp_split column" in capsys.readouterr().err
    code, _ = explain(capsys, *common, "--test_file", data, "--split", "test", "--output_dir", tmp_path / "b")
    assert code == 0
    with_splits = tmp_path / "with_splits.csv"
    with with_splits.open("w", newline="") as f:
        splits = ["dev", "test", "dev", "test", "test"]
        rows = zip(TEXTS, [0, 1, 1, 0, 1], splits, strict=True)
        csv.writer(f).writerows([("text", "label", "exp_split"), *rows])
    code, _ = explain(capsys, *common, "--test_file", with_splits, "--split", "dev", "--output_dir",
                      tmp_path / "c")
    assert code == 0
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["models"][model_dir.name]["summary"]["num_examples"] == 2
    code, error = explain(capsys, *common, "--test_file", with_splits, "--split", "validation",
                          "--output_dir", tmp_path / "d")
    assert code == 2 and error.endswith("has no rows with exp_split == 'validation'; its exp_split values "
                                        "are ['dev', 'test']")
    datasets.Dataset.from_dict({"input_ids": [[3, 4]], "label": [0]}).save_to_disk(str(tmp_path / "one"))
    code, error = explain(capsys, *common, "--prepared_dir", tmp_path / "one", "--split", "validation",
                          "--output_dir", tmp_path / "e")
    assert code == 2 and error.endswith(f"--split 'validation' selects a split of --prepared_dir, and "
                                        f"{tmp_path / 'one'} holds one dataset without splits (evaluated as "
                                        "the 'test' split): drop --split")
