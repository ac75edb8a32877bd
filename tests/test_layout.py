"""core/'s layering: each subpackage imports only itself and the ones below it, never Streamlit.
Test modules share helpers through tests/helpers, never by importing each other."""

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


# core/runs/ bottom to top: a module imports only modules before it here (lazily too), so no circle.
RUNS_ORDER = [
    "folders",
    "metrics",
    "spec",
    "records",
    "queue",
    "views",
    "comparison",
    "worker",
    "local",
    "ray_executor",
    "parallel",
    "executors",
    "lifecycle",
    "grid_runs",
]


def _runs_imports(path: Path) -> set[str]:
    """The core.runs modules a file imports anywhere (``from core.runs import x`` names them too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "core.runs":
                names = [f"core.runs.{a.name}" for a in node.names]
        found |= {n.split(".")[2] for n in names if n.startswith("core.runs.")}
    return found & set(RUNS_ORDER)


def test_runs_modules_are_all_placed_in_the_order() -> None:
    modules = {p.stem for p in (CORE / "runs").glob("*.py")} - {"__init__"}
    assert modules == set(RUNS_ORDER)


@pytest.mark.parametrize("name", RUNS_ORDER)
def test_runs_modules_import_only_modules_below_them(name: str) -> None:
    below = set(RUNS_ORDER[: RUNS_ORDER.index(name)])
    imported = _runs_imports(CORE / "runs" / f"{name}.py") - {name}
    assert imported <= below, (
        f"core/runs/{name}.py imports {sorted(imported - below)} from above it"
    )


def test_the_runs_order_check_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    """The check can fail: a function-level import of a higher module (a hidden circle) is seen."""
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from core.runs.lifecycle import cancel\n", encoding="utf-8")
    assert _runs_imports(path) == {"lifecycle"}


def test_the_private_names_check_sees_attribute_use(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text("from core.runs import worker\nworker._overdue(0, None)\n", encoding="utf-8")
    assert _private_imports(path) == ["worker._overdue"]


ALL_PY = sorted(
    p
    for folder in ("core", "pages", "bench", "scripts")
    for p in (CORE.parent / folder).rglob("*.py")
) + [CORE.parent / "app.py"]


def _private_imports(path: Path) -> list[str]:
    """Another module's private names: ``from core... import _name`` (or ``from pages...``), and
    ``module._name`` on a module imported by name (``from core.runs import worker; worker._x``)."""
    found, modules = [], set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0]
            in (
                "core",
                "pages",
            )
        ):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            modules |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.asname and a.name.startswith("core.")}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", ALL_PY, ids=lambda p: str(p.relative_to(CORE.parent)))
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    assert not _private_imports(path), f"private names imported: {_private_imports(path)}"


UI_FILES = sorted(
    p for folder in ("pages", "pages/parts") for p in (CORE.parent / folder).glob("*.py")
) + [CORE.parent / "app.py"]


def _package_exports(package: str) -> set[str]:
    """What ``from core.<package> import name`` may name: its ``__all__`` and its public submodules."""
    import importlib

    folder = CORE / package
    modules = {p.stem for p in folder.glob("*.py")} | {
        p.name for p in folder.iterdir() if p.is_dir()
    }
    names = set(getattr(importlib.import_module(f"core.{package}"), "__all__", ()))
    return names | {m for m in modules if not m.startswith("_")}


def _non_public_imports(path: Path) -> list[str]:
    """Imports of a UI file that reach past core's package API: ``core.<pkg>.<module>``, a name a
    package does not export, or any name starting with ``_``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [
                a.name for a in node.names if a.name.count(".") >= 2 and a.name[:5] == "core."
            ]
            found += [a.name for a in node.names if a.name.split(".")[-1].startswith("_")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [a.name for a in node.names]
            found += [f"{node.module}.{n}" for n in names if n.startswith("_")]
            parts = node.module.split(".")
            if parts[0] != "core" or len(parts) < 2:
                continue
            if len(parts) > 2:
                found.append(f"from {node.module} import {', '.join(names)}")
            elif (CORE / parts[1] / "__init__.py").exists():
                exported = _package_exports(parts[1])
                found += [f"{node.module}.{n}" for n in names if n not in exported]
    return found


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: str(p.relative_to(CORE.parent)))
def test_pages_import_core_packages_public_names_only(path: Path) -> None:
    assert not _non_public_imports(path), f"imports past core's API: {_non_public_imports(path)}"


def test_the_public_names_check_sees_deep_private_and_unexported_imports(tmp_path: Path) -> None:
    """The check can fail: a module path, an unexported name and a private name are each seen."""
    path = tmp_path / "probe.py"
    path.write_text(
        "import core.results.kinds\n"
        "from core.results.kinds import convexity_entry\n"
        "from core.results import not_a_name, load_result\n"
        "from pages.parts.cached import _memo\n"
        "def f():\n    from core.runs.lifecycle import cancel\n",
        encoding="utf-8",
    )
    assert _non_public_imports(path) == [
        "core.results.kinds",
        "from core.results.kinds import convexity_entry",
        "core.results.not_a_name",
        "pages.parts.cached._memo",
        "from core.runs.lifecycle import cancel",
    ]


TESTS = CORE.parent / "tests"
TEST_MODULES = sorted(TESTS.glob("test_*.py"))
HELPERS = sorted(p.stem for p in (TESTS / "helpers").glob("*.py") if p.stem != "__init__")


def _imported_modules(path: Path) -> set[str]:
    """Dotted names of the modules a file imports (function-level imports and ``from pkg import mod`` too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = (("tests." if node.level else "") + (node.module or "")).rstrip(".")
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
    return found


def _test_module_imports(path: Path) -> list[str]:
    """The test modules (``tests.test_*``) a file imports."""
    return sorted(m for m in _imported_modules(path) if m.startswith("tests.test_"))


@pytest.mark.parametrize(
    "path",
    TEST_MODULES + sorted((TESTS / "helpers").glob("*.py")) + [TESTS / "conftest.py"],
    ids=lambda p: str(p.relative_to(CORE.parent)),
)
def test_no_test_module_imports_another(path: Path) -> None:
    """Shared helpers live in tests/helpers, so a test module can change without breaking another."""
    assert not _test_module_imports(path), f"imports test modules: {_test_module_imports(path)}"


def test_every_helper_module_is_used_by_a_test() -> None:
    """No dead helper: each module of tests/helpers is imported by a test module or conftest.py."""
    used = set().union(*(_imported_modules(p) for p in TEST_MODULES + [TESTS / "conftest.py"]))
    assert HELPERS and not [h for h in HELPERS if f"tests.helpers.{h}" not in used]


def test_the_test_import_check_sees_every_form(tmp_path: Path) -> None:
    """The check can fail: plain, from-, relative and function-level imports of a test module."""
    path = tmp_path / "probe.py"
    path.write_text(
        "import tests.test_a\nfrom tests.test_b import x\nfrom tests import test_c\n"
        "from .test_d import y\ndef f():\n    from tests.helpers.builders import z\n",
        encoding="utf-8",
    )
    found = _test_module_imports(path)
    assert {"tests.test_a", "tests.test_b", "tests.test_c", "tests.test_d"} <= set(found)
    assert "tests.helpers.builders" in _imported_modules(path)


def _tuple_sizes(node: ast.expr | None) -> list[int]:
    """The element counts of fixed-size ``tuple[...]`` annotations in a return annotation (a union's
    members too; ``tuple[X, ...]`` is of any length and not counted)."""
    if node is None:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _tuple_sizes(ast.parse(node.value, mode="eval").body)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _tuple_sizes(node.left) + _tuple_sizes(node.right)
    if isinstance(node, ast.Subscript):
        name = (
            node.value.attr
            if isinstance(node.value, ast.Attribute)
            else getattr(node.value, "id", "")
        )
        if name in ("tuple", "Tuple"):
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if any(isinstance(i, ast.Constant) and i.value is Ellipsis for i in items):
                return []
            return [len(items)]
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if name in ("Optional", "Union"):
            return [n for i in inner for n in _tuple_sizes(i)]
    return []


def _wide_tuple_functions(path: Path, root: Path = CORE.parent) -> list[str]:
    """``file:function`` of each public function (methods and nested ones too) annotated to return a
    tuple of 3 or more elements (``file`` relative to ``root``)."""
    rel = path.relative_to(root).as_posix()
    return [
        f"{rel}:{node.name}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
        and any(n >= 3 for n in _tuple_sizes(node.returns))
    ]


def test_no_public_function_returns_a_tuple_of_three_or_more() -> None:
    """Three or more values travel as a frozen record with named fields, not a tuple: in core, the
    pages, the app and the bench scripts."""
    root = CORE.parent
    files = [*CORE.rglob("*.py"), *(root / "pages").rglob("*.py"), *(root / "bench").rglob("*.py")]
    found = {f for p in sorted(files + [root / "app.py"]) for f in _wide_tuple_functions(p)}
    assert found == set(), f"return a record instead: {sorted(found)}"


def test_the_tuple_check_sees_every_form(tmp_path: Path) -> None:
    """The check can fail: plain, quoted, optional and method annotations are seen; pairs,
    ``tuple[X, ...]`` and private functions pass."""
    path = tmp_path / "probe.py"
    path.write_text(
        "def a() -> tuple[int, int, int]: ...\n"
        "def b() -> 'tuple[int, str, float, int]': ...\n"
        "def c() -> tuple[int, int, int] | None: ...\n"
        "class K:\n    def d(self) -> typing.Tuple[int, int, int]: ...\n"
        "def e() -> tuple[int, int]: ...\n"
        "def f() -> tuple[int, ...]: ...\n"
        "def _g() -> tuple[int, int, int]: ...\n",
        encoding="utf-8",
    )
    assert _wide_tuple_functions(path, tmp_path) == [
        "probe.py:a",
        "probe.py:b",
        "probe.py:c",
        "probe.py:d",
    ]


def _error_classes(path: Path) -> list[str]:
    """Names of the exception classes (``...Error``) a module defines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name.endswith("Error")
    ]


def test_each_error_class_is_defined_once() -> None:
    """One class per error name (in ``core/errors.py`` or its own module): a second definition of the
    same name is a different class, which an ``except`` of the first does not catch."""
    seen: dict[str, list[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        for name in _error_classes(path):
            seen.setdefault(name, []).append(path.relative_to(CORE.parent).as_posix())
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    assert twice == {}, f"defined more than once: {twice}"


def _module_name(path: Path) -> str:
    """Dotted name of a core file (a package's ``__init__`` is the package)."""
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_block(node: ast.AST) -> bool:
    """Whether ``node`` is an ``if TYPE_CHECKING:`` block (its imports never run)."""
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _run_time_imports(path: Path, modules: set[str]) -> set[str]:
    """The core modules (of ``modules``, packages left out) a file imports when it runs: at its top
    and lazily in functions, not under ``TYPE_CHECKING``."""
    found: set[str] = set()
    stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while stack:
        node = stack.pop()
        if _type_checking_block(node):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        stack.extend(ast.iter_child_nodes(node))
    return found & modules


def _import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other in a circle (strongly connected, 2 or more)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_core_modules_import_each_other_in_a_circle() -> None:
    """Not even lazily: a circle hidden in a function import still ties both modules together."""
    files = {_module_name(p): p for p in CORE.rglob("*.py") if p.name != "__init__.py"}
    graph = {name: _run_time_imports(path, set(files)) for name, path in files.items()}
    assert _import_cycles(graph) == []


def test_the_circle_check_sees_a_lazy_circle_and_skips_type_checking(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import core.b\n", encoding="utf-8")
    b.write_text("def f():\n    from core.a import x\n", encoding="utf-8")
    graph = {"core.a": _run_time_imports(a, {"core.a", "core.b"})}
    graph["core.b"] = _run_time_imports(b, {"core.a", "core.b"})
    assert _import_cycles(graph) == [["core.a", "core.b"]]
    b.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import core.a\n")
    graph["core.b"] = _run_time_imports(b, {"core.a", "core.b"})
    assert _import_cycles(graph) == []
