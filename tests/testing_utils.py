import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# `../shared/data` relative to the repository root; a git worktree elsewhere can point at it with SHARED_DATA_DIR.
SHARED_DATA = Path(os.environ.get("SHARED_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def require_shared_data(name: str):
    """Skip unless the shared data set `name` (`../shared/data/<name>`) exists."""
    path = SHARED_DATA / name
    return pytest.mark.skipif(not path.exists(), reason=f"needs the shared data set at {path}")
