"""Faults a run must survive or report in one line: a kill during a checkpoint save, corrupt checkpoint files,
a NaN training step, concurrent runs into one folder, a rerun with other settings, foreign files in the output
folder."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from testing_utils import REPO_ROOT, SHARED_DATA, require_shared_data, subprocess_env

from hf_attn_at.cli.main import main
from hf_attn_at.run_folder import (
    CHECKPOINT_MARKER,
    LOCK_FILE,
    SETTINGS_FILE,
    check_output_dir,
    read_settings,
    run_lock,
    settings_differences,
)

pytestmark = require_shared_data("sst")

TINY = ["--embedding_size", "16", "--hidden_size", "8", "--attention_hidden_size", "8"]


def train_argv(run_dir, *extra: str) -> list[str]:
    """A 4-step SST run (64 examples, batch 16) saving every 2 steps."""
    return [
        "train", "--task_name", "sst", "--data_source", "local", "--data_dir", str(SHARED_DATA), *TINY,
        "--max_train_samples", "64", "--max_eval_samples", "32", "--max_test_samples", "32",
        "--per_device_train_batch_size", "16", "--num_train_epochs", "1", "--save_strategy", "steps",
        "--save_steps", "2", "--output_dir", str(run_dir), "--report_to", "none", "--disable_tqdm", "true", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished run folder (checkpoints 2 and 4, results) made once for the module; tests copy it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(train_argv(run)) == 0
    return run


@pytest.fixture
def run_copy(finished_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    return run


def test_kill_during_save_resumes_from_the_last_complete_checkpoint(tmp_path, caplog):
    """SIGKILL in the middle of the second checkpoint's save (model and optimizer written, trainer state not):
    the rerun skips (and removes) that checkpoint with a warning and resumes from the complete one."""
    run = tmp_path / "run"
    killer = textwrap.dedent(f"""
        import os, signal, sys
        from transformers import Trainer
        from hf_attn_at.cli.main import main

        save_rng_state = Trainer._save_rng_state
        def dying_save(self, output_dir):
            if self.state.global_step == 4:
                os.kill(os.getpid(), signal.SIGKILL)
            save_rng_state(self, output_dir)
        Trainer._save_rng_state = dying_save
        sys.exit(main({train_argv(run)!r}))
    """)
    result = subprocess.run([sys.executable, "-c", killer], env=subprocess_env(), cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert (run / "checkpoint-4" / "model.safetensors").is_file()
    assert not (run / "checkpoint-4" / CHECKPOINT_MARKER).exists()
    assert (run / "checkpoint-2" / CHECKPOINT_MARKER).is_file()
    assert (run / LOCK_FILE).is_file()  # left by the killed process: stale, taken over below

    with caplog.at_level(logging.INFO, logger="hf_attn_at"):
        assert main(train_argv(run)) == 0
    assert f"checkpoint {run / 'checkpoint-4'} is incomplete" in caplog.text
    assert f"resuming from {run / 'checkpoint-2'}" in caplog.text
    assert "taking over the stale lock" in caplog.text
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and (run / "checkpoint-4" / CHECKPOINT_MARKER).is_file()
    assert (run / "results.json").is_file() and not (run / LOCK_FILE).exists()


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt", "trainer_state.json"])
def test_a_corrupt_checkpoint_file_is_named(run_copy, capsys, name):
    path = run_copy / "checkpoint-4" / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert main(train_argv(run_copy)) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # the lines before it are INFO logs
    assert error.startswith("hf-attn-at train: error: ") and "Traceback" not in error
    assert f"checkpoint file {path} is corrupt" in error


@pytest.mark.parametrize(
    "extra,difference",
    [
        (["--adv_method", "attention_at", "--adv_epsilon", "1"], "training.adv_method: 'vanilla' → 'attention_at'"),
        (["--seed", "7"], "training.seed: 42 → 7"),
        (["--max_train_samples", "48"], "data.max_train_samples: 64 → 48"),
        (["--embedding_size", "8"], "model.embedding_size: 16 → 8"),
        (["--num_train_epochs", "2"], "training.num_train_epochs: 1.0 → 2.0"),
    ],
)
def test_a_rerun_with_other_settings_is_refused(run_copy, capsys, extra, difference):
    """Today's bug: the rerun trained 0 steps and saved the old weights under the new labels."""
    weights = (run_copy / "model.safetensors").read_bytes()
    results = (run_copy / "results.json").read_text()
    assert main(train_argv(run_copy, *extra)) == 2
    err = capsys.readouterr().err
    assert difference in err and "--overwrite_output_dir" in err
    assert (run_copy / "model.safetensors").read_bytes() == weights
    assert (run_copy / "results.json").read_text() == results


def test_a_weights_only_checkpoint_is_not_resumed_silently(tmp_path, capsys, caplog):
    """`--save_only_model` checkpoints lack the optimizer, schedule and RNG state: resuming from one would restart
    them (another run under the same settings), so only an explicit `--resume_from_checkpoint` continues."""
    import shutil

    run = tmp_path / "run"
    assert main(train_argv(run, "--save_only_model", "true")) == 0
    assert not (run / "checkpoint-2" / "optimizer.pt").exists()
    shutil.rmtree(run / "checkpoint-4")  # killed after checkpoint 2
    (run / "results.json").unlink()
    capsys.readouterr()
    assert main(train_argv(run, "--save_only_model", "true")) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{run / 'checkpoint-2'} holds the weights only (saved with --save_only_model)" in error
    assert "--overwrite_output_dir" in error and f"--resume_from_checkpoint {run / 'checkpoint-2'}" in error
    assert not (run / "results.json").exists()
    with caplog.at_level(logging.WARNING, logger="hf_attn_at"):
        assert main(train_argv(run, "--save_only_model", "true", "--resume_from_checkpoint",
                               str(run / "checkpoint-2"))) == 0
    assert "restarts the optimizer, the learning-rate schedule and the random state" in caplog.text
    assert (run / "results.json").is_file()


def test_a_rerun_on_changed_data_is_refused(tmp_path, capsys):
    """Same flags, same file name and size, other content: the data fingerprint differs."""
    rows = ["text,label"] + [f"{'good' if i % 2 else 'bad'} movie number {i % 7},{i % 2}" for i in range(60)]
    data = tmp_path / "reviews.csv"
    data.write_text("\n".join(rows) + "\n")
    argv = ["train", "--train_file", str(data), *TINY, "--num_train_epochs", "1", "--output_dir",
            str(tmp_path / "run"), "--report_to", "none", "--disable_tqdm", "true"]
    assert main(argv) == 0
    data.write_text("\n".join(rows[:1] + [r.replace("good", "nice") for r in rows[1:]]) + "\n")
    assert main(argv) == 2
    assert "data_fingerprint.sha256" in capsys.readouterr().err


def test_a_matching_rerun_resumes_and_overwrite_starts_afresh(run_copy, caplog):
    with caplog.at_level(logging.INFO, logger="hf_attn_at"):
        assert main(train_argv(run_copy)) == 0
    assert f"resuming from {run_copy / 'checkpoint-4'}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hf_attn_at"):
        assert main(train_argv(run_copy, "--seed", "7", "--overwrite_output_dir", "true")) == 0
    assert "resuming" not in caplog.text
    assert read_settings(run_copy)["training"]["seed"] == 7
    assert read_settings(run_copy / "checkpoint-4")["training"]["seed"] == 7


def test_an_overwrite_that_stops_early_leaves_no_earlier_results(run_copy, monkeypatch):
    """--overwrite_output_dir with other settings, killed in training: the folder must not look like a finished run
    (the earlier run's results.json, weights and card) under the new settings."""
    from hf_attn_at import experiment
    from hf_attn_at.runs import RunRecord

    assert RunRecord.load(run_copy).seed == 42

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment.AdversarialTrainer, "train", killed)
    with pytest.raises(KeyboardInterrupt):
        main(train_argv(run_copy, "--seed", "7", "--overwrite_output_dir", "true"))
    assert read_settings(run_copy)["training"]["seed"] == 7
    left = {path.name for path in run_copy.iterdir()}
    assert not left & {"results.json", "metrics.json", "explanation.json", "README.md", "model.safetensors"}, left
    assert not any(name.startswith("checkpoint-") for name in left)
    monkeypatch.undo()
    assert main(train_argv(run_copy, "--seed", "7")) == 0  # the same command finishes the new run
    assert RunRecord.load(run_copy).seed == 7


def test_a_live_lock_refuses_a_second_run_and_a_stale_one_is_taken_over(tmp_path, capsys, caplog):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with run_lock(run) as lock:
            lock.write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
            assert main(train_argv(run)) == 2
            err = capsys.readouterr().err
            assert f"in use by process {holder.pid}" in err and str(run / LOCK_FILE) in err
    finally:
        holder.kill()
        holder.wait()
    (run / LOCK_FILE).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))  # now dead
    with caplog.at_level(logging.WARNING, logger="hf_attn_at"):
        assert main(train_argv(run)) == 0
    assert "taking over the stale lock" in caplog.text and not (run / LOCK_FILE).exists()


def test_two_concurrent_runs_into_one_folder(tmp_path):
    """Two real processes started together: one trains, the other stops at once with the lock message."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "hf_attn_at.cli.main", *train_argv(run)]
    procs = [subprocess.Popen(command, env=subprocess_env(), cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outcomes = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [rc for rc, _ in outcomes] == [0, 2], outcomes
    assert "is in use by process" in outcomes[1][1]
    assert json.loads((run / "results.json").read_text())["num_examples"]["train"] == 64


def test_foreign_files_in_the_output_dir_are_never_overwritten(tmp_path, capsys):
    run = tmp_path / "mine"
    run.mkdir()
    (run / "README.md").write_text("my notes\n")
    assert main(train_argv(run)) == 2
    err = capsys.readouterr().err
    assert f"--output_dir {run} is not empty (README.md)" in err and "--overwrite_output_dir" in err
    assert (run / "README.md").read_text() == "my notes\n" and not (run / SETTINGS_FILE).exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(train_argv(a_file)) == 2
    assert f"--output_dir {a_file} is a file, not a folder" in capsys.readouterr().err


def test_reproduce_refuses_a_run_of_another_grid(tmp_path, capsys):
    """Today's bug: reproduce into a folder made by another grid reported the other grid's numbers."""
    argv = ["reproduce", "--grid", "ci", "--methods", "vanilla", "--max_train_samples", "64", "--data_source",
            "local", "--data_dir", str(SHARED_DATA), "--output_dir", str(tmp_path / "out")]
    assert main(argv) == 0
    assert main([*argv, "--num_train_epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "training.num_train_epochs: 1 → 2.0" in err or "training.num_train_epochs: 1.0 → 2.0" in err


def test_settings_differences_and_legacy_folders(tmp_path):
    stored = {"training": {"seed": 1, "learning_rate": 0.001}, "data": {"task_name": "sst"}}
    current = {"training": {"seed": 2, "learning_rate": 0.001, "new_flag": 1}, "data": {"task_name": "sst"}}
    assert settings_differences(stored, current) == ["training.seed: 1 → 2"]
    assert settings_differences(stored, stored) == []
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "training_args.json").write_text(json.dumps({"seed": 3, "output_dir": "elsewhere", "logging_dir": "x"}))
    (legacy / "results.json").write_text(json.dumps({"data_args": {"task_name": "sst", "data_dir": "a",
                                                                   "babi_size": "10k"}}))
    assert read_settings(legacy) == {"training": {"seed": 3}, "data": {"task_name": "sst"}}
    check_output_dir(legacy, overwrite=False)  # a run folder of earlier versions is a run, not foreign files
    assert read_settings(tmp_path / "missing") is None


def test_a_nan_step_is_skipped_and_the_run_finishes_with_finite_weights(tmp_path, monkeypatch):
    """A fault in step 2 (NaN loss, as from an overflowed batch): the step is skipped and counted in the logs, the
    run goes on, and every checkpoint and the final model hold finite weights."""
    import torch
    from safetensors.torch import load_file

    from hf_attn_at.trainer import AdversarialTrainer

    compute_loss = AdversarialTrainer.compute_loss

    def faulty_loss(self, model, inputs, *args, **kwargs):
        loss = compute_loss(self, model, inputs, *args, **kwargs)
        if model.training and self.state.global_step == 1:
            return loss * float("nan")
        return loss

    monkeypatch.setattr(AdversarialTrainer, "compute_loss", faulty_loss)
    run = tmp_path / "run"
    assert main(train_argv(run, "--logging_steps", "1")) == 0
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    assert [entry.get("num_skipped_steps", 0) for entry in state["log_history"] if "loss" in entry] == [0, 1, 0, 0]
    summary = json.loads((run / "results.json").read_text())["training_logs"]
    assert summary == {"adv_perturbation_norm_mean": None, "num_skipped_steps": 1, "num_logs": 4}
    for weights in (run / "checkpoint-2" / "model.safetensors", run / "checkpoint-4" / "model.safetensors",
                    run / "model.safetensors"):
        assert all(torch.isfinite(value).all() for value in load_file(weights).values()), weights


def test_reproduce_skips_a_run_that_another_worker_holds(tmp_path, caplog):
    """Two workers of one grid: a run locked by a live process is skipped with a warning, the others go on."""
    out = tmp_path / "out"
    held = out / "runs" / "sst" / "vanilla" / "seed1"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        held.mkdir(parents=True)
        (held / LOCK_FILE).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        argv = ["reproduce", "--grid", "ci", "--max_train_samples", "64", "--data_source", "local", "--data_dir",
                str(SHARED_DATA), "--output_dir", str(out)]
        with caplog.at_level(logging.WARNING, logger="hf_attn_at"):
            assert main(argv) == 0
    finally:
        holder.kill()
        holder.wait()
    assert f"skipping sst/vanilla/seed1: --output_dir {held} is in use by process {holder.pid}" in caplog.text
    assert (out / "runs" / "sst" / "attention_at-eps1" / "seed1" / "results.json").is_file()
    assert not (held / "results.json").exists()
