"""Agreement of attention with weak human rationales from e-SNLI explanations (Camburu et al. 2018).

A premise token is part of the rationale when its word occurs in any of the pair's three free-text
explanations and is neither a stop word nor punctuation. Tokens are the model tokenizer's words
(`jain_wallace_tokenize`), so the rationale aligns with the premise segment of `tokenizer(premise,
hypothesis)` and with the attention over it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.metrics import roc_auc_score

from ..tokenization import jain_wallace_tokenize
from .agreement import summarize, valid_rows

logger = logging.getLogger(__name__)

ESNLI_SPLITS = ("dev", "test")
ESNLI_LABELS = ("entailment", "neutral", "contradiction")  # ids 0, 1, 2 as in SNLI
NUM_EXPLANATIONS = 3


def _is_content_word(word: str) -> bool:
    return any(ch.isalnum() for ch in word) and word not in ENGLISH_STOP_WORDS


def premise_rationale(premise: str, explanations: list[str]) -> tuple[list[str], np.ndarray]:
    """The premise's tokens and a 0/1 rationale over them: 1 on content words mentioned in an explanation.

    Returns:
        `(tokens, rationale)` with `rationale` an int array of shape `(len(tokens),)`.
    """
    tokens = jain_wallace_tokenize(premise)
    mentioned = {w for text in explanations for w in jain_wallace_tokenize(text) if _is_content_word(w)}
    return tokens, np.array([int(t in mentioned) for t in tokens], dtype=np.int64)


def load_esnli_rationales(data_dir: str | Path, split: str = "test", max_examples: int | None = None) -> dict:
    """Read e-SNLI's line-aligned files (`s1`, `s2`, `labels`, `preproc1_expl_{1,2,3}`) and build rationales.

    Args:
        data_dir: the folder holding `s1.<split>` etc.
        split: `"dev"` or `"test"`.
        max_examples: keep only the first N pairs.

    Returns:
        A dict of lists, one entry per pair: `premise`, `hypothesis`, `label` (0 entailment, 1 neutral,
        2 contradiction), `explanations` (three strings), `premise_tokens`, `rationale` (0/1 arrays over
        `premise_tokens`).
    """
    if split not in ESNLI_SPLITS:
        raise ValueError(f"split must be one of {ESNLI_SPLITS}, got {split!r}")
    data_dir = Path(data_dir)
    names = ["s1", "s2", "labels"] + [f"preproc1_expl_{k}" for k in range(1, NUM_EXPLANATIONS + 1)]
    columns = {}
    for name in names:
        path = data_dir / f"{name}.{split}"
        if not path.is_file():
            raise ValueError(f"e-SNLI file {path} not found: data_dir must hold {[f'{n}.{split}' for n in names]}")
        columns[name] = path.read_text(encoding="utf-8").splitlines()
    lengths = {name: len(lines) for name, lines in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"e-SNLI files in {data_dir} are not line-aligned: line counts {lengths}")
    count = lengths["s1"] if max_examples is None else min(max_examples, lengths["s1"])
    result: dict[str, list] = {k: [] for k in ("premise", "hypothesis", "label", "explanations",
                                                "premise_tokens", "rationale")}
    for i in range(count):
        label = columns["labels"][i].strip()
        if label not in ESNLI_LABELS:
            raise ValueError(f"line {i + 1} of labels.{split}: label {label!r} is not one of {ESNLI_LABELS}")
        explanations = [columns[f"preproc1_expl_{k}"][i] for k in range(1, NUM_EXPLANATIONS + 1)]
        tokens, rationale = premise_rationale(columns["s1"][i], explanations)
        result["premise"].append(columns["s1"][i].strip())
        result["hypothesis"].append(columns["s2"][i].strip())
        result["label"].append(ESNLI_LABELS.index(label))
        result["explanations"].append(explanations)
        result["premise_tokens"].append(tokens)
        result["rationale"].append(rationale)
    return result


def rationale_agreement(attention: list[np.ndarray] | np.ndarray, rationales: list[np.ndarray],
                        mask: np.ndarray | None = None) -> dict:
    """Attention mass on rationale tokens and ROC AUC of attention as a rationale detector, per example.

    Args:
        attention: per-example attention over the premise tokens: 1-D arrays, or `(batch_size,
            sequence_length)` with `mask`.
        rationales: per-example 0/1 arrays aligned with the attention rows.
        mask: `(batch_size, sequence_length)` bool, True on the premise tokens.

    Returns:
        A dict with `mass` and `auc` (float arrays of shape `(batch_size,)`; AUC is nan where the rationale
        is all 0 or all 1), their summaries `mass_summary`, `auc_summary`, and `num_skipped` (examples
        without an AUC).
    """
    rows = valid_rows(attention, mask)
    if len(rows) != len(rationales):
        raise ValueError(f"attention has {len(rows)} examples but there are {len(rationales)} rationales")
    mass = np.full(len(rows), np.nan)
    auc = np.full(len(rows), np.nan)
    for i, (a, r) in enumerate(zip(rows, rationales, strict=True)):
        r = np.asarray(r)
        if a.shape != r.shape:
            raise ValueError(f"example {i}: attention covers {a.size} tokens but the rationale {r.size}")
        mass[i] = float(a[r == 1].sum())
        if 0 < r.sum() < r.size:
            auc[i] = float(roc_auc_score(r, a))
    num_skipped = int(np.isnan(auc).sum())
    logger.info("rationale AUC: %d of %d examples skipped (rationale all 0 or all 1)", num_skipped, len(rows))
    return {
        "mass": mass,
        "auc": auc,
        "mass_summary": summarize(mass),
        "auc_summary": summarize(auc),
        "num_skipped": num_skipped,
    }
