"""Smoke test of an installed (non-editable) hf_attn_at, run from outside the source tree by .ci/wheel.

Checks that the wheel carries what a user needs: the package and its Auto-class registration, the CLI entry point,
the version, the data files (model card template, metric modules, py.typed) and the license.
"""

import importlib.metadata
import importlib.resources
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import evaluate
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

import hf_attn_at
from hf_attn_at.metrics import METRIC_MODULES, metric_path

source_tree = Path(sys.argv[1]).resolve()
package_dir = Path(hf_attn_at.__file__).resolve().parent
assert package_dir != source_tree / "hf_attn_at", f"imported from the source tree: {package_dir}"
assert "site-packages" in package_dir.parts, f"not an installed copy: {package_dir}"

version = importlib.metadata.version("hf_attn_at")
assert hf_attn_at.__version__ == version, (hf_attn_at.__version__, version)
assert "License-File: LICENSE" in str(importlib.metadata.metadata("hf_attn_at")), "LICENSE missing from the wheel"

files = importlib.resources.files("hf_attn_at")
for name in ("py.typed", "templates/model_card_template.md"):
    assert files.joinpath(name).is_file(), f"{name} missing from the installed package"

# Auto classes: config + model round trip through save_pretrained / from_pretrained.
config = AutoConfig.for_model("bilstm_attention", vocab_size=20, embedding_size=8, hidden_size=4,
                              attention_hidden_size=4, num_labels=2)
model = AutoModelForSequenceClassification.from_config(config).eval()
input_ids = torch.tensor([[5, 6, 7, 3], [8, 9, 0, 0]])
attention_mask = (input_ids != 0).long()
with tempfile.TemporaryDirectory() as tmp:
    model.save_pretrained(tmp)
    assert type(AutoConfig.from_pretrained(tmp)) is type(config)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp).eval()
    assert type(AutoModel.from_pretrained(tmp)).__name__ == "BiLSTMAttentionModel"
with torch.no_grad():
    expected = model(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(loaded(input_ids=input_ids, attention_mask=attention_mask).logits, expected)

# The metric modules load from the installed package without the Hub.
for name in METRIC_MODULES:
    assert Path(metric_path(name)).is_file() and Path(metric_path(name)).parent.is_relative_to(package_dir)
scores = evaluate.load(metric_path("task_metrics")).compute(predictions=[[2.0, 0.0], [0.0, 1.0]], references=[0, 1])
assert scores["accuracy"] == 1.0, scores
agreement = evaluate.load(metric_path("attention_agreement")).compute(
    attention=[[0.7, 0.2, 0.1]], importance=[[3.0, 1.0, 2.0]])
assert agreement["count"] == 1, agreement

# The console script.
cli = shutil.which("hf-attn-at")
assert cli is not None, "hf-attn-at is not on PATH"
help_text = subprocess.run([cli, "--help"], capture_output=True, text=True, check=True).stdout
assert "reproduce" in help_text, help_text
shown = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True).stdout.strip()
assert shown == f"hf-attn-at {version}", shown
print(f"installed hf_attn_at {version} from {package_dir}: OK")
