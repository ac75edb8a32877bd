"""core/'s layering: each subpackage imports only itself and the ones below it, never Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "core"
# Bottom to top; a subpackage may import those on its own level or lower.
LAYERS = [
    {"errors", "_exports", "io"},
    {"geometry"},
    {"models"},
    {"data"},
    {"results"},
    {"training"},
    {"runs"},
    {"cli"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}


def _unit(path: Path) -> str:
    """The top-level unit of core/ a file belongs to (subpackage or module name)."""
    return path.relative_to(CORE).parts[0].removesuffix(".py")


def _core_imports(path: Path) -> set[str]:
    """Top-level core units imported anywhere in a file (lazy function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "core":
                names = [f"core.{a.name}" for a in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("core.")}
    return found


FILES = sorted(p for p in CORE.rglob("*.py") if _unit(p) not in {"__init__", "__main__"})


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_imports_only_go_downward(path: Path) -> None:
    unit = _unit(path)
    assert unit in LEVEL, f"{unit} is not placed in LAYERS"
    upward = {u for u in _core_imports(path) if LEVEL.get(u, 99) > LEVEL[unit]}
    assert not upward, f"{path.relative_to(CORE)} imports {sorted(upward)} from above its layer"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_never_imports_streamlit(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "import streamlit" not in text and "from streamlit" not in text


def test_subpackages_export_their_public_names() -> None:
    import importlib

    for unit in sorted(LEVEL):
        if not (CORE / unit / "__init__.py").exists():
            continue
        package = importlib.import_module(f"core.{unit}")
        assert package.__all__, f"core.{unit} exports nothing"
        for name in package.__all__:
            assert getattr(package, name) is not None


ALL_PY = sorted(
    p
    for folder in ("core", "pages", "bench", "scripts")
    for p in (CORE.parent / folder).rglob("*.py")
) + [CORE.parent / "app.py"]


def _private_imports(path: Path) -> list[str]:
    """``from core... import _name`` statements: another module's private names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core"):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


@pytest.mark.parametrize("path", ALL_PY, ids=lambda p: str(p.relative_to(CORE.parent)))
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    assert not _private_imports(path), f"private names imported: {_private_imports(path)}"
