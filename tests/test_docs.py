"""The repository's Markdown: every relative link points at a file or folder that exists."""

import re

import pytest
from testing_utils import REPO_ROOT

PAGES = sorted(
    path for path in [*REPO_ROOT.glob("*.md"), *(REPO_ROOT / "docs").rglob("*.md"), *(REPO_ROOT / "model_cards").rglob("*.md")]
    if not path.relative_to(REPO_ROOT).as_posix().startswith("docs/runs")  # run records: no links written by hand
)


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_relative_links_resolve(page):
    targets = [match.split("#")[0] for match in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))]
    missing = [t for t in targets if t and not t.startswith(("http://", "https://", "mailto:")) and not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(REPO_ROOT)} links to missing {missing}"
