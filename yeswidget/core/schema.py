"""The run record's schema: what a loaded run may hold, checked field by field.

A run read from disk (a ``Run.to_json`` file or a run log) is checked here before it
becomes a :class:`~yeswidget.core.run.Run`: every value has the type its field
documents, or loading stops with a :class:`SchemaError` naming the field and the
value (nothing is coerced: a string of digits is not a loss, a dict is not a status).
Numbers may be written as JSON integers where a float is expected (``1`` for 1.0).
Nested values (``config``, ``certification``, ``marks``) are limited to
:data:`MAX_NESTING` levels.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .zones import VERDICTS

__all__ = ["SchemaError", "RUN_STATUSES", "MAX_NESTING", "nesting_depth", "check_record", "check_run_fields",
           "check_value", "RECORD_FIELDS"]

#: a run's status: ``running`` until the loop ends; then how it ended (re-exported by :mod:`.run`)
RUN_STATUSES = ("running", "finished", "stopped", "diverged", "failed")
#: the deepest nesting a loaded value may have (a run record itself is 4 levels deep)
MAX_NESTING = 32
_MAX_INT = 2**63  # counts (epochs, steps, depth) beyond this are not counts

#: EpochRecord's fields: (kind, required)
RECORD_FIELDS: dict[str, tuple[str, bool]] = {
    "epoch": ("count", True), "loss": ("number", True), "upper": ("number", True),
    "lower": ("number", True), "zone": ("zone", True), "yes_k": ("numbers", False),
    "bounds_updated": ("bool", False), "lr": ("number?", False), "batch_size": ("count?", False),
    "step": ("count", False), "wall_time": ("number", False), "accuracy": ("number?", False),
    "val_loss": ("number?", False), "val_accuracy": ("number?", False), "reason": ("text", False),
    "edge_epoch": ("count?", False), "extra": ("timings", False),  # numbers by name (Monitor.note)
}
_RUN_FIELDS: dict[str, str] = {
    "run_id": "text", "config": "mapping", "depth": "count", "upper": "number", "layer_errors": "numbers",
    "certification": "mapping", "epochs": "records", "step_losses": "numbers", "step_positions": "numbers",
    "marks": "marks", "timings": "timings", "status": "status", "message": "text", "traceback": "text",
    "warnings": "texts",
}


class SchemaError(ValueError):
    """A loaded value of the wrong type or out of range; the message names the field."""


def _shown(value: Any) -> str:
    text = repr(value)
    return (text[:60] + "…") if len(text) > 60 else text


def _fail(path: str, expected: str, value: Any) -> SchemaError:
    return SchemaError(f"field {path!r} must be {expected}; got {_shown(value)} ({type(value).__name__})")


def nesting_depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (0 for a scalar); iterative, linear in the size."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _number(path: str, value: Any, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, "a number" + (" or null" if optional else ""), value)
    try:
        return float(value)
    except OverflowError:
        raise _fail(path, "a number within float range", value) from None


def _count(path: str, value: Any, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_INT:
        raise _fail(path, "a whole number ≥ 0" + (" or null" if optional else ""), value)
    return value


def _raise(exc: Exception) -> Any:
    raise exc


def check_value(kind: str, path: str, value: Any) -> Any:
    """``value`` checked as ``kind`` (a name in :data:`RECORD_FIELDS` or the run's fields); returns it
    (numbers as floats); a :class:`SchemaError` naming ``path`` otherwise."""
    if kind == "number" and type(value) is float:  # the common case, first
        return value
    if kind in ("number", "number?"):
        return _number(path, value, kind == "number?")
    if kind in ("count", "count?"):
        return _count(path, value, kind == "count?")
    if kind == "text":
        return value if isinstance(value, str) else _raise(_fail(path, "a string", value))
    if kind == "bool":
        return value if isinstance(value, bool) else _raise(_fail(path, "true or false", value))
    if kind == "zone":
        if not isinstance(value, str) or value not in VERDICTS:
            raise _fail(path, f"one of {list(VERDICTS)}", value)
        return value
    if kind == "status":
        if not isinstance(value, str) or value not in RUN_STATUSES:
            raise _fail(path, f"one of {list(RUN_STATUSES)}", value)
        return value
    if kind in ("numbers", "texts"):
        if not isinstance(value, list):
            raise _fail(path, "a list of " + ("numbers" if kind == "numbers" else "strings"), value)
        if kind == "numbers" and all(type(v) is float for v in value):  # the common case, in one pass
            return value
        item = "number" if kind == "numbers" else "text"
        return [check_value(item, f"{path}[{i}]", v) for i, v in enumerate(value)]
    if kind == "mapping":
        return _mapping(path, value)
    if kind == "timings":
        return {k: _number(f"{path}.{k}", v) for k, v in _mapping(path, value).items()}
    if kind == "marks":
        if not isinstance(value, list):
            raise _fail(path, "a list of marks (objects)", value)
        return [_mapping(f"{path}[{i}]", mark) for i, mark in enumerate(value)]
    if kind == "records":
        if not isinstance(value, list):
            raise _fail(path, "a list of epoch records", value)
        return [check_record(r, f"{path}[{i}]") for i, r in enumerate(value)]
    raise AssertionError(kind)  # pragma: no cover


def _mapping(path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, "an object", value)
    if nesting_depth(value) > MAX_NESTING:
        raise SchemaError(f"field {path!r} nests deeper than {MAX_NESTING} levels")
    return dict(value)


def check_record(data: Any, path: str = "record") -> dict[str, Any]:
    """An :class:`EpochRecord`'s fields checked; returns its keyword arguments."""
    if not isinstance(data, Mapping):
        raise _fail(path, "an epoch record (an object)", data)
    unknown = sorted(set(data) - set(RECORD_FIELDS))
    if unknown:
        raise SchemaError(f"field {path!r} has unknown fields {unknown}")
    missing = [name for name, (_, required) in RECORD_FIELDS.items() if required and name not in data]
    if missing:
        raise SchemaError(f"field {path!r} lacks {missing}")
    return {name: check_value(RECORD_FIELDS[name][0], f"{path}.{name}", value) for name, value in data.items()}


def check_run_fields(data: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """The run fields present in ``data`` checked (unknown names are an error); epochs as record kwargs."""
    unknown = sorted(set(data) - set(_RUN_FIELDS))
    if unknown:
        raise SchemaError(f"not a yeswidget run record: unknown fields {unknown}")
    return {name: check_value(_RUN_FIELDS[name], f"{path}{name}", value) for name, value in data.items()}
