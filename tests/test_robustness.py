"""Test-time robustness: PGD on attention scores and embeddings, bisection, Jain & Wallace's experiments, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon as scipy_jensenshannon

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, build_word_tokenizer
from hf_attn_at.cli.main import main as cli_main
from hf_attn_at.interpret.evaluate import _collate
from hf_attn_at.robustness import (
    AttackResult,
    _permuted_scores,
    adversarial_attention,
    attention_pgd,
    evaluate_robustness,
    jensen_shannon,
    min_flip_epsilon,
    permutation_tvd,
    resolve_bisection,
    word_pgd,
)
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialTrainingArguments


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0, dtype: torch.dtype = torch.float32, input_type: str = "single"):
    torch.manual_seed(seed)
    config = BiLSTMAttentionConfig(vocab_size=99, embedding_size=16, hidden_size=8, attention_hidden_size=8,
                                   num_labels=2 if input_type == "single" else 3, input_type=input_type)
    return BiLSTMAttentionForSequenceClassification(config).to(dtype).eval()


def make_dataset(num: int, seed: int = 0, max_len: int = 10) -> dict[str, list]:
    """Random texts of ids 3..98 of lengths 1..max_len; the label says whether most ids are below 50."""
    generator = torch.Generator().manual_seed(seed)
    ids, labels = [], []
    for _ in range(num):
        length = int(torch.randint(1, max_len + 1, (1,), generator=generator))
        row = torch.randint(3, 99, (length,), generator=generator)
        ids.append(row.tolist())
        labels.append(int((row < 50).float().mean() > 0.5))
    return {"input_ids": ids, "label": labels}


def batch_of(dataset: dict[str, list], pad_token_id: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    return _collate(dataset, pad_token_id), torch.tensor(dataset["label"])


@pytest.fixture(scope="module")
def trained():
    """A tiny model trained for a few full-batch Adam steps on `make_dataset(64)`, and that dataset."""
    model = tiny_model().train()
    dataset = make_dataset(64)
    batch, labels = batch_of(dataset)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(40):
        optimizer.zero_grad()
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return model.eval(), dataset


def clean_outputs(model, batch):
    with torch.no_grad():
        return model(**batch)


def test_epsilon_zero_gives_the_clean_accuracy_exactly(trained):
    model, dataset = trained
    # Independent: one example at a time, no padding.
    predictions = [int(model(input_ids=torch.tensor([ids])).logits.argmax()) for ids in dataset["input_ids"]]
    expected = float(np.mean(np.array(predictions) == np.array(dataset["label"])))
    report = evaluate_robustness(model, dataset, [0, 1.0], attacks=["attention", "word"], num_steps=2,
                                 bisection=False, batch_size=16)
    assert report["clean_accuracy"] == expected
    for attack in ("attention", "word"):
        assert report[attack]["accuracy"][0] == expected
        assert report[attack]["flip_rate"][0] == 0.0


def test_accuracy_under_attack_is_non_increasing_and_the_attack_bites(trained):
    model, dataset = trained
    epsilons = [0, 0.25, 0.5, 1, 2, 4, 8]
    report = evaluate_robustness(model, dataset, epsilons, attacks=["attention", "word"], num_steps=5,
                                 bisection=False, batch_size=16)
    for attack in ("attention", "word"):
        accuracy, flips = report[attack]["accuracy"], report[attack]["flip_rate"]
        assert all(a >= b for a, b in zip(accuracy, accuracy[1:], strict=False)), (attack, accuracy)
        assert all(a <= b for a, b in zip(flips, flips[1:], strict=False)), (attack, flips)
        assert accuracy[-1] < report["clean_accuracy"], (attack, accuracy)


def test_an_attack_found_at_a_smaller_radius_counts_at_every_larger_one(trained, monkeypatch):
    """PGD need not be monotone in ε; the report is, by construction: an attack at ε = 1 that succeeds where the one
    at ε = 2 does not still counts at ε = 2 (its perturbation lies in the larger ball)."""
    import hf_attn_at.robustness as robustness

    def only_radius_one(model, encoder_outputs, labels, predictions, epsilon, **kwargs):
        hit = torch.full_like(labels, float(epsilon) == 1.0, dtype=torch.bool)
        return AttackResult(torch.zeros_like(encoder_outputs.attention_scores), hit, hit)

    monkeypatch.setattr(robustness, "attention_pgd", only_radius_one)
    model, dataset = trained
    report = evaluate_robustness(model, dataset, [0, 1, 2], attacks=["attention"], bisection=False)
    assert report["attention"]["accuracy"] == [report["clean_accuracy"], 0.0, 0.0]
    assert report["attention"]["flip_rate"] == [0.0, 1.0, 1.0]


def test_one_attention_step_equals_the_trainers_attention_at_perturbation(tmp_path):
    model = tiny_model()
    dataset = make_dataset(8, seed=1)
    batch, labels = batch_of(dataset)
    args = AdversarialTrainingArguments(output_dir=str(tmp_path), adv_method="attention_at", adv_epsilon=0.7,
                                        report_to="none", use_cpu=True, per_device_train_batch_size=8)
    trainer = AdversarialTrainer(model=model, args=args)
    _, _, expected = trainer._attention_step(model, {**batch, "labels": labels})  # model in eval mode: no dropout
    outputs = clean_outputs(model, batch)
    result = attention_pgd(model, outputs.encoder_outputs, labels, outputs.logits.argmax(-1), 0.7, num_steps=1,
                           step_size=1.0)
    assert torch.equal(result.delta, expected.delta)


def test_one_word_step_equals_the_trainers_word_at_perturbation(tmp_path):
    model = tiny_model()
    dataset = make_dataset(8, seed=2)
    batch, labels = batch_of(dataset)
    args = AdversarialTrainingArguments(output_dir=str(tmp_path), adv_method="word_at", adv_epsilon=0.3,
                                        report_to="none", use_cpu=True, per_device_train_batch_size=8)
    trainer = AdversarialTrainer(model=model, args=args)
    _, _, expected = trainer._word_step(model, {**batch, "labels": labels})
    predictions = clean_outputs(model, batch).logits.argmax(-1)
    result = word_pgd(model, batch, labels, predictions, 0.3, num_steps=1, step_size=1.0)
    assert torch.equal(result.delta, expected.delta)


@pytest.mark.parametrize("attack", ["attention", "word"])
def test_pgd_stays_in_the_ball_zero_on_pads_and_raises_the_loss(attack):
    model = tiny_model(dtype=torch.float64)
    dataset = make_dataset(12, seed=3)
    batch, labels = batch_of(dataset)
    outputs = clean_outputs(model, batch)
    predictions = outputs.logits.argmax(-1)
    epsilon = 0.8
    if attack == "attention":
        result = attention_pgd(model, outputs.encoder_outputs, labels, predictions, epsilon, num_steps=10,
                               step_size=0.5)
        loss = model(encoder_outputs=outputs.encoder_outputs, attention_perturbation=result.delta, labels=labels)
    else:
        result = word_pgd(model, batch, labels, predictions, epsilon, num_steps=10, step_size=0.5)
        loss = model(**batch, embedding_perturbation=result.delta, labels=labels)
    pads = batch["attention_mask"] == 0
    assert pads.any() and torch.all(result.delta[pads] == 0)
    norms = torch.linalg.vector_norm(result.delta.flatten(1), dim=1)
    assert torch.all(norms <= epsilon * (1 + 1e-12))
    # The loss keeps growing, so PGD ends on the sphere; a single token's attention weight is always 1 (gradient 0).
    moved = batch["attention_mask"].sum(1) > 1 if attack == "attention" else torch.ones_like(norms, dtype=torch.bool)
    assert torch.allclose(norms[moved], torch.full_like(norms[moved], epsilon)) and torch.all(norms[~moved] == 0)
    clean_loss = model(**batch, labels=labels).loss
    fgm = (attention_pgd(model, outputs.encoder_outputs, labels, predictions, epsilon, 1, 1.0) if attack == "attention"
           else word_pgd(model, batch, labels, predictions, epsilon, 1, 1.0))
    fgm_loss = (model(encoder_outputs=outputs.encoder_outputs, attention_perturbation=fgm.delta, labels=labels)
                if attack == "attention" else model(**batch, embedding_perturbation=fgm.delta, labels=labels))
    assert loss.loss > fgm_loss.loss > clean_loss
    assert all(param.grad is None for param in model.parameters())  # the attack touches no parameter gradient


def test_bisection_finds_each_examples_threshold_within_the_tolerance():
    thresholds = torch.tensor([0.3, 1.7, 3.99, 0.01, math.inf])

    def attack(radius: torch.Tensor) -> AttackResult:
        flipped = radius >= thresholds
        return AttackResult(radius, flipped, flipped)

    low = torch.tensor([0.0, 1.0, 2.0, 0.0, 0.0])
    high = torch.tensor([0.5, 2.0, 4.0, 0.5, math.inf])
    found = min_flip_epsilon(attack, low, high, tolerance=1e-3)
    assert torch.isinf(found[-1])
    assert torch.all(found[:-1] >= thresholds[:-1])
    assert torch.all(found[:-1] - thresholds[:-1] <= 1e-3)


def test_min_flip_epsilon_is_reported_and_flips(trained):
    model, dataset = trained
    report = evaluate_robustness(model, dataset, [0, 1, 4], attacks=["attention"], num_steps=3, tolerance=0.05,
                                 batch_size=32)
    summary = report["attention"]["min_flip_epsilon"]
    num_flipped = round(report["attention"]["flip_rate"][-1] * len(dataset["label"]))
    assert summary["num_no_flip"] == len(dataset["label"]) - num_flipped
    quantiles = [summary["quantiles"][str(q)] for q in (0.1, 0.25, 0.5)]
    finite = [q for q in quantiles if q is not None]
    assert finite == sorted(finite) and all(0 < q <= 4 for q in finite)


def test_permutation_keeps_the_multiset_of_weights_and_pads():
    model = tiny_model(dtype=torch.float64)
    batch, _ = batch_of(make_dataset(6, seed=4))
    outputs = clean_outputs(model, batch)
    scores, mask = outputs.encoder_outputs.attention_scores, outputs.encoder_outputs.attention_scores_mask
    permuted = _permuted_scores(scores, mask, 5, torch.Generator().manual_seed(0))  # (B, n, T)
    for b in range(scores.shape[0]):
        length = int(mask[b].sum())
        for n in range(5):
            assert torch.equal(permuted[b, n, :length].sort().values, scores[b, :length].sort().values)
            assert torch.equal(permuted[b, n, length:], scores[b, length:])
    assert not torch.equal(permuted[:, 0], permuted[:, 1])  # the permutations differ
    weights = model(encoder_outputs=outputs.encoder_outputs, attention_perturbation=permuted[:, 0] - scores).attentions
    assert torch.allclose(weights.sort(-1).values, outputs.attentions.sort(-1).values, atol=1e-12)


def test_permutation_tvd_equals_a_reference_from_the_models_parts():
    model = tiny_model(dtype=torch.float64)
    batch, _ = batch_of(make_dataset(5, seed=5))
    outputs = clean_outputs(model, batch)
    encoder = outputs.encoder_outputs
    tvd = permutation_tvd(model, encoder, 7, torch.Generator().manual_seed(3), chunk_size=3)
    # Reference: pool the hidden states with softmax of the permuted scores and apply the classifier by hand.
    generator = torch.Generator().manual_seed(3)
    permuted = torch.cat([_permuted_scores(encoder.attention_scores, encoder.attention_scores_mask, n, generator)
                          for n in (3, 3, 1)], dim=1)
    weights = torch.softmax(permuted.masked_fill(~encoder.attention_scores_mask.unsqueeze(1), -math.inf), dim=-1)
    with torch.no_grad():
        probs = torch.softmax(model.classifier(weights @ encoder.last_hidden_state), -1)
    clean = torch.softmax(outputs.logits, -1).unsqueeze(1)
    assert torch.allclose(tvd, 0.5 * (probs - clean).abs().sum(-1), atol=1e-10)
    single = torch.tensor([len(ids) == 1 for ids in make_dataset(5, seed=5)["input_ids"]])
    assert torch.all(tvd[single] == 0)


def test_jensen_shannon_matches_scipy():
    generator = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(4, 6, generator=generator, dtype=torch.float64), -1)
    q = torch.softmax(torch.randn(4, 6, generator=generator, dtype=torch.float64), -1)
    p[0, :2] = 0
    p[0] /= p[0].sum()
    expected = [scipy_jensenshannon(a.numpy(), b.numpy()) ** 2 for a, b in zip(p, q, strict=True)]
    assert np.allclose(jensen_shannon(p, q).numpy(), expected, atol=1e-12)


def test_adversarial_attention_satisfies_the_output_constraint(trained):
    model, dataset = trained
    batch, _ = batch_of(dataset)
    outputs = clean_outputs(model, batch)
    encoder = outputs.encoder_outputs
    attention, jsd, satisfied = adversarial_attention(model, encoder, delta=0.01, num_iterations=60,
                                                      learning_rate=0.1, generator=torch.Generator().manual_seed(0))
    assert satisfied.float().mean() > 0.5 and jsd[satisfied].max() > 0.05
    assert all(param.grad is None for param in model.parameters())
    # Check independently: pool with the returned weights by hand and compare the output distributions.
    with torch.no_grad():
        probs = torch.softmax(model.classifier((attention.unsqueeze(1) @ encoder.last_hidden_state).squeeze(1)), -1)
    tvd = 0.5 * (probs - torch.softmax(outputs.logits, -1)).abs().sum(-1)
    assert torch.all(tvd[satisfied] <= 0.01 + 1e-6)
    assert torch.all(attention[~encoder.attention_scores_mask] == 0)
    assert torch.allclose(attention.sum(-1), torch.ones(len(attention)), atol=1e-6)
    reference = [scipy_jensenshannon(a.double().numpy(), b.double().numpy()) ** 2
                 for a, b in zip(attention, outputs.attentions, strict=True)]
    assert np.allclose(jsd.detach().numpy(), reference, atol=1e-5)


def test_jain_wallace_summaries_in_the_report(trained):
    model, dataset = trained
    report = evaluate_robustness(model, dataset, [0], attacks=["permutation", "adversarial_attention"],
                                 num_permutations=10, adversarial_iterations=20, batch_size=32)
    assert 0 <= report["permutation"]["median_tvd"] <= 1
    adversarial = report["adversarial_attention"]
    assert 0 <= adversarial["fraction_satisfied"] <= 1 and adversarial["delta"] == 0.01
    assert adversarial["median_jsd"] is None or 0 <= adversarial["median_jsd"] <= math.log(2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epsilons": [0, -1]}, r"`epsilons` must be a finite number >= 0, got -1"),
        ({"epsilons": [0, float("nan")]}, r"`epsilons` must be a finite number >= 0, got nan"),
        ({"epsilons": [1, float("inf")]}, r"`epsilons` must be a finite number >= 0, got inf"),
        ({"epsilons": []}, r"`epsilons` must list at least one radius"),
        ({"epsilons": [1, 1]}, r"`epsilons` must be distinct"),
        ({"num_steps": 0}, r"`num_steps` must be an integer >= 1, got 0"),
        ({"step_size": float("nan")}, r"`step_size` \(a fraction of ε\) must be a finite number > 0, got nan"),
        ({"tolerance": 0.0}, r"`tolerance` must be a finite number > 0, got 0.0"),
        ({"attacks": ["fgsm"]}, r"`attacks` must be a non-empty subset of"),
        ({"tvd_delta": 0.0}, r"`tvd_delta` \(a total variation distance\) must be in \(0, 1\], got 0.0"),
        ({"num_permutations": 0}, r"`num_permutations` must be an integer >= 1, got 0"),
    ],
)
def test_bad_input_is_one_line(kwargs, message):
    values = {"epsilons": [0, 1], "num_steps": 1, "num_permutations": 2, "adversarial_iterations": 1, **kwargs}
    with pytest.raises(ValueError, match=message) as info:
        evaluate_robustness(tiny_model(), make_dataset(4), **values)
    assert "\n" not in str(info.value)


def test_a_model_without_attention_outputs_is_refused():
    from transformers import BertConfig, BertForSequenceClassification

    bert = BertForSequenceClassification(BertConfig(vocab_size=99, hidden_size=8, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=8))
    with pytest.raises(ValueError, match=r"needs a BiLSTM-attention model .* got BertForSequenceClassification"):
        evaluate_robustness(bert, make_dataset(4), [0, 1])


def test_cli_writes_json_and_markdown(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["robustness", "--help"])
    assert exit_info.value.code == 0 and "--epsilons" in capsys.readouterr().out
    texts = ["a good film", "a bad film", "good plot but bad acting", "good", "bad bad film", "fine"]
    tokenizer = build_word_tokenizer(texts)
    for name in ("m1", "m2"):
        model = tiny_model(seed=int(name[1]))
        model.config.vocab_size = len(tokenizer)
        model.resize_token_embeddings(len(tokenizer))
        model.config.id2label, model.config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    data = tmp_path / "test.csv"
    data.write_text("text,label\n" + "\n".join(f"{t},{'positive' if 'good' in t else 'negative'}" for t in texts))
    out = tmp_path / "out"
    code = cli_main(["robustness", "--model_name_or_path", str(tmp_path / "m1"), str(tmp_path / "m2"),
                     "--test_file", str(data), "--epsilons", "0", "0.5", "2", "--num_steps", "2",
                     "--num_permutations", "3", "--adversarial_iterations", "2", "--output_dir", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "robustness.json").read_text())
    assert set(report["models"]) == {"m1", "m2"}
    assert report["models"]["m1"]["attention"]["epsilons"] == [0.0, 0.5, 2.0]
    assert "| m1 |" in (out / "robustness.md").read_text()
    # The settings are those applied: the default tolerance resolved (1% of the largest ε), and no bisection
    # when no radius is > 0 (its tolerance is then null, not a value nothing used).
    assert (report["settings"]["bisection"], report["settings"]["tolerance"]) == (True, 0.02)
    assert report["models"]["m1"]["attention"]["min_flip_epsilon"]["tolerance"] == 0.02
    code = cli_main(["robustness", "--model_name_or_path", str(tmp_path / "m1"), "--test_file", str(data),
                     "--epsilons", "0", "--attacks", "attention", "--output_dir", str(tmp_path / "zero")])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "zero" / "robustness.json").read_text())
    assert (report["settings"]["bisection"], report["settings"]["tolerance"]) == (False, None)
    assert "min_flip_epsilon" not in report["models"]["m1"]["attention"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epsilons", "0", "-1"], "`epsilons` must be a finite number >= 0, got -1.0"),
        (["--num_steps", "0"], "`num_steps` must be an integer >= 1, got 0"),
        (["--epsilons", "nan"], "`epsilons` must be a finite number >= 0, got nan"),
        (["--no_bisection", "--tolerance", "0.1"], "--tolerance 0.1 is the tolerance of the bisection of the "
         "smallest flipping ε, which does not run (--no_bisection): drop --tolerance"),
        (["--attacks", "permutation", "--tolerance", "0.1"], "--tolerance 0.1 is the tolerance of the "
         "bisection of the smallest flipping ε, which does not run (no attention or word attack in "
         "--attacks): drop --tolerance"),
        (["--babi_size", "1k"], "--babi_size 1k is for a built-in --task_name; it is not used with --test_file: "
         "drop --babi_size"),
        (["--data_source", "local"], "--data_source local is for a built-in --task_name; it is not used with "
         "--test_file: drop --data_source"),
    ],
)
def test_cli_bad_values_are_one_line(tmp_path, capsys, args, message):
    texts = ["a good film", "a bad film"]
    tokenizer = build_word_tokenizer(texts)
    model = tiny_model()
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    data = tmp_path / "test.csv"
    data.write_text("text,label\na good film,1\na bad film,0\n")
    capsys.readouterr()  # the save's progress bars
    code = cli_main(["robustness", "--model_name_or_path", str(tmp_path / "m"), "--test_file", str(data),
                     "--output_dir", str(tmp_path / "out"), "--epsilons", "0", "1", *args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [f"hf-attn-at robustness: error: {message}"]


def test_bisection_settings_are_resolved_as_evaluated():
    assert resolve_bisection([0, 0.5, 4]) == (True, 0.04)
    assert resolve_bisection([0, 4], tolerance=0.1) == (True, 0.1)
    assert resolve_bisection([0]) == (False, None)
    assert resolve_bisection([0, 4], attacks=["permutation", "adversarial_attention"]) == (False, None)
    assert resolve_bisection([0, 4], attacks=["word"], bisection=False) == (False, None)


def test_pair_models_attack_only_the_attended_segment():
    model = tiny_model(input_type="pair")
    premises = ["a man plays a guitar on stage", "two dogs run", "a woman reads", "kids play outside"]
    hypotheses = ["a person plays music", "animals are outside", "someone is sleeping now", "children"]
    tokenizer = build_word_tokenizer(premises + hypotheses)
    model.resize_token_embeddings(len(tokenizer))
    encoded = tokenizer(premises, hypotheses)
    dataset = {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"], "label": [0, 1, 2, 0]}
    batch = _collate(dataset, model.config.pad_token_id)
    labels = torch.tensor(dataset["label"])
    outputs = clean_outputs(model, batch)
    result = attention_pgd(model, outputs.encoder_outputs, labels, outputs.logits.argmax(-1), 1.0, num_steps=3)
    attended = outputs.encoder_outputs.attention_scores_mask
    assert torch.all(result.delta[~attended] == 0) and torch.all(result.delta[attended] != 0)
    predictions = [int(model(**_collate({k: [v[i]] for k, v in dataset.items()}, 0)).logits.argmax())
                   for i in range(len(labels))]
    report = evaluate_robustness(model, dataset, [0, 1], num_steps=2, num_permutations=3, adversarial_iterations=2)
    assert report["attention"]["accuracy"][0] == float(np.mean(np.array(predictions) == labels.numpy()))
    assert report["word"]["accuracy"][0] == report["attention"]["accuracy"][0]


@pytest.mark.parametrize("training", [True, False])
def test_the_models_train_or_eval_mode_is_restored(training):
    model = tiny_model().train(training)
    evaluate_robustness(model, make_dataset(6), [0.0, 1.0], attacks=("attention",), bisection=False)
    assert model.training is training and all(module.training is training for module in model.modules())
