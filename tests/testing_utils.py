"""Shared test helpers."""

import os
from pathlib import Path

import pytest

# ``<repo>/../shared/data``; HF_ATTN_AT_SHARED_DATA overrides it (e.g. from a git worktree elsewhere).
SHARED_DATA = Path(os.environ.get("HF_ATTN_AT_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def require_shared_data(name: str) -> pytest.MarkDecorator:
    """Skip unless ``SHARED_DATA / name`` exists; the reason names the path."""
    path = SHARED_DATA / name
    return pytest.mark.skipif(not path.exists(), reason=f"needs {path}")
