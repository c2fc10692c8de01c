"""Hub sharing: export, card, push (up to the HTTP layer, offline) and the Trainer card callback."""

from __future__ import annotations

import enum
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers.utils.hub as transformers_hub
from huggingface_hub import (
    CommitInfo,
    CommitOperationDelete,
    HfApi,
    ModelCard,
    ModelCardData,
    RepoUrl,
    metadata_load,
)
from transformers import Trainer, TrainingArguments

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, build_word_tokenizer
from hf_attn_at.cli.main import main
from hf_attn_at.hub import CODE_FILES, export_for_hub, push_to_hub
from hf_attn_at.model_card import ModelCardCallback, _format_value, build_model_card, write_model_cards

TEXTS = ["a gripping , funny film .", "a dull and boring film", "great acting in 1999 !", "bad"]
EXPORTED_FILES = {
    "README.md",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    *CODE_FILES,
}
METRICS = {"accuracy": 0.875, "f1": 0.86}
AGREEMENT = {"pearson": 0.61, "pearson_std": 0.12, "kendall": 0.43}

# Runs in a fresh interpreter that cannot import hf_attn_at: loads a folder with trust_remote_code only.
FRESH_LOAD_SCRIPT = f"""
import sys
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

model_dir, inputs_file, out_file = sys.argv[1:]
if inputs_file == "-":
    texts = {TEXTS!r}
    inputs = dict(AutoTokenizer.from_pretrained(model_dir)(texts, padding=True, return_tensors="pt"))
else:
    inputs = torch.load(inputs_file)
model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True).eval()
body, info = AutoModel.from_pretrained(model_dir, trust_remote_code=True, output_loading_info=True)
with torch.no_grad():
    logits = model(**inputs).logits
    pooled = body.eval()(**inputs).pooler_output
assert "hf_attn_at" not in sys.modules, [m for m in sys.modules if m.startswith("hf_attn_at")]
torch.save({{"inputs": inputs, "logits": logits, "pooled": pooled, "missing": info["missing_keys"],
            "classes": [type(model).__module__, type(body).__name__]}}, out_file)
"""


def _tiny_model(seed: int = 0, vocab_size: int = 40) -> BiLSTMAttentionForSequenceClassification:
    torch.manual_seed(seed)
    config = BiLSTMAttentionConfig(
        vocab_size=vocab_size, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=2
    )
    return BiLSTMAttentionForSequenceClassification(config)


def _fresh_load(tmp_path: Path, model_dir: Path, inputs: dict | None = None) -> dict:
    """Load `model_dir` in a new Python process without hf_attn_at on its path; return what it computed."""
    inputs_file = "-"
    if inputs is not None:
        inputs_file = str(tmp_path / "inputs.pt")
        torch.save(inputs, inputs_file)
    out_file = tmp_path / "fresh.pt"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    result = subprocess.run(
        [sys.executable, "-c", FRESH_LOAD_SCRIPT, str(model_dir), inputs_file, str(out_file)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[:3000]
    return torch.load(out_file)


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(TEXTS, min_df=1)


@pytest.fixture(scope="module")
def model(tokenizer):
    """A tiny classifier after a few optimiser steps (so its output bias is no longer zero)."""
    model = _tiny_model(vocab_size=len(tokenizer))
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        model(**batch, labels=torch.tensor([1, 0, 1, 0])).loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def card(model):
    return build_model_card(
        model,
        method="attention_iat",
        epsilon=0.5,
        lambda_=1.0,
        dataset_name="stanfordnlp/sst2",
        metrics=METRICS,
        interpretability=AGREEMENT,
        training_args={"learning_rate": 1e-3, "adv_method": "attention_iat"},
        repo_id="ns/name",
    )


@pytest.fixture(scope="module")
def export_dir(model, tokenizer, card, tmp_path_factory):
    return export_for_hub(model, tokenizer, tmp_path_factory.mktemp("export") / "upload", card)


@pytest.fixture()
def run_dir(model, tokenizer, tmp_path):
    """A run folder: saved model and tokenizer, `training_args.json` and `metrics.json` (Trainer style)."""
    run = tmp_path / "runs" / "sst-attention_at"
    model.save_pretrained(run)
    tokenizer.save_pretrained(run)
    (run / "training_args.json").write_text(
        json.dumps({"adv_method": "attention_at", "adv_epsilon": 0.1, "adv_lambda": 1.0, "seed": 1, "output_dir": "x"})
    )
    (run / "metrics.json").write_text(
        json.dumps({"dataset_name": "sst", "test_accuracy": 0.8, "test_runtime": 1.5, "test_agreement_pearson": 0.5})
    )
    return run


class FakeHubCalls(dict):
    """The recorded calls by HfApi method; `repo_files` is what the fake repo holds before a commit."""

    repo_files: list[str] = [".gitattributes"]


@pytest.fixture()
def fake_hub(monkeypatch):
    """Replace the HfApi calls that reach the network; record their arguments and the committed files."""
    calls = FakeHubCalls(create_repo=[], create_branch=[], create_commit=[], list_repo_files=[])

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"].append({"repo_id": repo_id, **kwargs})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_branch(self, repo_id, **kwargs):
        calls["create_branch"].append({"repo_id": repo_id, **kwargs})

    def list_repo_files(self, repo_id, **kwargs):
        calls["list_repo_files"].append({"repo_id": repo_id, **kwargs})
        return list(calls.repo_files)

    def create_commit(self, repo_id, operations, **kwargs):
        # The files live in a temporary folder that is deleted after the upload: read them now.
        files, deleted = {}, []
        for op in operations:
            if isinstance(op, CommitOperationDelete):
                deleted.append(op.path_in_repo)
                continue
            source = op.path_or_fileobj
            files[op.path_in_repo] = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
        calls["create_commit"].append({"repo_id": repo_id, "files": files, "deleted": deleted, **kwargs})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/{'0' * 40}",
            commit_message=kwargs["commit_message"],
            commit_description="",
            oid="0" * 40,
        )

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.setattr(HfApi, "list_repo_files", list_repo_files)
    # Older transformers (5.5) call huggingface_hub's module-level functions, bound to its own HfApi instance
    # at import: route those through the patched class too.
    api = HfApi()
    for name in calls:
        if hasattr(transformers_hub, name):
            monkeypatch.setattr(transformers_hub, name, getattr(api, name))
    return calls


def test_export_folder_holds_exactly_the_upload(export_dir):
    assert {p.name for p in export_dir.iterdir()} == EXPORTED_FILES
    auto_map = json.loads((export_dir / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_bilstm_attention.BiLSTMAttentionConfig",
        "AutoModel": "modeling_bilstm_attention.BiLSTMAttentionModel",
        "AutoModelForSequenceClassification": "modeling_bilstm_attention.BiLSTMAttentionForSequenceClassification",
    }


def test_export_loads_without_hf_attn_at_and_gives_same_logits(export_dir, model, tokenizer, tmp_path):
    fresh = _fresh_load(tmp_path, export_dir)
    assert fresh["classes"][0].startswith("transformers_modules"), fresh["classes"]
    assert fresh["classes"][1] == "BiLSTMAttentionModel" and not fresh["missing"]
    inputs = fresh["inputs"]
    torch.testing.assert_close(inputs["input_ids"], tokenizer(TEXTS, padding=True, return_tensors="pt")["input_ids"])
    with torch.no_grad():
        expected = model(**inputs)
    torch.testing.assert_close(fresh["logits"], expected.logits, atol=1e-6, rtol=0)
    with torch.no_grad():
        pooled = model.model(**inputs).pooler_output
    torch.testing.assert_close(fresh["pooled"], pooled, atol=1e-6, rtol=0)


def test_card_metadata_round_trips(export_dir, card):
    loaded = ModelCard.load(export_dir / "README.md")
    data = loaded.data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["license"] == "apache-2.0"
    assert data["datasets"] == ["stanfordnlp/sst2"]
    assert {"hf_attn_at", "adversarial-training", "attention", "attention_iat"} <= set(data["tags"])
    (index,) = data["model-index"]
    (result,) = index["results"]
    assert result["task"]["type"] == "text-classification"
    assert result["dataset"]["name"] == "stanfordnlp/sst2"
    values = {m["type"]: m["value"] for m in result["metrics"]}
    assert values == {"accuracy": 0.875, "f1": 0.86, "pearsonr": 0.61, "kendalltau": 0.43}
    # The YAML header re-parses into the same card data (validate() needs the network: not called).
    assert ModelCardData(**metadata_load(export_dir / "README.md")).to_dict() == card.data.to_dict()
    text = loaded.text
    for expected in ("Attention iAT", "| perturbation size ε (`adv_epsilon`) | 0.5 |", "trust_remote_code=True",
                     'from_pretrained("ns/name"', "@article{kitada2021attention", "@inproceedings{jain2019attention",
                     "| pearson_std | 0.12 |", "Intended use and limitations"):
        assert expected in text, expected


def test_push_uploads_run_dir(run_dir, fake_hub):
    assert push_to_hub(run_dir, "ns/name", private=True, revision="v1", commit_message="Add SST model") is not None
    assert fake_hub["create_repo"] == [{"repo_id": "ns/name", "private": True, "exist_ok": True}]
    assert [(c["repo_id"], c["branch"]) for c in fake_hub["create_branch"]] == [("ns/name", "v1")]
    (commit,) = fake_hub["create_commit"]
    assert commit["repo_id"] == "ns/name"
    assert commit["commit_message"] == "Add SST model"
    assert commit["revision"] == "v1"
    assert set(commit["files"]) == EXPORTED_FILES
    card = commit["files"]["README.md"].decode()
    assert "attention_at" in card and "value: 0.8" in card and 'from_pretrained("ns/name"' in card
    assert "test_runtime" not in card

    assert commit["deleted"] == []  # the repo held only .gitattributes


def test_push_deletes_what_an_earlier_upload_left(model, card, fake_hub, caplog):
    """A run without a tokenizer pushed to a repo that holds an earlier run's tokenizer and weight shards: the
    commit deletes them (else the model would be published next to another vocabulary), keeps .gitattributes."""
    old = ["tokenizer.json", "tokenizer_config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json"]
    fake_hub.repo_files = [".gitattributes", "README.md", "config.json", *old]
    with caplog.at_level(logging.WARNING, logger="hf_attn_at.hub"):
        push_to_hub(model, "ns/name", card=card, revision="v2")
    (commit,) = fake_hub["create_commit"]
    assert commit["deleted"] == sorted(old)
    assert {"README.md", "config.json"} <= set(commit["files"]) and "tokenizer.json" not in commit["files"]
    assert fake_hub["list_repo_files"] == [{"repo_id": "ns/name", "revision": "v2"}]
    assert "ns/name@v2 holds files this upload does not have" in caplog.text and "tokenizer.json" in caplog.text


def test_transformers_push_to_hub_carries_code_files(model, fake_hub):
    model.push_to_hub("ns/name", commit_message="Upload via transformers")
    (commit,) = fake_hub["create_commit"]
    assert {"config.json", "model.safetensors", *CODE_FILES} <= set(commit["files"])
    assert commit["commit_message"] == "Upload via transformers"
    assert "AutoModelForSequenceClassification" in json.loads(commit["files"]["config.json"])["auto_map"]


def test_command_dry_run_writes_the_upload_only(run_dir, fake_hub, tmp_path, capsys):
    out = tmp_path / "dry"
    assert main(["push", "--run_dir", str(run_dir), "--repo_id", "ns/name", "--dry_run", str(out), "--adv_epsilon", "0.25"]) == 0
    assert {p.name for p in out.iterdir()} == EXPORTED_FILES
    assert "| perturbation size ε (`adv_epsilon`) | 0.25 |" in (out / "README.md").read_text()
    assert all(not calls for calls in fake_hub.values())
    assert "dry run" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["RUN"], "hf-attn-at push takes no positional argument, got 'RUN': give it as --run_dir RUN"),
        (["--run_dir", "RUN", "--repo_id", "ns/x", "--dataset_name", "sst"],
         "--dataset_name is no longer a flag: use --task_label"),
    ],
)
def test_command_refuses_the_old_command_line_naming_the_new_flag(argv, message, fake_hub, capsys):
    assert main(["push", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert all(not calls for calls in fake_hub.values())


def test_command_task_label_names_the_cards_dataset(run_dir, fake_hub, tmp_path):
    out = tmp_path / "dry"
    assert main(["push", "--run_dir", str(run_dir), "--repo_id", "ns/name", "--dry_run", str(out),
                 "--task_label", "my-reviews"]) == 0
    assert "my-reviews" in metadata_load(out / "README.md")["datasets"]


@pytest.mark.parametrize("repo_id", ["not-a-namespace", "a/b/c", "/name", "ns/", "ns/bad name", "ns/--x"])
def test_bad_repo_id_is_rejected_before_any_work(repo_id, run_dir, fake_hub, tmp_path, capsys):
    out = tmp_path / "dry"
    with pytest.raises(ValueError, match="namespace/name") as excinfo:
        push_to_hub(run_dir, repo_id, dry_run_dir=out)
    assert repr(repo_id) in str(excinfo.value)
    assert main(["push", "--run_dir", str(run_dir), "--repo_id", repo_id]) == 2
    assert repr(repo_id) in capsys.readouterr().err
    assert not out.exists()
    assert all(not calls for calls in fake_hub.values())


def test_missing_tokenizer_warns(model, card, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_attn_at.hub"):
        push_to_hub(model, "ns/name", card=card, dry_run_dir=tmp_path / "out")
    assert "No tokenizer given" in caplog.text
    assert "untrained" not in caplog.text
    assert "tokenizer.json" not in {p.name for p in (tmp_path / "out").iterdir()}


@pytest.mark.parametrize(
    "use_fresh_model, trained, warns",
    [(True, None, True), (False, False, True), (False, None, False), (True, True, False)],
    ids=["fresh-head", "trained=False", "trained-head", "fresh-head-trained=True"],
)
def test_untrained_head_warns(use_fresh_model, trained, warns, model, tokenizer, card, tmp_path, caplog):
    target = _tiny_model(vocab_size=len(tokenizer)) if use_fresh_model else model
    with caplog.at_level(logging.WARNING, logger="hf_attn_at.hub"):
        export_for_hub(target, tokenizer, tmp_path / "out", card, trained=trained)
    assert ("looks untrained" in caplog.text) == warns


def test_export_refuses_a_non_empty_folder(model, tokenizer, card, tmp_path):
    (tmp_path / "stale.bin").write_bytes(b"old")
    with pytest.raises(ValueError, match="empty folder"):
        export_for_hub(model, tokenizer, tmp_path, card)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "adversarial"}, "`method` must be one of"),
        ({"method": "attention_at", "lambda_": 1.0}, "uses `epsilon`"),
        ({"method": "word_iat", "epsilon": 1.0, "lambda_": 1.0}, "uses `num_neighbors`"),
        ({"method": "attention_at", "epsilon": -1.0, "lambda_": 1.0}, "`epsilon` must be > 0"),
        ({"method": "vanilla", "metrics": {"accuracy": "high"}}, "must be numbers"),
    ],
    ids=["method", "epsilon-missing", "k-missing", "epsilon-negative", "metric-not-number"],
)
def test_build_model_card_rejects_bad_values(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model_card(model, **kwargs)


def test_build_model_card_accepts_str_enum_and_numpy_values(model):
    class Method(str, enum.Enum):
        ATTENTION_AT = "attention_at"

    card = build_model_card(
        model, method=Method.ATTENTION_AT, epsilon=1, lambda_=1.0, dataset_name="sst",
        metrics={"accuracy": np.float32(0.5)},
    )
    assert "attention_at" in card.data.tags
    assert card.data.eval_results[0].metric_value == 0.5
    assert ModelCard(str(card)).data.to_dict() == card.data.to_dict()  # YAML with plain strings


def test_method_table_lists_the_settings_the_method_used(model):
    """The method's own settings from the training arguments join ε, λ, K; other methods' settings do not."""
    args = {"adv_method": "word_iat", "adv_epsilon": 1.0, "adv_lambda": 1.0, "adv_num_neighbors": 10,
            "adv_neighbor_refresh_steps": 50, "adv_num_steps": 1, "adv_step_size": None, "adv_iat_normalize": False,
            "adv_epsilon_scale": "score_std", "adv_vat_xi": 0.1}
    text = str(build_model_card(model, method="word_iat", epsilon=1.0, lambda_=1.0, num_neighbors=10,
                                training_args=args))
    table = text.split("## Method")[1].split("## Model")[0]
    assert "| steps a neighbour list is reused (1: exact search every step) (`adv_neighbor_refresh_steps`) | 50 |" \
        in table
    assert "| ascent steps per training step (`adv_num_steps`) | 1 |" in table
    assert "| iAT perturbation rescaled to norm ε (`adv_iat_normalize`) | False |" in table
    for unused in ("adv_epsilon_scale", "adv_vat_xi", "adv_step_size"):  # another method's, or unused at one step
        assert unused not in table
    relative = {"adv_method": "attention_at", "adv_epsilon_scale": "score_std", "adv_num_steps": 3,
                "adv_step_size": None, "adv_neighbor_refresh_steps": 1}
    table = str(build_model_card(model, method="attention_at", epsilon=0.1, lambda_=1.0, training_args=relative)
                ).split("## Method")[1].split("## Model")[0]
    assert "(`adv_epsilon_scale`) | score_std |" in table and "| ascent step size (`adv_step_size`) | 2.5 · ε / K" \
        in table and "adv_neighbor_refresh_steps" not in table
    plain = str(build_model_card(model, method="attention_at", epsilon=0.1, lambda_=1.0))
    assert "| nearest neighbours K (`adv_num_neighbors`) | not used by this method |\n\n## Model" in plain


def test_write_model_cards(run_dir, tmp_path):
    (path,) = write_model_cards(run_dir.parent, tmp_path / "cards")
    assert path.name == "sst-attention_at.md"
    assert ModelCard.load(path).data.to_dict()["datasets"] == ["sst"]


def _toy_trainer(tmp_path, compute_metrics=None, **overrides):
    """A plain `Trainer` of a tiny model on 16 random examples with `ModelCardCallback`; `overrides` go to its
    `TrainingArguments` (12 steps at lr 3e-2, evaluation by steps, unless overridden)."""
    model = _tiny_model(seed=1)
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 8, (16,), generator=generator)
    mask = (torch.arange(7) < lengths[:, None]).long()
    ids = torch.randint(3, 40, (16, 7), generator=generator) * mask
    labels = torch.randint(0, 2, (16,), generator=generator)
    data = [{"input_ids": i, "attention_mask": m, "labels": y} for i, m, y in zip(ids, mask, labels, strict=True)]
    settings = {"max_steps": 12, "learning_rate": 3e-2, "eval_strategy": "steps", **overrides}
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, use_cpu=True,
                             report_to="none", disable_tqdm=True, **settings)
    return Trainer(model=model, args=args, train_dataset=data, eval_dataset=data, compute_metrics=compute_metrics,
                   callbacks=[ModelCardCallback(dataset_name="random-tokens")])


def test_callback_writes_card_into_loadable_checkpoints(tmp_path):
    trainer = _toy_trainer(
        tmp_path, max_steps=4, save_steps=2, eval_steps=2, learning_rate=1e-2,
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
    )
    trainer.train()
    checkpoint = tmp_path / "out" / "checkpoint-4"
    card = ModelCard.load(checkpoint / "README.md")
    assert (tmp_path / "out" / "checkpoint-2" / "README.md").is_file()
    assert "vanilla" in card.data.tags
    (result,) = card.data.to_dict()["model-index"][0]["results"]
    last_eval = [log for log in trainer.state.log_history if "eval_accuracy" in log][-1]
    assert result["metrics"] == [{"type": "accuracy", "value": last_eval["eval_accuracy"], "name": "Accuracy"}]
    assert "| `learning_rate` | `0.01` |" in card.text
    assert all((checkpoint / name).is_file() for name in CODE_FILES)

    first = trainer.train_dataset[:4]
    inputs = {key: torch.stack([example[key] for example in first]) for key in ("input_ids", "attention_mask")}
    fresh = _fresh_load(tmp_path, checkpoint, inputs)
    with torch.no_grad():
        expected = trainer.model.eval()(**inputs).logits
    torch.testing.assert_close(fresh["logits"], expected, atol=1e-6, rtol=0)


HOSTILE = '<script>alert("x")</script> | `x` <img src=x onerror=alert(1)>\n# injected'


def test_card_shows_user_strings_literally(model):
    card = build_model_card(
        model, method="vanilla", dataset_name=HOSTILE, dataset_split=HOSTILE, model_name=HOSTILE,
        metrics={HOSTILE: 0.5}, interpretability={HOSTILE: 0.25}, training_args={"optim": HOSTILE, HOSTILE: 1},
    )
    text = card.text
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &#124; &#96;x&#96; &lt;img" in text
    assert "# injected" not in text.splitlines()
    # Every table row keeps its two cells.
    assert {line.count("|") for line in text.splitlines() if line.startswith("|")} == {3}
    assert ModelCard(str(card)).data.to_dict()["datasets"] == [HOSTILE]  # the metadata keeps the value


@pytest.mark.parametrize("name", ["repo_id", "base_model"])
def test_card_refuses_hub_ids_that_are_not_repo_ids(model, name):
    with pytest.raises(ValueError, match=f"`{name}` must be a Hub repo id .*got 'ns/x\"\\)<script>'"):
        build_model_card(model, method="vanilla", **{name: 'ns/x")<script>'})


def test_checkpoint_folder_is_refused_with_the_run_folder_to_pass(model, tokenizer, tmp_path, fake_hub, capsys):
    """A Trainer checkpoint holds a loadable model but no training_args.json / metrics.json: not what to share."""
    checkpoint = tmp_path / "runs" / "sst-iat" / "checkpoint-500"
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 500}))
    capsys.readouterr()  # the progress bars of save_pretrained
    out = tmp_path / "dry"
    argv = ["push", "--run_dir", str(checkpoint), "--repo_id", "ns/name", "--adv_method", "vanilla", "--dry_run", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{str(checkpoint)!r} is a Trainer checkpoint, not a finished run folder" in err
    assert f"pass the run folder it lies in ({str(checkpoint.parent)!r})" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(ValueError, match="is a Trainer checkpoint"):
        push_to_hub(checkpoint, "ns/name")
    assert not out.exists() and all(not calls for calls in fake_hub.values())


def _card_loss(card: ModelCard) -> str | None:
    """The loss the card's metrics table shows (as written), or None."""
    return next((line.split("|")[2].strip() for line in card.text.splitlines() if line.startswith("| loss |")), None)


def test_card_metrics_are_those_of_the_weights_it_describes(tmp_path):
    """With `load_best_model_at_end` the final card shows the best checkpoint's evaluation (here the first, as the
    highest loss is "best"), not the last one; an evaluation after training describes the weights then."""
    trainer = _toy_trainer(tmp_path, eval_steps=4, save_steps=4, load_best_model_at_end=True,
                           metric_for_best_model="loss", greater_is_better=True)
    trainer.train()
    losses = {log["step"]: log["eval_loss"] for log in trainer.state.log_history if "eval_loss" in log}
    assert trainer.state.best_global_step == 4 and losses[4] != losses[12]
    card = ModelCardCallback().build_card(trainer.args, trainer.state, trainer.model)
    assert _card_loss(card) == _format_value(losses[4])
    assert trainer.evaluate()["eval_loss"] == pytest.approx(losses[4], rel=1e-5)  # the card's model: step 4's
    after = trainer.state.log_history[-1]["eval_loss"]
    assert _card_loss(ModelCardCallback().build_card(trainer.args, trainer.state, trainer.model)) == _format_value(after)
    for step in (4, 8, 12):  # each checkpoint's card: its own step's evaluation
        card = ModelCard.load(tmp_path / "out" / f"checkpoint-{step}" / "README.md")
        assert _card_loss(card) == _format_value(losses[step])


def test_checkpoint_without_its_own_evaluation_gets_no_metrics(tmp_path):
    trainer = _toy_trainer(tmp_path, eval_steps=4, save_steps=6)
    trainer.train()
    assert _card_loss(ModelCard.load(tmp_path / "out" / "checkpoint-6" / "README.md")) is None
    assert _card_loss(ModelCard.load(tmp_path / "out" / "checkpoint-12" / "README.md")) is not None
