"""Re-derive `explanation.json` of v2 records whose per-example agreement was cut to the 25 heat-map examples.

From fa183ea (2026-12-04) to 5dfb41c (2026-12-05) `run_experiment` wrote the per-example gradient Pearson/Kendall
of the first 25 test examples only; the paired bootstrap over test examples needs every example's. For each such
record whose run folder still holds its weights, this script rebuilds the run's evaluation split from its recorded
data settings (refusing data whose fingerprint differs from the run's), explains the saved model exactly as
`run_experiment` does, checks that the recomputed means equal the recorded `agreement` (to 1e-9), and rewrites
`explanation.json` in the run folder and in the record folder. Nothing else in a record changes.

    python docs/rederive_explanations.py ../runs/v2 docs/runs_v2 [TASK ...]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from hf_attn_at.arguments import DataArguments
from hf_attn_at.data import EVAL_SAMPLE_SEED, load_data, sample_examples
from hf_attn_at.experiment import NUM_HEATMAP_EXAMPLES, agreement_metrics
from hf_attn_at.interpret import explain_model
from hf_attn_at.interpret.report import json_safe
from hf_attn_at.run_folder import data_fingerprint, read_settings
from hf_attn_at.runs import EXPLANATION_FILE, RunRecord, has_weights, load_run_model


def main(output_dir: str, records_dir: str, tasks: list[str]) -> int:
    records = sorted(Path(records_dir).glob("*/*/seed*"))
    cache = {}
    fixed = 0
    for record_dir in records:
        if tasks and record_dir.parts[-3] not in tasks:
            continue
        record = RunRecord.load(record_dir)
        explanation_file = record_dir / EXPLANATION_FILE
        total = record.num_examples[record.agreement_split]
        if record.data_args.get("explain_max_samples") is not None:
            total = min(total, record.data_args["explain_max_samples"])
        if len(json.loads(explanation_file.read_text())["pearson"]) == total:
            continue
        name = Path(*record_dir.parts[-3:])
        run_dir = Path(output_dir) / "runs" / name
        if not has_weights(run_dir):
            print(f"{name}: no weights under {run_dir}; left as it is")
            continue
        data_args = DataArguments(**{k: v for k, v in record.data_args.items() if k in DataArguments.__dataclass_fields__})
        key = (repr(data_args), record.seed)
        if key not in cache:
            loaded = load_data(data_args, record.seed)
            cache[key] = loaded, data_fingerprint(loaded.dataset, loaded.tokenizer)
        loaded, fingerprint = cache[key]
        if read_settings(run_dir).get("data_fingerprint") != fingerprint:
            raise ValueError(f"{name}: the rebuilt data is not the data this run was trained on")
        explained = loaded.dataset[record.agreement_split]
        if data_args.explain_max_samples is not None:
            explained = sample_examples(explained, data_args.explain_max_samples, EVAL_SAMPLE_SEED)
        model = load_run_model(run_dir)
        batch_size = (record.training_args or {}).get("per_device_eval_batch_size", 128)
        explanation = explain_model(model, loaded.tokenizer, explained, batch_size=batch_size, show_progress=False)
        recomputed = agreement_metrics(explanation)
        for key_name in ("agreement_pearson", "agreement_kendall"):
            if not math.isclose(recomputed[key_name], record.agreement[key_name], rel_tol=0, abs_tol=1e-9):
                raise ValueError(f"{name}: recomputed {key_name} {recomputed[key_name]!r} differs from the recorded "
                                 f"{record.agreement[key_name]!r}")
        content = json.dumps(json_safe(explanation.to_json(NUM_HEATMAP_EXAMPLES))) + "\n"
        for folder in (run_dir, record_dir):
            (folder / EXPLANATION_FILE).write_text(content)
        fixed += 1
        print(f"{name}: {len(explanation.agreement['gradient']['pearson'])} examples, agreement equal to the record")
    print(f"re-derived {fixed} explanation.json files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
