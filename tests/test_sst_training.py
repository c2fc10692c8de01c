"""End to end: a short training on an SST subset reaches well above chance on dev with every method."""

import csv
import random

import numpy as np
import pytest
import torch
from transformers import DataCollatorWithPadding

from hf_attn_at import BiLSTMAttentionConfig, BiLSTMAttentionForSequenceClassification, build_word_tokenizer
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialTrainingArguments
from tests.testing_utils import SHARED_DATA, require_shared_data

# Word perturbations act on raw embeddings (init std 0.1): a smaller epsilon than on the attention scores.
EPSILONS = {"vanilla": None, "attention_rp": 1.0, "attention_at": 1.0, "attention_iat": 0.5, "word_at": 0.05, "word_iat": 0.05}


@pytest.fixture(scope="module")
def sst():
    with open(SHARED_DATA / "sst" / "sst_dataset.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # The file lists the training split partly sorted by label: take a seeded random subset.
    train = random.Random(0).sample([row for row in rows if row["exp_split"] == "train"], 2000)
    dev = [row for row in rows if row["exp_split"] == "dev"]
    tokenizer = build_word_tokenizer([row["text"] for row in train], min_df=1)

    def encode(split):
        return [{**tokenizer(row["text"]), "labels": int(row["label"])} for row in split]

    return tokenizer, encode(train), encode(dev)


def accuracy(eval_prediction):
    logits = eval_prediction.predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    return {"accuracy": float((np.argmax(logits, -1) == eval_prediction.label_ids).mean())}


@require_shared_data("sst")
@pytest.mark.parametrize(
    "method",
    ["attention_at", *[pytest.param(m, marks=pytest.mark.slow) for m in EPSILONS if m != "attention_at"]],
)
def test_sst_subset_above_chance(sst, tmp_path, method):
    tokenizer, train, dev = sst
    torch.manual_seed(0)
    config = BiLSTMAttentionConfig(vocab_size=len(tokenizer), embedding_size=32, hidden_size=32, attention_hidden_size=32, num_labels=2)
    args = AdversarialTrainingArguments(
        output_dir=str(tmp_path),
        adv_method=method,
        adv_epsilon=EPSILONS[method],
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        num_train_epochs=3,
        learning_rate=3e-3,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = AdversarialTrainer(
        model=BiLSTMAttentionForSequenceClassification(config),
        args=args,
        train_dataset=train,
        eval_dataset=dev,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert metrics["eval_accuracy"] > 0.65, metrics
