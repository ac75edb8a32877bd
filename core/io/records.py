"""Frozen dataclasses from and to JSON documents, checked field by field against their type hints.

Every record the lab stores (results, run files, sample curves) is a frozen dataclass; this one reader
turns a parsed JSON document back into it, so no record writes its own loose ``from_dict``. A field is
converted by its annotation (``int``, ``float``, ``str``, ``bool``, ``X | None``, ``tuple[X, ...]``,
``tuple[X, Y]``, ``list[X]``, ``dict[str, X]``, ``Literal[...]``, nested dataclasses, ``Any``);
unknown keys are ignored (newer writers), missing keys take the field's default (older writers), and
anything else raises :class:`~core.errors.RecordError` naming the field, so a malformed file is one
line, never a ``KeyError`` deep in a page. JSON has no tuples: they are written as lists and read
back as tuples. ``null`` in a plain ``float`` field reads as NaN (for writers that cannot write NaN).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from core.errors import RecordError

__all__ = ["Record", "check_fields", "from_dict", "to_dict"]

T = TypeVar("T")
MAX_DEPTH = 32


class Record:
    """Base of the stored frozen dataclasses: ``to_dict`` and ``from_dict`` through this module."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> typing.Self:
        """An instance from a parsed JSON document, every field checked (RecordError if not)."""
        return from_dict(cls, data)


def to_dict(record: Any) -> dict[str, Any]:
    """A dataclass as plain JSON types (tuples as lists, nested records as dicts; optional fields
    left at their ``None`` default are omitted, so a file only gains keys that carry a value)."""
    return _plain(record)


def _plain(value: Any) -> Any:
    """``value`` with dataclasses, tuples and mappings turned into dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (getattr(value, f.name) is None and f.default is None)  # unset optional: omitted
        }
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: Any, *, where: str = "") -> T:
    """An instance of the dataclass ``cls`` from ``data``, every field checked; RecordError if not."""
    return _record(cls, data, where or cls.__name__, 0)


def check_fields(
    cls: type, data: Any, *, leave_out: tuple[str, ...] = (), where: str = ""
) -> dict[str, Any]:
    """The fields of dataclass ``cls`` in ``data``, each checked as ``from_dict`` would, except those
    in ``leave_out`` (kept elsewhere, e.g. arrays stored beside a JSON part); RecordError if not."""
    return _fields(cls, data, where or cls.__name__, 0, leave_out)


def _record(cls: type[T], data: Any, where: str, depth: int) -> T:
    """One dataclass from a JSON object."""
    values = _fields(cls, data, where, depth, ())
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{where}: {exc}") from None


def _fields(
    cls: type, data: Any, where: str, depth: int, leave_out: tuple[str, ...]
) -> dict[str, Any]:
    """The converted init fields of dataclass ``cls`` found in JSON object ``data``."""
    if depth > MAX_DEPTH:
        raise RecordError(f"{where}: nested too deeply")
    if not isinstance(data, Mapping):
        raise RecordError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.name in leave_out:
            continue
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(f"{where}: missing field {f.name!r}")
            continue
        values[f.name] = _value(hints[f.name], data[f.name], f"{where}.{f.name}", depth + 1)
    return values


def _value(hint: Any, value: Any, where: str, depth: int) -> Any:
    """``value`` converted to ``hint``; RecordError when it is not one."""
    if depth > MAX_DEPTH:
        raise RecordError(f"{where}: nested too deeply")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _value(option, value, where, depth)
            except RecordError as exc:
                errors.append(str(exc))
        raise RecordError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits no type")
    if origin is typing.Literal:
        if value not in args:
            raise RecordError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint, value, where, depth)
    if origin in (tuple, list):
        return _sequence(origin, args, value, where, depth)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return _mapping(args, value, where, depth)
    return _scalar(hint, value, where)


def _sequence(origin: type, args: tuple, value: Any, where: str, depth: int) -> Any:
    """A list or tuple (``tuple[X, ...]`` or a fixed ``tuple[X, Y]``) from a JSON array."""
    if not isinstance(value, list | tuple):
        raise RecordError(f"{where}: expected a list, got {type(value).__name__}")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise RecordError(f"{where}: expected {len(args)} entries, got {len(value)}")
        return tuple(
            _value(a, v, f"{where}[{i}]", depth)
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    item = args[0] if args else Any
    items = [_value(item, v, f"{where}[{i}]", depth) for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _mapping(args: tuple, value: Any, where: str, depth: int) -> dict[str, Any]:
    """A ``dict[str, X]`` from a JSON object."""
    if not isinstance(value, Mapping):
        raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
    item = args[1] if len(args) == 2 else Any
    return {str(k): _value(item, v, f"{where}[{k!r}]", depth) for k, v in value.items()}


def _scalar(hint: Any, value: Any, where: str) -> Any:
    """An int, float, str or bool (ints are accepted as floats; bools never as numbers)."""
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if value is None:
            return math.nan
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    name = getattr(hint, "__name__", str(hint))
    raise RecordError(f"{where}: expected {name}, got {type(value).__name__} {str(value)[:40]!r}")
