"""The scene: what the live chart and the matplotlib picture both draw, as plain numpy."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from yeswidget.core.run import EpochRecord, Run
from yeswidget.core.zones import ZONE_WORDS
from yeswidget.view import scene as scene_module
from yeswidget.view.scene import (
    RunSeries,
    SceneSettings,
    StepDecimator,
    compose,
    compose_status,
    decimate_minmax,
    depth_view,
)

UPPER, LOWER = 1.0, 0.1


def make_run(n_epochs=10, steps=10, marks=()):
    run = Run(run_id="r", config={"lr": 1e-3, "batch_size": 32}, upper=UPPER, layer_errors=[1.0, 0.8, 0.9])
    for t in range(1, n_epochs + 1):
        loss = 10 ** ((10.0 - 30.0 * (t - 1) / max(n_epochs - 1, 1)) / 10)
        zone = "red" if loss > UPPER else ("yellow" if loss > LOWER else "green")
        run.epochs.append(EpochRecord(t, loss, UPPER, LOWER, zone, yes_k=[0.3, LOWER], wall_time=2.0 * t))
        for k in range(steps):
            run.step_positions.append(t - 1 + (k + 1) / steps)
            run.step_losses.append(loss * (1.2 if k % 2 else 0.8))
    run.marks.extend(marks)
    return run


def test_bands_are_the_edges_in_plot_units_and_fill_the_plot():
    s = compose(RunSeries.from_run(make_run()), SceneSettings(scale="db"))
    bottom, top = s.y_limits
    assert bottom < -20 and top > 10
    # red: YES-0 (0 dB) from x = 0 to the last step; constant, so only its ends are kept
    np.testing.assert_allclose(s.red.x, [0.0, 10.0])
    np.testing.assert_allclose(s.red.y, [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.green.y, [-10.0, -10.0], atol=1e-12)
    assert s.yellow.y.shape == (2, s.yellow.x.size)
    np.testing.assert_allclose(s.yellow.y[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(s.yellow.y[1], -10.0, atol=1e-12)
    assert s.x_limits == (0.0, 10.0)
    np.testing.assert_allclose(s.loss.x, np.arange(1, 11))
    assert s.loss.y[0] == pytest.approx(10.0) and s.loss.y[-1] == pytest.approx(-20.0)
    assert s.dots and s.hover.zones[0] == "red" and s.hover.zones[-1] == "green"
    assert s.label == "lr 1e-03 · batch 32" and s.axis_label == "loss (dB)"


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_other_scales_keep_loss_units(scale):
    run = make_run()
    s = compose(RunSeries.from_run(run), SceneSettings(scale=scale))
    np.testing.assert_allclose(s.loss.y, [r.loss for r in run.epochs])
    np.testing.assert_allclose(s.red.y, UPPER)
    bottom, top = s.y_limits
    assert 0.0 <= bottom < 0.01 and top > 10.0


def test_minibatch_line_is_decimated_to_the_pixels():
    run = make_run(n_epochs=100, steps=1000)
    run.step_losses[54_321] = 1e6                          # a spike
    s = compose(RunSeries.from_run(run), SceneSettings(width_px=500))
    assert s.steps.size + s.steps_tail.size <= 1000
    assert np.isclose(s.steps.x, run.step_positions[54_321]).any()
    assert s.y_limits[1] > 50.0                            # the spike is inside the plot


def test_step_decimator_keeps_a_frozen_history_and_a_raw_tail():
    x = np.arange(1, 5001) / 100.0
    y = 1.0 + np.sin(x)
    steps = StepDecimator(tail_points=400)
    keep, start = steps.split(x[:3000], y[:3000], 1000)
    assert keep.size <= 600 and start == 3000            # everything is history, no tail yet
    keep2, start2 = steps.split(x[:3300], y[:3300], 1000)
    assert keep2 is keep and start2 == 2999                # the tail joins the history's last point
    keep3, _ = steps.split(x[:3500], y[:3500], 1000)
    assert keep3 is not keep                               # the tail was full: history recomputed


def test_first_run_without_epochs_shows_yes0_only():
    run = Run(run_id="new", upper=0.5)
    s = compose(RunSeries.from_run(run), SceneSettings())
    assert s.red.size == 2 and s.loss.size == 0 and not s.empty
    assert np.isnan(s.green.y).all() if s.green.size else True
    assert compose(None, SceneSettings()).empty


def test_diverged_losses_are_clipped_to_the_top_and_listed():
    run = make_run(n_epochs=5)
    run.epochs.append(EpochRecord(6, math.inf, UPPER, LOWER, "red"))
    run.epochs.append(EpochRecord(7, math.nan, UPPER, LOWER, "red"))
    s = compose(RunSeries.from_run(run), SceneSettings())
    top = s.y_limits[1]
    assert math.isfinite(top) and top < 20
    assert s.loss.y[-1] == top and s.loss.y[-2] == top
    np.testing.assert_allclose(s.diverged.x, [6, 7])


def test_past_runs_marks_orders_and_depth():
    run = make_run(marks=[{"position": 2.5, "kind": "batch_size", "value": 64}])
    past = make_run(n_epochs=4)
    s = compose(RunSeries.from_run(run), SceneSettings(show_orders=True, show_depth=True, epochs_total=20),
                past=[(RunSeries.from_run(past), "#123456")])
    assert s.x_limits == (0.0, 20.0)                      # room for the planned epochs
    assert [p.color for p in s.past] == ["#123456"] and s.past[0].line.size == 4
    assert [m.position for m in s.marks] == [2.5] and "batch → 64" in s.marks[0].label
    assert s.orders.labels == ("YES-1", "YES-2") and s.orders.rows.shape == (2, 10)
    np.testing.assert_allclose(s.depth.layers, [1, 2, 3])
    np.testing.assert_allclose(s.depth.values, 10 * np.log10([1.0, 0.8, 0.9]))
    assert compose(RunSeries.from_run(run), SceneSettings()).orders is None


def test_status_reads_the_zone_in_the_shared_words():
    run = make_run()
    status = compose_status(run.epochs[4], first=run.epochs[0], epochs_total=50,
                            state=("running", "", ""))
    assert status.zone == "yellow" and ZONE_WORDS["yellow"] in status.words
    assert status.epoch == 5 and status.fraction == pytest.approx(0.1)
    assert status.eta_seconds == pytest.approx(45 * 2.0)
    assert "dB above the lower edge (to green)" in status.margin_words
    waiting = compose_status(None, epochs_total=None)
    assert waiting.zone is None and waiting.words == "" and waiting.fraction is None
    odd = EpochRecord(1, 0.5, 1.0, 0.1, "unknown-zone")
    assert compose_status(odd).zone == "none"            # an unknown word reads as "no verdict"


def test_decimate_minmax_keeps_extremes_in_order():
    x = np.linspace(0, 1000, 100_000)
    y = np.sin(x)
    y[12_345], y[67_890], y[500] = 50.0, -50.0, np.nan
    idx = decimate_minmax(x, y, 2000)
    assert idx.size <= 2000 and np.all(np.diff(idx) > 0)
    assert 12_345 in idx and 67_890 in idx and 500 not in idx


def test_depth_view_of_nothing():
    view = depth_view([])
    assert view.layers.size == 0 and view.values.size == 0


def test_bad_scale_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="db"):
        compose(None, SceneSettings(scale="furlongs"))


def test_scene_imports_no_widgets_and_no_matplotlib():
    source = Path(scene_module.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not any(m.startswith(("matplotlib", "ipywidgets", "bqplot", "anywidget", "torch")) for m in imported)


def test_chart_and_picture_draw_the_same_scene():
    """The live chart's marks and the matplotlib picture come from one composition."""
    pytest.importorskip("bqplot")
    pytest.importorskip("matplotlib")
    from yeswidget.view.render import scene_of
    from yeswidget.widgets.chart import CloudChart
    from yeswidget.widgets.pump import Pump

    run = make_run(n_epochs=12)
    chart = CloudChart(pump=Pump())
    chart.add_run(run)
    chart.clear_runs()

    class Holder:
        def __init__(self):
            self.run, self.epochs_total = run, None

        def subscribe(self, cb):
            class H:
                def remove(self):
                    pass
            return H()

    chart.watch(Holder())
    picture = scene_of(run, width_px=1000)
    np.testing.assert_allclose(chart.band_red.x, picture.red.x)
    np.testing.assert_allclose(chart.band_green.y, picture.green.y, rtol=1e-6)
    np.testing.assert_allclose(chart.loss_line.y, picture.loss.y, rtol=1e-6)
    np.testing.assert_allclose(chart.loss_line.scales["y"].max, picture.y_limits[1], rtol=1e-6)
    chart.close()
