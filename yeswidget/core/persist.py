"""How runs are written down: the JSON encoding every saved run uses and the run log's line format.

Strict JSON has no NaN or infinity, so non-finite floats travel as ``{"$float": "nan"}`` and
come back as floats. A run log is JSON lines: a header ``{"kind": "header", "format":
LOG_FORMAT, "version": LOG_VERSION, "run": ...}`` then one entry per batch of steps, ended
epoch (``pending``), epoch, update and status. The writer is
:class:`yeswidget.integrations.runlog.RunLog`; the public reader is :func:`read_log` (the
streaming, tolerant one of :mod:`.logread`, also ``yeswidget.load_run``).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from .schema import SchemaError

__all__ = ["LOG_FORMAT", "LOG_VERSION", "READABLE_VERSIONS", "RunLogWarning", "encode", "decode", "is_run_log",
           "register_log_reader", "read_log"]

#: the ``format`` field of a run log's header line
LOG_FORMAT = "yeswidget-run-log"
#: the run-log version this code writes (2: ``pending`` lines, and line 2 repeats the header's fields)
LOG_VERSION = 2
#: the versions it reads
READABLE_VERSIONS = (1, 2)


class RunLogWarning(UserWarning):
    """A run log had damaged lines (skipped, the rest read), or could not save everything."""


_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become tagged strings, tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}  # 'nan', 'inf', '-inf'
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode` (``{"$float": "nan" | "inf" | "-inf"}`` → float; any other tag is a
    :class:`~yeswidget.core.schema.SchemaError`)."""
    if isinstance(value, dict):
        if "$float" in value and len(value) == 1:
            tag = value["$float"]
            if not isinstance(tag, str) or tag not in _NON_FINITE:
                raise SchemaError(f"a {{'$float': …}} value must be 'nan', 'inf' or '-inf'; got {tag!r:.60}")
            return _NON_FINITE[tag]
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def is_run_log(start: bytes, path: str | os.PathLike[str] | None = None) -> bool:
    """Whether a file beginning with ``start`` (its first bytes) is a run log rather than one JSON
    document: it starts with an entry, or (its start damaged) it is named ``*.jsonl``."""
    return start.lstrip(b"\x00 \t\r\n").startswith(b'{"kind"') or (
        path is not None and os.fspath(path).endswith(".jsonl"))


#: reads a run log back into a Run; plugged in by the package (``import yeswidget``): the reader
#: (:mod:`.logread`) builds Runs, and the run record (:mod:`.run`) reads logs through this
_log_reader: Callable[[str | os.PathLike[str]], Any] | None = None


def register_log_reader(reader: Callable[[str | os.PathLike[str]], Any]) -> None:
    """Make :func:`read_log` (and ``Run.from_json`` on a run log) use ``reader``."""
    global _log_reader
    _log_reader = reader


def read_log(path: str | os.PathLike[str]) -> Any:
    """The run a run log holds (damaged lines skipped with a :class:`RunLogWarning`; a bad value is a
    ValueError naming the line and the field), read line by line by the registered reader."""
    if _log_reader is None:
        raise ValueError(f"{os.fspath(path)} is a run log; read it with yeswidget.load_run(path)")
    return _log_reader(path)
