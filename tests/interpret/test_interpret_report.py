"""Report writing and the `explain` command end to end on a small SST model."""

from __future__ import annotations

import csv
import html
import json

import numpy as np
import pytest
import torch
from PIL import Image
from testing_utils import require_shared_data, shared_data_path
from transformers import AutoTokenizer

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, build_word_tokenizer
from hf_attn_at.cli.main import main
from hf_attn_at.data import sample_indices
from hf_attn_at.interpret import explain_model
from hf_attn_at.interpret.report import plot_epsilon_sweep, write_report


def fake_run(tokens: list[list[str]], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    attention = [rng.dirichlet(np.ones(len(t))) for t in tokens]
    gradient = [rng.dirichlet(np.ones(len(t))) for t in tokens]
    from hf_attn_at.interpret import attention_agreement

    return {
        "tokens": tokens,
        "attention": attention,
        "importance": {"gradient": gradient},
        "predictions": np.zeros(len(tokens), dtype=int),
        "labels": np.zeros(len(tokens), dtype=int),
        "agreement": {"gradient": attention_agreement(attention, gradient)},
        "summary": {"accuracy": 1.0},
    }


def test_report_escapes_markup(tmp_path):
    tokens = [["<script>alert(1)</script>", "good", "&", "film"], ["plain", "words", "here"]]
    runs = {"vanilla": fake_run(tokens, 0), "<b>iat</b>": fake_run(tokens, 1)}
    sweep = [{"method": m, "epsilon": e, "accuracy": 0.8, "pearson": 0.3} for m in ("at", "iat") for e in (0.1, 1.0)]
    report = write_report(runs, tmp_path, epsilon_runs=sweep, num_examples=2)
    text = report.read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>iat</b>" not in text and "&lt;b&gt;iat&lt;/b&gt;" in text
    assert "&amp;" in text
    for name in ("agreement.png", "epsilon.png"):
        Image.open(tmp_path / name).verify()
    assert not list(tmp_path.glob("heatmap_*.png"))  # the page shows the examples itself
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["models"]) == {"vanilla", "<b>iat</b>"} and len(metrics["epsilon_runs"]) == 4


def test_epsilon_sweep_draws_the_vanilla_reference(tmp_path):
    sweep = [{"method": "at", "epsilon": e, "accuracy": 0.8, "pearson": 0.3} for e in (0.1, 1.0, 10.0)]
    plain = np.asarray(Image.open(plot_epsilon_sweep(sweep, tmp_path / "plain.png")))
    with_ref = np.asarray(Image.open(plot_epsilon_sweep(sweep, tmp_path / "ref.png", {"accuracy": 0.7, "pearson": 0.5})))
    assert plain.shape == with_ref.shape and (plain != with_ref).any()
    with pytest.raises(ValueError, match=r"reference needs 'accuracy' and 'pearson', got \['accuracy'\]"):
        plot_epsilon_sweep(sweep, tmp_path / "bad.png", {"accuracy": 0.7})


@pytest.fixture(scope="module")
def sst_model_dir(tmp_path_factory):
    """A small BiLSTM + attention model trained for 300 steps on 3000 SST training sentences (a seeded sample: the
    file is sorted by label, its first 3000 training sentences are 94 % positive)."""
    with shared_data_path("sst", "sst_dataset.csv").open(newline="") as f:
        train = [r for r in csv.DictReader(f) if r["exp_split"] == "train"]
    rows = [train[i] for i in sample_indices(len(train), 3000, seed=0)]
    texts, labels = [r["text"] for r in rows], torch.tensor([int(r["label"]) for r in rows])
    tokenizer = build_word_tokenizer(texts, min_df=2)
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=len(tokenizer), embedding_size=32, hidden_size=16,
                                   attention_hidden_size=16, num_labels=2)
    model = BiLSTMAttentionForSequenceClassification(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        index = torch.randint(len(texts), (32,), generator=generator)
        batch = tokenizer([texts[i] for i in index], padding=True, return_tensors="pt")
        loss = model(**batch, labels=labels[index]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    path = tmp_path_factory.mktemp("sst_model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@require_shared_data("sst", "sst_dataset.csv")
def test_explain_command_end_to_end(sst_model_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["explain", "--model_name_or_path", str(sst_model_dir), str(sst_model_dir),
                 "--labels", "vanilla", "iat", "--test_file", str(shared_data_path("sst", "sst_dataset.csv")),
                 "--split", "test", "--output_dir", str(out), "--max_test_samples", "64",
                 "--methods", "gradient", "leave_one_out", "--num_examples", "2", "--select", "misclassified"])
    assert code == 0
    assert "vanilla" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    summary = metrics["models"]["vanilla"]["summary"]
    assert summary["num_examples"] == 64 and summary["accuracy"] > 0.6  # trained, better than chance
    assert -1 <= summary["gradient_pearson_mean"] <= 1
    Image.open(out / "agreement.png").verify()
    # The seeded sample of the label-sorted test split: recorded, balanced, the texts of the recorded rows.
    with shared_data_path("sst", "sst_dataset.csv").open(newline="") as f:
        test_rows = [r for r in csv.DictReader(f) if r["exp_split"] == "test"]
    data = metrics["data"]
    assert data["num_rows"] == len(test_rows) and data["seed"] == 0 and len(data["rows"]) == 64
    assert data["rows"] != list(range(64)) and 16 < sum(int(test_rows[i]["label"]) for i in data["rows"]) < 48
    html_text = (out / "report.html").read_text()
    shown = metrics["examples"]["indices"]
    assert metrics["examples"]["select"] == "misclassified" and 1 <= len(shown) <= 2
    tokenizer = AutoTokenizer.from_pretrained(sst_model_dir)
    first = tokenizer.tokenize(test_rows[data["rows"][shown[0]]]["text"])
    assert all(f">{html.escape(token)}</span>" in html_text for token in first)


@require_shared_data("sst", "sst_dataset.csv")
def test_explain_reads_a_built_in_task_with_trains_flags(sst_model_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["explain", "--model_name_or_path", str(sst_model_dir), "--task_name", "sst", "--data_source",
                 "local", "--data_dir", str(shared_data_path("sst", "sst_dataset.csv").parents[1]),
                 "--max_test_samples", "64", "--num_examples", "0", "--output_dir", str(out)])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["dataset"] == "sst (local)" and len(metrics["data"]["rows"]) == 64
    assert metrics["models"][sst_model_dir.name]["summary"]["accuracy"] > 0.6  # labels mapped by class name


@require_shared_data("sst", "sst_dataset.csv")
def test_explain_model_on_tokenized_dataset_from_disk(sst_model_dir, tmp_path):
    from datasets import Dataset, DatasetDict

    tokenizer = AutoTokenizer.from_pretrained(sst_model_dir)
    texts = ["a gorgeous , witty film .", "dull", "the acting is bad but the story is great"]
    data = Dataset.from_dict({"label": [1, 0, 1], **tokenizer(texts)})
    DatasetDict({"test": data}).save_to_disk(tmp_path / "data")
    model = BiLSTMAttentionForSequenceClassification.from_pretrained(sst_model_dir)
    result = explain_model(model, tokenizer, data, batch_size=2, show_progress=False)
    assert result["tokens"][1] == ["dull"] and np.isnan(result["agreement"]["gradient"]["pearson"][1])
    np.testing.assert_allclose([a.sum() for a in result["attention"]], 1.0, rtol=1e-5)
    # Batched, length-sorted results equal one example at a time.
    alone = explain_model(model, tokenizer, data.select([2]), batch_size=1, show_progress=False)
    np.testing.assert_allclose(result["importance"]["gradient"][2], alone["importance"]["gradient"][0], rtol=1e-4)
    tokenizer.save_pretrained(tmp_path / "data")  # what `prepare` saves next to the ids
    assert main(["explain", "--model_name_or_path", str(sst_model_dir), "--prepared_dir", str(tmp_path / "data"),
                 "--output_dir", str(tmp_path / "out"), "--num_examples", "1", "--max_test_samples", "2"]) == 0
    assert (tmp_path / "out" / "report.html").is_file()


@require_shared_data("sst", "sst_dataset.csv")
def test_prepared_ids_of_another_vocabulary_or_classes_are_refused(sst_model_dir, tmp_path, capsys):
    """Prepared ids are only read by a model with the vocabulary (and class names) they were prepared with."""
    from datasets import ClassLabel, Dataset, DatasetDict

    from hf_attn_at import build_word_tokenizer

    texts = ["a gorgeous , witty film .", "dull", "the acting is bad but the story is great"]
    other = build_word_tokenizer(texts)  # a 2nd vocabulary: its ids are in the model's range, other words
    model = BiLSTMAttentionForSequenceClassification.from_pretrained(sst_model_dir)
    classes = [model.config.id2label[i] for i in range(model.config.num_labels)]
    cases = {
        "other_vocabulary": (other, Dataset.from_dict({"label": [1, 0, 1], **other(texts)}),
                             "was tokenized with another vocabulary"),
        "no_tokenizer": (None, Dataset.from_dict({"label": [1, 0, 1], **other(texts)}), "has no tokenizer"),
        "other_classes": (AutoTokenizer.from_pretrained(sst_model_dir), None, f"but {sst_model_dir} predicts"),
    }
    for name, (tokenizer, data, message) in cases.items():
        if data is None:
            data = Dataset.from_dict({"label": [1, 0, 1], **tokenizer(texts)}).cast_column(
                "label", ClassLabel(names=classes[::-1]))
        DatasetDict({"test": data}).save_to_disk(tmp_path / name)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp_path / name)
        capsys.readouterr()
        assert main(["explain", "--model_name_or_path", str(sst_model_dir), "--prepared_dir", str(tmp_path / name),
                     "--output_dir", str(tmp_path / f"out_{name}")]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert message in error and str(tmp_path / name) in error, error
        assert not (tmp_path / f"out_{name}").exists()


def test_module_help_runs_without_matplotlib_or_captum_imported():
    import os
    import subprocess
    import sys

    from testing_utils import REPO_ROOT

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    # One child process: the package imports without matplotlib/captum, then `hf-attn-at explain --help` runs.
    probe = (
        "import runpy, sys, hf_attn_at.interpret; print('matplotlib' in sys.modules, 'captum' in sys.modules); "
        "sys.argv = ['hf-attn-at', 'explain', '--help']; "
        "runpy.run_module('hf_attn_at.cli.main', run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["False", "False"] and "--model_name_or_path" in done.stdout
