"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# `../shared/data` from the project root; worktrees sit one level deeper, so look up the ancestors.
SHARED_DATA = next(
    (p / "shared" / "data" for p in REPO_ROOT.parents if (p / "shared" / "data").is_dir()),
    REPO_ROOT.parent / "shared" / "data",
)


def shared_data_path(*parts: str) -> Path:
    return SHARED_DATA.joinpath(*parts)


def require_shared_data(*parts: str):
    """Skip unless `../shared/data/<parts>` exists."""
    path = shared_data_path(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"needs the shared dataset at {path}")
