"""Semi-supervised data: `hide_labels`, `labelled_subset`, the collator with -100 labels, `--labelled_fraction`."""

import datasets
import pytest
import torch
from testing_utils import SHARED_DATA, require_shared_data
from transformers import DataCollatorWithPadding, HfArgumentParser

from hf_attn_at.arguments import DataArguments, ModelArguments
from hf_attn_at.data import UNLABELLED, hide_labels, labelled_subset
from hf_attn_at.tokenization import build_word_tokenizer
from hf_attn_at.training_args import AdversarialTrainingArguments


def toy_dataset(num=50):
    features = datasets.Features({"label": datasets.ClassLabel(names=["neg", "pos"]), "x": datasets.Value("int64")})
    return datasets.Dataset.from_dict({"label": [i % 2 for i in range(num)], "x": list(range(num))}, features=features)


def test_hide_labels_keeps_a_seeded_fraction():
    ds = toy_dataset()
    hidden = hide_labels(ds, 0.1, seed=3)
    labels = hidden["label"]
    kept = [i for i, label in enumerate(labels) if label != UNLABELLED]
    assert len(kept) == 5 and all(labels[i] == i % 2 for i in kept)
    assert hidden["x"] == ds["x"] and hidden.features == ds.features
    assert hide_labels(ds, 0.1, seed=3)["label"] == labels
    assert hide_labels(ds, 0.1, seed=4)["label"] != labels
    assert labelled_subset(hidden)["x"] == kept
    assert hide_labels(ds, 1.0, seed=0)["label"] == ds["label"]
    assert sum(label != UNLABELLED for label in hide_labels(ds, 0.001, seed=0)["label"]) == 1


@pytest.mark.parametrize("fraction", [0.0, 1.5, -0.1])
def test_hide_labels_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"fraction_labelled.*\(0, 1\]"):
        hide_labels(toy_dataset(), fraction, seed=0)
    with pytest.raises(ValueError, match="labelled_fraction"):
        DataArguments(labelled_fraction=fraction)


def test_collator_pads_unlabelled_examples():
    tokenizer = build_word_tokenizer(["a b c", "b c d e"], min_df=1)
    features = [{**tokenizer("a b c"), "label": 1}, {**tokenizer("b c d e"), "label": UNLABELLED}]
    batch = DataCollatorWithPadding(tokenizer)(features)
    assert batch["labels"].tolist() == [1, UNLABELLED] and batch["input_ids"].shape[0] == 2
    assert batch["labels"].dtype == torch.long


def test_cli_parses_semi_supervised_run(tmp_path):
    parser = HfArgumentParser((ModelArguments, DataArguments, AdversarialTrainingArguments))
    _, data_args, training_args = parser.parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--adv_method", "attention_vat", "--adv_epsilon", "1.0",
         "--labelled_fraction", "0.1"]
    )
    assert data_args.labelled_fraction == 0.1 and training_args.adv_method.is_virtual


@require_shared_data("sst")
def test_load_data_hides_training_labels_only():
    from hf_attn_at.data import load_data

    data_args = DataArguments(
        task_name="sst", data_source="local", data_dir=str(SHARED_DATA), max_train_samples=200,
        max_eval_samples=50, max_test_samples=50, labelled_fraction=0.1,
    )
    dsd = load_data(data_args, seed=1).dataset
    assert sum(label != UNLABELLED for label in dsd["train"]["label"]) == 20
    assert dsd["train"].features["label"].names == dsd["test"].features["label"].names
    for split in ("validation", "test"):
        assert UNLABELLED not in dsd[split]["label"]


@require_shared_data("sst")
def test_semi_supervised_example_runs(tmp_path):
    import json
    import subprocess
    import sys

    from testing_utils import REPO_ROOT, subprocess_env

    command = [
        sys.executable, str(REPO_ROOT / "examples" / "run_semi_supervised.py"), "--task_name", "sst",
        "--data_source", "local", "--data_dir", str(SHARED_DATA), "--labelled_fraction", "0.25",
        "--max_train_samples", "64", "--max_test_samples", "32", "--methods", "attention_at", "attention_ivat",
        "--epsilon", "1.0", "--embedding_size", "8", "--hidden_size", "8", "--attention_hidden_size", "8",
        "--max_steps", "2", "--per_device_train_batch_size", "8", "--output_dir", str(tmp_path),
        "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
    ]
    result = subprocess.run(command, env=subprocess_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "semi_supervised.json").read_text())
    assert [(row["method"], row["train_examples"], row["labelled_examples"]) for row in rows] == [
        ("attention_at", 16, 16), ("attention_ivat", 64, 16)
    ]
    assert "| attention_ivat | 64 |" in result.stdout
