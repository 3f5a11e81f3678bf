"""How runs are written down: the JSON encoding every saved run uses and the run log's line format.

Strict JSON has no NaN or infinity, so non-finite floats travel as ``{"$float": "nan"}`` and
come back as floats. A run log is JSON lines: a header ``{"kind": "header", "format":
LOG_FORMAT, "version": LOG_VERSION, "run": ...}`` then one entry per batch of steps, epoch,
update and status. The writer is :class:`yeswidget.integrations.runlog.RunLog`; the reader
:func:`yeswidget.integrations.runlog.load_run`.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

__all__ = ["LOG_FORMAT", "LOG_VERSION", "encode", "decode", "is_run_log", "register_log_reader", "read_log"]

#: the ``format`` field of a run log's header line
LOG_FORMAT = "yeswidget-run-log"
#: the newest run-log version this code reads and the one it writes
LOG_VERSION = 1


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
    """The inverse of :func:`encode`."""
    if isinstance(value, dict):
        if set(value) == {"$float"}:
            return float(value["$float"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def is_run_log(text: str) -> bool:
    """Whether ``text`` (a file's beginning) is a run log rather than one JSON document."""
    return text.lstrip().startswith('{"kind"')


#: reads a run log back into a Run; plugged in by the run log's own module (the reader lives with
#: the writer, in yeswidget.integrations.runlog, which the core may not import)
_log_reader: Callable[[str | os.PathLike[str]], Any] | None = None


def register_log_reader(reader: Callable[[str | os.PathLike[str]], Any]) -> None:
    """Make :func:`read_log` (and ``Run.from_json`` on a run log) use ``reader``."""
    global _log_reader
    _log_reader = reader


def read_log(path: str | os.PathLike[str]) -> Any:
    """The run a run log holds, read by the registered reader (``import yeswidget`` registers it)."""
    if _log_reader is None:
        raise ValueError(f"{os.fspath(path)} is a run log; read it with yeswidget.load_run(path)")
    return _log_reader(path)
