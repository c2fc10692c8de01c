import subprocess
import sys

import pytest
import torch
from testing_utils import subprocess_env
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer, pipeline

import hf_attn_at
from hf_attn_at import (
    BiLSTMAttentionConfig,
    BiLSTMAttentionForAnswerSelection,
    BiLSTMAttentionForSequenceClassification,
    BiLSTMAttentionModel,
)

TEXTS = ["a gorgeous film", "a dull , bad film", "the cast is gorgeous and the film is good", "bad"]
PREMISES = ["a man plays a guitar on stage", "two dogs run in a park", "a woman reads"]
HYPOTHESES = ["a man plays music", "cats sleep", "a person is reading a book"]


class BiLSTMAttentionModelTester:
    """Tiny configs and inputs (vocab 99, embedding 16, hidden 8, batch 4, seq 7, one padded row)."""

    batch_size, seq_length, vocab_size = 4, 7, 99

    def get_config(self, **overrides) -> BiLSTMAttentionConfig:
        kwargs = dict(vocab_size=self.vocab_size, embedding_size=16, hidden_size=8, attention_hidden_size=8, num_labels=3)
        kwargs.update(overrides)
        return BiLSTMAttentionConfig(**kwargs)

    def prepare_inputs(self, pair: bool = False) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(0)
        input_ids = torch.randint(3, self.vocab_size, (self.batch_size, self.seq_length), generator=gen)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[1, 4:] = 0  # one padded row
        input_ids[attention_mask == 0] = 0
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if pair:
            token_type_ids = torch.zeros_like(input_ids)
            token_type_ids[:, 3:] = 1
            token_type_ids[attention_mask == 0] = 0
            input_ids[:, 3] = 2  # <sep>
            inputs["token_type_ids"] = token_type_ids
        return inputs

    def create_and_check_model(self, config: BiLSTMAttentionConfig, pair: bool = False):
        model = BiLSTMAttentionModel(config).eval()
        inputs = self.prepare_inputs(pair)
        out = model(**inputs)
        b, t, s = self.batch_size, self.seq_length, 2 * config.hidden_size
        assert out.last_hidden_state.shape == (b, t, s)
        assert out.pooler_output.shape == (b, s)
        assert out.attentions.shape == out.attention_scores.shape == (b, t)
        self.check_attention(out.attentions, out.encoder_outputs.attention_scores_mask)
        if pair:
            assert out.question_hidden_state.shape == (b, s)
            assert torch.equal(out.encoder_outputs.attention_scores_mask, inputs["token_type_ids"].eq(0) & inputs["attention_mask"].bool())
        else:
            assert torch.equal(out.encoder_outputs.attention_scores_mask, inputs["attention_mask"].bool())

    def create_and_check_for_sequence_classification(self, config: BiLSTMAttentionConfig, pair: bool = False):
        model = BiLSTMAttentionForSequenceClassification(config).eval()
        inputs = self.prepare_inputs(pair)
        labels = torch.tensor([0, 1, 2, 1])
        out = model(**inputs, labels=labels)
        assert out.logits.shape == (self.batch_size, config.num_labels)
        assert out.loss.shape == () and torch.isfinite(out.loss)
        torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
        self.check_attention(out.attentions, out.encoder_outputs.attention_scores_mask)

    @staticmethod
    def check_attention(weights: torch.Tensor, mask: torch.Tensor):
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[0]))
        assert torch.all(weights[~mask] == 0.0)
        assert torch.all(weights[mask] > 0.0)


tester = BiLSTMAttentionModelTester()
CONFIGS = [
    pytest.param({"attention_type": "additive"}, False, id="single-additive"),
    pytest.param({"attention_type": "dot"}, False, id="single-dot"),
    pytest.param({"attention_type": "additive", "input_type": "pair"}, True, id="pair-additive"),
    pytest.param({"attention_type": "dot", "input_type": "pair"}, True, id="pair-dot"),
]


@pytest.mark.parametrize("overrides,pair", CONFIGS)
def test_model(overrides, pair):
    tester.create_and_check_model(tester.get_config(**overrides), pair)


@pytest.mark.parametrize("overrides,pair", CONFIGS)
def test_for_sequence_classification(overrides, pair):
    tester.create_and_check_for_sequence_classification(tester.get_config(**overrides), pair)


def test_default_sizes_follow_spec():
    config = BiLSTMAttentionConfig(vocab_size=100)
    assert (config.embedding_size, config.hidden_size, config.attention_hidden_size) == (300, 128, 128)
    model = BiLSTMAttentionModel(config)
    assert model.attention.dense.weight.shape == (128, 256)  # W ∈ R^{128×256}
    assert model.attention.context.weight.shape == (1, 128)  # c ∈ R^128, no bias
    assert model.attention.context.bias is None


@pytest.mark.parametrize(
    "field,value,allowed",
    [
        ("vocab_size", 0, "positive integer"),
        ("hidden_size", -3, "positive integer"),
        ("attention_type", "multihead", "('additive', 'dot')"),
        ("input_type", "triple", "('single', 'pair')"),
        ("dropout", 1.5, "[0, 1)"),
        ("pad_token_id", 500, "[0, vocab_size=99)"),
        ("use_candidate_mask", True, "input_type='pair'"),
    ],
)
def test_config_validation_names_field_value_and_allowed(field, value, allowed):
    with pytest.raises(ValueError) as err:
        tester.get_config(**{field: value})
    message = str(err.value)
    assert field in message and repr(value) in message and allowed in message


def test_padding_changes_nothing_packed_sequences():
    """An example's logits are identical alone and inside a padded batch (packed LSTM)."""
    torch.manual_seed(0)
    for overrides, pair in [({}, False), ({"input_type": "pair"}, True)]:
        model = BiLSTMAttentionForSequenceClassification(tester.get_config(**overrides)).eval()
        inputs = tester.prepare_inputs(pair)
        batch = model(**inputs)
        row = 1  # the padded row
        length = int(inputs["attention_mask"][row].sum())
        alone = model(**{k: v[row : row + 1, :length] for k, v in inputs.items()})
        torch.testing.assert_close(alone.logits[0], batch.logits[row], atol=1e-6, rtol=0)
        torch.testing.assert_close(alone.attentions[0], batch.attentions[row, :length], atol=1e-6, rtol=0)
        # Extra padding columns change nothing either.
        padded = {k: torch.nn.functional.pad(v, (0, 5)) for k, v in inputs.items()}
        torch.testing.assert_close(model(**padded).logits, batch.logits, atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_unpacked_lstm_matches_packed_sequence(dtype, atol):
    """The CPU path (two unpacked directions, the backward one reversed within each length) equals torch's
    packed BiLSTM: states, final states and every gradient. float64 takes torch's reference kernel,
    float32 the fused oneDNN one."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from hf_attn_at.models.bilstm_attention.modeling_bilstm_attention import _run_lstm

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, batch_first=True, bidirectional=True).to(dtype)
    lengths = torch.tensor([9, 1, 4, 7, 9, 2])
    embeds = torch.randn(len(lengths), 11, 6, dtype=dtype, requires_grad=True)  # 2 padding columns past the longest

    packed = pack_padded_sequence(embeds, lengths, batch_first=True, enforce_sorted=False)
    ref_states, (h_n, _) = lstm(packed)
    ref_states, _ = pad_packed_sequence(ref_states, batch_first=True, total_length=embeds.shape[1])
    ref_final = torch.cat([h_n[-2], h_n[-1]], dim=-1)
    states, final = _run_lstm(lstm, embeds, lengths)

    torch.testing.assert_close(states, ref_states, atol=atol, rtol=0)
    torch.testing.assert_close(final, ref_final, atol=atol, rtol=0)
    assert states.shape == (6, 11, 10) and not states[1, 1:].any()
    weights = torch.randn_like(states)
    leaves = [embeds, *lstm.parameters()]
    ref_grads = torch.autograd.grad((ref_states * weights).sum() + ref_final.square().sum(), leaves)
    grads = torch.autograd.grad((states * weights).sum() + final.square().sum(), leaves)
    for grad, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref, atol=10 * atol, rtol=0)
    assert not grads[0][1, 1:].any()  # padding gets no gradient


def test_attention_perturbation_and_head_only_rerun():
    model = BiLSTMAttentionForSequenceClassification(tester.get_config(input_type="pair")).eval()
    inputs = tester.prepare_inputs(pair=True)
    clean = model(**inputs)
    enc = clean.encoder_outputs
    r = torch.randn(tester.batch_size, tester.seq_length)
    full = model(**inputs, attention_perturbation=r)
    rerun = model(encoder_outputs=enc, attention_perturbation=r)
    torch.testing.assert_close(rerun.logits, full.logits)
    mask = enc.attention_scores_mask
    torch.testing.assert_close(full.attention_scores, (enc.attention_scores + r).masked_fill(~mask, 0.0))
    # Perturbing outside the attended positions has no effect.
    outside = model(encoder_outputs=enc, attention_perturbation=r.masked_fill(mask, 0.0))
    torch.testing.assert_close(outside.logits, clean.logits)
    assert not torch.allclose(full.logits, clean.logits)


def test_head_only_rerun_does_not_run_the_encoder():
    model = BiLSTMAttentionForSequenceClassification(tester.get_config()).eval()
    enc = model(**tester.prepare_inputs()).encoder_outputs
    calls = []
    handle = model.model.encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        model(encoder_outputs=enc, attention_perturbation=torch.zeros(tester.batch_size, tester.seq_length))
    finally:
        handle.remove()
    assert calls == []


def test_inputs_embeds_and_embedding_perturbation():
    model = BiLSTMAttentionForSequenceClassification(tester.get_config()).eval()
    inputs = tester.prepare_inputs()
    clean = model(**inputs)
    embeds = model.get_input_embeddings()(inputs["input_ids"])
    via_embeds = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"])
    torch.testing.assert_close(via_embeds.logits, clean.logits)
    r = torch.randn_like(embeds)
    perturbed = model(**inputs, embedding_perturbation=r)
    torch.testing.assert_close(
        perturbed.logits, model(inputs_embeds=embeds + r, attention_mask=inputs["attention_mask"]).logits
    )
    # The perturbation is zeroed on padding.
    torch.testing.assert_close(
        perturbed.encoder_outputs.inputs_embeds[1, 4:], embeds[1, 4:]
    )


def test_candidate_mask_restricts_answers():
    config = tester.get_config(input_type="pair", use_candidate_mask=True, num_labels=5)
    model = BiLSTMAttentionForAnswerSelection(config).eval()
    inputs = tester.prepare_inputs(pair=True)
    candidates = torch.zeros(tester.batch_size, 5, dtype=torch.bool)
    candidates[:, 3] = True
    candidates[0, 1] = True
    labels = torch.tensor([1, 3, 3, 3])
    out = model(**inputs, candidate_mask=candidates, labels=labels)
    assert torch.all(out.logits.argmax(-1)[1:] == 3)
    assert out.logits.argmax(-1)[0] in (1, 3)
    probs = out.logits.softmax(-1)
    assert torch.all(probs[~candidates] == 0.0)
    assert torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="not among its candidates"):
        model(**inputs, candidate_mask=candidates, labels=torch.tensor([0, 3, 3, 3]))
    with pytest.raises(ValueError, match="pass `candidate_mask`"):
        model(**inputs)
    with pytest.raises(ValueError, match="input_type='pair'"):
        BiLSTMAttentionForAnswerSelection(tester.get_config())


@pytest.mark.parametrize(
    "make_inputs,match",
    [
        (lambda i: {**i, "input_ids": i["input_ids"][0]}, r"shape \(batch_size, sequence_length\)"),
        (lambda i: {**i, "input_ids": i["input_ids"].masked_fill(i["attention_mask"].bool(), 150)}, "token id 150"),
        (lambda i: {**i, "input_ids": i["input_ids"][:, :0], "attention_mask": i["attention_mask"][:, :0]}, "empty"),
        (lambda i: {**i, "attention_mask": i["attention_mask"].index_fill(0, torch.tensor([2]), 0)}, r"examples \[2\]"),
        (lambda i: {**i, "attention_mask": i["attention_mask"].flip(-1)}, "right-padded"),
        (lambda i: {**i, "attention_mask": i["attention_mask"][:, :3]}, "`attention_mask` must have shape"),
    ],
    ids=["1d-ids", "id-out-of-vocab", "empty", "empty-row", "left-padded", "mask-shape"],
)
def test_bad_inputs_raise_clear_errors(make_inputs, match):
    model = BiLSTMAttentionForSequenceClassification(tester.get_config())
    with pytest.raises(ValueError, match=match):
        model(**make_inputs(tester.prepare_inputs()))


def test_bad_labels_and_pair_inputs():
    model = BiLSTMAttentionForSequenceClassification(tester.get_config())
    inputs = tester.prepare_inputs()
    with pytest.raises(ValueError, match=r"label 3 is outside \[0, num_labels=3\)"):
        model(**inputs, labels=torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="labels"):
        model(**inputs, labels=torch.tensor([0, 1]))
    # -100 marks unlabelled examples.
    out = model(**inputs, labels=torch.tensor([0, -100, 2, -100]))
    torch.testing.assert_close(
        out.loss, torch.nn.functional.cross_entropy(out.logits[[0, 2]], torch.tensor([0, 2]))
    )
    pair_model = BiLSTMAttentionForSequenceClassification(tester.get_config(input_type="pair"))
    with pytest.raises(ValueError, match="needs two sequences"):
        pair_model(**inputs)
    with pytest.raises(ValueError, match=r"one sequence in examples \[0, 1, 2, 3\]"):
        pair_model(**inputs, token_type_ids=torch.zeros_like(inputs["input_ids"]))
    with pytest.raises(ValueError, match="num_labels"):
        BiLSTMAttentionForSequenceClassification(tester.get_config(num_labels=1))


def test_tokenizer_pair_encoding_feeds_pair_model():
    tok = hf_attn_at.build_word_tokenizer(PREMISES + HYPOTHESES)
    config = tester.get_config(input_type="pair", vocab_size=tok.vocab_size, sep_token_id=tok.sep_token_id)
    model = BiLSTMAttentionForSequenceClassification(config).eval()
    enc = tok(PREMISES, HYPOTHESES, padding=True, return_tensors="pt")
    out = model(**enc)
    first_len = [len(tok(p)["input_ids"]) for p in PREMISES]
    assert out.encoder_outputs.attention_scores_mask.sum(-1).tolist() == first_len
    # Same logits one example at a time.
    for i, (p, h) in enumerate(zip(PREMISES, HYPOTHESES, strict=True)):
        single = model(**tok(p, h, return_tensors="pt"))
        torch.testing.assert_close(single.logits[0], out.logits[i], atol=1e-6, rtol=0)


def _save(tmp_path, pair: bool = False):
    texts = PREMISES + HYPOTHESES if pair else TEXTS
    tok = hf_attn_at.build_word_tokenizer(texts)
    config = AutoConfig.for_model(
        "bilstm_attention",
        vocab_size=tok.vocab_size,
        num_labels=3 if pair else 2,
        embedding_size=16,
        hidden_size=8,
        attention_hidden_size=8,
        input_type="pair" if pair else "single",
        id2label={0: "entailment", 1: "neutral", 2: "contradiction"} if pair else {0: "negative", 1: "positive"},
    )
    model = AutoModelForSequenceClassification.from_config(config).eval()
    path = tmp_path / ("nli" if pair else "sst")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok, path


def test_auto_classes_round_trip(tmp_path):
    model, tok, path = _save(tmp_path)
    assert isinstance(model, BiLSTMAttentionForSequenceClassification)
    loaded = AutoModelForSequenceClassification.from_pretrained(path).eval()
    assert type(loaded) is BiLSTMAttentionForSequenceClassification
    tok2 = AutoTokenizer.from_pretrained(path)
    enc = tok2(TEXTS, padding=True, return_tensors="pt")
    torch.testing.assert_close(loaded(**enc).logits, model(**enc).logits)
    assert tok2(TEXTS)["input_ids"] == tok(TEXTS)["input_ids"]
    base = AutoModel.from_pretrained(path)
    assert type(base) is BiLSTMAttentionModel
    for name in ("configuration_bilstm_attention.py", "modeling_bilstm_attention.py"):
        assert (path / name).is_file()
        assert "hf_attn_at" not in (path / name).read_text()


def test_pipelines_in_process(tmp_path):
    model, _, path = _save(tmp_path)
    result = pipeline("text-classification", model=str(path))("a gorgeous film")
    assert result[0]["label"] in {"negative", "positive"}
    _, _, nli_path = _save(tmp_path, pair=True)
    nli = pipeline("text-classification", model=str(nli_path))
    out = nli({"text": PREMISES[0], "text_pair": HYPOTHESES[0]})
    assert out["label"] in {"entailment", "neutral", "contradiction"}


REMOTE_CODE_SCRIPT = """
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
path, text, text_pair = sys.argv[1], sys.argv[2], sys.argv[3]
model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True).eval()
tok = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
enc = tok(text, text_pair or None, return_tensors="pt")
logits = model(**enc).logits[0].tolist()
pipe = pipeline("text-classification", model=path, trust_remote_code=True)
label = pipe({"text": text, "text_pair": text_pair} if text_pair else text)
label = label["label"] if isinstance(label, dict) else label[0]["label"]
print(json.dumps({"imported": "hf_attn_at" in sys.modules, "class": type(model).__module__,
                  "logits": logits, "label": label}))
"""


@pytest.mark.parametrize("pair", [False, True], ids=["single", "pair"])
def test_trust_remote_code_in_fresh_process(tmp_path, pair):
    import json

    model, tok, path = _save(tmp_path, pair)
    text, text_pair = (PREMISES[0], HYPOTHESES[0]) if pair else ("a gorgeous film", "")
    env = subprocess_env()
    env.pop("PYTHONPATH")  # a process that cannot import hf_attn_at
    proc = subprocess.run(
        [sys.executable, "-c", REMOTE_CODE_SCRIPT, str(path), text, text_pair],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["imported"] is False
    assert result["class"].startswith("transformers_modules")
    expected = model(**tok(text, text_pair or None, return_tensors="pt")).logits[0]
    torch.testing.assert_close(torch.tensor(result["logits"]), expected, atol=1e-6, rtol=0)
    assert result["label"] in model.config.id2label.values()


# Transformers forward conventions: output_attentions, output_hidden_states, return_dict, extra keyword arguments.

FLAG_CASES = [
    pytest.param(flags, pair, id=f"{'pair' if pair else 'single'}-att{int(flags[0])}-hid{int(flags[1])}")
    for pair in (False, True)
    for flags in ((False, False), (True, False), (False, True), (True, True))
]


@pytest.mark.parametrize("model_class", [BiLSTMAttentionModel, BiLSTMAttentionForSequenceClassification])
@pytest.mark.parametrize("flags,pair", FLAG_CASES)
def test_output_flags_select_outputs_and_shapes(model_class, flags, pair):
    output_attentions, output_hidden_states = flags
    config = tester.get_config(input_type="pair" if pair else "single")
    model = model_class(config).eval()
    inputs = tester.prepare_inputs(pair)
    out = model(**inputs, output_attentions=output_attentions, output_hidden_states=output_hidden_states)
    reference = model(**inputs, output_attentions=True)
    b, t = tester.batch_size, tester.seq_length
    if output_attentions:
        assert out.attentions.shape == (b, t)
        weights = torch.softmax(out.attention_scores.masked_fill(~out.encoder_outputs.attention_scores_mask, -torch.inf), -1)
        torch.testing.assert_close(out.attentions, weights, atol=1e-7, rtol=0)
    else:
        assert out.attentions is None and "attentions" not in out.keys()
    if output_hidden_states:
        embeds, states = out.hidden_states
        assert embeds.shape == (b, t, config.embedding_size) and states.shape == (b, t, 2 * config.hidden_size)
        base = model if model_class is BiLSTMAttentionModel else model.model
        assert torch.equal(embeds, base.embeddings(inputs["input_ids"]))
        assert torch.equal(states, out.encoder_outputs.last_hidden_state)
    else:
        assert out.hidden_states is None and "hidden_states" not in out.keys()
    # The flags change what is returned, never the values.
    for name in ("logits", "pooler_output", "attention_scores"):
        if name in reference:
            assert torch.equal(out[name], reference[name])


@pytest.mark.parametrize("pair", [False, True])
def test_return_dict_false_is_the_output_tuple_without_none(pair):
    model = BiLSTMAttentionForSequenceClassification(tester.get_config(input_type="pair" if pair else "single")).eval()
    inputs = {**tester.prepare_inputs(pair), "labels": torch.tensor([0, 1, 2, 1])}
    for flags in ({}, {"output_hidden_states": True}, {"output_attentions": False}):
        as_dict = model(**inputs, **flags)
        as_tuple = model(**inputs, **flags, return_dict=False)
        assert isinstance(as_tuple, tuple)
        expected_names = [
            name
            for name in ("loss", "logits", "hidden_states", "attentions", "attention_scores", "encoder_outputs")
            if getattr(as_dict, name) is not None
        ]
        assert list(as_dict.keys()) == expected_names
        assert len(as_tuple) == len(expected_names)
        for name, value in zip(expected_names, as_tuple, strict=True):
            expected = as_dict[name]
            if name == "encoder_outputs":
                assert all(torch.equal(value[key], expected[key]) for key in expected.keys())
            elif name == "hidden_states":
                assert all(torch.equal(v, e) for v, e in zip(value, expected, strict=True))
            else:
                assert torch.equal(value, expected), name
    base = BiLSTMAttentionModel(tester.get_config()).eval()
    names = list(base(**tester.prepare_inputs(), output_hidden_states=True).keys())
    assert names == ["last_hidden_state", "pooler_output", "hidden_states", "attentions", "attention_scores", "encoder_outputs"]
    assert len(base(**tester.prepare_inputs(), output_hidden_states=True, return_dict=False)) == len(names)


@pytest.mark.parametrize("model_class", [BiLSTMAttentionModel, BiLSTMAttentionForSequenceClassification])
def test_config_defaults_honoured_and_overridden(model_class):
    inputs = tester.prepare_inputs()
    default = model_class(tester.get_config()).eval()
    assert default.config.output_attentions and not default.config.output_hidden_states and default.config.return_dict
    out = default(**inputs)
    assert out.attentions is not None and out.hidden_states is None
    config = tester.get_config(output_attentions=False, output_hidden_states=True, return_dict=False)
    model = model_class(config).eval()
    model.load_state_dict(default.state_dict())
    out = model(**inputs)
    assert isinstance(out, tuple)
    as_dict = model(**inputs, return_dict=True)
    assert as_dict.attentions is None and len(as_dict.hidden_states) == 2
    assert len(out) == len(as_dict)
    # Arguments win over the config.
    overridden = model(**inputs, output_attentions=True, output_hidden_states=False, return_dict=True)
    assert overridden.hidden_states is None and torch.equal(overridden.attentions, default(**inputs).attentions)


def test_output_flags_leave_loss_and_gradients_unchanged():
    model = BiLSTMAttentionForSequenceClassification(tester.get_config(input_type="pair", dropout=0.0))
    inputs = {**tester.prepare_inputs(pair=True), "labels": torch.tensor([0, 1, 2, 1])}

    def gradients(**flags) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        out = model(**inputs, **flags)
        loss = out[0] if isinstance(out, tuple) else out.loss
        loss.backward()
        return [param.grad.clone() for param in model.parameters()]

    reference = gradients(output_attentions=False, output_hidden_states=False)
    for flags in ({"output_attentions": True, "output_hidden_states": True}, {"return_dict": False}):
        for grad, ref in zip(gradients(**flags), reference, strict=True):
            assert torch.equal(grad, ref)


def test_transformers_kwargs_are_accepted_and_unknown_names_raise():
    model = BiLSTMAttentionForSequenceClassification(tester.get_config()).eval()
    inputs = tester.prepare_inputs()
    plain = model(**inputs)
    ignored = model(**inputs, num_items_in_batch=torch.tensor(4), position_ids=None)
    assert torch.equal(ignored.logits, plain.logits)
    with pytest.raises(TypeError, match="unexpected keyword argument 'attention_perturbaton'"):
        model(**inputs, attention_perturbaton=torch.ones(tester.batch_size, tester.seq_length))
    with pytest.raises(TypeError, match="BiLSTMAttentionModel.forward.*'bogus'"):
        model.model(**inputs, bogus=1)


def test_hidden_states_from_cached_encoder_outputs():
    model = BiLSTMAttentionForSequenceClassification(tester.get_config()).eval()
    out = model(**tester.prepare_inputs(), output_hidden_states=True)
    rerun = model(encoder_outputs=out.encoder_outputs, output_hidden_states=True)
    assert all(torch.equal(a, b) for a, b in zip(rerun.hidden_states, out.hidden_states, strict=True))
    enc = out.encoder_outputs
    bare = type(enc)(**{key: value for key, value in enc.items() if key != "inputs_embeds"})
    with pytest.raises(ValueError, match="output_hidden_states=True needs the embedding output"):
        model(encoder_outputs=bare, output_hidden_states=True)
    assert model(encoder_outputs=bare).hidden_states is None


@pytest.mark.parametrize("method", ["attention_at", "attention_vat"])
def test_trainer_head_reruns_honour_config_output_flags(tmp_path, method):
    """The trainer's head-only re-runs keep the embedding output, so `output_hidden_states=True` in the config works."""
    from hf_attn_at.trainer import AdversarialTrainer
    from hf_attn_at.training_args import AdversarialTrainingArguments

    model = BiLSTMAttentionForSequenceClassification(tester.get_config(output_hidden_states=True)).train()
    args = AdversarialTrainingArguments(
        output_dir=str(tmp_path), adv_method=method, adv_epsilon=0.5, use_cpu=True, report_to="none"
    )
    trainer = AdversarialTrainer(model=model, args=args)
    batch = {**tester.prepare_inputs(), "labels": torch.tensor([0, 1, 2, 1])}
    loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    assert torch.isfinite(loss) and len(outputs.hidden_states) == 2
