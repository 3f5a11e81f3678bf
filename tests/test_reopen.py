"""Reopening run logs in a notebook: one run with its cloud, the others overlaid, and the runs table."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("bqplot")
from output_helpers import monitored_run  # noqa: E402

from yeswidget.widgets.reopen import reopen  # noqa: E402


def test_two_logs_reopen_as_an_overlay_with_the_runs_table(tmp_path):
    first = monitored_run(6, runs_dir=tmp_path)
    second = monitored_run(4, runs_dir=tmp_path, lr=3e-3)
    box = reopen(first.run_log.path, second.run_log.path)
    chart, table = box.chart, box.table
    try:
        assert chart.run == first.run and chart.past_runs == [second.run]
        assert np.asarray(chart.loss_line.x).tolist() == [1, 2, 3, 4, 5, 6]
        assert [row["status"] for row in table.rows] == ["finished", "finished"]
        assert [row["final_zone"] for row in table.rows] == [first.run.final_zone, second.run.final_zone]
        table.selected = 1  # a click on the second row
        chart.flush()
        from yeswidget.widgets import iter_widgets

        bold = [w for w in iter_widgets(chart) if type(w).__name__ == "Lines" and w.stroke_width == 3.5]
        assert len(bold) == 1  # the chosen past run is drawn bold
    finally:
        chart.close()


def test_reopen_takes_a_folder_and_run_objects_and_says_what_it_needs(tmp_path):
    first = monitored_run(2, runs_dir=tmp_path / "runs")
    box = reopen(tmp_path / "runs", first.run)
    assert box.runs == [first.run, first.run]
    box.chart.close()
    with pytest.raises(TypeError, match="run logs, run.json files, folders or Run objects"):
        reopen(42)
    with pytest.raises(ValueError, match="at least one run"):
        reopen()


def test_cloud_chart_from_runs_reopens_saved_runs_after_a_restart(tmp_path):
    from yeswidget.widgets import CloudChart

    first = monitored_run(3, runs_dir=tmp_path)
    second = monitored_run(2, runs_dir=tmp_path, lr=3e-3)
    chart = CloudChart.from_runs(first.run_log.path, second.run_log.path)
    try:
        assert chart.run == first.run and chart.past_runs == [second.run]
        assert np.asarray(chart.loss_line.x).tolist() == [1, 2, 3]
    finally:
        chart.close()
