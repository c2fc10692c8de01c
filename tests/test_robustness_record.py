"""Robustness in the run record: `RobustnessArguments`, the record field, `reproduce` (after training and
`--robustness_only`), the RESULTS.md table and figure, and the model card."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket

import pytest
import torch
from testing_utils import SHARED_DATA, require_shared_data

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.cli.aggregate import robustness_tables, write_robustness_figures
from hf_attn_at.cli.main import main
from hf_attn_at.data import EVAL_SAMPLE_SEED, sample_examples
from hf_attn_at.model_card import card_from_record
from hf_attn_at.robustness import RobustnessArguments, evaluate_robustness, evaluate_run_robustness
from hf_attn_at.run_folder import LOCK_FILE
from hf_attn_at.runs import RESULTS_FILE, RunRecord


def robustness(accuracy: dict[float, float], trained: float | None, clean: float = 0.9, flips: float = 0.1,
               median_flip: float | None = 1.5, tvd: float = 0.02, jsd: float = 0.3) -> dict:
    """A `robustness` record entry with the given attention-attack accuracy per radius."""
    epsilons = sorted(accuracy)
    settings = RobustnessArguments(robustness_max_samples=50, robustness_epsilons=[0.5, 1.0]).settings(trained, "test")
    return {"settings": settings, "seconds": 1.0, "num_examples": 50, "clean_accuracy": clean, "num_steps": 10,
            "step_size": 0.25,
            "attention": {"epsilons": epsilons, "accuracy": [accuracy[e] for e in epsilons],
                          "flip_rate": [0.0 if e == 0 else flips for e in epsilons],
                          "min_flip_epsilon": {"median": median_flip}},
            "permutation": {"num_permutations": 100, "median_tvd": tvd, "mean_tvd": tvd},
            "adversarial_attention": {"delta": 0.01, "iterations": 300, "mean_jsd": jsd, "median_jsd": jsd,
                                      "fraction_satisfied": 1.0}}


def record(method: str, epsilon: float | None, seed: int, report: dict | None) -> RunRecord:
    return RunRecord(task="sst", method=method, epsilon=epsilon, lambda_=1.0, seed=seed,
                     metrics={"test": {"test_accuracy": 0.9}}, agreement={"agreement_pearson": 0.5},
                     agreement_split="test", robustness=report)


def test_settings_add_zero_the_trained_epsilon_and_twice_it_to_the_fixed_radii():
    args = RobustnessArguments(robustness_epsilons=[4, 0.5, 1])
    settings = args.settings(0.25, "test")
    assert settings["epsilons"] == [0.0, 0.25, 0.5, 1.0, 4.0]  # 2ε = 0.5 is already a fixed radius
    assert settings["fixed_epsilons"] == [0.5, 1.0, 4.0] and settings["trained_epsilon"] == 0.25
    assert settings["max_samples"] == 500 and settings["sample_seed"] == EVAL_SAMPLE_SEED
    assert args.settings(None, "test")["epsilons"] == [0.0, 0.5, 1.0, 4.0]  # vanilla: the fixed radii only
    assert json.loads(json.dumps(settings)) == settings  # compared with the recorded settings after a JSON trip


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"robustness_epsilons": [0.0, 1.0]}, "--robustness_epsilons must be finite numbers > 0, got 0.0"),
    ({"robustness_epsilons": [1.0, 1.0]}, "`epsilons` must be distinct"),
    ({"robustness_max_samples": 0}, "`robustness_max_samples` must be an integer >= 1, got 0"),
    ({"robustness_attacks": ["nope"]}, "`attacks` must be a non-empty subset of"),
    ({"robustness_num_steps": 0}, "`num_steps` must be an integer >= 1, got 0"),
])
def test_bad_robustness_arguments_are_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        RobustnessArguments(**kwargs)


def test_the_field_round_trips_and_old_records_still_load(tmp_path):
    report = robustness({0.0: 0.9, 0.5: 0.8, 1.0: 0.7, 2.0: 0.5}, 1.0)
    record("attention_at", 1.0, 1, report).save(tmp_path / "new")
    assert RunRecord.load(tmp_path / "new").robustness == report
    record("vanilla", None, 1, None).save(tmp_path / "old")
    assert "robustness" not in json.loads((tmp_path / "old" / RESULTS_FILE).read_text())  # old records unchanged
    assert RunRecord.load(tmp_path / "old").robustness is None


def test_run_robustness_is_evaluate_robustness_on_the_seeded_sample():
    torch.manual_seed(0)
    model = BiLSTMAttentionForSequenceClassification(BiLSTMAttentionConfig(
        vocab_size=40, embedding_size=8, hidden_size=4, attention_hidden_size=4, num_labels=2)).eval()
    import datasets

    generator = torch.Generator().manual_seed(1)
    rows = [torch.randint(3, 40, (int(n),), generator=generator).tolist()
            for n in torch.randint(2, 9, (30,), generator=generator)]
    dataset = datasets.Dataset.from_dict({"input_ids": rows, "label": [r[0] % 2 for r in rows]})
    settings = RobustnessArguments(robustness_max_samples=12, robustness_epsilons=[1.0],
                                   robustness_attacks=["attention", "permutation"]).settings(0.5, "test")
    got = evaluate_run_robustness(model, dataset, settings)
    sample = sample_examples(dataset, 12, EVAL_SAMPLE_SEED)
    expected = evaluate_robustness(model, sample, [0.0, 0.5, 1.0], ["attention", "permutation"], seed=0)
    assert got["settings"] == settings and got["num_examples"] == 12
    assert {k: v for k, v in got.items() if k not in ("settings", "seconds")} == expected


def test_aggregation_prints_mean_and_std_over_seeds_and_nothing_without_robustness():
    results = [
        record("vanilla", None, 1, robustness({0.0: 0.9, 0.5: 0.8, 1.0: 0.6}, None, tvd=0.02, jsd=0.3)),
        record("vanilla", None, 2, robustness({0.0: 0.9, 0.5: 0.6, 1.0: 0.4}, None, tvd=0.04, jsd=0.5)),
        # fewer than half of seed 3's examples flip: its median flipping ε is unknown
        record("vanilla", None, 3, robustness({0.0: 0.9, 0.5: 0.7, 1.0: 0.5}, None, tvd=0.03, jsd=0.4,
                                               median_flip=None)),
        record("attention_at", 0.25, 1, robustness({0.0: 0.9, 0.25: 0.85, 0.5: 0.75, 1.0: 0.7}, 0.25, flips=0.2,
                                                    median_flip=None)),
        record("attention_at", 2.0, 1, None),  # not the main row (ε = 1 in grids that do not select ε)
        record("word_at", 1.0, 1, None),  # no robustness recorded: no row
    ]
    table = "\n".join(robustness_tables(results, {("sst", "attention_at"): 0.25}))
    assert ("| method | ε | clean | acc. at ε | acc. at 2ε | acc. at 0.5 | acc. at 1 | flip rate at ε | min flip ε | "
            "permutation TVD | adversarial JSD | seeds |") in table
    # Seeds 0.8, 0.6 and 0.7: mean 0.7, sample std √0.01 = 0.1; the median flipping ε of two seeds of three.
    assert ("| vanilla | – | 0.900 ± 0.000 | n/a | n/a | 0.700 ± 0.100 | 0.500 ± 0.100 | n/a | 1.500 ± 0.000 "
            "(2 of 3 seeds) | 0.030 ± 0.010 | 0.400 ± 0.100 | 3 |") in table
    # One seed: each value without ± (a standard deviation of one value is undefined).
    assert ("| attention_at | 0.25 | 0.900 | 0.850 | 0.750 | 0.750 | 0.700 | 0.200 | n/a | 0.020 | 0.300 | 1 |") in table
    assert "word_at" not in table
    assert robustness_tables([record("vanilla", None, 1, None)]) == []


def test_robustness_figure_per_task(tmp_path):
    results = [record("vanilla", None, 1, robustness({0.0: 0.9, 0.5: 0.8, 1.0: 0.6}, None))]
    figures = write_robustness_figures(results, tmp_path)
    assert figures == {"sst": [tmp_path / "sst_robustness.png"]} and figures["sst"][0].stat().st_size > 0
    assert write_robustness_figures([record("vanilla", None, 1, None)], tmp_path / "none") == {}


def test_the_card_shows_the_robustness_numbers():
    torch.manual_seed(0)
    model = BiLSTMAttentionForSequenceClassification(BiLSTMAttentionConfig(
        vocab_size=30, embedding_size=8, hidden_size=4, attention_hidden_size=4, num_labels=2))
    run = record("attention_at", 1.0, 1, robustness({0.0: 0.9, 0.5: 0.8, 1.0: 0.7, 2.0: 0.55}, 1.0))
    run.training_args = {"adv_method": "attention_at", "adv_epsilon": 1.0, "adv_lambda": 1.0}
    text = str(card_from_record(run, model))
    assert "### Robustness" in text and "seeded sample of 50 test examples" in text
    assert "| accuracy under attention-score PGD, ε = 2 | 0.55 |" in text
    assert "| accuracy under attention-score PGD, ε = 0 |" not in text  # the clean accuracy has its own row
    assert "| clean accuracy | 0.9 |" in text and "| median smallest flipping ε | 1.5 |" in text
    assert "| permutation: median output TVD | 0.02 |" in text
    assert "| adversarial attention (TVD ≤ 0.01): median JSD | 0.3 |" in text
    run.robustness = None
    plain = str(card_from_record(run, model))
    assert "Robustness" not in plain and "## Intended use and limitations" in plain
    assert plain.replace("\n\n\n", "\n\n") == plain  # no blank lines left where the section would be


@require_shared_data("sst")
def test_reproduce_records_robustness_and_robustness_only_fills_it_again(tmp_path, capsys):
    out, records = tmp_path / "grid", tmp_path / "records"
    argv = ["reproduce", "--grid", "ci", "--tasks", "sst", "--methods", "vanilla", "attention_at",
            "--max_train_samples", "64", "--explain_max_samples", "8", "--data_source", "local", "--data_dir",
            str(SHARED_DATA), "--output_dir", str(out), "--records_dir", str(records),
            "--robustness_max_samples", "16", "--robustness_epsilons", "0.5", "3"]
    assert main(argv) == 0
    run = out / "runs" / "sst" / "attention_at-eps1" / "seed1"
    trained = json.loads((run / RESULTS_FILE).read_text())["robustness"]
    assert trained["num_examples"] == 16 and trained["attention"]["epsilons"] == [0.0, 0.5, 1.0, 2.0, 3.0]
    assert trained["settings"]["trained_epsilon"] == 1.0 and set(trained) >= {"permutation", "adversarial_attention"}
    assert json.loads((records / "sst" / "attention_at-eps1" / "seed1" / RESULTS_FILE).read_text())["robustness"] \
        == trained
    results_md = (out / "RESULTS.md").read_text()
    assert "## Robustness (attention-score attack; test-split sample)" in results_md
    assert "| attention_at | 1 |" in results_md.split("## Robustness")[1]
    assert "![sst sst_robustness](figures/sst_robustness.png)" in results_md

    # A run folder whose record lacks it (an older run) gets it from --robustness_only: the same numbers, in the
    # run folder and in the records; runs that have it with the same settings are left alone.
    for folder in (run, records / "sst" / "attention_at-eps1" / "seed1"):
        old = json.loads((folder / RESULTS_FILE).read_text())
        del old["robustness"]
        (folder / RESULTS_FILE).write_text(json.dumps(old))
    assert "### Robustness" in (run / "README.md").read_text()
    (run / "README.md").write_text("an older card\n")
    vanilla = out / "runs" / "sst" / "vanilla" / "seed1" / RESULTS_FILE
    untouched = vanilla.stat().st_mtime_ns
    assert main([*argv, "--robustness_only"]) == 0
    for folder in (run, records / "sst" / "attention_at-eps1" / "seed1"):
        again = json.loads((folder / RESULTS_FILE).read_text())["robustness"]
        assert {k: v for k, v in again.items() if k != "seconds"} == \
            {k: v for k, v in trained.items() if k != "seconds"}
    assert "### Robustness" in (run / "README.md").read_text()  # the run folder's card shows the new record
    assert vanilla.stat().st_mtime_ns == untouched
    # A run folder locked by another live process (another worker evaluating it) is skipped, not evaluated twice.
    for folder in (run, records / "sst" / "attention_at-eps1" / "seed1"):
        old = json.loads((folder / RESULTS_FILE).read_text())
        del old["robustness"]
        (folder / RESULTS_FILE).write_text(json.dumps(old))
    (run / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert main([*argv, "--robustness_only"]) == 0
    assert "robustness" not in json.loads((run / RESULTS_FILE).read_text())
    (run / LOCK_FILE).unlink()
    # Flags that rebuild other data than the run trained on are refused with one line, before any evaluation.
    assert main([*argv, "--robustness_only", "--max_train_samples", "48"]) == 2
    assert "is not the data this run was trained on" in capsys.readouterr().err
    assert "robustness" not in json.loads((run / RESULTS_FILE).read_text())
    # Records without weights are not evaluated (nothing to load): the record keeps what it has.
    shutil.rmtree(out / "runs")
    assert main([*argv, "--robustness_only", "--robustness_max_samples", "8"]) == 0
    assert json.loads((records / "sst" / "vanilla" / "seed1" / RESULTS_FILE).read_text())["robustness"][
        "num_examples"] == 16


@pytest.mark.parametrize("verb,off", [("train", []), ("reproduce", ["--no_eval_robustness"])])
def test_robustness_flags_without_the_evaluation_are_refused(capsys, verb, off):
    """`--robustness_*` flags do nothing unless robustness is evaluated: refused, not ignored."""
    assert main([verb, *off, "--robustness_max_samples", "100", "--output_dir", "unused"]) == 2
    assert "--robustness_max_samples 100 is read only when robustness is evaluated: add --eval_robustness" \
        in capsys.readouterr().err


def test_robustness_only_conflicts_are_one_line(capsys):
    assert main(["reproduce", "--robustness_only", "--aggregate_only"]) == 2
    assert "give either --robustness_only or --aggregate_only" in capsys.readouterr().err
    assert main(["reproduce", "--robustness_only", "--no_eval_robustness"]) == 2
    assert "--robustness_only evaluates robustness: drop --no_eval_robustness" in capsys.readouterr().err


@require_shared_data("sst")
def test_train_evaluates_robustness_only_when_asked(tmp_path):
    argv = ["train", "--task_name", "sst", "--data_source", "local", "--data_dir", str(SHARED_DATA),
            "--embedding_size", "8", "--hidden_size", "8", "--attention_hidden_size", "8", "--max_train_samples", "32",
            "--max_eval_samples", "16", "--max_test_samples", "24", "--explain_max_samples", "8",
            "--per_device_train_batch_size", "16", "--num_train_epochs", "1", "--report_to", "none",
            "--adv_method", "attention_at", "--adv_epsilon", "0.25"]
    assert main([*argv, "--output_dir", str(tmp_path / "plain")]) == 0
    assert RunRecord.load(tmp_path / "plain").robustness is None
    assert main([*argv, "--output_dir", str(tmp_path / "robust"), "--eval_robustness", "--robustness_max_samples",
                 "10", "--robustness_attacks", "attention"]) == 0
    report = RunRecord.load(tmp_path / "robust").robustness
    assert report["num_examples"] == 10 and set(report) == {"settings", "seconds", "num_examples", "clean_accuracy",
                                                             "num_steps", "step_size", "attention"}
    assert report["attention"]["epsilons"] == [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]  # ε, 2ε and the fixed radii
    assert "### Robustness" in (tmp_path / "robust" / "README.md").read_text()  # the run's card


@require_shared_data("sst")
def test_a_failing_robustness_evaluation_loses_no_training(tmp_path, monkeypatch, caplog):
    """The run is saved (weights, record with the grid's command) before the attacks; when they fail the error is
    loud, and the next `reproduce` trains nothing and evaluates the missing robustness."""
    import hf_attn_at.experiment

    out = tmp_path / "grid"
    argv = ["reproduce", "--grid", "ci", "--tasks", "sst", "--methods", "vanilla", "--max_train_samples", "64",
            "--explain_max_samples", "8", "--data_source", "local", "--data_dir", str(SHARED_DATA),
            "--output_dir", str(out), "--robustness_max_samples", "16", "--robustness_epsilons", "0.5"]

    def failing(*args, **kwargs):
        raise RuntimeError("attack failed")

    monkeypatch.setattr(hf_attn_at.experiment, "evaluate_run_robustness", failing)
    with caplog.at_level(logging.ERROR, logger="hf_attn_at"), pytest.raises(RuntimeError, match="attack failed"):
        main(argv)
    assert "the run is finished and saved, its robustness evaluation failed" in caplog.text
    run = out / "runs" / "sst" / "vanilla" / "seed1"
    saved = json.loads((run / RESULTS_FILE).read_text())
    assert "robustness" not in saved and saved["command"].startswith("hf-attn-at reproduce --grid ci")
    weights = (run / "model.safetensors").stat().st_mtime_ns
    monkeypatch.undo()
    assert main(argv) == 0
    assert (run / "model.safetensors").stat().st_mtime_ns == weights  # not trained again
    filled = json.loads((run / RESULTS_FILE).read_text())
    assert filled["robustness"]["num_examples"] == 16
    assert {k: v for k, v in filled.items() if k != "robustness"} == saved


@require_shared_data("sst")
def test_a_run_killed_during_its_robustness_evaluation_is_recorded_with_its_command(tmp_path, monkeypatch):
    """`results.json` is written before the attacks: a kill there (no exception handler runs) must still leave a
    record that names its command (and, with --epsilon_from, its ε source) from that first write."""
    import hf_attn_at.experiment

    out = tmp_path / "grid"
    argv = ["reproduce", "--grid", "ci", "--tasks", "sst", "--methods", "vanilla", "--max_train_samples", "64",
            "--explain_max_samples", "8", "--data_source", "local", "--data_dir", str(SHARED_DATA),
            "--output_dir", str(out), "--robustness_max_samples", "16", "--robustness_epsilons", "0.5"]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hf_attn_at.experiment, "evaluate_run_robustness", killed)
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    saved = json.loads((out / "runs" / "sst" / "vanilla" / "seed1" / RESULTS_FILE).read_text())
    assert "robustness" not in saved and saved["command"] == "hf-attn-at reproduce " + " ".join(argv[1:])
