"""The widgets room: the live chart, the runs table and zone timeline, and the UI pump.

Everything that writes widget state runs on the pump thread (:mod:`.pump`).
Names load lazily, so importing this package loads neither bqplot nor anywidget.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chart import CloudChart, iter_widgets, state_nbytes
    from .pump import Pump, default_pump
    from .tables import ROW_KEYS, RUNS_TABLE_COLUMNS, RunsTable, SelectHandle, ZoneTimeline

_WHERE = {
    "CloudChart": "chart", "iter_widgets": "sync", "state_nbytes": "sync",
    "Pump": "pump", "default_pump": "pump",
    "RunsTable": "tables", "ZoneTimeline": "tables", "SelectHandle": "tables", "RUNS_TABLE_COLUMNS": "tables",
    "ROW_KEYS": "tables",
}

__all__ = ["CloudChart", "Pump", "ROW_KEYS", "RUNS_TABLE_COLUMNS", "RunsTable", "SelectHandle", "ZoneTimeline",
           "default_pump", "iter_widgets", "state_nbytes"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
