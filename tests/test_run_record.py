"""The run record (`runs.RunRecord`), the typed `explain_model` result, our card through `create_model_card`, and a
finished run folder that `AutoModel` loads in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from testing_utils import SHARED_DATA, require_shared_data

from hf_attn_at import (
    AdversarialTrainer,
    AdversarialTrainingArguments,
    BiLSTMAttentionConfig,
    BiLSTMAttentionForSequenceClassification,
)
from hf_attn_at.cli.main import main
from hf_attn_at.interpret import Explanation
from hf_attn_at.interpret.report import json_safe
from hf_attn_at.model_card import ModelCardCallback
from hf_attn_at.runs import RunRecord

REPO = Path(__file__).resolve().parents[1]
LEGACY = [REPO / "docs" / "runs" / "sst" / "vanilla" / "seed1", REPO / "docs" / "runs_v2" / "sst" / "attention_iat-eps1" / "seed1"]


def _record(**changes) -> RunRecord:
    record = RunRecord(
        task="sst", method="attention_at", epsilon=0.5, lambda_=1.0, seed=3,
        metrics={"validation": {"validation_accuracy": 0.75}, "test": {"test_accuracy": 0.5, "test_f1": 0.25}},
        agreement={"agreement_pearson": 0.1, "agreement_kendall": -0.2}, agreement_split="test",
        training_logs={"num_logs": 2}, command="hf-attn-at reproduce --grid ci", training_args={"adv_method": "attention_at"},
    )
    return replace(record, **changes)


def test_record_round_trip(tmp_path):
    record = _record()
    record.save(tmp_path)
    assert RunRecord.load(tmp_path) == record
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["lambda"] == 1.0 and "lambda_" not in results and "training_args" not in results
    assert json.loads((tmp_path / "metrics.json").read_text()) == {
        "accuracy": 0.5, "f1": 0.25, "agreement_pearson": 0.1, "agreement_kendall": -0.2, "dataset_name": "sst",
        "dataset_split": "test",
    }
    assert record.test_metric("accuracy") == 0.5 and record.test_metric("auc") is None


@pytest.mark.parametrize("run_dir", LEGACY, ids=lambda p: p.parents[2].name)
def test_committed_records_read_as_written(run_dir):
    """Records written before `RunRecord`: its files are what the old writer wrote from the same values."""
    record = RunRecord.load(run_dir)
    written = json.loads((run_dir / "results.json").read_text())
    # Older records lack the fields added since (attention_sensitivity, code_version, ...): they read as None.
    assert {k: v for k, v in record.to_results().items() if k in written or v is not None} == written
    assert record.flat_metrics() == json.loads((run_dir / "metrics.json").read_text())
    assert record.training_args == json.loads((run_dir / "training_args.json").read_text())
    assert record.num_labels == len(json.loads((run_dir / "config.json").read_text())["id2label"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, r"has keys \['extra'\] that a run record does not have"),
        ({"seed": "1"}, "`seed` in .* must be an integer, got '1'"),
        ({"method": "magic"}, "`method` in .* must be one of vanilla, .*, got 'magic'"),
    ],
)
def test_bad_records_are_one_line(tmp_path, change, message):
    _record().save(tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    (tmp_path / "results.json").write_text(json.dumps({**results, **change}))
    with pytest.raises(ValueError, match=message):
        RunRecord.load(tmp_path)


def test_code_versions_of_a_resumed_run(tmp_path):
    """A checkpoint's saved versions come first; a checkpoint saved before versions were recorded is said to be
    of an unrecorded version (its record named only the code that finished the run)."""
    from hf_attn_at.experiment import UNRECORDED_VERSION, CodeVersions, code_version

    assert CodeVersions.from_checkpoint(None).versions == [code_version()]
    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    state = {"stateful_callbacks": {"CodeVersions": {"args": {"versions": ["hf_attn_at 0.0.9"]}, "attributes": {}}}}
    (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    assert str(CodeVersions.from_checkpoint(str(checkpoint))) == f"hf_attn_at 0.0.9 then {code_version()}"
    (checkpoint / "trainer_state.json").write_text(json.dumps({"stateful_callbacks": {}}))
    assert CodeVersions.from_checkpoint(str(checkpoint)).versions == [UNRECORDED_VERSION, code_version()]


def test_explanation_json_round_trip():
    rng = np.random.default_rng(0)
    lengths = [3, 1, 4]
    pearson = np.array([0.5, np.nan, -0.25])
    explanation = Explanation(
        tokens=[[f"t{i}"] * n for i, n in enumerate(lengths)],
        attention=[rng.random(n) for n in lengths],
        importance={"gradient": [rng.random(n) for n in lengths]},
        predictions=np.array([1, 0, 1]), labels=np.array([1, 1, -1]),
        agreement={"gradient": {"pearson": pearson, "kendall": pearson / 2}},
        summary={"accuracy": 0.5},
    )
    data = json.loads(json.dumps(json_safe(explanation.to_json(2))))  # as run_experiment writes it
    back = Explanation.from_json(data)
    assert back.tokens == explanation.tokens[:2] and back.summary == {"accuracy": 0.5}
    for got, expected in zip(back.attention + back.importance["gradient"],
                             explanation.attention[:2] + explanation.importance["gradient"][:2], strict=True):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(back.predictions, [1, 0])
    # The per-example agreement of every example is kept (the paired bootstrap over test examples reads it), not
    # only that of the heat-map examples.
    np.testing.assert_array_equal(back.agreement["gradient"]["pearson"], [0.5, np.nan, -0.25])
    np.testing.assert_array_equal(back.agreement["gradient"]["kendall"], [0.25, np.nan, -0.125])
    assert back.agreement["gradient"]["pearson_summary"]["mean"] == 0.125  # nan left out
    assert back["summary"] is back.summary  # read as a dict too (reports)


def _tiny_trainer(output_dir: Path) -> AdversarialTrainer:
    torch.manual_seed(0)
    model = BiLSTMAttentionForSequenceClassification(
        BiLSTMAttentionConfig(vocab_size=30, embedding_size=8, hidden_size=4, attention_hidden_size=4, num_labels=2)
    )
    data = [{"input_ids": torch.tensor([3 + i % 20, 4, 5]), "labels": torch.tensor(i % 2)} for i in range(8)]
    args = AdversarialTrainingArguments(
        output_dir=str(output_dir), adv_method="attention_at", adv_epsilon=0.5, max_steps=2,
        per_device_train_batch_size=4, use_cpu=True, report_to="none", disable_tqdm=True, save_strategy="no",
    )
    return AdversarialTrainer(model=model, args=args, train_dataset=data, callbacks=[ModelCardCallback()])


def test_our_card_survives_create_model_card(tmp_path):
    trainer = _tiny_trainer(tmp_path / "out")
    trainer.train()
    trainer.create_model_card(model_name="tiny-at", dataset="sst", license="mit")
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert "attention_at" in card.data.tags and card.data.license == "mit" and card.data.datasets == ["sst"]
    assert "adversarial training on attention (Attention AT)" in card.text
    assert "unknown dataset" not in card.text and "trained from scratch" not in card.text
    with pytest.raises(ValueError, match=r"\['tasks'\] are not part of hf_attn_at cards"):
        trainer.create_model_card(tasks="text-classification")


# Loads a folder in a new interpreter without hf_attn_at on its path, with trust_remote_code only.
FRESH_LOAD = """
import sys
import torch
from transformers import AutoModel, AutoModelForSequenceClassification

run_dir, out_file = sys.argv[1:]
inputs = {"input_ids": torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]]), "attention_mask": torch.tensor([[1] * 4, [1, 1, 0, 0]])}
head = AutoModelForSequenceClassification.from_pretrained(run_dir, trust_remote_code=True).eval()
body = AutoModel.from_pretrained(run_dir, trust_remote_code=True).eval()
assert "hf_attn_at" not in sys.modules
with torch.no_grad():
    torch.save({"logits": head(**inputs).logits, "pooled": body(**inputs).pooler_output, "inputs": inputs}, out_file)
"""


@require_shared_data("sst")
def test_finished_run_folder_loads_with_automodel_in_a_fresh_process(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--task_name", "sst", "--data_source", "local", "--data_dir", str(SHARED_DATA),
                 "--embedding_size", "8", "--hidden_size", "8", "--attention_hidden_size", "8",
                 "--max_train_samples", "32", "--max_eval_samples", "16", "--max_test_samples", "16",
                 "--explain_max_samples", "8", "--per_device_train_batch_size", "16", "--num_train_epochs", "1",
                 "--save_strategy", "epoch", "--report_to", "none", "--disable_tqdm", "true",
                 "--output_dir", str(run)]) == 0
    auto_maps = [json.loads((folder / "config.json").read_text())["auto_map"] for folder in (run, run / "checkpoint-2")]
    assert auto_maps[0] == auto_maps[1] and "AutoModel" in auto_maps[0]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    result = subprocess.run([sys.executable, "-c", FRESH_LOAD, str(run), str(tmp_path / "out.pt")], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = torch.load(tmp_path / "out.pt")
    model = BiLSTMAttentionForSequenceClassification.from_pretrained(run).eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh["logits"], model(**fresh["inputs"]).logits, atol=1e-6, rtol=0)
        torch.testing.assert_close(fresh["pooled"], model.model(**fresh["inputs"]).pooler_output, atol=1e-6, rtol=0)
    # The run's card (from its record) is what create_model_card writes for the finished folder.
    written = (run / "README.md").read_text()
    trainer = AdversarialTrainer(model=model, args=AdversarialTrainingArguments(output_dir=str(run), report_to="none"))
    trainer.create_model_card()
    assert (run / "README.md").read_text() == written
    assert RunRecord.load(run).test_metric("accuracy") is not None


def test_other_models_keep_trainers_card(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    args = AdversarialTrainingArguments(output_dir=str(tmp_path / "bert"), use_cpu=True, report_to="none")
    AdversarialTrainer(model=BertForSequenceClassification(config), args=args).create_model_card(dataset="sst")
    card = ModelCard.load(tmp_path / "bert" / "README.md")
    assert card.data.tags == ["generated_from_trainer"]  # Trainer's own card, not a BiLSTM card
