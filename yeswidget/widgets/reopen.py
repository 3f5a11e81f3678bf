"""Reopen saved runs in a notebook: the first with its cloud, the others overlaid, and the runs table.

    from yeswidget.outputs.reopen import reopen
    reopen("yeswidget-runs/")                      # every run log in the folder
    reopen("run-a.jsonl", "run-b.jsonl")           # or run.json files, or Run objects

Needs the widget libraries (ipywidgets, bqplot, anywidget), imported when called.
"""
from __future__ import annotations

import os
from typing import Any

from ..core.handle import Handle
from ..core.run import Run
from .runlog import load_runs

__all__ = ["SavedRun", "reopen"]


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


def _runs(items) -> list[Run]:
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


def reopen(*runs_or_paths: Any, **chart_options: Any):
    """A ``VBox`` of a :class:`~yeswidget.widgets.chart.CloudChart` and a :class:`~yeswidget.widgets.RunsTable`.

    The first run is drawn with its cloud and minibatch losses, the others as faded
    loss lines; clicking a row of the table highlights that run. Attributes:
    ``chart``, ``table``, ``runs``. ``chart_options`` go to ``CloudChart`` (``scale``, …).
    """
    import ipywidgets as widgets

    from ..widgets import RunsTable
    from ..widgets.chart import CloudChart

    runs = _runs(runs_or_paths)
    chart = CloudChart(**chart_options)
    for other in runs[1:]:
        chart.add_run(other)
    chart.watch(SavedRun(runs[0]), keep_previous=False)
    chart.unwatch()
    table = RunsTable().set_runs(runs)

    def highlight(row: dict) -> None:
        index = row.get("id", -1)
        chart.highlight(runs[index].run_id if 0 < index < len(runs) else None)

    table.on_select(highlight)
    box = widgets.VBox([chart, table])
    box.chart, box.table, box.runs = chart, table, runs
    return box
