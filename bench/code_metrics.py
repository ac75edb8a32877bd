"""Code-shape figures of a checkout (core/ + pages/): long modules, long functions, private imports,
import circles and the files that name a run-folder file; prints them, asserts nothing.

    python bench/code_metrics.py                 # this checkout
    python bench/code_metrics.py /tmp/base       # another checkout (e.g. git worktree add /tmp/base REV)
    python bench/code_metrics.py A B             # two checkouts side by side (before / after)

Counted by reading the source (``ast``), never by importing it, so any revision can be measured:

- modules over 500 lines: ``wc -l`` of each ``.py`` file;
- the 10 longest functions: ``end_lineno - lineno + 1`` of every function and method;
- cross-module private imports: ``from core|pages... import _name``, and ``mod._name`` on a module or
  name imported from ``core``/``pages`` (what tests/test_layout.py forbids);
- import circles: strongly connected groups (Tarjan) of the module graph of ``core`` with every import
  edge, function-level ones too (a lazy import that hides a circle is still a circle);
- files naming a run-folder file: string constants (docstrings left out) equal to a run folder's file
  name, or starting ``benchmark_p``, outside ``core/io/run_folder.py``; ``core/models`` is left out
  (its ``config.json`` is a Hugging Face model's file, not a run's).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

RUN_FILES = {
    "config.json",
    "status.json",
    "metrics.jsonl",
    "result.json",
    "results.json",
    "results.csv",
    "convexity.json",
    "pretrained_convexity.json",
    "benchmark.json",
    "benchmark.csv",
    "state.pt",
    "train.log",
    "worker.out",
    "spawn.json",
    "cancel.request",
    ".status.lock",
}
LONG_MODULE = 500


def sources(root: Path) -> list[Path]:
    """The .py files of core/ and pages/ under a checkout."""
    return sorted(p for folder in ("core", "pages") for p in (root / folder).rglob("*.py"))


def module_name(root: Path, path: Path) -> str:
    """``core.runs.lifecycle`` for ``core/runs/lifecycle.py`` (a package: its ``__init__``'s name)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def long_modules(root: Path) -> list[tuple[str, int]]:
    """(file, lines) of every module over LONG_MODULE lines, longest first."""
    found = []
    for path in sources(root):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > LONG_MODULE:
            found.append((str(path.relative_to(root)), n))
    return sorted(found, key=lambda t: -t[1])


def longest_functions(root: Path, top: int = 10) -> list[tuple[str, int]]:
    """(file:function, lines) of the ``top`` longest functions."""
    found = []
    for path in sources(root):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                found.append((f"{path.relative_to(root)}:{node.name}", n))
    return sorted(found, key=lambda t: -t[1])[:top]


def private_imports(root: Path) -> list[str]:
    """Every use of another module's private name (see the module docstring)."""
    found = []
    for path in sources(root):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in ("core", "pages"):
                    for a in node.names:
                        names.add(a.asname or a.name)
                        if a.name.startswith("_") and not a.name.startswith("__"):
                            found.append(f"{path.relative_to(root)}: {node.module}.{a.name}")
            elif isinstance(node, ast.Import):
                names |= {a.asname for a in node.names if a.asname and a.name.startswith("core.")}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in names
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{path.relative_to(root)}: {node.value.id}.{node.attr}")
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """core module -> the core modules it imports anywhere in its file."""
    mods = {module_name(root, p): p for p in sources(root) if p.parts[len(root.parts)] == "core"}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    out.append(sorted(group))
    return sorted(out)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def run_file_namers(root: Path) -> dict[str, list[str]]:
    """file -> the run-folder file names its code spells out (see the module docstring)."""
    out: dict[str, list[str]] = {}
    for path in sources(root):
        rel = str(path.relative_to(root))
        if rel == "core/io/run_folder.py" or rel.startswith("core/models/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        names = set()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
            ):
                v = node.value
                if v in RUN_FILES or v.startswith("benchmark_p"):
                    names.add(v)
        if names:
            out[rel] = sorted(names)
    return out


def measure(root: Path) -> dict[str, object]:
    """Every figure of one checkout."""
    return {
        "long_modules": long_modules(root),
        "longest_functions": longest_functions(root),
        "private_imports": private_imports(root),
        "circles": circles(import_graph(root)),
        "run_file_namers": run_file_namers(root),
    }


def report(root: Path, m: dict[str, object]) -> None:
    """Print one checkout's figures."""
    print(f"== {root}")
    mods = m["long_modules"]
    print(f"modules over {LONG_MODULE} lines: {len(mods)}")
    for name, n in mods:
        print(f"  {n:5d}  {name}")
    print("10 longest functions:")
    for name, n in m["longest_functions"]:
        print(f"  {n:5d}  {name}")
    print(f"cross-module private imports: {len(m['private_imports'])}")
    for line in m["private_imports"]:
        print(f"  {line}")
    print(f"import circles (core, lazy imports included): {len(m['circles'])}")
    for group in m["circles"]:
        print(f"  {' <-> '.join(group)}")
    namers = m["run_file_namers"]
    print(f"files naming a run-folder file (besides core/io/run_folder.py): {len(namers)}")
    for name, files in namers.items():
        print(f"  {name}: {', '.join(files)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="*", type=Path, default=[Path(__file__).resolve().parents[1]])
    args = ap.parse_args(argv)
    results = [(root, measure(root)) for root in args.roots]
    for root, m in results:
        report(root, m)
    if len(results) == 2:
        (a, ma), (b, mb) = results
        print(f"== before ({a}) -> after ({b})")
        for key, label in (
            ("long_modules", f"modules over {LONG_MODULE} lines"),
            ("private_imports", "cross-module private imports"),
            ("circles", "import circles"),
            ("run_file_namers", "files naming a run-folder file"),
        ):
            print(f"  {label}: {len(ma[key])} -> {len(mb[key])}")
        print(
            f"  longest function: {ma['longest_functions'][0][1]} -> "
            f"{mb['longest_functions'][0][1]} lines"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
