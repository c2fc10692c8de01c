"""The package's layers import one way (CONTRIBUTING.md, "Where things go"), checked with `ast` over every module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from testing_utils import REPO_ROOT

PACKAGE = REPO_ROOT / "hf_attn_at"  # read, not imported: a violation that makes an import cycle still reports


def imports_of(path: Path, root: Path) -> tuple[str, list[str]]:
    """The dotted name of the module at `path` (under the package folder `root`) and the absolute names of what it
    imports (relative imports resolved; `from x import y` counts as `x` and `x.y`)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    is_package = parts[-1] == "__init__"
    module = ".".join(parts[:-1] if is_package else parts)
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names += [target, *(f"{target}.{alias.name}" for alias in node.names)]
    return module, names


def root_imports(path: Path, root: Path) -> list[str]:
    """What the module at `path` takes from the package's `__init__` itself: `import hf_attn_at`, and the names of
    `from hf_attn_at import X` / `from . import X` (at the top level) that are not modules of the package."""
    module, _ = imports_of(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name == root.name]
        elif isinstance(node, ast.ImportFrom):
            depth = len(package.split(".")) - node.level + 1 if node.level else 0
            if (node.level and depth == 1 and not node.module) or (not node.level and node.module == root.name):
                found += [f"{root.name}.{alias.name}" for alias in node.names
                          if not ((root / alias.name).is_dir() or (root / f"{alias.name}.py").is_file())]
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    """Every import of the package at `root` that breaks a rule, as `module imports name (rule)`."""
    top = root.name
    found = []
    for path in sorted(root.rglob("*.py")):
        module, names = imports_of(path, root)
        entry_point = path.name == "__main__.py"  # a command line: part of the CLI layer, never imported
        for name in names:
            internal = _within(name, top)
            rule = None
            if _within(module, f"{top}.models"):
                family = ".".join(module.split(".")[:3])
                if internal and not _within(name, family):
                    rule = "a model imports only its sibling modules"
            elif module == f"{top}.perturbations":
                root_name = name.split(".")[0]
                if internal or (root_name != "torch" and root_name not in sys.stdlib_module_names):
                    rule = "perturbations import only torch"
            elif module == f"{top}.methods":
                if internal and not _within(name, f"{top}.perturbations"):
                    rule = "the methods registry imports only perturbations"
            elif _within(module, f"{top}.integrations"):
                allowed = (f"{top}.integrations", f"{top}.methods", f"{top}.perturbations", f"{top}.training_args")
                if internal and not any(_within(name, prefix) for prefix in allowed):
                    rule = "integrations only plumb: methods, perturbations and training arguments"
            elif _within(module, f"{top}.data") and not entry_point:
                if _within(name, f"{top}.arguments"):
                    rule = "data does not import arguments"
            if rule is None and _within(name, f"{top}.cli") and not _within(module, f"{top}.cli") and not entry_point:
                rule = "nothing imports cli"
            if rule is not None:
                found.append(f"{module} imports {name} ({rule})")
        if module != top:
            found += [f"{module} imports {name} (nothing imports the package's __init__)"
                      for name in root_imports(path, root)]
    return sorted(set(found))


def test_the_package_follows_the_import_rules():
    assert violations(PACKAGE) == []


@pytest.mark.parametrize(
    ("file", "source", "rule"),
    [
        ("models/bilstm_attention/modeling_x.py", "from ...trainer import AdversarialTrainer",
         "a model imports only its sibling modules"),
        ("models/bilstm_attention/modeling_x.py", "import hf_attn_at.data", "a model imports only its sibling modules"),
        ("perturbations.py", "import numpy as np", "perturbations import only torch"),
        ("perturbations.py", "from .methods import METHODS", "perturbations import only torch"),
        ("methods.py", "from .trainer import AdversarialTrainer", "the methods registry imports only perturbations"),
        ("integrations/transformer_attention.py", "from ..models import bilstm_attention",
         "integrations only plumb: methods, perturbations and training arguments"),
        ("data/loading.py", "from ..arguments import DataArguments", "data does not import arguments"),
        ("data/loading.py", "from hf_attn_at import arguments", "data does not import arguments"),
        ("experiment.py", "from .cli.train import main", "nothing imports cli"),
        ("interpret/report.py", "from .. import cli", "nothing imports cli"),
        ("model_card.py", "from . import __version__", "nothing imports the package's __init__"),
        ("interpret/report.py", "from hf_attn_at import AdversarialTrainer", "nothing imports the package's __init__"),
        ("interpret/inputs.py", "import hf_attn_at", "nothing imports the package's __init__"),
    ],
)
def test_each_rule_catches_a_violation(tmp_path, file, source, rule):
    root = tmp_path / "hf_attn_at"
    allowed = {
        "models/bilstm_attention/modeling_ok.py": "import torch\nfrom .configuration_x import XConfig",
        "perturbations.py": "import math\nimport torch",
        "methods.py": "from .perturbations import random_perturbation",
        "integrations/transformer_attention.py": "from ..methods import METHODS\nfrom ..training_args import X",
        "data/__main__.py": "from ..arguments import CustomDataArguments\nfrom ..cli import main",
        "cli/main.py": "from .train import main\nfrom ..arguments import DataArguments",
        "arguments.py": "from dataclasses import dataclass",
    }
    for name, text in {**allowed, file: source}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    module = ".".join(["hf_attn_at", *Path(file).with_suffix("").parts])
    found = violations(root)
    assert found and all(line.startswith(f"{module} imports") and line.endswith(f"({rule})") for line in found), found
