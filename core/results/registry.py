"""The kinds of stored result as one registry table of specs.

``RESULT_KINDS`` maps a kind's name to its spec: the engine module whose ``ENGINE_VERSION`` versions
its entries and the module that holds its parts (:class:`KindParts`: the schema its ``data`` parses
as, the request that keys it, compute, encode and decode). The store reads kinds' names and schemas
here; a kind module is imported when one of its entries is first read or computed, so importing the
store stays light. Adding a kind is one module under ``core/results/kinds/`` ending in ``PARTS`` and
one line in ``RESULT_KINDS``; :func:`check_kinds` refuses an entry missing any part.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from core.errors import LabError, ResultError

__all__ = [
    "RESULT_KINDS",
    "Computed",
    "KindParts",
    "ResultKind",
    "check_kinds",
    "check_parts",
    "result_kind",
]


@dataclass(frozen=True)
class Computed:
    """What a kind's compute or encode gives the store: the entry's JSON ``data``, its ``arrays`` and
    the settings the engine reported (they go into the provenance)."""

    data: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KindParts:
    """Everything a kind's module defines: ``schema(data)`` parses an entry's JSON part into the
    kind's typed record (built from the engine's own record types; RecordError when it is not one),
    ``request(...)`` the key-relevant settings, ``compute(...)`` runs the engine and encodes its
    result, ``encode(result)`` the engine's result as a :class:`Computed`, ``decode(entry)`` a stored
    entry back as the engine's result."""

    schema: Callable[[Any], object]
    request: Callable[..., dict[str, Any]]
    compute: Callable[..., Computed]
    encode: Callable[..., Computed]
    decode: Callable[[Any], Any]


@dataclass(frozen=True)
class ResultKind:
    """Registry entry: one kind of stored result.

    ``engine``: the module whose ``ENGINE_VERSION`` enters the kind's keys (None: version "1");
    ``module``: the module holding the kind's ``PARTS``; ``sampled``: listings show how its curves
    were sampled (k, exact or sampled pairs).
    """

    name: str
    engine: str | None
    module: str
    sampled: bool = False

    @property
    def parts(self) -> KindParts:
        """The kind's parts (its module is imported on first use)."""
        return _parts(self.module)

    def check_data(self, data: Any) -> str | None:
        """Why ``data`` is not what this kind's readers expect, or None when it is."""
        try:
            self.parts.schema(data)
        except LabError as exc:
            return str(exc)
        return None


@functools.cache
def _parts(module: str) -> KindParts:
    """``PARTS`` of a kind module."""
    return importlib.import_module(module).PARTS


def _table(*kinds: ResultKind) -> dict[str, ResultKind]:
    """Name -> spec, in registration order (the order listings and ``--kind`` choices show)."""
    return {kind.name: kind for kind in kinds}


KINDS_MODULE = "core.results.kinds"

RESULT_KINDS: dict[str, ResultKind] = _table(
    ResultKind("convexity", "core.geometry.convexity", f"{KINDS_MODULE}.convexity", sampled=True),
    ResultKind("criteria", "core.geometry.criteria", f"{KINDS_MODULE}.criteria"),
    ResultKind("umap", "core.geometry.projections", f"{KINDS_MODULE}.umap"),
    ResultKind("finetune-convexity", "core.geometry.convexity", f"{KINDS_MODULE}.run_curves"),
    ResultKind("grid", None, f"{KINDS_MODULE}.grid"),
    ResultKind("series", "core.geometry.convexity", f"{KINDS_MODULE}.series"),
    ResultKind("aligned-umap", "core.geometry.aligned", f"{KINDS_MODULE}.aligned_umap"),
    ResultKind("diagnostics", "core.geometry.diagnostics", f"{KINDS_MODULE}.diagnostics"),
    ResultKind("curve-statistics", "core.geometry.curve_statistics", f"{KINDS_MODULE}.statistics"),
    ResultKind("plans-table", f"{KINDS_MODULE}.plans", f"{KINDS_MODULE}.plans"),
)


def result_kind(name: Any) -> ResultKind:
    """The spec of kind ``name``; ResultError (one line, naming the kinds) for any other."""
    spec = RESULT_KINDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ResultError(f"unknown result kind {name!r}; kinds: {', '.join(RESULT_KINDS)}")
    return spec


def check_kinds(kinds: Mapping[str, ResultKind] = RESULT_KINDS) -> None:
    """Refuse (ResultError) an entry missing a part: its name (the module's ``KIND`` too), its module
    and ``PARTS`` there, every part a callable, its engine module importable."""
    for name, spec in kinds.items():
        if spec.name != name:
            raise ResultError(f"result kind {name!r} is registered as {spec.name!r}")
        if not spec.module:
            raise ResultError(f"result kind {name!r} lacks its module")
        try:
            module = importlib.import_module(spec.module)
            if spec.engine is not None:
                importlib.import_module(spec.engine)
        except ImportError as exc:
            raise ResultError(f"result kind {name!r}: {exc}") from None
        if getattr(module, "KIND", None) != name:
            found = getattr(module, "KIND", None)
            raise ResultError(f"result kind {name!r}: its module names itself {found!r}")
        check_parts(name, getattr(module, "PARTS", None))


def check_parts(name: str, parts: Any) -> None:
    """Refuse (ResultError) a kind module's ``PARTS`` that is not a :class:`KindParts` of callables."""
    if not isinstance(parts, KindParts):
        raise ResultError(f"result kind {name!r}: its module defines no PARTS")
    missing = [f.name for f in fields(parts) if not callable(getattr(parts, f.name))]
    if missing:
        raise ResultError(f"result kind {name!r} lacks {', '.join(missing)}")
