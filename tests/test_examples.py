"""The examples run end to end in a subprocess on tiny data (run_classification.py: single text, pairs, QA)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from testing_utils import REPO_ROOT, SHARED_DATA, require_shared_data, subprocess_env

TINY_MODEL = ["--embedding_size", "16", "--hidden_size", "8", "--attention_hidden_size", "8"]
LOCAL = ["--data_source", "local", "--data_dir", str(SHARED_DATA)]

EXAMPLE_ARGS = [*TINY_MODEL, *LOCAL, "--max_train_samples", "96", "--max_eval_samples", "48",
                "--max_test_samples", "48", "--num_train_epochs", "1", "--per_device_train_batch_size", "16",
                "--report_to", "none", "--disable_tqdm", "true", "--adv_epsilon", "1.0",
                "--train_sampling_strategy", "group_by_length"]  # as in the scripts' docstrings


@pytest.mark.parametrize(
    "task,method",
    [
        (["--task_name", "sst"], "attention_iat"),  # single text
        (["--task_name", "snli"], "attention_at"),  # pairs
        (["--task_name", "babi1", "--babi_size", "1k"], "word_at"),  # QA: answer selection
    ],
)
@require_shared_data("sst")
def test_classification_example_runs_with_python(tmp_path, task, method):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "run_classification.py"), *task, *EXAMPLE_ARGS,
         "--do_train", "--do_eval", "--do_predict", "--adv_method", method, "--output_dir", str(out)],
        capture_output=True, text=True, env=subprocess_env(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modeling_bilstm_attention.py", "README.md",
                 "train_results.json", "trainer_state.json", "eval_results.json"):
        assert (out / name).is_file(), name
    test_files = sorted(p.name for p in out.glob("test*_results.json"))
    assert test_files, list(out.iterdir())
    assert method in (out / "README.md").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["input_type"] == ("single" if task[1] == "sst" else "pair")
    predictions = (out / f"predict_results_{test_files[0].removesuffix('_results.json')}.txt").read_text().splitlines()
    num_test = json.loads((out / test_files[0]).read_text())[f"{test_files[0].removesuffix('_results.json')}_samples"]
    assert predictions[0] == "index\tprediction" and len(predictions) == 1 + num_test
    assert {line.split("\t")[1] for line in predictions[1:]} <= set(config["id2label"].values())


@require_shared_data("sst")
def test_classification_example_evaluates_a_trained_folder_from_a_json_file(tmp_path):
    """`--do_eval` alone on a trained model folder (its tokenizer and weights), arguments from a JSON file."""
    trained, evaluated = tmp_path / "trained", tmp_path / "evaluated"
    script = str(REPO_ROOT / "examples" / "run_classification.py")
    train = subprocess.run([sys.executable, script, "--task_name", "sst", *EXAMPLE_ARGS, "--do_train", "--do_eval",
                            "--adv_method", "attention_at", "--output_dir", str(trained)],
                           capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert train.returncode == 0, train.stderr[-3000:]
    args = {"model_name_or_path": str(trained), "task_name": "sst", "data_source": "local",
            "data_dir": str(SHARED_DATA), "max_eval_samples": 48, "do_eval": True, "output_dir": str(evaluated),
            "report_to": "none", "disable_tqdm": True}
    (tmp_path / "args.json").write_text(json.dumps(args))
    proc = subprocess.run([sys.executable, script, str(tmp_path / "args.json")],
                          capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (evaluated / "model.safetensors").exists() and not (evaluated / "train_results.json").exists()
    before = json.loads((trained / "eval_results.json").read_text())
    after = json.loads((evaluated / "eval_results.json").read_text())
    assert after["eval_samples"] == before["eval_samples"] == 48
    assert after["eval_accuracy"] == pytest.approx(before["eval_accuracy"])  # the same model on the same examples
    assert after["eval_loss"] == pytest.approx(before["eval_loss"], rel=1e-5)


def test_classification_example_without_a_trained_model_or_an_action(tmp_path):
    script = str(REPO_ROOT / "examples" / "run_classification.py")
    for flags, message in ((["--do_eval"], "need a trained model (--model_name_or_path)"),
                           ([], "nothing to do: give --do_train, --do_eval and/or --do_predict")):
        proc = subprocess.run([sys.executable, script, "--task_name", "sst", *flags, "--output_dir", str(tmp_path)],
                              capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]


@require_shared_data("sst")
def test_example_runs_on_two_processes_with_accelerate(tmp_path):
    out = tmp_path / "out"
    env = subprocess_env(ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--main_process_port", "0", str(REPO_ROOT / "examples" / "run_classification.py"), "--task_name", "sst",
         *EXAMPLE_ARGS, "--do_train", "--adv_method", "attention_at", "--use_cpu", "--log_level", "info",
         "--output_dir", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 2 processes x 16 examples per device: a global batch of 32.
    assert "Total train batch size (w. parallel, distributed & accumulation) = 32" in proc.stdout + proc.stderr
    assert (out / "model.safetensors").is_file()


@require_shared_data("sst")
def test_classification_example_resumes_only_its_own_run(tmp_path):
    """A rerun with other settings is refused (it resumed the other run's checkpoint and labelled the result with
    the new settings); the same command resumes from the newest complete checkpoint."""
    script, out = str(REPO_ROOT / "examples" / "run_classification.py"), tmp_path / "out"
    vanilla = [arg for arg in EXAMPLE_ARGS if arg not in ("--adv_epsilon", "1.0")]  # vanilla reads no ε
    argv = [sys.executable, script, "--task_name", "sst", *vanilla, "--do_train", "--save_strategy", "epoch",
            "--output_dir", str(out)]
    first = subprocess.run(argv, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "checkpoint-6" / "run_settings.json").is_file()
    other = subprocess.run([*argv, "--adv_method", "attention_at", "--adv_epsilon", "1.0"], capture_output=True, text=True,
                           env=subprocess_env(), timeout=300)
    assert other.returncode != 0
    assert "holds a run with other settings (" in other.stderr
    assert "training.adv_method: 'vanilla' → 'attention_at'" in other.stderr
    again = subprocess.run(argv, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resuming training at {out / 'checkpoint-6'}" in again.stdout + again.stderr


def test_examples_use_the_public_api_only():
    """Examples import names that `hf_attn_at` exports, or its public subpackages `data` and `interpret`."""
    import ast

    import hf_attn_at

    for script in sorted((REPO_ROOT / "examples").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hf_attn_at"):
                if node.module == "hf_attn_at":
                    private = [alias.name for alias in node.names if alias.name not in hf_attn_at.__all__]
                    assert not private, f"{script.name} imports {private} (not in hf_attn_at.__all__)"
                else:
                    assert node.module in ("hf_attn_at.data", "hf_attn_at.interpret"), f"{script.name}: {node.module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("hf_attn_at."), f"{script.name} imports {alias.name}"
