"""Which executor runs a run, and how: :class:`ExecutorSpec` and the environment's default choice.

The lowest module of :mod:`core.runs` besides the folder helpers: launchers, executors and the run
lifecycle all name an executor by its spec, and the spec is stored in the run's ``config.json``
(:class:`~core.io.run_folder.RunSpec` ``executor``), so whoever reads the run later drives, cancels
or lists it with the executor that started it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from core.errors import RunError
from core.io.records import Record
from core.io.run_folder import RunSpec

__all__ = [
    "ADDRESS_RE",
    "EXECUTORS",
    "RESULTS_MODES",
    "ExecutorSpec",
    "default_address",
    "executor_spec",
    "run_executor",
]

EXECUTORS = ("local", "ray")
RESULTS_MODES = ("auto", "shared", "object-store")
# auto | local | host:port | ray://host:port (Ray Client); nothing else reaches ray.init.
ADDRESS_RE = re.compile(r"(auto|local|(ray://)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5})")


@dataclass(frozen=True)
class ExecutorSpec(Record):
    """Which executor and how: Ray address, resources per task, retries, how results come back.

    ``num_gpus``: per task (``None``: 1 when the cluster has GPUs, else 0; 0.25 packs four small
    models on one GPU). ``results``: ``shared`` (workers write into ``$CONVEXITY_LAB_CACHE``, which must
    be the same path on every node), ``object-store`` (workers compute in a scratch folder and ship the
    run's files back; the driver writes them atomically) or ``auto`` (shared when the worker sees a
    probe file the driver wrote into the cache, else object store).
    """

    name: str = "local"
    address: str | None = None
    num_gpus: float | None = None
    num_cpus: float = 1.0
    max_retries: int = 3
    results: str = "auto"

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise RunError(f"unknown executor {self.name!r}; use one of {', '.join(EXECUTORS)}")
        if self.results not in RESULTS_MODES:
            raise RunError(f"results mode {self.results!r}: use {', '.join(RESULTS_MODES)}")
        if self.num_gpus is not None and self.num_gpus < 0 or self.num_cpus <= 0:
            raise RunError("GPUs per task must be >= 0 and CPUs per task > 0")
        if self.address and not ADDRESS_RE.fullmatch(self.address.strip()):
            raise RunError(
                f"Ray address {self.address[:80]!r}: use auto, host:6379 or ray://host:10001"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every field, ``None`` ones too (the form stored in a run's ``config.json``)."""
        return {
            "name": self.name,
            "address": self.address,
            "num_gpus": self.num_gpus,
            "num_cpus": self.num_cpus,
            "max_retries": self.max_retries,
            "results": self.results,
        }


def default_address() -> str:
    """The Ray address a launcher offers first: ``$RAY_ADDRESS``, else ``auto`` (a running cluster)."""
    return os.environ.get("RAY_ADDRESS", "").strip() or "auto"


def executor_spec(name: str | None = None, address: str | None = None, **kw: Any) -> ExecutorSpec:
    """An ExecutorSpec from explicit choices, else ``$CONVEXITY_LAB_EXECUTOR`` / ``$RAY_ADDRESS``."""
    name = name or os.environ.get("CONVEXITY_LAB_EXECUTOR", "").strip() or "local"
    if name == "ray":
        address = (address or "").strip() or os.environ.get("RAY_ADDRESS") or None
    else:
        address = None
    gpus = os.environ.get("CONVEXITY_LAB_RAY_GPUS")
    if kw.get("num_gpus") is None and gpus:
        try:
            kw["num_gpus"] = float(gpus)
        except ValueError as exc:
            raise RunError(f"CONVEXITY_LAB_RAY_GPUS={gpus!r} is not a number") from exc
    return ExecutorSpec(
        name=name, address=address, **{k: v for k, v in kw.items() if v is not None}
    )


def run_executor(spec: RunSpec | None) -> ExecutorSpec:
    """The executor a run's ``config.json`` names (a run created without one: the environment's)."""
    if spec is not None and spec.executor:
        return ExecutorSpec.from_dict(dict(spec.executor))
    return executor_spec()
