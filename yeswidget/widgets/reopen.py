"""Reopen saved runs in a notebook: the first with its cloud, the others overlaid, and the runs table.

    from yeswidget import reopen
    reopen("yeswidget-runs/")                      # every run log in the folder
    reopen("run-a.jsonl", "run-b.jsonl")           # or run.json files, or Run objects

Needs the widget libraries (ipywidgets, bqplot, anywidget), imported when called.
"""
from __future__ import annotations

from typing import Any

from .saved import SavedRun, saved_runs

__all__ = ["SavedRun", "reopen"]


def reopen(*runs_or_paths: Any, **chart_options: Any):
    """A ``VBox`` of a :class:`~yeswidget.widgets.chart.CloudChart` and a :class:`~yeswidget.widgets.RunsTable`.

    The first run is drawn with its cloud and minibatch losses, the others as faded
    loss lines; clicking a row of the table highlights that run. Attributes:
    ``chart``, ``table``, ``runs``. ``chart_options`` go to ``CloudChart`` (``scale``, …).
    """
    import ipywidgets as widgets

    from .chart import CloudChart
    from .tables import RunsTable

    runs = saved_runs(runs_or_paths)
    chart = CloudChart.from_runs(*runs, **chart_options)
    table = RunsTable().set_runs(runs)

    def highlight(row: dict) -> None:
        index = row.get("id", -1)
        chart.highlight(runs[index].run_id if 0 < index < len(runs) else None)

    table.on_select(highlight)
    box = widgets.VBox([chart, table])
    box.chart, box.table, box.runs = chart, table, runs
    return box
