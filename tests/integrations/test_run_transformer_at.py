"""examples/run_transformer_at.py end to end on a few SST sentences with all-MiniLM-L6-v2 (slow)."""

import json
import subprocess
import sys

import pytest

from tests.integrations.test_transformer_attention import minilm_path, require_minilm
from tests.testing_utils import REPO_ROOT, require_shared_data, shared_data_path, subprocess_env


@pytest.mark.slow
@require_minilm
@require_shared_data("sst", "sst_dataset.csv")
def test_example_trains_minilm_with_attention_iat(tmp_path):
    command = [
        sys.executable, str(REPO_ROOT / "examples" / "run_transformer_at.py"),
        "--model_name_or_path", minilm_path(), "--dataset_file", str(shared_data_path("sst", "sst_dataset.csv")),
        "--output_dir", str(tmp_path), "--adv_method", "attention_iat", "--adv_epsilon", "1.0",
        "--max_train_samples", "32", "--max_eval_samples", "16", "--per_device_train_batch_size", "8",
        "--num_train_epochs", "1", "--use_cpu", "--report_to", "none", "--save_strategy", "no",
    ]
    subprocess.run(command, check=True, env=subprocess_env(OMP_NUM_THREADS="1"), capture_output=True, timeout=600)
    results = json.loads((tmp_path / "all_results.json").read_text())
    assert 0 <= results["test_accuracy"] <= 1 and results["train_step_seconds"] > 0
    assert -1 <= results["test_rollout_pearson_mean"] <= 1
    assert "hf_attn_at_eager" not in (tmp_path / "config.json").read_text()
