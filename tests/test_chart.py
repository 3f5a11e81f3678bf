"""CloudChart without a kernel: synthetic events through a fake monitor."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import traitlets

bqplot = pytest.importorskip("bqplot")
ipywidgets = pytest.importorskip("ipywidgets")

from yeswidget.core.run import EpochEvent, EpochRecord, Run, StatusEvent, StepEvent  # noqa: E402
from yeswidget.core.zones import ZONE_COLORS, ZONE_WORDS  # noqa: E402
from yeswidget.view.scene import decimate_minmax  # noqa: E402
from yeswidget.widgets.chart import CloudChart, iter_widgets, state_nbytes  # noqa: E402
from yeswidget.widgets.pump import Pump  # noqa: E402


# --------------------------------------------------------------------------
# fakes
# --------------------------------------------------------------------------
class _Handle:
    def __init__(self, monitor, callback):
        self.monitor, self.callback = monitor, callback

    def remove(self):
        if self.callback in self.monitor.subscribers:
            self.monitor.subscribers.remove(self.callback)


class FakeMonitor:
    """Fills its Run like a monitor would, then tells its subscribers."""

    def __init__(self, run_id="run-1", *, upper=0.5, epochs_total=None, lr=1e-3, depth=5):
        self.run = Run(run_id=run_id, config={"lr": lr, "batch_size": 50, "optimizer": "adam"},
                       depth=depth, upper=upper, layer_errors=[0.5, 0.45, 0.44, 0.43, 0.5][:depth])
        self.epochs_total = epochs_total
        self.subscribers = []
        self.lock = threading.Lock()

    def subscribe(self, callback):
        self.subscribers.append(callback)
        return _Handle(self, callback)

    def _emit(self, event):
        for callback in list(self.subscribers):
            callback(event)

    def steps(self, first_step, positions, losses):
        with self.lock:
            self.run.step_positions.extend(positions)
            self.run.step_losses.extend(losses)
        self._emit(StepEvent(self.run.run_id, first_step, tuple(positions), tuple(losses)))

    def epoch(self, record, epochs_total=None):
        with self.lock:
            self.run.epochs.append(record)
        self._emit(EpochEvent(self.run.run_id, record, epochs_total or self.epochs_total))

    def status(self, status, message="", traceback=""):
        self.run.status, self.run.message, self.run.traceback = status, message, traceback
        self._emit(StatusEvent(self.run.run_id, status, message, traceback))



def pumped(pump):
    """``pump`` with its registrations kept (a chart's redraws are its registration's ``applies``)."""
    registrations = []
    register = pump.register

    def keep(apply, *, name=""):
        registrations.append(register(apply, name=name))
        return registrations[-1]

    pump.register = keep
    pump.registrations = registrations
    return pump


def redraws(chart, pump):
    """How many times ``pump`` has redrawn ``chart`` so far."""
    return next(r for r in pump.registrations if r.name.startswith("CloudChart")).applies


def zone_of(loss, upper, lower):
    return "red" if loss > upper else ("yellow" if loss > lower else "green")


def record(epoch, loss, upper=0.5, lower=0.1, **kw):
    kw.setdefault("yes_k", [min(upper, lower * 1.5), lower * 1.2, lower * 1.1, lower])
    return EpochRecord(epoch=epoch, loss=loss, upper=upper, lower=lower,
                       zone=zone_of(loss, upper, lower), **kw)


def feed(monitor, epochs=20, steps=10, upper=0.5, start=1):
    """A smooth synthetic run: loss from 4×upper down to below the lower edge."""
    lower = upper
    for t in range(start, start + epochs):
        loss = 2.0 * math.exp(-t / 4.0) + 0.02
        lower = min(lower, 0.1 + 0.3 * math.exp(-t / 5.0))
        pos = [t - 1 + (k + 1) / steps for k in range(steps)]
        monitor.steps((t - 1) * steps, pos, [loss * (1.1 if k % 2 else 0.9) for k in range(steps)])
        monitor.epoch(record(t, loss, upper, lower, wall_time=0.5 * t))
    return monitor


def y_scale(chart):
    return chart.loss_line.scales["y"]


def y_axis(chart):
    return chart.figure.axes[1]


def past_marks(chart):
    """The faded lines of past runs, oldest first."""
    labels = {r.label or r.run_id for r in chart.past_runs}
    return [m for m in chart.figure.marks if list(getattr(m, "labels", []))[:1] and m.labels[0] in labels
            and m is not chart.loss_line]


def progress_shown(chart):
    return chart.progress in chart.children[1].children and chart.children[1].layout.display != "none"


@pytest.fixture
def manual_pump():
    """A pump that only applies on flush (an interval longer than any test)."""
    return Pump(interval=3600.0)


@pytest.fixture
def chart():
    c = CloudChart()
    yield c
    c.close()


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def drawn_steps(chart):
    """x of every minibatch point drawn: the decimated history line plus the raw tail."""
    return np.union1d(np.asarray(chart.step_line.x, float), np.asarray(chart.step_tail.x, float))


def db(values):
    return 10.0 * np.log10(np.asarray(values, dtype=np.float64))


# --------------------------------------------------------------------------
# the picture
# --------------------------------------------------------------------------
def test_bands_and_loss_line_are_the_bounds_in_db(chart):
    mon = feed(FakeMonitor(epochs_total=20), epochs=20)
    chart.watch(mon)
    chart.flush()
    recs = mon.run.epochs
    epochs = [r.epoch for r in recs]
    upper_db = db([r.upper for r in recs])
    lower_db = db([r.lower for r in recs])
    top, bottom = y_scale(chart).max, y_scale(chart).min
    assert top > upper_db.max() and bottom < lower_db.min()
    assert top > db([r.loss for r in recs]).max()

    red, yellow, green = chart.band_red, chart.band_yellow, chart.band_green
    for band in (red, yellow, green):
        assert isinstance(band.x, np.ndarray) and isinstance(band.y, np.ndarray)
        assert band.fill_opacities[0] == pytest.approx(0.4)
    assert red.fill_colors[0].upper() == ZONE_COLORS["red"].upper() == "#FFB6C1"
    assert yellow.fill_colors[0].upper() == "#FFD700"
    assert green.fill_colors[0].upper() == "#00FF7F"
    # red: from YES-0 up to the top of the plot, which is the y scale's max (no padding)
    assert red.fill == "top" and green.fill == "bottom" and yellow.fill == "between"
    assert chart.figure.padding_y == 0.0 and y_scale(chart).allow_padding is False
    assert yellow.y.shape == (2, yellow.x.size)

    def drawn(mark_x, row):
        return np.interp(epochs, np.asarray(mark_x, float), np.asarray(row, float))

    np.testing.assert_allclose(drawn(red.x, red.y), upper_db, atol=1e-4)
    np.testing.assert_allclose(drawn(yellow.x, yellow.y[0]), upper_db, atol=1e-4)
    np.testing.assert_allclose(drawn(yellow.x, yellow.y[1]), lower_db, atol=1e-4)
    np.testing.assert_allclose(drawn(green.x, green.y), lower_db, atol=1e-4)
    # the cloud spans from x = 0 to the last drawn step
    assert red.x[0] == 0.0 and red.x[-1] == pytest.approx(20.0)
    # YES-0 is constant: its band needs only its two ends
    assert red.x.size < len(epochs)
    # the band strokes are the YES-0 line (red) and the lower edge (dashed)
    assert red.colors[0] != red.fill_colors[0] and red.stroke_width > 0
    assert green.line_style == "dashed" and yellow.opacities == [0.0, 0.0]
    np.testing.assert_allclose(chart.loss_line.x, epochs)
    np.testing.assert_allclose(chart.loss_line.y, 10 * np.log10([r.loss for r in recs]), atol=1e-4)
    # few epochs: visible dots with a tooltip naming the bounds and the zone
    assert chart.loss_dots.opacities[0] == 1.0
    assert chart.loss_dots.tooltip is chart.loss_tooltip
    assert isinstance(chart.loss_tooltip, bqplot.Tooltip)
    assert chart.loss_tooltip.labels == ["epoch", "loss (dB)", "YES-0 (dB)", "lower edge (dB)", "zone"]
    assert list(chart.loss_dots.names) == [r.zone for r in recs]
    np.testing.assert_allclose(chart.loss_dots.size, db([r.loss for r in recs]), atol=1e-4)
    np.testing.assert_allclose(chart.loss_dots.rotation, upper_db, atol=1e-4)
    np.testing.assert_allclose(chart.loss_dots.skew, lower_db, atol=1e-4)
    assert chart.loss_dots.scales.keys() == {"x", "y"}  # so size/rotation/skew are not drawn
    # minibatch losses as a faint line at fractional epochs
    np.testing.assert_allclose(drawn_steps(chart), mon.run.step_positions, atol=1e-5)
    assert chart.step_line.opacities[0] < 0.5 and chart.step_tail.opacities[0] < 0.5


def test_y_range_leaves_room_and_every_array_is_numpy(chart):
    mon = feed(FakeMonitor(), epochs=5)
    chart.watch(mon)
    for w in iter_widgets(chart):
        if isinstance(w, bqplot.Mark):
            for name in ("x", "y"):
                value = getattr(w, name, None)
                assert value is None or isinstance(value, np.ndarray), (type(w).__name__, name)


def test_sent_state_uses_binary_buffers(chart, monkeypatch):
    sent = []

    def capture(self, msg, buffers=None):
        sent.append((self, msg, buffers or []))

    monkeypatch.setattr(ipywidgets.Widget, "_send", capture)
    mon = FakeMonitor()
    chart.watch(mon)
    feed(mon, epochs=3)
    chart.flush()
    loss_msgs = [(m, b) for w, m, b in sent if w is chart.loss_line and "y" in m.get("state", {})]
    assert loss_msgs, "the loss line was never sent"
    msg, buffers = loss_msgs[-1]
    assert msg["buffer_paths"] and buffers  # arrays travel as binary buffers, not JSON lists
    assert not isinstance(msg["state"]["y"], list)


@pytest.mark.parametrize("zone,loss", [("red", 0.8), ("yellow", 0.3), ("green", 0.05)])
def test_badge_words_and_colour_per_zone(chart, zone, loss):
    mon = FakeMonitor(epochs_total=200)
    chart.watch(mon)
    for t in range(1, 13):
        mon.epoch(record(t, loss, upper=0.5, lower=0.1, wall_time=2.0 * t))
    chart.flush()
    text = chart.badge.value
    assert chart.badge is chart.status
    assert ZONE_WORDS[zone] in text
    assert ZONE_COLORS[zone].lower() in text.lower()
    for other in set(ZONE_WORDS) - {zone}:
        assert ZONE_WORDS[other] not in text
    assert "epoch 12 / 200" in text
    assert f"{10 * math.log10(loss):.2f} dB".replace("-", "−") in text
    assert "YES-0 −3.01 dB" in text and "lower edge −10.00 dB" in text
    margin = {"red": "dB above YES-0", "yellow": "dB above the lower edge", "green": "dB below the lower edge"}
    assert margin[zone] in text
    assert chart.progress.value == pytest.approx(12 / 200)
    assert progress_shown(chart)
    assert "ETA" in chart.eta.value  # 188 epochs left at 2 s each
    assert "6 min" in chart.eta.value


def test_no_progress_without_epochs_total(chart):
    mon = feed(FakeMonitor(epochs_total=None), epochs=3)
    chart.watch(mon)
    assert not progress_shown(chart)
    assert "epoch 3" in chart.status.value and "epoch 3 /" not in chart.status.value


@pytest.mark.parametrize("status", ["failed", "diverged", "stopped", "finished"])
def test_status_line_shows_how_the_run_ended(chart, status):
    mon = FakeMonitor(epochs_total=10)
    chart.watch(mon)
    feed(mon, epochs=2)
    mon.status(status, message="loss became <nan> at step 7",
               traceback='Traceback (most recent call last):\n  File "x.py"\nValueError: boom')
    chart.flush()
    text = chart.status.value
    assert status in text
    assert "loss became &lt;nan&gt; at step 7" in text
    if status == "failed":
        assert "<details>" in text and "ValueError: boom" in text
    else:
        assert "<details>" not in text


def test_removed_throttle_option_says_what_to_use_instead():
    with pytest.raises(TypeError, match="pump=Pump"):
        CloudChart(min_interval=0.5)


def test_legend_explains_the_colours(chart):
    assert chart.legend.titles[0] == "What do the colours mean?"
    body = chart.legend.children[0].value
    for word in ("red", "yellow", "green", "YES-0", "lower edge"):
        assert word in body


# --------------------------------------------------------------------------
# streaming: throttling, threads, errors
# --------------------------------------------------------------------------
def test_burst_is_coalesced_until_the_pump_applies(manual_pump):
    pump = pumped(manual_pump)
    chart = CloudChart(pump=pump)
    mon = FakeMonitor()
    chart.watch(mon)
    start = redraws(chart, pump)
    for k in range(1000):
        mon.steps(k, [k / 100.0 + 0.01], [1.0 + (k % 7) / 10])
    # the callbacks only queue: nothing is drawn until the pump applies (here: on flush)
    assert redraws(chart, pump) == start and drawn_steps(chart).size == 0
    assert chart.flush() is True
    assert redraws(chart, pump) - start == 1
    assert drawn_steps(chart).size == 1000
    chart.close()


def test_burst_with_the_real_pump_draws_everything():
    pump = pumped(Pump(interval=0.05))
    chart = CloudChart(pump=pump)
    mon = FakeMonitor()
    chart.watch(mon)
    start = redraws(chart, pump)
    t0 = time.monotonic()
    for k in range(1000):
        mon.steps(k, [k / 100.0 + 0.01], [1.0])
    assert wait_until(lambda: drawn_steps(chart).size == 1000)  # no flush: the pump draws on its own
    elapsed = time.monotonic() - t0
    assert 1 <= redraws(chart, pump) - start <= 2 + elapsed / 0.05
    chart.close()


def test_events_from_a_background_thread_are_drawn_after_flush(chart):
    mon = FakeMonitor(epochs_total=30)
    chart.watch(mon)
    worker = threading.Thread(target=feed, args=(mon,), kwargs={"epochs": 30, "steps": 50})
    worker.start()
    worker.join()
    chart.flush()
    assert chart.loss_line.x.size == 30
    assert drawn_steps(chart).size == 30 * 50
    assert "epoch 30 / 30" in chart.status.value
    assert chart.last_error is None


def test_failing_redraw_does_not_raise(chart, monkeypatch, caplog):
    import yeswidget.widgets.chart as chart_module

    mon = FakeMonitor()
    chart.watch(mon)

    def broken(*args, **kwargs):
        raise RuntimeError("bqplot went away")

    monkeypatch.setattr(chart_module, "compose", broken)
    feed(mon, epochs=3)          # the callback path
    assert chart.flush() is False  # the explicit path
    assert isinstance(chart.last_error, RuntimeError)
    assert "display error" in chart.status.value and "bqplot went away" in chart.status.value
    assert any("redraw failed" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    assert chart.flush() is True
    assert "display error" not in chart.status.value
    assert chart.loss_line.x.size == 3


def test_duplicate_events_are_not_drawn_twice(chart):
    mon = feed(FakeMonitor(), epochs=4, steps=5)
    chart.watch(mon)                 # loads the 4 epochs already in the run
    rec = mon.run.epochs[-1]
    chart.handle_event(EpochEvent(mon.run.run_id, rec))  # replayed
    chart.handle_event(StepEvent(mon.run.run_id, 19, (4.0,), (1.0,)))  # replayed
    chart.flush()
    assert chart.loss_line.x.size == 4
    assert drawn_steps(chart).size == 20


# --------------------------------------------------------------------------
# payload
# --------------------------------------------------------------------------
def test_decimation_keeps_a_100k_step_run_under_200kB(chart):
    mon = FakeMonitor(epochs_total=1000)
    chart.watch(mon)
    rng = np.random.default_rng(0)
    lower = 0.5
    spike_at = 54_321
    for t in range(1, 1001):
        pos = (t - 1) + np.arange(1, 101) / 100.0
        base = 2.0 * math.exp(-t / 150.0) + 0.01
        losses = base * np.exp(rng.normal(0, 0.3, 100))
        first = (t - 1) * 100
        if first <= spike_at < first + 100:
            losses[spike_at - first] = 1e6
        mon.steps(first, pos.tolist(), losses.tolist())
        lower = min(lower, 0.05 + 0.4 * math.exp(-t / 80.0))
        mon.epoch(record(t, base, 0.5, lower))
    chart.flush()
    assert len(mon.run.step_losses) == 100_000       # full resolution stays in the Run
    assert chart.step_line.x.size + chart.step_tail.x.size <= 2000
    assert chart.step_tail.x.size <= CloudChart.TAIL_POINTS + 1
    assert chart.loss_dots.x.size <= CloudChart.HOVER_POINTS
    # the spike survives decimation (clipped into view, but present)
    assert np.isclose(drawn_steps(chart), (spike_at + 1) / 100.0, atol=1e-3).any()
    total = state_nbytes(chart)
    assert total < 200_000, total


def test_decimate_minmax_keeps_extremes_in_order():
    x = np.linspace(0, 1000, 100_000)
    y = np.sin(x) + 0.01 * np.arange(x.size) / x.size
    y[12_345] = 50.0
    y[67_890] = -50.0
    y[500] = np.nan
    idx = decimate_minmax(x, y, 2000)
    assert idx.size <= 2000
    assert np.all(np.diff(idx) > 0)
    assert 12_345 in idx and 67_890 in idx and 0 in idx and x.size - 1 in idx
    assert 500 not in idx
    short = decimate_minmax(x[:100], y[:100], 2000)
    assert short.size == 100 and 500 not in short


# --------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------
def test_past_runs_survive_watching_a_new_monitor(chart):
    first = feed(FakeMonitor("run-1", lr=1e-2), epochs=10)
    chart.watch(first)
    second = FakeMonitor("run-2", lr=1e-3)
    chart.watch(second)
    assert first.subscribers == []                 # old subscription removed
    assert [r.run_id for r in chart.past_runs] == ["run-1"]
    past_mark = past_marks(chart)[0]
    assert past_mark in chart.figure.marks
    # labelled, but no bqplot legend box (it was clipped and sat over the plot area)
    assert past_mark.labels == [first.run.label] and not past_mark.display_legend
    np.testing.assert_allclose(past_mark.y, db([r.loss for r in first.run.epochs]), atol=1e-4)
    assert past_mark.opacities[0] < 1.0
    # events of the old monitor no longer reach the chart
    feed(first, epochs=2, start=11)
    feed(second, epochs=3)
    chart.flush()
    assert chart.loss_line.x.size == 3
    np.testing.assert_allclose(past_mark.x, np.arange(1, 11))
    # a third run: both earlier ones are kept
    chart.watch(FakeMonitor("run-3"))
    assert [r.run_id for r in chart.past_runs] == ["run-1", "run-2"]
    assert not chart.loss_line.display_legend and not any(m.display_legend for m in chart.figure.marks)

    chart.highlight("run-1")
    first_mark, second_mark = past_marks(chart)
    assert first_mark.stroke_width > second_mark.stroke_width
    assert first_mark.opacities[0] == 1.0
    chart.highlight(None)
    assert first_mark.stroke_width == second_mark.stroke_width

    chart.clear_runs()
    assert chart.past_runs == []
    assert past_mark not in chart.figure.marks


def test_late_events_from_the_previous_monitor_are_dropped(chart):
    old = feed(FakeMonitor("old"), epochs=2)
    chart.watch(old)
    old_callback = old.subscribers[0]
    new = FakeMonitor("new")
    chart.watch(new)
    feed(new, epochs=3)
    # an event the old monitor was already delivering when we switched
    old_callback(EpochEvent("old", record(3, 0.2)))
    chart.flush()
    assert [r.run_id for r in chart.past_runs] == ["old"]
    assert chart.loss_line.x.size == 3
    assert chart.run is new.run


def test_watch_without_keeping_previous(chart):
    chart.watch(feed(FakeMonitor("a"), epochs=3))
    chart.watch(FakeMonitor("b"), keep_previous=False)
    assert chart.past_runs == []
    assert chart.loss_line.x.size == 0


def test_add_run_draws_a_finished_run(chart):
    done = feed(FakeMonitor("old", lr=3e-4), epochs=6).run
    chart.add_run(done, color="#123456")
    assert chart.past_runs == [done]
    assert past_marks(chart)[0].colors == ["#123456"]
    assert y_scale(chart).max > 10 * math.log10(max(r.loss for r in done.epochs))


def test_new_run_inside_the_same_monitor_becomes_current(chart):
    mon = feed(FakeMonitor("first"), epochs=4)
    chart.watch(mon)
    old_run = mon.run
    mon.run = Run(run_id="second", config={"lr": 0.1}, upper=0.5)
    feed(mon, epochs=2)
    chart.flush()
    assert [r.run_id for r in chart.past_runs] == ["first"]
    assert chart.past_runs[0] is old_run
    assert chart.loss_line.x.size == 2


def test_watch_draws_what_the_run_already_holds(chart):
    mon = feed(FakeMonitor(epochs_total=50), epochs=7)
    mon.status("stopped", "stopped by the user")
    chart.watch(mon)
    assert chart.loss_line.x.size == 7
    assert "stopped by the user" in chart.status.value
    assert "epoch 7 / 50" in chart.status.value


# --------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------
def test_scale_switch_redraws(chart):
    mon = feed(FakeMonitor(), epochs=8)
    chart.watch(mon)
    losses = np.array([r.loss for r in mon.run.epochs])
    chart.scale = "linear"
    np.testing.assert_allclose(chart.loss_line.y, losses, rtol=1e-5)
    assert isinstance(y_scale(chart), bqplot.LinearScale) and y_scale(chart).min >= 0.0
    np.testing.assert_allclose(chart.band_red.y, 0.5, rtol=1e-6)
    chart.scale = "log"
    assert isinstance(y_scale(chart), bqplot.LogScale)
    assert all(m.scales["y"] is y_scale(chart) for m in chart.figure.marks)
    assert y_axis(chart).scale is y_scale(chart) and y_axis(chart) in chart.figure.axes
    assert len([a for a in chart.figure.axes if a.visible]) == 2
    np.testing.assert_allclose(chart.loss_line.y, losses, rtol=1e-5)
    chart.controls.children[0].value = "db"        # the toggle buttons drive the trait
    assert chart.scale == "db"
    assert isinstance(y_scale(chart), bqplot.LinearScale)
    np.testing.assert_allclose(chart.loss_line.y, db(losses), atol=1e-4)
    chart.scale = "dB"
    assert chart.scale == "db"
    with pytest.raises(traitlets.TraitError):
        chart.scale = "furlongs"
    assert CloudChart.class_traits()["scale"].help


def test_step_toggle(chart):
    chart.watch(feed(FakeMonitor(), epochs=3))
    assert drawn_steps(chart).size == 30 and chart.step_line.visible and chart.step_tail.visible
    chart.controls.children[1].value = False
    assert chart.show_steps is False
    assert not chart.step_line.visible and not chart.step_tail.visible
    assert drawn_steps(chart).size == 0
    chart.show_steps = True
    assert chart.controls.children[1].value is True and drawn_steps(chart).size == 30


def test_orders_and_depth_views(chart):
    mon = feed(FakeMonitor(), epochs=6)
    chart.watch(mon)
    assert chart.orders_figure not in chart.children and chart.depth_figure not in chart.children
    chart.controls.children[2].value = True
    chart.show_depth = True
    assert chart.show_orders
    assert chart.orders_figure in chart.children and chart.depth_figure in chart.children
    yes_k = np.array([r.yes_k for r in mon.run.epochs]).T
    assert chart.orders_figure.marks[0].y.shape == yes_k.shape
    assert chart.orders_figure.marks[0].labels == ["YES-1", "YES-2", "YES-3", "YES-4"]
    np.testing.assert_allclose(chart.orders_figure.marks[0].y, db(yes_k), atol=1e-4)
    np.testing.assert_allclose(chart.depth_figure.marks[0].x, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(chart.depth_figure.marks[0].y, db(mon.run.layer_errors), atol=1e-4)


def test_diverged_loss_is_clipped_to_the_top_and_marked(chart):
    mon = FakeMonitor()
    chart.watch(mon)
    mon.epoch(record(1, 0.8))
    mon.epoch(record(2, 0.4))
    mon.epoch(EpochRecord(3, math.inf, 0.5, 0.1, "red"))
    mon.epoch(EpochRecord(4, math.nan, 0.5, 0.1, "red"))
    chart.flush()
    top = y_scale(chart).max
    assert np.all(np.isfinite(chart.loss_line.y))
    assert chart.loss_line.y[2] == pytest.approx(top) and chart.loss_line.y[3] == pytest.approx(top)
    np.testing.assert_allclose(chart.diverged_dots.x, [3, 4])
    assert top < 20  # the range comes from the finite data, not from inf


def test_run_marks_are_drawn_with_labels(chart):
    mon = feed(FakeMonitor(), epochs=5)
    mon.run.marks.append({"position": 2.5, "kind": "batch_size", "value": 128})
    chart.watch(mon)
    np.testing.assert_allclose(chart.marks_lines.x, [2.5, 2.5])
    np.testing.assert_allclose(chart.marks_lines.y, [y_scale(chart).min, y_scale(chart).max], rtol=1e-6)
    assert chart.marks_lines.line_style == "dashed"
    assert "batch → 128" in chart.marks_lines.labels[0]
    assert chart.marks_lines.tooltip is not None


def test_empty_chart_and_one_epoch(chart):
    assert chart.flush() is True
    assert "waiting for the first epoch" in chart.status.value
    mon = FakeMonitor()
    chart.watch(mon)
    chart.flush()
    # YES-0 is known before the first epoch: the red band is already there
    assert chart.band_red.x.size == 2
    mon.epoch(record(1, 0.3))
    chart.flush()
    assert chart.loss_line.x.size == 1 and chart.band_yellow.x.size == 2


def _curve_ends(mark):
    """The last point of every curve of a bqplot ``Lines``, as its browser view reads x and y."""
    x, y = np.asarray(mark.x, dtype=np.float64), np.asarray(mark.y, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        return []
    ys = y if y.ndim == 2 else y[None, :]
    xs = x if x.ndim == 2 else np.broadcast_to(x, ys.shape)
    return [(row_x[-1], row_y[-1]) for row_x, row_y in zip(xs, ys, strict=True)]


def test_every_curve_sent_to_the_browser_ends_on_a_finite_point(chart):
    # the browser places each curve's (hidden) label at its last point: a NaN there, or a curve with no
    # finite point at all, is a console error ("translate(x,undefined)", d="null")
    mon = FakeMonitor(upper=0.5)
    chart.watch(mon)
    chart.show_orders = chart.show_depth = True

    def ends():
        chart.flush()
        marks = [*chart.figure.marks, *chart.orders_figure.marks, *chart.depth_figure.marks]
        return [end for m in marks if hasattr(m, "fill") for end in _curve_ends(m)]

    assert ends() and all(np.isfinite(end).all() for end in ends())  # YES-0 only: no lower edge yet
    assert chart.band_green.x.size == 0 and chart.band_yellow.x.size == 0
    mon.steps(0, [0.5, 1.0], [0.9, math.nan])  # the newest minibatch loss is NaN
    mon.epoch(record(1, 0.8, lower=math.nan, yes_k=[math.nan] * 4))
    assert all(np.isfinite(end).all() for end in ends())
    assert chart.band_green.x.size == 0
    np.testing.assert_allclose(drawn_steps(chart), [0.5])  # the finite one is drawn
    mon.epoch(record(2, 0.3))  # the first lower edge: yellow and green are drawn
    assert all(np.isfinite(end).all() for end in ends())
    assert chart.band_green.x.size >= 2 and chart.band_yellow.y.shape[0] == 2


def test_refreshing_the_picture_replaces_the_output_instead_of_rendering_into_it(chart, monkeypatch):
    # JupyterLab and Notebook 7 render an update of the same kind into the old output and keep the old
    # widget view alive off the page (it draws on, and lays out figures added later at zero size: console
    # errors); the picture alone first makes them replace the output, then the widget comes back
    import IPython.display

    widget = "application/vnd.jupyter.widget-view+json"
    shown, updates = [], []
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw, display_id: shown.append(display_id))
    monkeypatch.setattr(IPython.display, "update_display",
                        lambda bundle, raw, display_id: updates.append((display_id, set(bundle))))
    chart._ipython_display_()
    chart.refresh_picture()
    assert [display_id for display_id, _ in updates] == shown * 2
    assert widget not in updates[0][1] and "image/png" in updates[0][1]
    assert {widget, "image/png"} <= updates[1][1]


def test_close_unsubscribes_and_leaves_no_thread(manual_pump):
    chart = CloudChart(pump=manual_pump)
    mon = FakeMonitor()
    chart.watch(mon)
    mon.steps(0, [0.1], [1.0])
    assert manual_pump.thread is not None
    chart.close()
    assert mon.subscribers == []
    assert manual_pump.thread is None          # the pump's thread ended with its last widget
    mon.steps(1, [0.2], [1.0])  # nothing happens, nothing raises
    assert chart.flush() is False


def test_export_delegates_to_render(chart, tmp_path):
    chart.watch(feed(FakeMonitor(), epochs=4))
    png = tmp_path / "cloud.png"
    svg = tmp_path / "cloud"
    chart.to_png(png)
    chart.to_svg(svg, dpi=72)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "cloud.svg").read_text()


def test_minibatch_history_is_resent_only_when_the_tail_is_full(manual_pump):
    chart = CloudChart(pump=pumped(manual_pump))
    mon = FakeMonitor()
    chart.watch(mon)
    history_sends = 0
    history = chart.step_line.x
    tail_sizes = []
    for k in range(1500):
        mon.steps(k, [k / 100.0 + 0.01], [1.0 + 0.5 * math.sin(k / 7.0)])
        if k % 10 == 9:
            chart.flush()                     # one redraw per 10 steps
        if chart.step_line.x is not history:
            history_sends += 1
            history = chart.step_line.x
        tail_sizes.append(chart.step_tail.x.size)
    assert redraws(chart, manual_pump) >= 150
    # the history line is rebuilt once per TAIL_POINTS new steps, not on every redraw
    assert 1 <= history_sends <= 1500 // CloudChart.TAIL_POINTS + 2
    assert max(tail_sizes) <= CloudChart.TAIL_POINTS + 1
    chart.flush()
    assert drawn_steps(chart).size == 1500  # fewer than MAX_POINTS: nothing decimated
    # history and tail join: the tail starts at the last step of the history
    if chart.step_tail.x.size:
        assert chart.step_tail.x[0] == chart.step_line.x[-1]
    chart.close()


# --------------------------------------------------------------------------
# the runtime: one writer thread, nothing left behind, only changes sent
# --------------------------------------------------------------------------
def _torch_setup(n=64, seed=0):
    torch = pytest.importorskip("torch")
    from yeswidget.training.tasks import mlp

    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    Y = torch.relu(X @ torch.randn(4, 3, generator=g))
    torch.manual_seed(seed)
    model = mlp([4, 8, 8, 3])
    return torch, model, X, Y


def test_minibatch_points_reach_the_chart_during_the_first_epoch():
    torch, model, X, Y = _torch_setup()
    from yeswidget.monitor import Monitor

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1, epochs=2)
    chart = CloudChart(monitor, pump=Pump(interval=0.05))
    seen_mid_epoch = 0
    for step in range(100):                   # a first epoch of 100 steps, ~0.6 s
        idx = torch.arange(step % 4 * 16, step % 4 * 16 + 16)
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X[idx]), Y[idx], reduction="sum") / 16
        loss.backward()
        optimizer.step()
        monitor.log(loss)
        time.sleep(0.006)
        if step == 80:
            chart.flush()
            seen_mid_epoch = drawn_steps(chart).size
    # steps-per-epoch is unknown until the epoch ends, yet the minibatch line is already there,
    # spread over the first epoch in order
    assert seen_mid_epoch >= 20
    x = drawn_steps(chart)
    assert np.all((x > 0) & (x <= 1.0))
    monitor.epoch_end()
    assert monitor.wait(60)
    chart.flush()
    np.testing.assert_allclose(drawn_steps(chart), np.arange(1, 101) / 100, atol=1e-6)
    assert chart.loss_line.x.size == 1
    monitor.close()
    chart.close()


def test_close_releases_every_widget_model_it_created():
    from ipywidgets.widgets.widget import _instances

    pump = Pump(interval=0.02)
    before = set(_instances)
    chart = CloudChart(pump=pump)
    chart.watch(feed(FakeMonitor("a", epochs_total=30), epochs=8))
    chart.show_orders = chart.show_depth = True   # built when first shown …
    chart.scale = "log"                          # new y scales and axes in all three figures
    chart.show_orders = False                    # … closed when hidden
    chart.scale = "linear"
    chart.watch(feed(FakeMonitor("b"), epochs=3))  # run a becomes a past run: a new mark
    chart.add_run(feed(FakeMonitor("c"), epochs=4).run)
    chart.highlight("a")
    chart.clear_runs()
    chart.add_run(feed(FakeMonitor("d"), epochs=2).run)
    chart.to_png  # noqa: B018 - reading attributes creates nothing
    assert len(set(_instances) - before) > 30
    chart.close()
    assert set(_instances) - before == set()
    assert pump.thread is None


def test_hidden_panels_cost_nothing_until_shown(chart):
    from ipywidgets.widgets.widget import _instances

    chart.watch(feed(FakeMonitor(), epochs=3))
    assert chart.orders_figure is None and chart.depth_figure is None
    n = len(_instances)
    chart.show_depth = True
    assert chart.depth_figure in chart.children and len(_instances) > n
    depth = chart.depth_figure
    chart.show_depth = False
    assert chart.depth_figure is None and depth not in chart.children
    assert depth.comm is None                    # closed, not just hidden
    assert len(_instances) == n


def test_only_what_changed_is_sent(chart, monkeypatch):
    mon = FakeMonitor(epochs_total=100)
    chart.watch(mon)
    feed(mon, epochs=5)
    chart.flush()
    sent = []
    monkeypatch.setattr(ipywidgets.Widget, "_send", lambda self, msg, buffers=None: sent.append((self, msg)))
    # minibatch steps only: the status line, the zone hover data and the loss line stay as they are
    # (the bands do move: they reach the newest step)
    for k in range(3):
        mon.steps(50 + k, [5.0 + (k + 1) / 10], [0.05])
        chart.flush()
    changed = {w for w, _ in sent}
    assert chart.step_tail in changed
    for unchanged in (chart.status, chart.loss_dots, chart.loss_line, chart.progress, chart.eta, chart.figure):
        assert unchanged not in changed
    sent.clear()
    chart.flush()                                # nothing new: nothing sent at all
    assert sent == []
    mon.epoch(record(6, 0.05))                   # a new epoch: its reading is sent once
    chart.flush()
    assert chart.status in {w for w, _ in sent} and chart.loss_dots in {w for w, _ in sent}


def test_every_widget_write_during_a_monitor_run_is_on_the_pump_thread(monkeypatch):
    torch, model, X, Y = _torch_setup()
    from yeswidget.monitor import Monitor

    pump = Pump(interval=0.02)
    chart = CloudChart(pump=pump, show_orders=True, show_depth=True)
    writes: list[tuple[int, str]] = []
    original = ipywidgets.Widget.notify_change

    def recording(self, change):
        writes.append((threading.get_ident(), f"{type(self).__name__}.{change['name']}"))
        return original(self, change)

    monkeypatch.setattr(ipywidgets.Widget, "notify_change", recording)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1, epochs=6, background=True)
    chart.watch(monitor)

    def train():                                 # the training thread; the bounds run on the worker
        for _ in monitor.epochs(6):
            for start in range(0, 64, 16):
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(X[start:start + 16]), Y[start:start + 16],
                                                    reduction="sum") / 16
                loss.backward()
                optimizer.step()
                monitor.log(loss)

    trainer = threading.Thread(target=train)
    trainer.start()
    trainer.join(120)
    assert monitor.wait(60)
    chart.add_run(monitor.run)                   # API calls from the main thread write nothing either
    chart.highlight(monitor.run.run_id)
    chart.flush()
    pump_thread = pump.thread.ident
    monkeypatch.undo()
    assert chart.loss_line.x.size == 6 and len(writes) > 20  # (how many depends on the pump's timing)
    elsewhere = sorted({name for ident, name in writes if ident != pump_thread})
    assert elsewhere == [], f"widget state written off the pump thread: {elsewhere}"
    monitor.close()
    chart.close()
    assert pump.thread is None


def test_a_loss_that_is_not_the_metric_gets_its_own_labelled_axis():
    torch, model, X, _ = _torch_setup()
    from yeswidget.monitor import Monitor

    labels = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()  # three classes
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    # judged in the Brier score (squared error), so the logged cross-entropy is another unit
    monitor = Monitor(model, X, labels, optimizer=optimizer, loss=loss_fn, every=1, judge="probabilities")
    chart = CloudChart(monitor)
    try:
        for _ in monitor.epochs(3):
            for start in range(0, 64, 16):
                optimizer.zero_grad()
                loss = loss_fn(model(X[start:start + 16]), labels[start:start + 16])
                loss.backward()
                optimizer.step()
                monitor.log(loss)
        assert monitor.wait(30)
        chart.flush()
        main_y, own_y = y_scale(chart), chart.step_line.scales["y"]
        assert own_y is not main_y and chart.step_tail.scales["y"] is own_y
        axis = next(a for a in chart.figure.axes if a.scale is own_y)
        assert axis.visible and axis.side == "right" and axis.label == "CrossEntropyLoss (minibatch)"
        ce = np.asarray(monitor.run.step_losses)
        assert own_y.min <= ce.min() and own_y.max >= ce.max()  # raw cross-entropy, in its own unit
        assert "CrossEntropyLoss" in chart.status.value and "accuracy" in chart.status.value
    finally:
        monitor.close()
        chart.close()


def test_a_loss_that_can_be_negative_is_drawn_on_a_linear_axis():
    import torch
    from torch import nn

    from yeswidget.monitor import Monitor

    g = torch.Generator().manual_seed(0)
    X = torch.randn(80, 3, generator=g)
    counts = torch.poisson(torch.exp(X[:, :1]), generator=g)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    with Monitor(model, X, counts, loss=nn.PoissonNLLLoss(), runs_dir=None) as poisson:
        assert CloudChart(poisson).scale == "linear"
    with Monitor(model, X, counts, loss=nn.HuberLoss(), runs_dir=None) as huber:
        assert CloudChart(huber).scale == "db"
