"""Saved runs (run logs, ``run.json`` files, folders, ``Run`` objects) seen as stopped monitors."""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ..core.handle import Handle
from ..core.run import Run
from ..integrations.runlog import load_runs

__all__ = ["SavedRun", "saved_runs"]


class SavedRun:
    """A saved run seen as a monitor that has stopped: ``run`` and a ``subscribe`` that never calls back
    (what :meth:`CloudChart.watch` needs to draw it)."""

    def __init__(self, run: Run) -> None:
        if not isinstance(run, Run):
            raise TypeError(f"SavedRun needs a yeswidget Run; got {type(run).__name__}")
        self.run = run
        self.epochs_total = run.config.get("epochs")

    def subscribe(self, callback: Any) -> Handle:
        return Handle(lambda: None)


def saved_runs(items: Iterable[Any]) -> list[Run]:
    """The runs that ``items`` (paths, folders, ``Run`` objects) stand for, in order."""
    runs: list[Run] = []
    for item in items:
        if isinstance(item, Run):
            runs.append(item)
        elif isinstance(item, (str, os.PathLike)):
            runs.extend(load_runs(item))
        else:
            raise TypeError(f"reopen takes run logs, run.json files, folders or Run objects; got {type(item).__name__}")
    if not runs:
        raise ValueError("reopen needs at least one run (a run log path, a runs folder or a Run)")
    return runs
