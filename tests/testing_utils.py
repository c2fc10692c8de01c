"""Shared test helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_data_path(*parts: str) -> Path:
    return SHARED_DATA.joinpath(*parts)


def require_shared_data(*parts: str):
    """Skip unless `../shared/data/<parts>` exists (CI always has it)."""
    path = shared_data_path(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"needs the shared dataset at {path}")


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that imports hf_attn_at from this checkout, offline."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT), **extra}
    env.setdefault("PYTHON", sys.executable)
    return env
