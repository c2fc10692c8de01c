"""The `hf-attn-at` command line and the examples, end to end on real SST data."""

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import tomllib
from testing_utils import REPO_ROOT, SHARED_DATA, require_shared_data, subprocess_env

import hf_attn_at
from hf_attn_at.arguments import DataArguments
from hf_attn_at.cli.main import main
from hf_attn_at.data import task_label
from hf_attn_at.runs import RunRecord

TINY_MODEL = ["--embedding_size", "16", "--hidden_size", "8", "--attention_hidden_size", "8"]
LOCAL = ["--data_source", "local", "--data_dir", str(SHARED_DATA)]


DATA_FLAGS = ["--task_name", "--data_source", "--data_dir", "--babi_size", "--test_file", "--text_column",
              "--text_pair_column", "--label_column", "--max_test_samples"]
# verb -> the shared flags its --help must show: the data flags of `train` in every verb that reads data.
VERB_FLAGS = {
    "prepare": [*DATA_FLAGS, "--train_file", "--validation_file", "--max_train_samples", "--log_level"],
    "train": [*DATA_FLAGS, "--train_file", "--validation_file", "--max_train_samples", "--log_level"],
    "explain": [*DATA_FLAGS, "--prepared_dir", "--split", "--seed", "--model_name_or_path", "--log_level"],
    "robustness": [*DATA_FLAGS, "--prepared_dir", "--split", "--seed", "--model_name_or_path", "--log_level"],
    "reproduce": ["--data_source", "--data_dir", "--train_file", "--text_column", "--label_column", "--log_level"],
    "push": ["--run_dir", "--repo_id", "--task_label", "--log_level"],
}


def test_help_and_unknown_verb(capsys):
    assert main(["--help"]) == 0
    assert "reproduce" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["fly"]) == 2
    assert ("unknown verb 'fly'; valid verbs: prepare, train, explain, reproduce, push, robustness"
            in capsys.readouterr().err)


@pytest.mark.parametrize("verb", list(VERB_FLAGS))
def test_every_verb_help_names_its_command_and_the_shared_flags(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: hf-attn-at {verb} ")
    assert [flag for flag in VERB_FLAGS[verb] if f"{flag} " not in out] == []


@pytest.mark.parametrize(
    "argv,message",
    [
        (["prepare", "--task_name", "sst", "--source", "local"], "--source is no longer a flag: use --data_source"),
        (["prepare", "--no_filters", "--output_dir", "x"], "--no_filters is no longer a flag: use nothing"),
        (["prepare", "sst", "--output_dir", "x"],
         "hf-attn-at prepare takes no positional argument, got 'sst': give it as --task_name sst"),
        (["explain", "--model_name_or_path", "m", "--dataset_dir=data.csv", "--output_dir", "x"],
         "--dataset_dir is no longer a flag: use --test_file (a data file) or --prepared_dir"),
        (["robustness", "--model_name_or_path", "m", "--dataset_dir", "data.csv", "--output_dir", "x"],
         "--dataset_dir is no longer a flag: use --test_file (a data file) or --prepared_dir"),
        (["explain", "--model_name_or_path", "m", "--test_file", "t.csv", "--output_dir", "x", "--max_examples", "3"],
         "--max_examples is no longer a flag: use --max_test_samples"),
        (["push", "runs/sst", "--repo_id", "ns/x"],
         "hf-attn-at push takes no positional argument, got 'runs/sst': give it as --run_dir runs/sst"),
        (["push", "--run_dir", "r", "--repo_id", "ns/x", "--dataset_name", "sst"],
         "--dataset_name is no longer a flag: use --task_label"),
        # argparse's own errors: one line too, not the usage
        (["push", "--repo_id", "ns/x"], "the following arguments are required: --run_dir"),
        (["robustness", "--model_name_or_path", "m", "--test_file", "t.csv", "--output_dir", "x", "--attacks", "all"],
         "argument --attacks: invalid choice: 'all'"),
        (["prepare", "--output_dir", "x", "--max_train_samples", "ten"], "invalid int value: 'ten'"),
        (["explain", "--model_name_or_path", "m", "--dataset-dir", "d.csv", "--output_dir", "x"],
         "--dataset_dir is no longer a flag: use --test_file"),
    ],
)
def test_old_flags_are_one_line_naming_the_new_one(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"hf-attn-at {argv[0]}: error: {err.split('error: ', 1)[1].strip()}"]
    assert message in err


@require_shared_data("sst", "sst_dataset.csv")
@pytest.mark.parametrize("log_level,shows_info", [("error", False), (None, True)])
def test_log_level_sets_the_package_loggers(tmp_path, log_level, shows_info):
    """In a fresh process (no test's logging set-up): `--log_level error` silences hf_attn_at's INFO lines."""
    argv = ["prepare", "--task_name", "sst", *LOCAL, "--max_train_samples", "20", "--output_dir", str(tmp_path)]
    argv += [] if log_level is None else ["--log_level", log_level]
    done = subprocess.run([sys.executable, "-m", "hf_attn_at.cli.main", *argv], cwd=REPO_ROOT, env=subprocess_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("INFO hf_attn_at.data.processing: sst: vocabulary of" in done.stderr) == shows_info, done.stderr[-2000:]


@require_shared_data("sst", "sst_dataset.csv")
def test_prepare_refuses_a_non_empty_folder(tmp_path, capsys):
    """A trained run's folder is not replaced by `prepare`'s tokenizer (its model would read other words)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "tokenizer.json").write_text("{}")
    argv = ["prepare", "--task_name", "sst", *LOCAL, "--max_train_samples", "20", "--output_dir", str(run)]
    assert main(argv) == 2
    assert f"--output_dir {run} is not empty (tokenizer.json): give a new folder, or --overwrite_output_dir to " \
           "replace its dataset and tokenizer files" in capsys.readouterr().err
    assert (run / "tokenizer.json").read_text() == "{}"
    assert main([*argv, "--overwrite_output_dir"]) == 0
    assert (run / "dataset_dict.json").is_file() and (run / "tokenizer.json").read_text() != "{}"


def test_log_level_sets_transformers_verbosity(tmp_path, capsys):
    import transformers

    before = transformers.logging.get_verbosity()
    try:
        main(["push", "--run_dir", str(tmp_path), "--repo_id", "bad id", "--log_level", "critical"])
        assert transformers.logging.get_verbosity() == logging.CRITICAL
        assert logging.getLogger("hf_attn_at").level == logging.CRITICAL
    finally:
        transformers.logging.set_verbosity(before)
        logging.getLogger("hf_attn_at").setLevel(logging.NOTSET)
    assert "bad id" in capsys.readouterr().err


def test_version_is_pyproject_version(capsys):
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        expected = tomllib.load(f)["project"]["version"]
    assert hf_attn_at.__version__ == expected
    for flag in ("--version", "-V"):
        assert main([flag]) == 0
        assert capsys.readouterr().out == f"hf-attn-at {expected}\n"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["reproduce", "--methods", "vanilla", "bogus"], "--methods: unknown ['bogus']; valid: vanilla, attention_rp"),
        (["reproduce", "--epsilons", "0", "1"], "--epsilons must all be > 0, got [0.0]"),
        (["reproduce", "--data_source", "local"], "--data_source local needs --data_dir"),
        (["train", "--adv_method", "attention_at"], "`adv_epsilon` must be a float > 0 for adv_method='attention_at'"),
        (["train", "--max_train_samples", "0"], "--max_train_samples must be a positive integer, got 0"),
        (["train", "--adv_method", "nope"], "argument --adv_method/--adv-method: invalid choice: 'nope'"),
        (["train", "--num_train_epochs", "abc"], "invalid float value: 'abc'"),
        (["reproduce", "--grid", "nope"], "argument --grid: invalid choice: 'nope'"),
    ],
)
def test_argument_errors_are_one_clear_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"hf-attn-at {argv[0]}: error: ")  # no usage dump


def test_unreachable_hub_is_a_clear_message(tmp_path, capsys):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    code = main(["train", "--task_name", "sst", "--output_dir", str(tmp_path / "run"), *TINY_MODEL])
    err = capsys.readouterr().err
    assert code == 2
    assert "hf-attn-at train: error:" in err and "Hub" in err and "local" in err
    assert "Traceback" not in err


def test_babi_sizes_get_their_own_run_folders():
    from hf_attn_at.cli.reproduce import ReproduceArguments, plan_runs

    def names(babi_size):
        args = ReproduceArguments(grid="paper", tasks=["sst", "babi1"], methods=["vanilla"], seeds=[1],
                                  babi_size=babi_size)
        return [run.name for run in plan_runs(args)]

    assert names("10k") == ["sst/vanilla/seed1", "babi1/vanilla/seed1"]
    assert names("1k") == ["sst/vanilla/seed1", "babi1-1k/vanilla/seed1"]
    assert DataArguments(task_name="babi2", babi_size="1k").dataset_label == "babi2-1k"
    assert DataArguments(task_name="babi2").dataset_label == "babi2"
    with pytest.raises(ValueError, match="unknown dataset 'babi9'"):
        task_label("babi9")


@require_shared_data("sst")
def test_reproduce_tiny_grid_runs_and_resumes(tmp_path, capsys):
    from hf_attn_at.cli.reproduce import RECORD_FILES

    out = tmp_path / "grid"
    argv = ["reproduce", "--grid", "ci", "--output_dir", str(out), *LOCAL]
    assert main([*argv, "--methods", "vanilla"]) == 0
    vanilla = out / "runs" / "sst" / "vanilla" / "seed1"
    first = (vanilla / "results.json").stat().st_mtime_ns
    results = json.loads((vanilla / "results.json").read_text())
    assert results["num_examples"] == {"train": 400, "validation": 100, "test": 200}
    assert 0.0 <= results["metrics"]["test"]["test_accuracy"] <= 1.0
    assert -1.0 <= results["agreement"]["agreement_pearson"] <= 1.0
    per_example = json.loads((vanilla / "explanation.json").read_text())["pearson"]  # every test example's r
    assert len(per_example) == 200
    assert np.nanmean(np.array(per_example, dtype=float)) == pytest.approx(results["agreement"]["agreement_pearson"])
    for name in ("config.json", "model.safetensors", "modeling_bilstm_attention.py", "tokenizer.json", "README.md"):
        assert (vanilla / name).is_file(), name

    # The grid grows by one method: the finished vanilla run is skipped, attention AT runs.
    cards = tmp_path / "cards"
    assert main([*argv, "--methods", "vanilla", "attention_at", "--model_cards_dir", str(cards)]) == 0
    assert (vanilla / "results.json").stat().st_mtime_ns == first
    at_run = out / "runs" / "sst" / "attention_at-eps1" / "seed1" / "results.json"
    assert json.loads(at_run.read_text())["method"] == "attention_at"
    printed = capsys.readouterr().out
    assert "attention_at" in printed and "vanilla" in printed
    results_md = (out / "RESULTS.md").read_text()
    assert "| vanilla | – |" in results_md and "| attention_at | 1 |" in results_md
    sections = [line for line in results_md.splitlines() if line.startswith("## ")]
    assert sections[:3] == ["## The claims decided by the intervals", "## The paper's claims against our numbers",
                            "## Tables"]  # the verdicts first
    report = out / "figures" / "sst_report" / "report.html"
    assert report.is_file() and "attention_at" in report.read_text()
    assert sorted(p.name for p in cards.iterdir()) == ["sst-attention_at-eps1.md", "sst-vanilla.md"]
    card = (cards / "sst-attention_at-eps1.md").read_text()
    accuracy = json.loads(at_run.read_text())["metrics"]["test"]["test_accuracy"]
    assert f"value: {accuracy}" in card and "attention_at" in card

    # Records: the aggregation copies the small files of the finished runs (no weights) ...
    records = tmp_path / "records"
    aggregate = [*argv, "--methods", "vanilla", "attention_at", "--aggregate_only", "--records_dir", str(records)]
    assert main([*aggregate, "--model_cards_dir", str(cards)]) == 0
    record = records / "sst" / "attention_at-eps1" / "seed1"
    assert sorted(p.name for p in record.iterdir()) == sorted(RECORD_FILES)
    assert json.loads((record / "results.json").read_text()) == json.loads(at_run.read_text())
    table_rows = [line for line in results_md.splitlines() if line.startswith("| vanilla") or line.startswith("| attention_at")]
    # ... and regenerate the same tables and cards once the run folders are gone; recorded runs count as finished.
    shutil.rmtree(out / "runs")
    record_cards = tmp_path / "record_cards"
    assert main([*argv, "--methods", "vanilla", "attention_at", "--records_dir", str(records),
                 "--model_cards_dir", str(record_cards)]) == 0
    assert not (out / "runs").exists()
    regenerated = (out / "RESULTS.md").read_text()
    assert table_rows and all(row in regenerated for row in table_rows)
    assert (out / "figures" / "sst_report" / "report.html").is_file()
    for name in ("sst-vanilla.md", "sst-attention_at-eps1.md"):
        assert (record_cards / name).read_text() == (cards / name).read_text()


@require_shared_data("sst")
def test_train_verb_resumes_a_crashed_run(tmp_path, caplog):
    """A run folder with a checkpoint but no results resumes from the checkpoint instead of starting over."""
    run = tmp_path / "run"
    argv = ["train", "--task_name", "sst", *LOCAL, *TINY_MODEL, "--max_train_samples", "64", "--max_eval_samples",
            "32", "--max_test_samples", "32", "--per_device_train_batch_size", "16", "--num_train_epochs", "1",
            "--save_strategy", "steps", "--save_steps", "2", "--output_dir", str(run), "--report_to", "none",
            "--disable_tqdm", "true"]
    assert main(argv) == 0
    assert (run / "checkpoint-4").is_dir()
    # Simulate a crash after step 2: drop the final checkpoint and results.
    shutil.rmtree(run / "checkpoint-4")
    (run / "results.json").unlink()
    # The run clock saved with the checkpoint continues: pretend the first 2 steps took 1000 s.
    state_file = run / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert 0 < state["stateful_callbacks"]["RunClock"]["args"]["elapsed"] < 1000
    state["stateful_callbacks"]["RunClock"]["args"]["elapsed"] = 1000.0
    # The code versions saved with it too: pretend older code trained the first 2 steps.
    from hf_attn_at.experiment import code_version

    assert state["stateful_callbacks"]["CodeVersions"]["args"]["versions"] == [code_version()]
    state["stateful_callbacks"]["CodeVersions"]["args"]["versions"] = ["hf_attn_at 0.0.9 (git 0123456789ab)"]
    state_file.write_text(json.dumps(state))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hf_attn_at"):
        assert main(argv) == 0
    assert f"resuming from {run / 'checkpoint-2'}" in caplog.text
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    resumed = json.loads((run / "results.json").read_text())
    assert 1000 < resumed["total_runtime"] < 1000 + resumed["train_runtime"] + 300
    assert resumed["code_version"] == f"hf_attn_at 0.0.9 (git 0123456789ab) then {code_version()}"


@pytest.mark.parametrize(("script", "results_file", "records", "grid"), [
    ("reproduce_results.sh", "docs/ablations/random_embeddings/RESULTS.md", "docs/runs", None),
    ("reproduce_v2.sh", "docs/RESULTS.md", "docs/runs_v2", "paper_v2"),
])
def test_results_script_commands_parse(tmp_path, script, results_file, records, grid):
    """examples/reproduce_v2.sh and reproduce_results.sh (the from-scratch recipes of docs/RESULTS.md and of the
    random-embedding ablation) only use valid reproduce flags, one output folder and one records folder, and end with
    the aggregation that wrote their results file."""
    from transformers import HfArgumentParser

    from hf_attn_at.arguments import CustomDataArguments
    from hf_attn_at.cli.reproduce import ReproduceArguments

    fake = tmp_path / "bin" / "hf-attn-at"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    "open(os.environ['CALLS'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    fake.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls)}
    subprocess.run(["bash", str(REPO_ROOT / "examples" / script)], env=env, check=True, cwd=REPO_ROOT)
    argvs = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(argvs) >= 2 and all(argv[0] == "reproduce" for argv in argvs)
    parser = HfArgumentParser((ReproduceArguments, CustomDataArguments))
    parsed = [parser.parse_args_into_dataclasses(args=argv[1:], return_remaining_strings=True) for argv in argvs]
    assert all(remaining == [] for *_, remaining in parsed)
    runs, final = [p[0] for p in parsed[:-1]], parsed[-1][0]
    assert not any(args.aggregate_only for args in runs)
    assert final.aggregate_only and final.results_file == results_file
    assert {args.output_dir for args in runs} == {final.output_dir}
    assert {args.records_dir for args in runs} == {final.records_dir} == {records}
    if grid is not None:
        assert {args.grid for args in runs} == {final.grid} == {grid}
    header = (REPO_ROOT / results_file).read_text(encoding="utf-8").split("```")[1]
    for flag, value in (("--results_file", final.results_file), ("--model_cards_dir", final.model_cards_dir),
                        ("--notes_file", final.notes_file), ("--records_dir", final.records_dir)):
        assert f"{flag} {value} " in header.replace("\n", " ")


def test_claim_verdicts_follow_the_numbers():
    from hf_attn_at.cli.aggregate import check_claims

    def row(accuracy, pearson=0.0):  # a `summarize` row of 3 seeds
        return {"accuracy": (accuracy, 0.01), "pearson": (pearson, 0.02), "seeds": 3,
                "finite": {"accuracy": 3, "pearson": 3}, "first_seed_accuracy": accuracy}

    table = {
        # "a": AT is best and both attention methods agree more than vanilla; word AT swings more over ε.
        "a": {("vanilla", None): row(0.80, 0.30), ("attention_at", 1.0): row(0.85, 0.50),
              ("attention_iat", 1.0): row(0.84, 0.60),
              **{("attention_at", e): row(0.85) for e in (0.1, 10.0)},
              **{("word_at", e): row(acc) for e, acc in ((0.1, 0.8), (1.0, 0.5), (10.0, 0.6))}},
        # "b": vanilla is best and iAT agrees less than vanilla.
        "b": {("vanilla", None): row(0.90, 0.40), ("attention_at", 1.0): row(0.70, 0.50),
              ("attention_iat", 1.0): row(0.60, 0.10)},
    }
    text = "\n".join(check_claims(table))
    assert "**1. Attention AT/iAT give the best prediction performance**: **mixed** (1 of 2 tasks)" in text
    # A task missing some of the paper's six methods says which, since its "best" is among fewer.
    assert ("a: best accuracy by attention_at (attention_rp, word_iat not run); "
            "b: best accuracy by vanilla (attention_rp, word_at, word_iat not run)") in text
    assert "(Pearson r)**: **mixed** (1 of 2 tasks)" in text
    assert "b: vanilla 0.400 ± 0.020 vs attention_at 0.500 ± 0.020, attention_iat 0.100 ± 0.020" in text
    assert "less sensitive to ε than word AT**: **held** (1 of 1 tasks)" in text
    assert "attention_at 0.000, word_at 0.300" in text
    assert "not tested" in "\n".join(check_claims({"c": {("vanilla", None): row(0.5)}}))


def test_finished_runs_merge_run_folders_and_records(tmp_path):
    from hf_attn_at.cli.reproduce import finished_runs

    def finish(folder, name, accuracy):
        run = folder / name
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({"accuracy": accuracy}))
        if folder == out / "runs":
            (run / "model.safetensors").write_bytes(b"weights")
        return run

    out, records = tmp_path / "out", tmp_path / "records"
    stale = finish(records, "sst/vanilla/seed1", 0.1)
    only_recorded = finish(records, "sst/vanilla/seed2", 0.2)
    os.utime(stale / "results.json", ns=(0, 0))
    fresh = finish(out / "runs", "sst/vanilla/seed1", 0.3)
    new = finish(out / "runs", "snli/attention_at-eps1/seed1", 0.4)
    (out / "runs" / "sst" / "vanilla" / "unfinished").mkdir()

    assert finished_runs(out) == {"snli/attention_at-eps1/seed1": new, "sst/vanilla/seed1": fresh}
    assert finished_runs(out, records) == {
        "snli/attention_at-eps1/seed1": new, "sst/vanilla/seed1": fresh, "sst/vanilla/seed2": only_recorded,
    }
    # Run folders newer than their record (or not recorded) were recorded, without their weights.
    assert json.loads((stale / "results.json").read_text()) == {"accuracy": 0.3}
    assert json.loads((records / "snli/attention_at-eps1/seed1/results.json").read_text()) == {"accuracy": 0.4}
    assert not list(records.glob("**/model.safetensors"))


def test_summary_columns_fit_long_task_labels(capsys):
    from hf_attn_at.cli.aggregate import print_summary

    print_summary([RunRecord.load(REPO_ROOT / "docs" / "runs" / "babi1-1k" / "attention_at-eps1" / "seed1")])
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["task", "method"]
    assert row.split()[:3] == ["babi1-1k", "attention_at", "1"]


def test_one_class_runs_are_flagged_in_tables():
    from hf_attn_at.cli.aggregate import markdown_tables, predicts_one_class, summarize
    from hf_attn_at.metrics import classification_metrics

    labels = np.random.default_rng(0).integers(0, 3, 200)

    def result(predictions, seed):
        logits = np.eye(3)[predictions]
        metrics = {f"test_{k}": v for k, v in classification_metrics(logits, labels).items()}
        return RunRecord(task="snli", method="word_at", epsilon=1.0, lambda_=1.0, seed=seed, num_labels=3,
                         agreement_split="test", metrics={"test": metrics}, total_runtime=60.0,
                         agreement={"agreement_pearson": 0.9, "agreement_kendall": 0.6})

    one_class = result(np.full(200, 1), 1)
    almost = result(np.r_[np.full(199, 1), [2]], 2)
    wrong_everywhere = result((labels + 1) % 3, 3)
    assert predicts_one_class(one_class)
    assert not predicts_one_class(almost) and not predicts_one_class(wrong_everywhere)
    assert not predicts_one_class(replace(one_class, num_labels=None))

    results = [one_class, almost, wrong_everywhere]
    text = "\n".join(markdown_tables(summarize(results), results))
    assert "| word_at † | 1 |" in text and "| 3 (1 †) |" in text
    assert "n seeds predict one class for every test example" in text


def test_a_seed_without_a_finite_value_is_counted_in_its_cell():
    """The mean ± std of a cell covers the seeds with a finite value; the cell says so when that is not all."""
    from hf_attn_at.cli.aggregate import markdown_tables, summarize

    def result(seed, pearson):
        return RunRecord(task="sst", method="attention_at", epsilon=1.0, lambda_=1.0, seed=seed, num_labels=2,
                         agreement_split="test", metrics={"test": {"test_accuracy": 0.8, "test_f1": 0.8}},
                         total_runtime=60.0, agreement={"agreement_pearson": pearson, "agreement_kendall": 0.3})

    results = [result(1, 0.5), result(2, float("nan")), result(3, 0.6)]
    row = summarize(results)["sst"][("attention_at", 1.0)]
    assert row["seeds"] == 3 and row["finite"]["pearson"] == 2 and row["pearson"][0] == pytest.approx(0.55)
    text = "\n".join(markdown_tables(summarize(results), results))
    assert "| attention_at | 1 | 0.800 ± 0.000 | 0.800 ± 0.000 | 0.550 ± 0.071 (2 of 3 seeds) | 0.300 ± 0.000 | 3 |" \
        in text


def test_table_titles_name_the_babi_size():
    from hf_attn_at.cli.aggregate import markdown_tables, summarize

    records = [RunRecord.load(REPO_ROOT / "docs" / "runs" / task / "vanilla" / "seed1") for task in ("babi1", "babi1-1k", "sst")]
    titles = [line for line in markdown_tables(summarize(records), records) if line.startswith("### ")]
    assert titles == ["### babi1 (bAbI task 1, 10k version) (test split: `test`)",
                      "### babi1-1k (test split: `test`)", "### sst (test split: `test`)"]


def _record(records, name, **fields):
    """A copy of the committed record `docs/runs/name` as `records/name`, with `fields` in its results.json."""
    record = records / name
    shutil.copytree(REPO_ROOT / "docs" / "runs" / name, record)
    results = json.loads((record / "results.json").read_text())
    (record / "results.json").write_text(json.dumps({**results, **fields}))
    return record


@pytest.mark.parametrize(
    "argv,message",
    [
        (["reproduce", "--train_file", "reviews.csv", "--task_label", "../../x"], "--task_label names a folder"),
        (["reproduce", "--train_file", "reviews.csv", "--task_label", "/tmp/x"], "got '/tmp/x'"),
        (["reproduce", "--train_file", "my reviews.csv"], "the task label from --train_file (else set --task_label)"),
        (["train", "--train_file", "reviews.csv", "--task_label", "a/../../b"], "--task_label names a folder"),
        (["train", "--train_file", "reviews.csv", "--task_label", ".hidden"], "starting with a letter or digit"),
    ],
)
def test_task_labels_that_are_not_one_folder_name_are_refused(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main([*argv, "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "letters, digits, '.', '_' or '-'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_file_stems_name_folders_only_in_reproduce():
    """`prepare` and `train` keep a file name that `reproduce` would need a --task_label for."""
    from hf_attn_at.arguments import CustomDataArguments

    CustomDataArguments(train_file="data/my reviews.csv").check_custom()
    assert DataArguments(train_file="data/my reviews.csv").dataset_label == "my reviews"


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"task": "../../../evil"}, "`task` in"),
        ({"method": "../evil"}, "`method` in"),
        ({"epsilon": "../evil"}, "`epsilon` in"),
        ({"seed": "1/../../evil"}, "`seed` in"),
        ({"task": "snli"}, "records the run 'snli/attention_at-eps1/seed1' (its task, method, epsilon and seed) but "
                           "lies in the folder of 'sst/attention_at-eps1/seed1'"),
    ],
)
def test_crafted_records_are_refused_before_anything_is_written(tmp_path, capsys, fields, message):
    """A records folder holding an ε sweep (which gets a figure) whose results.json name other paths."""
    records, out = tmp_path / "records", tmp_path / "out" / "grid"
    first = _record(records, "sst/attention_at-eps1/seed1", **fields)
    _record(records, "sst/attention_at-eps10/seed1", **fields)
    argv = ["reproduce", "--aggregate_only", "--output_dir", str(out), "--records_dir", str(records),
            "--model_cards_dir", str(tmp_path / "out" / "cards")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and str(first / "results.json") in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records"]  # no figure, report or card anywhere


def test_inside_refuses_paths_that_resolve_out_of_their_folder(tmp_path):
    from hf_attn_at.cli.aggregate import inside

    root = tmp_path / "cards"
    root.mkdir()
    assert inside(root, "sst/vanilla/seed1") == root / "sst" / "vanilla" / "seed1"
    (tmp_path / "elsewhere.md").write_text("not a card")
    (root / "sst-vanilla.md").symlink_to(tmp_path / "elsewhere.md")
    for names in (["..", "x.png"], ["sst/../../x.png"], ["/tmp/x.png"], ["sst-vanilla.md"]):
        with pytest.raises(ValueError, match=f"refusing to write .*outside {root}"):
            inside(root, *names)


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "No such file or directory"),
        ("{not json", "Expecting property name"),
        ('{"method": "attention_at", "epsilon": 1, "accuracy": 0.8, "pearson": 0.5}', "must be a list of"),
        ('[{"method": "attention_at", "epsilon": 0, "accuracy": 0.8, "pearson": 0.5}]',
         "epsilon run 0: epsilon must be a number > 0"),
        ('[{"method": "attention_at", "epsilon": 1, "accuracy": 0.8, "pearson": 0.5}, {"epsilon": "1"}]',
         "epsilon run 1 lacks ['method', 'accuracy', 'pearson']"),
    ],
)
def test_bad_epsilon_runs_file_is_one_line_naming_it(tmp_path, capsys, content, message):
    sweep = tmp_path / "sweep.json"
    if content is not None:
        sweep.write_text(content)
    argv = ["explain", "--model_name_or_path", str(tmp_path / "model"), "--test_file", str(tmp_path / "data.csv"),
            "--output_dir", str(tmp_path / "report"), "--epsilon_runs", str(sweep)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"hf-attn-at explain: error: --epsilon_runs {sweep}: " in err and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
