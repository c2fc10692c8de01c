"""`hf-attn-at train`: the optimizer flags reach the optimizer, the run records the one built, bad settings stop
the run before any work."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from testing_utils import SHARED_DATA, require_shared_data

from hf_attn_at.cli.main import main

TINY_RUN = ["--task_name", "sst", "--data_source", "local", "--data_dir", str(SHARED_DATA), "--embedding_size", "8",
            "--hidden_size", "8", "--attention_hidden_size", "8", "--max_train_samples", "32", "--max_eval_samples",
            "16", "--max_test_samples", "16", "--explain_max_samples", "8", "--per_device_train_batch_size", "16",
            "--num_train_epochs", "1", "--report_to", "none", "--disable_tqdm", "true"]


@require_shared_data("sst")
@pytest.mark.parametrize(
    ("flags", "expected", "card"),
    [
        (["--optim", "sgd", "--learning_rate", "0.02"], {"class": "torch.optim.sgd.SGD", "lr": 0.02}, "SGD(lr=0.02"),
        (
            ["--paper_optimizer", "--learning_rate", "0.004", "--adam_beta1", "0.8", "--weight_decay", "0.001"],
            {"class": "torch.optim.adam.Adam", "lr": 0.004, "betas": [0.8, 0.999], "weight_decay": 0.001, "amsgrad": True},
            "Adam(lr=0.004, betas=[0.8, 0.999], eps=1e-08, weight_decay=0.001, amsgrad=True)",
        ),
    ],
)
def test_train_records_the_optimizer_built_from_the_flags(tmp_path, flags, expected, card):
    run = tmp_path / "run"
    assert main(["train", *TINY_RUN, "--save_strategy", "epoch", "--output_dir", str(run), *flags]) == 0
    recorded = json.loads((run / "training_args.json").read_text())["optimizer"]
    assert {key: recorded[key] for key in expected} == expected
    for card_file in (run / "README.md", run / "checkpoint-2" / "README.md"):
        text = card_file.read_text()
        assert f"| `optimizer` | `{card}" in text, card_file
        assert "| `optim` |" not in text and "| `adam_beta1` |" not in text  # stated by the optimizer row


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--adv_method", "vanilla", "--adv_epsilon", "-5"], "`adv_epsilon` must be a float > 0 for adv_method='vanilla', got -5.0"),
        (["--adv_method", "attention_at", "--adv_epsilon", "inf"], "`adv_epsilon` must be a finite number, got inf"),
        (["--adv_method", "attention_at", "--adv_epsilon", "1", "--adv_lambda", "nan"], "`adv_lambda` must be a finite number, got nan"),
        (["--learning_rate", "nan"], "`learning_rate` must be a finite number, got nan"),
        (["--paper_optimizer", "--optim", "sgd"], "`paper_optimizer` builds Adam(amsgrad=True) itself: drop optim='sgd'"),
        (["--max_consecutive_nonfinite_steps", "0"], "`max_consecutive_nonfinite_steps` must be an integer >= 1, got 0"),
    ],
)
def test_bad_settings_are_one_line_before_any_work(tmp_path, capsys, flags, message):
    assert main(["train", *TINY_RUN, "--output_dir", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert f"hf-attn-at train: error: {message}" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_code_version_is_read_once_per_process(monkeypatch):
    """A long grid records the code it imported, not a commit checked out while it trained."""
    from hf_attn_at import experiment

    experiment.code_version.cache_clear()
    first = experiment.code_version()
    calls = []
    monkeypatch.setattr(experiment.subprocess, "run", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError))
    assert experiment.code_version() == first
    assert calls == []
    experiment.code_version.cache_clear()


def test_code_version_ignores_a_repository_that_does_not_track_the_package(tmp_path, monkeypatch):
    """hf_attn_at installed in a git-ignored `.venv` of the user's own project: the record names the package
    version, not the project's commit."""
    from hf_attn_at import __version__, experiment

    project = tmp_path / "project"
    package = project / ".venv" / "site-packages" / "hf_attn_at"
    shutil.copytree(Path(experiment.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".gitignore").write_text(".venv/\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(project)]
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "project"]):
        subprocess.run([*git, *command], check=True, capture_output=True)
    monkeypatch.setattr(experiment, "__file__", str(package / "experiment.py"))
    experiment.code_version.cache_clear()
    try:
        assert experiment.code_version() == f"hf_attn_at {__version__}"
    finally:
        experiment.code_version.cache_clear()


@require_shared_data("sst")
def test_train_records_its_command(tmp_path):
    argv = ["train", "--task_name", "sst", "--data_source", "local", "--data_dir", str(SHARED_DATA),
            "--max_train_samples", "32", "--max_eval_samples", "16", "--max_test_samples", "16", "--embedding_size", "8",
            "--hidden_size", "8", "--attention_hidden_size", "8", "--num_train_epochs", "1", "--report_to", "none",
            "--disable_tqdm", "true", "--output_dir", str(tmp_path / "run")]
    assert main(argv) == 0
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["command"] == "hf-attn-at train " + " ".join(argv[1:])
