"""Initialise a model's word embeddings from a word-vector text file (GloVe / fastText `.vec` format)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


def load_word_vectors(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: str | Path, encoding: str = "utf-8"
) -> dict[str, float | int]:
    """Copy the vectors of `path` into `model`'s input embeddings for every word of `tokenizer`'s vocabulary.

    The file holds one word per line followed by its values (GloVe); an optional first line
    `"<count> <dim>"` (fastText `.vec`) is skipped. Call it after the model is built: `post_init()`
    re-initialises the embeddings. Words without a vector keep their random initialisation.

    Returns:
        `{"found": n, "vocab_size": V, "coverage": n / V}` over the non-special words, also logged.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word-vector file not found: {path}")
    embedding = model.get_input_embeddings()
    dim = embedding.embedding_dim
    vocab = tokenizer.get_vocab()
    specials = set(tokenizer.all_special_tokens)
    wanted = {word: idx for word, idx in vocab.items() if word not in specials}
    found: dict[int, list[float]] = {}
    with path.open(encoding=encoding) as handle:
        for line_number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if line_number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # fastText header "<count> <dim>"
            if len(parts) != dim + 1:
                raise ValueError(
                    f"{path}:{line_number}: expected a word and {dim} values (the model's embedding_size), "
                    f"got {len(parts) - 1} values"
                )
            idx = wanted.get(parts[0])
            if idx is not None and idx not in found:
                try:
                    found[idx] = [float(v) for v in parts[1:]]
                except ValueError as err:
                    raise ValueError(f"{path}:{line_number}: non-numeric value in the vector of {parts[0]!r}") from err
    if found:
        rows = torch.tensor(sorted(found), dtype=torch.long)
        values = torch.tensor([found[i] for i in sorted(found)], dtype=embedding.weight.dtype)
        with torch.no_grad():
            embedding.weight[rows.to(embedding.weight.device)] = values.to(embedding.weight.device)
    report = {"found": len(found), "vocab_size": len(wanted), "coverage": len(found) / max(len(wanted), 1)}
    logger.info(
        "word vectors from %s: %d of %d vocabulary words found (coverage %.1f%%)",
        path, report["found"], report["vocab_size"], 100 * report["coverage"],
    )
    return report
