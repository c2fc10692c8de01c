"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """``<repo>/../shared/data`` (or the nearest ancestor's ``shared/data``, for git worktrees);
    HF_ATTN_AT_SHARED_DATA overrides it."""
    if os.environ.get("HF_ATTN_AT_SHARED_DATA"):
        return Path(os.environ["HF_ATTN_AT_SHARED_DATA"])
    for parent in REPO_ROOT.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return REPO_ROOT.parent / "shared" / "data"


SHARED_DATA = _shared_data()


def shared_data_path(*parts: str) -> Path:
    return SHARED_DATA.joinpath(*parts)


def require_shared_data(*parts: str) -> pytest.MarkDecorator:
    """Skip unless ``SHARED_DATA / parts`` exists; the reason names the path (CI always has it)."""
    path = shared_data_path(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"needs the shared dataset at {path}")


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that imports hf_attn_at from this checkout, offline."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT), **extra}
