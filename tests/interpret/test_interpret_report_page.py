"""The report page: the `--max_test_samples` sample, example selection, the colour scale, the rendered HTML, and
the page in a real browser (headless Chromium)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from chromium_page import CHROMIUM, render_page
from PIL import Image
from test_interpret_report import fake_run
from testing_utils import require_shared_data, shared_data_path

from hf_attn_at.data import EVAL_SAMPLE_SEED, sample_examples, sample_indices
from hf_attn_at.interpret.inputs import model_info
from hf_attn_at.interpret.report import SATURATION, select_examples, token_shades, write_report

NAMES = {0: "negative", 1: "positive"}


def test_sample_is_seeded_reproducible_and_not_the_first_rows():
    from datasets import Dataset

    data = Dataset.from_dict({"x": list(range(200))})
    rows = sample_indices(200, 20, seed=EVAL_SAMPLE_SEED)
    assert rows == sample_indices(200, 20, seed=EVAL_SAMPLE_SEED) and len(set(rows)) == 20
    assert rows != list(range(20)) and rows != sample_indices(200, 20, seed=1)
    # The rows `train` kept before the function was shared: the first N of `Dataset.shuffle(seed)`.
    assert rows == data.shuffle(seed=EVAL_SAMPLE_SEED).select(range(20))["x"]
    assert sample_examples(data, 20, EVAL_SAMPLE_SEED)["x"] == rows
    assert sample_indices(200, 200, 0) is None and sample_indices(200, None, 0) is None
    assert sample_examples(data, 500, 0) is data
    with pytest.raises(ValueError, match="max_samples must be >= 1 or None, got 0"):
        sample_indices(200, 0, 0)


def runs_with(predictions, labels, pearson):
    """Fake runs of several models over len(labels) examples with given predictions and per-example r."""
    tokens = [["a", "b", "c"]] * len(labels)
    runs = {}
    for k, (pred, r) in enumerate(zip(predictions, pearson, strict=True)):
        run = fake_run(tokens, k)
        run["predictions"], run["labels"] = np.asarray(pred), np.asarray(labels)
        run["agreement"]["gradient"]["pearson"] = np.asarray(r, dtype=float)
        runs[f"m{k}"] = run
    return runs


def test_select_examples():
    nan = float("nan")
    labels = [0, 1, 0, 1, 0, -1]
    runs = runs_with(predictions=[[0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0]], labels=labels,
                     pearson=[[0.5, -0.2, nan, 0.9, 0.0, 0.1], [0.1, 0.0, 0.3, 0.8, 0.0, 0.1]])
    # m0 is wrong on 1 and 3, m1 on 3 and 4; example 5 has no label.
    assert select_examples(runs, "misclassified", 10) == [3, 1, 4]
    assert select_examples(runs, "misclassified", 2) == [3, 1]
    # Mean r: [0.3, -0.1, nan, 0.85, 0.0, 0.1]; the nan example is skipped.
    assert select_examples(runs, "lowest_agreement", 3) == [1, 4, 5]
    assert select_examples(runs, "highest_agreement", 2) == [3, 0]
    # |r difference|: [0.4, 0.2, nan, 0.1, 0, 0].
    assert select_examples(runs, "disagreement", 3) == [0, 1, 3]
    chosen = select_examples(runs, "random", 3, seed=5)
    assert chosen == select_examples(runs, "random", 3, seed=5) == sorted(chosen) and len(set(chosen)) == 3
    assert {tuple(select_examples(runs, "random", 3, seed=s)) for s in range(10)} != {tuple(chosen)}
    assert select_examples(runs, "random", 0) == [] and len(select_examples(runs, "random", 99)) == 6
    with pytest.raises(ValueError, match=r"select must be one of \['random', .*\], got 'worst'"):
        select_examples(runs, "worst", 2)
    with pytest.raises(ValueError, match=r"select 'disagreement' compares models: it needs at least 2, got \['m0'\]"):
        select_examples({"m0": runs["m0"]}, "disagreement", 2)


def test_token_shades_are_an_absolute_scale():
    for n in (2, 7, 40):
        np.testing.assert_allclose(token_shades(np.full(n, 1.0 / n)), 1.0)  # flat: 1 whatever the length
    peaked = token_shades(np.array([0.0, 0.0, 1.0, 0.0]))
    np.testing.assert_allclose(peaked, [0, 0, 4, 0])
    signed = token_shades(np.array([-3.0, 1.0]))
    np.testing.assert_allclose(signed, [-1.5, 0.5])
    assert np.abs(signed).sum() == pytest.approx(2)
    np.testing.assert_array_equal(token_shades(np.zeros(3)), 0)


def test_flat_attention_is_drawn_flat_and_labels_by_name(tmp_path):
    tokens = [["<script>alert(1)</script>", "good", "film", "!"]]
    flat, peaked = fake_run(tokens, 0), fake_run(tokens, 1)
    flat["attention"] = [np.full(4, 0.25)]
    peaked["attention"] = [np.array([0.01, 0.97, 0.01, 0.01])]
    peaked["predictions"], peaked["labels"] = np.array([1]), np.array([0])
    flat["labels"] = np.array([0])
    models = {"flat": {"path": "runs/flat", "adv_method": "vanilla", "id2label": NAMES},
              "peaked": {"path": "runs/<peaked>", "adv_method": "attention_iat", "adv_epsilon": 2.5,
                         "id2label": NAMES}}
    report = write_report({"flat": flat, "peaked": peaked}, tmp_path, num_examples=1, models=models,
                          data={"dataset": "sst.csv", "split": "test", "num_rows": 9, "seed": 0, "rows": [6]})
    text = report.read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'id="legend"' in text and "uniform share" in text
    assert "runs/&lt;peaked&gt;" in text and "attention_iat" in text and "2.5" in text and "sst.csv" in text
    assert "row 6 of the split" in text
    # Predictions and gold labels by class name; the wrong prediction is marked.
    assert '<td class="wrong">positive</td><td>negative</td>' in text and "<td>negative</td><td>negative</td>" in text
    flat_row = text.split("flat: attention</span>")[1].split("</div>")[0]
    assert flat_row.count(f"rgba(220, 40, 40, {1 / SATURATION:.3f})") == 4  # one even shade: a uniform share
    peaked_row = text.split("peaked: attention</span>")[1].split("</div>")[0]
    assert peaked_row.count("rgba(220, 40, 40, 0.970)") == 1 and peaked_row.count("rgba(220, 40, 40, 0.010)") == 3
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["data"]["rows"] == [6] and metrics["examples"] == {"select": "random", "seed": 0, "indices": [0]}
    assert metrics["models"]["peaked"]["model"] == {"path": "runs/<peaked>", "adv_method": "attention_iat",
                                                    "adv_epsilon": 2.5}


def test_model_info_reads_method_and_epsilon(tmp_path):
    from types import SimpleNamespace

    config = SimpleNamespace(id2label={"0": "neg", "1": "pos"})
    assert model_info(str(tmp_path), config) == {"path": str(tmp_path), "id2label": {0: "neg", 1: "pos"}}
    (tmp_path / "training_args.json").write_text(json.dumps({"adv_method": "attention_at", "adv_epsilon": 1.0,
                                                             "seed": 3}))
    assert model_info(str(tmp_path), config)["adv_method"] == "attention_at"
    assert model_info(str(tmp_path), config)["adv_epsilon"] == 1.0
    (tmp_path / "training_args.json").write_text("{not json")
    with pytest.raises(ValueError, match=f"--model_name_or_path {tmp_path}: cannot read .*training_args.json"):
        model_info(str(tmp_path), config)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it with apt)")
def test_report_renders_in_chromium(tmp_path):
    bad = tmp_path / "bad.html"  # the check itself: a page with a script error and a missing image fails it
    bad.write_text('<html><body><img src="missing.png"><script>undefinedFunction();</script></body></html>')
    errors = render_page(bad, tmp_path / "bad.png")
    assert any("ReferenceError" in e for e in errors) and any("ERR_FILE_NOT_FOUND" in e for e in errors)

    tokens = [["a", "<b>bold</b>", "film", "."], ["dull", "and", "long"], ["fine"]]
    runs = {"vanilla": fake_run(tokens, 0), "iat": fake_run(tokens, 1)}
    sweep = [{"method": "iat", "epsilon": e, "accuracy": 0.8, "pearson": 0.3} for e in (0.1, 1.0)]
    report = write_report(runs, tmp_path / "report", epsilon_runs=sweep, num_examples=3,
                          models={label: {"id2label": NAMES} for label in runs})
    assert render_page(report, tmp_path / "report.png") == []
    pixels = np.asarray(Image.open(tmp_path / "report.png").convert("L"), dtype=float)
    assert pixels.shape[1] == 1200 and pixels.shape[0] > 800  # the whole page
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # text and figures drawn, not a blank page


@require_shared_data("sst", "sst_dataset.csv")
def test_transformer_example_samples_like_train():
    import importlib.util

    from testing_utils import REPO_ROOT

    spec = importlib.util.spec_from_file_location("run_transformer_at", REPO_ROOT / "examples" / "run_transformer_at.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    args = example.DataArguments(dataset_file=str(shared_data_path("sst", "sst_dataset.csv")), max_train_samples=300,
                                 max_eval_samples=200)
    train, dev, test = example.load_splits(args, seed=42)
    full = example.load_splits(example.DataArguments(dataset_file=args.dataset_file), seed=42)
    assert (len(train), len(dev), len(test)) == (300, 200, 200)
    assert test["text"] == full[2].select(sample_indices(len(full[2]), 200, EVAL_SAMPLE_SEED))["text"]
    assert train["text"] == full[0].select(sample_indices(len(full[0]), 300, 42))["text"]
    assert 60 < sum(test["label"]) < 140  # the first 200 test rows hold 185 positives
