"""Read-only views of run folders for the dashboard (finished results, sweeps, benchmarks), background tasks.

Nothing here trains: fine-tuning and sweeps run as ``core.runs.jobs`` workers. ``BackgroundTask`` runs a short
measurement (e.g. :func:`core.training.benchmark.benchmark`, which has no job form) in a daemon thread so a
UI can poll it without blocking.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.io.paths import cache_dir
from core.runs.folders import read_json, runs_root

__all__ = [
    "BackgroundTask",
    "benchmarks_root",
    "finished_results",
    "list_benchmarks",
    "read_json",
    "run_benchmark_to_folder",
    "sweep_view",
]


def _registry_layers(model: str) -> int | None:
    """Depth L of a registry model or a local model folder (None if unknown)."""
    from core.errors import LabError
    from core.models.registry import MODELS, resolve_model

    spec = MODELS.get(model)
    if spec is None and Path(model).is_dir():  # read its config.json; no hub lookup
        try:
            spec = resolve_model(model)
        except LabError:
            return None
    return spec.n_layers if spec is not None else None


def finished_results(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Finished fine-tunes (own runs and each point of a sweep) with their ``result.json``, newest first."""
    root = Path(root) if root is not None else runs_root()
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for run in sorted(root.iterdir(), reverse=True):
        if not run.is_dir() or run.name.startswith("."):
            continue
        spec = read_json(run / "config.json") or {}
        if spec.get("kind") == "finetune":
            candidates = [(run, run.name)]
        elif spec.get("kind") == "sweep":
            subs = sorted(run.glob("p*/result.json"), key=lambda q: -int(q.parent.name[1:] or 0))
            candidates = [(q.parent, f"{run.name} / {q.parent.name}") for q in subs]
        else:
            continue
        pre = read_json(run / "pretrained_convexity.json") or {}
        for folder, label in candidates:
            result = read_json(folder / "result.json")
            if not result:
                continue
            p = result.get("prune_point")
            n = pre.get("n_layers") or _registry_layers(str(result.get("model")))
            if (read_json(folder / "config.json") or {}).get("config", {}).get(
                "prune_point"
            ) is None and spec.get("kind") == "finetune":
                n = p  # a full-model run
            out.append(
                {
                    "id": label,
                    "path": str(folder),
                    "run": str(run),
                    "pruned": p is not None and n is not None and p < n,
                    "result": result,
                    "label": f"{label} · {result.get('task')} · p={p}/{n} · "
                    f"acc {float(result.get('best_accuracy', float('nan'))):.3f}",
                }
            )
    return out


def sweep_view(run: str | Path) -> dict[str, Any] | None:
    """A sweep's rows, suggested point and pretrained curves (None if it has no results yet)."""
    run = Path(run)
    res = read_json(run / "results.json")
    pre = read_json(run / "pretrained_convexity.json")
    if not res or not res.get("rows"):
        return None
    spec = read_json(run / "config.json") or {}
    cfg = spec.get("config", {})
    benches = {}
    for path in run.glob("benchmark_p*.json"):
        data = read_json(path)
        if data:
            benches[int(path.stem.split("_p")[-1])] = data
    return {
        "rows": sorted(res["rows"], key=lambda r: r["prune_point"]),
        "suggested": res.get("suggested"),
        "task": cfg.get("task", res.get("task", "words")),
        "fraction": res.get("fraction", cfg.get("fraction")),
        "pretrained": (pre or {}).get("curves") or res.get("pretrained_convexity"),
        "benchmarks": benches,
    }


def benchmarks_root() -> Path:
    """``cache_dir()/benchmarks``, created if missing."""
    root = cache_dir() / "benchmarks"
    root.mkdir(parents=True, exist_ok=True)
    return root


def list_benchmarks(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Saved benchmarks (dashboard ones and each sweep's ``benchmark_p*.json``), newest first."""
    out = []
    base = Path(root) if root is not None else benchmarks_root()
    for folder in sorted(base.iterdir(), reverse=True) if base.is_dir() else []:
        data = read_json(folder / "benchmark.json")
        if data:
            out.append({"id": folder.name, "path": str(folder / "benchmark.json"), "data": data})
    runs = runs_root() if root is None else base.parent / "runs"
    for path in sorted(runs.glob("*/benchmark_p*.json"), reverse=True) if runs.is_dir() else []:
        data = read_json(path)
        if data:
            out.append({"id": f"{path.parent.name} / {path.stem}", "path": str(path), "data": data})
    return out


def run_benchmark_to_folder(model: str, prune_point: int, **kwargs: Any) -> Path:
    """Run :func:`core.benchmark.benchmark` and save it under ``benchmarks_root()``; returns the folder."""
    from core.training.benchmark import benchmark, save_benchmark

    result = benchmark(model, prune_point, **kwargs)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = benchmarks_root() / f"{stamp}-{Path(model).name}-p{prune_point}"
    folder.mkdir(parents=True, exist_ok=True)
    save_benchmark(result, folder)
    return folder


class BackgroundTask:
    """One function running in a daemon thread; ``state`` is running/done/failed, ``result``/``error`` hold the outcome."""

    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        self.name = name
        self.state = "running"
        self.result: Any = None
        self.error: str | None = None
        self.started = time.time()
        self.finished: float | None = None
        self._thread = threading.Thread(target=self._body, args=(fn,), daemon=True, name=name)
        self._thread.start()

    def _body(self, fn: Callable[[], Any]) -> None:
        """Thread body: record the result or the error."""
        try:
            self.result = fn()
            self.state = "done"
        except Exception as exc:  # reported to the UI, not raised in a thread nobody joins
            self.error = f"{type(exc).__name__}: {exc}"
            self.trace = traceback.format_exc()
            self.state = "failed"
        finally:
            self.finished = time.time()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (tests)."""
        self._thread.join(timeout)

    @property
    def seconds(self) -> float:
        """Seconds since start (until finished)."""
        return (self.finished or time.time()) - self.started
