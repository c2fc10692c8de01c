"""`reproduce --grid paper_v2`: ε chosen on validation with the first seed, the other seeds at the chosen ε."""

import json

from testing_utils import SHARED_DATA, require_shared_data

from hf_attn_at.cli.aggregate import run_name, select_epsilon, selected_epsilons, selection_tables
from hf_attn_at.cli.main import main
from hf_attn_at.cli.reproduce import ReproduceArguments, plan_runs
from hf_attn_at.runs import RunRecord


def fake_result(task, method, epsilon, seed, validation):
    metric = "validation_auc" if task == "sst" else "validation_accuracy"
    return RunRecord(task=task, method=method, epsilon=epsilon, lambda_=1.0, seed=seed,
                     metrics={"validation": {metric: validation}}, agreement={}, agreement_split="test",
                     training_logs={"adv_perturbation_norm_mean": 2.0})


def test_select_epsilon_picks_the_best_validation_run_and_waits_for_all():
    finished = {run_name("sst", "attention_at", e, 1): fake_result("sst", "attention_at", e, 1, v)
                for e, v in ((0.01, 0.80), (0.1, 0.86), (1.0, 0.84))}
    assert select_epsilon(finished, "sst", "attention_at", [0.01, 0.1, 1.0], 1) == (0.1, {0.01: 0.8, 0.1: 0.86, 1.0: 0.84})
    chosen, scores = select_epsilon(finished, "sst", "attention_at", [0.01, 0.1, 1.0, 10.0], 1)
    assert chosen is None and len(scores) == 3  # ε = 10 has not run yet
    finished[run_name("sst", "attention_at", 10.0, 1)] = fake_result("sst", "attention_at", 10.0, 1, 0.86)
    assert select_epsilon(finished, "sst", "attention_at", [0.01, 0.1, 1.0, 10.0], 1)[0] == 0.1  # tie: smaller ε
    # Another seed's or method's runs never count.
    other = {run_name("sst", "attention_at", 1.0, 2): fake_result("sst", "attention_at", 1.0, 2, 0.99)}
    assert select_epsilon({**finished, **other}, "sst", "attention_at", [0.01, 0.1, 1.0, 10.0], 1)[0] == 0.1
    # Non-binary tasks select on accuracy.
    snli = {run_name("snli", "word_at", e, 1): fake_result("snli", "word_at", e, 1, v) for e, v in ((0.1, 0.5), (1.0, 0.6))}
    assert select_epsilon(snli, "snli", "word_at", [0.1, 1.0], 1)[0] == 1.0


def test_paper_v2_plans_the_other_seeds_at_the_selected_epsilon_only():
    args = ReproduceArguments(grid="paper_v2", tasks=["sst"], methods=["vanilla", "attention_at"], epsilons=[0.1, 1.0])
    names = [run.name for run in plan_runs(args)]
    assert names == ["sst/vanilla/seed1", "sst/attention_at-eps0.1/seed1", "sst/attention_at-eps1/seed1",
                     "sst/vanilla/seed2", "sst/vanilla/seed3"]
    finished = {run_name("sst", "attention_at", e, 1): fake_result("sst", "attention_at", e, 1, v)
                for e, v in ((0.1, 0.9), (1.0, 0.8))}
    names = [run.name for run in plan_runs(args, finished=finished)]
    assert "sst/attention_at-eps0.1/seed2" in names and "sst/attention_at-eps0.1/seed3" in names
    assert not any(name.startswith("sst/attention_at-eps1/seed") and not name.endswith("seed1") for name in names)


def test_selection_table_marks_the_selected_epsilon():
    results = [fake_result("sst", "attention_iat", e, 1, v) for e, v in ((0.1, 0.7), (1.0, 0.9))]
    assert selected_epsilons(results, [0.1, 1.0]) == {("sst", "attention_iat"): 1.0}
    table = "\n".join(selection_tables(results, [0.1, 1.0]))
    assert "| attention_iat | 0.700 | **0.900** | 1 | 2 |" in table


@require_shared_data("sst")
def test_paper_v2_end_to_end(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("".join(f"{w} {' '.join(str((i * 7 + j) % 5 / 5) for j in range(8))}\n"
                               for i, w in enumerate(["the", "a", "film", "good", "bad", "movie", "is", "not"])))
    out = tmp_path / "out"
    argv = ["reproduce", "--grid", "paper_v2", "--tasks", "sst", "--methods", "vanilla", "attention_at",
            "--seeds", "1", "2", "--epsilons", "0.1", "1", "--word_vectors", str(vectors), "--max_train_samples",
            "64", "--num_train_epochs", "1", "--explain_max_samples", "16", "--data_source", "local", "--data_dir",
            str(SHARED_DATA), "--output_dir", str(out)]
    assert main(argv) == 0
    runs = sorted(p.parent.relative_to(out / "runs").as_posix() for p in (out / "runs").rglob("results.json"))
    first = {e: json.loads((out / "runs" / f"sst/attention_at-eps{e}/seed1/results.json").read_text())
             for e in ("0.1", "1")}
    best = max(sorted(first, key=float), key=lambda e: first[e]["metrics"]["validation"]["validation_auc"])
    assert runs == sorted(["sst/vanilla/seed1", "sst/vanilla/seed2", "sst/attention_at-eps0.1/seed1",
                           "sst/attention_at-eps1/seed1", f"sst/attention_at-eps{best}/seed2"])
    assert json.loads((out / "runs/sst/vanilla/seed1/results.json").read_text())["word_vectors"]["dim"] == 8
    text = (out / "RESULTS.md").read_text()
    assert "## ε selection (validation split, first seed)" in text
    assert "| Pearson r | Kendall τ | ‖∂L/∂ã‖ | score range | seeds |" in text  # the mechanism columns
    assert "## Differences to vanilla (95% confidence intervals)" in text
    tables = text.split("## ε selection")[0]  # the main tables (the robustness table has rows per method too)
    main_rows = [line for line in tables.splitlines() if line.startswith("| attention_at") and "±" in line]
    assert len(main_rows) == 1 and f" | {best} | " in main_rows[0]  # the main table: the selected ε only
    assert main(argv) == 0  # rerun: everything finished, nothing trains again
    assert len(list((out / "runs").rglob("results.json"))) == 5


def summary_result(task, method, epsilon, seed, accuracy, pearson):
    return RunRecord(task=task, method=method, epsilon=epsilon, lambda_=1.0, seed=seed, total_runtime=60.0,
                     agreement_split="test", agreement={"agreement_pearson": pearson, "agreement_kendall": pearson / 2},
                     metrics={"test": {"test_accuracy": accuracy, "test_f1": accuracy, "test_macro_f1": accuracy}})


def test_ablation_table_puts_each_methods_main_rows_side_by_side():
    from hf_attn_at.cli.aggregate import ablation_table

    here = [summary_result("sst", "vanilla", None, s, 0.82 + s / 100, 0.65) for s in (1, 2)]
    here += [summary_result("sst", "attention_at", 0.01, s, 0.83, 0.64) for s in (1, 2)]
    here.append(summary_result("sst", "attention_at", 1.0, 1, 0.75, 0.62))  # an ε run that was not selected
    there = [summary_result("sst", "vanilla", None, s, 0.81, 0.38) for s in (1, 2, 3)]
    there += [summary_result("sst", "attention_at", 1.0, s, 0.80, 0.12) for s in (1, 2, 3)]
    there.append(summary_result("imdb", "vanilla", None, 1, 0.88, 0.6))  # not in both: no table
    text = "\n".join(ablation_table(here, {("sst", "attention_at"): 0.01}, there, "docs/runs"))
    assert "| vanilla | – | 0.835 ± 0.007 | 0.650 ± 0.000 (2) | – | 0.810 ± 0.000 | 0.380 ± 0.000 (3) |" in text
    assert "| attention_at | 0.01 | 0.830 ± 0.000 | 0.640 ± 0.000 (2) | 1 | 0.800 ± 0.000 | 0.120 ± 0.000 (3) |" in text
    assert "### imdb" not in text
    # Against records of a grid that selects ε, their selected rows are compared.
    text = "\n".join(ablation_table(there, None, here, "docs/runs_v2", {("sst", "attention_at"): 0.01}))
    assert "| attention_at | 1 | 0.800 ± 0.000 | 0.120 ± 0.000 (3) | 0.01 | 0.830 ± 0.000 | 0.640 ± 0.000 (2) |" in text
