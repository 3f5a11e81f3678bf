"""The live YES cloud: a bqplot chart that follows a training monitor.

:class:`CloudChart` subscribes to a monitor's events (``StepEvent``,
``EpochEvent``, ``StatusEvent``), which may arrive on any thread, and draws
the cloud of YES-BOUNDS.md behind the loss curve: red above YES-0, yellow
inside the cloud, green below the lower edge (colours from
:mod:`yeswidget.core.zones`), the epoch loss, the minibatch losses faint, and
a status line that reads the zone out in words.

How a step becomes a pixel: the event callback only puts the event in an inbox
and marks the chart dirty with the UI pump (:mod:`yeswidget.widgets.pump`). The
pump thread, at most about ten times a second, drains the inbox, composes a
:class:`~yeswidget.view.scene.Scene` (the same one the matplotlib export draws)
and applies it to the bqplot marks as a diff inside ``hold_sync``: float32
binary buffers, only what changed. Long series are min/max decimated to the
pixels available; the full-resolution data stays in the monitor's run.
"""
from __future__ import annotations

import dataclasses
import html
import logging
import os
from typing import Any

import ipywidgets as widgets
import traitlets

from ..core.run import Run
from ..core.zones import ZONE_WORDS
from ..view import render
from ..view.scene import PAST_COLORS, RunSeries, SceneSettings, Status, StepDecimator, check_scale, compose
from .chart_figures import DepthFigure, MainFigure, OrdersFigure
from .chart_panels import ChartControls, StatusPanel, legend
from .chart_state import ChartModel
from .picture import Picture
from .pump import Pump, default_pump
from .saved import SavedRun, saved_runs
from .sync import close_all, iter_widgets, set_traits, state_nbytes

__all__ = ["CloudChart", "ZONE_WORDS", "state_nbytes", "iter_widgets"]

log = logging.getLogger(__name__)


class CloudChart(Picture, widgets.VBox):
    """Live YES-cloud chart for a training monitor (a ``VBox``: display it in Jupyter).

    ``monitor``: anything with ``subscribe(callback) -> handle`` (``handle.remove()``),
    ``run`` and optionally ``epochs_total``; None: watch nothing yet (see :meth:`watch`,
    :meth:`add_run`, :meth:`handle_event`). ``scale``: ``"db"``, ``"linear"``
    or ``"log"`` (default: the run's ``config["axis"]``, dB unless the judged loss can be
    negative). ``show_steps`` / ``show_orders`` / ``show_depth``: the minibatch line,
    the YES-k-per-order figure, the per-layer YES-0 figure (built when first shown,
    closed when hidden). ``title``: figure title (default: the run's label).
    ``pump``: the UI pump that writes this chart's widgets (default: the process-wide one).

    Attributes: ``figure`` (bqplot), ``status`` / ``badge`` (HTML), ``progress``, ``eta``,
    ``controls``, ``legend``, the marks (``band_red``, ``band_yellow``, ``band_green``,
    ``loss_line``, ``loss_dots``, ``step_line``, ``step_tail``, ``marks_lines``,
    ``diverged_dots``), ``orders_figure`` / ``depth_figure`` (None while hidden),
    ``last_error`` (the latest redraw failure or None).
    """

    scale = traitlets.Unicode("db", help="y-axis units: 'db' (10·log10 of the loss), 'linear' or 'log'")
    show_steps = traitlets.Bool(True, help="draw the per-step minibatch loss as a faint line")
    show_orders = traitlets.Bool(False, help="show the per-order YES-k curves (YES-1 … YES-(L-1))")
    show_depth = traitlets.Bool(False, help="show the per-layer YES-0 errors (layer 1 … L)")

    #: epoch-line dots (hover targets) are drawn for at most this many points
    HOVER_POINTS = 400
    #: most points a decimated series sends (a min and a max per pixel of a 1000-px chart)
    MAX_POINTS = 2000
    #: the newest minibatch losses are sent raw, up to this many; the decimated rest is resent
    #: only when this tail is full
    TAIL_POINTS = 400

    @traitlets.validate("scale")
    def _validate_scale(self, proposal):
        try:
            return check_scale(proposal["value"])
        except ValueError as exc:
            raise traitlets.TraitError(str(exc)) from None

    def __init__(self, monitor: Any = None, *, scale: str | None = None, show_steps: bool = True,
                 show_orders: bool = False, show_depth: bool = False, title: str | None = None,
                 pump: Pump | None = None, **kwargs: Any) -> None:
        if "min_interval" in kwargs:
            raise TypeError("CloudChart(min_interval=…) is gone: the UI pump redraws at about 10 Hz; "
                            "for another rate pass pump=Pump(interval=seconds) (yeswidget.widgets.pump)")
        self._ready = False
        self._title = title
        self._last_logged: tuple[str, str] | None = None
        self._model = ChartModel(PAST_COLORS)
        self._steps = StepDecimator(self.TAIL_POINTS)
        self._steps_seen: tuple[int, int] = (0, 0)
        self._handle: Any = None
        self._closed = True  # until registered with the pump
        self._error_note = ""
        self._line: tuple[str | None, bool] = (None, True)  # the current run's line: colour, shown
        self._paused = False  # the current run waits (its status reads "paused")
        self.shown_epoch = 0  # the last epoch drawn: the one counter the Playground's other parts follow
        self.last_error: BaseException | None = None
        self._main = MainFigure(title or "")
        self._panels = _Panels()
        self._status = StatusPanel()
        self._controls = ChartControls(self._on_control)
        self.legend = legend()
        super().__init__(children=self._children(), **kwargs)
        if scale is None:  # the judged loss's own axis: dB where it is positive, linear where it can be negative
            run = getattr(monitor, "run", None)
            scale = str((getattr(run, "config", None) or {}).get("axis", "db"))
        self.scale, self.show_steps, self.show_orders, self.show_depth = scale, show_steps, show_orders, show_depth
        pump = pump if pump is not None else default_pump()
        self._reg = pump.register(self._apply, name=f"CloudChart {self.model_id[:8]}")
        self._closed = False
        self._ready = True
        if monitor is not None:
            self.watch(monitor)
        else:
            self.flush()

    # ------------------------------------------------------------------ parts (read-only views)
    figure = property(lambda self: self._main.figure)
    status = property(lambda self: self._status.status)
    badge = status
    progress = property(lambda self: self._status.progress)
    eta = property(lambda self: self._status.eta)
    controls = property(lambda self: self._controls.box)
    orders_figure = property(lambda self: self._panels.figure("orders"))
    depth_figure = property(lambda self: self._panels.figure("depth"))

    def __getattr__(self, name: str) -> Any:
        # the main figure's marks: band_red, loss_line, step_line, …
        if name in _MAIN_MARKS:
            main = self.__dict__.get("_main")
            if main is not None:
                return getattr(main, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _children(self) -> list:
        # optional figures are left out of the box when off (a bqplot figure laid out at zero
        # size logs errors in the browser), and exist only while shown
        return ([self._status.status, self._status.progress_box, self._main.figure, self._controls.box]
                + self._panels.shown() + [self.legend])

    # ------------------------------------------------------------------ options
    @traitlets.observe("scale", "show_steps", "show_orders", "show_depth")
    def _on_option(self, change) -> None:
        if getattr(self, "_ready", False):
            self.flush()

    def _on_control(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    # ------------------------------------------------------------------ monitors
    def watch(self, monitor: Any, *, keep_previous: bool = True) -> CloudChart:
        """Follow ``monitor`` from now on (unsubscribing from the previous one).

        With ``keep_previous`` the run shown so far becomes a past run (a faded line).
        Data the monitor's run already holds is drawn at once.
        """
        self._unsubscribe()
        model = self._model
        generation = model.post_generation("watch", monitor, keep_previous)
        if monitor is not None and not self._closed:
            self._handle = monitor.subscribe(lambda event: self._on_event(event, generation))
        self.flush()
        return self

    def unwatch(self) -> None:
        """Stop following the monitor (the drawing stays)."""
        self._unsubscribe()
        self._model.post_generation("unwatch")
        self._reg.mark()

    @property
    def monitor(self) -> Any:
        return self._model.monitor

    def _unsubscribe(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.remove()
            except Exception:  # a monitor that is already gone
                log.debug("removing the subscription failed", exc_info=True)

    # ------------------------------------------------------------------ events
    def handle_event(self, event: Any) -> None:
        """Feed one event (``StepEvent``, ``EpochEvent``, ``StatusEvent``) by hand. Any thread; never raises."""
        self._on_event(event, None)

    def _on_event(self, event: Any, generation: int | None) -> None:
        if self._closed:
            return
        self._model.event(event, generation)
        self._reg.mark()

    def flush(self, timeout: float = 10.0) -> bool:
        """Draw everything received now (on the pump thread) and wait; False if the redraw failed."""
        return False if self._closed else self._reg.flush(timeout)

    # ------------------------------------------------------------------ the pump's side
    def _apply(self) -> None:
        """Drain, compose and draw (pump thread only)."""
        try:
            self._draw()
        except Exception as exc:
            self._remember_error(exc)
            raise
        finally:
            self._main.close_retired()
            self._panels.close_retired()

    def _draw(self) -> None:
        model = self._model
        with model.lock:
            model.drain()
            track, past, highlight = model.track, list(model.past), model.highlight
            settings = SceneSettings(scale=self.scale, width_px=self.MAX_POINTS // 2, show_steps=self.show_steps,
                                     show_orders=self.show_orders, show_depth=self.show_depth,
                                     epochs_total=model.epochs_total(), hover_points=self.HOVER_POINTS,
                                     line_color=self._line[0], line_visible=self._line[1])
            series, status = track.series(), track.reading(settings.epochs_total)
            self.shown_epoch = int(track.records[-1].epoch) if track.records else 0
            if not self._line[1]:  # a hidden run: none of it is drawn (loss, minibatches, cloud, badge)
                series = RunSeries(run_id=series.run_id, label=series.label)
                status = Status(state="hidden", message=f"{series.label or 'this run'} is hidden",
                                epochs_total=settings.epochs_total)
            elif self._paused and status.state == "running":
                status = dataclasses.replace(status, state="paused")
            if (track.serial, track.revision) != self._steps_seen:
                self._steps.reset()  # a new run, or steps that moved
                self._steps_seen = (track.serial, track.revision)
            title = (track.run.label if track.run.config else "") if self._title is None and track.run else None
        scene = compose(series, settings, past=[(p.series, p.color) for p in past], status=status, steps=self._steps)
        self._main.apply(scene, [id(p) for p in past], highlight, title)
        self._main.show_steps(self.show_steps)
        self._panels.apply(scene, self.show_orders, self.show_depth)
        self._controls.show(scale=self.scale, show_steps=self.show_steps, show_orders=self.show_orders,
                            show_depth=self.show_depth)
        self._error_note = ""
        self._status.apply(status)
        set_traits(self, children=tuple(self._children()))

    def _remember_error(self, exc: BaseException) -> None:
        self.last_error = exc
        if (type(exc).__name__, str(exc)) != self._last_logged:  # once per distinct failure
            self._last_logged = (type(exc).__name__, str(exc))
            log.error("CloudChart redraw failed: %s", exc)
        self._error_note = (f'<div style="color:#a00;font-size:0.85em">display error '
                            f"(the training is not affected): {html.escape(type(exc).__name__)}: "
                            f"{html.escape(str(exc))[:200]}</div>")
        try:
            with self._model.lock:
                status = self._model.track.reading(self._model.epochs_total())
            self._status.apply(status, self._error_note)
        except Exception:
            log.debug("status update failed", exc_info=True)

    # ------------------------------------------------------------------ past runs
    @classmethod
    def from_runs(cls, *runs_or_paths: Any, **options: Any) -> CloudChart:
        """A chart of saved runs (run logs, ``run.json`` files, folders of logs, or ``Run`` objects),
        e.g. after a kernel restart: the first with its cloud, the others overlaid as faded lines."""
        runs = saved_runs(runs_or_paths)
        chart = cls(**options)
        for other in runs[1:]:
            chart.add_run(other)
        chart.watch(SavedRun(runs[0]), keep_previous=False)
        chart.unwatch()
        return chart

    def line_style(self, color: str | None = None, visible: bool = True) -> None:
        """The current run's colour (None: the default) and whether it is shown at all (hidden: no
        loss, minibatch line, cloud or badge of it)."""
        self._line = (color, bool(visible))
        self._reg.mark()

    def set_paused(self, paused: bool) -> None:
        """Whether the current run is paused (its status then reads "paused")."""
        if bool(paused) != self._paused:
            self._paused = bool(paused)
            self._reg.mark()

    def add_run(self, run: Run, *, color: str | None = None) -> None:
        """Draw a finished run as a faded line labelled ``run.label`` (kept across :meth:`watch`)."""
        self._model.inbox.put(("add", run, color))
        self.flush()

    @property
    def past_runs(self) -> list[Run]:
        """The runs drawn as faded lines, oldest first."""
        with self._model.lock:
            return [p.run for p in self._model.past]

    @property
    def run(self) -> Run | None:
        """The run being drawn: the monitor's run, or what this chart received as events."""
        with self._model.lock:
            return self._model.current_run()

    def highlight(self, run_id: str | None) -> None:
        """Draw the past run with this ``run_id`` bold (``None`` clears)."""
        with self._model.lock:
            self._model.highlight = run_id
        self.flush()

    def clear_runs(self) -> None:
        """Remove every past run."""
        self._model.inbox.put(("clear",))
        self.flush()

    # ------------------------------------------------------------------ export
    def to_png(self, path: Any, **kw: Any) -> Any:
        """Save the chart's picture with matplotlib (see :func:`yeswidget.view.render.save_cloud`)."""
        return _export(self, path, ".png", kw)

    def to_svg(self, path: Any, **kw: Any) -> Any:
        """Save the chart's picture as SVG (see :func:`yeswidget.view.render.save_cloud`)."""
        return _export(self, path, ".svg", kw)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Unsubscribe, leave the pump (no apply after this), close every widget model this chart made."""
        if getattr(self, "_closed", True):  # closed, or never finished __init__
            return
        self._closed = True
        self._unsubscribe()
        self._reg.close()
        self._controls.detach()
        self._main.close_retired()
        self._panels.close_all()
        close_all(self, *self._main.past_marks.values(), *self._main.own_axis_widgets)


def _export(chart: CloudChart, path: Any, ext: str, kw: dict) -> Any:
    """The chart's current and past runs drawn by matplotlib (the same scene) into ``path``."""
    chart.flush()
    with chart._model.lock:
        run = chart._model.current_run() or Run()
        past = [p.run for p in chart._model.past]
    kw.setdefault("scale", chart.scale)
    kw.setdefault("show_steps", chart.show_steps)
    if chart._title is not None:
        kw.setdefault("title", chart._title)
    path = os.fspath(path)
    return render.save_cloud(run, path if path.lower().endswith(ext) else path + ext, past_runs=past, **kw)


_MAIN_MARKS = frozenset({"band_red", "band_yellow", "band_green", "marks_lines", "marks_tooltip", "step_line",
                         "step_tail", "loss_line", "loss_dots", "loss_tooltip", "diverged_dots"})


class _Panels:
    """The optional figures: built when first shown, closed when hidden (pump thread)."""

    def __init__(self) -> None:
        self._figures: dict[str, Any] = {}
        self._retired: list = []

    def figure(self, name: str) -> Any:
        panel = self._figures.get(name)
        return panel.figure if panel is not None else None

    def shown(self) -> list:
        return [self._figures[n].figure for n in ("orders", "depth") if n in self._figures]

    def apply(self, scene: Any, orders: bool, depth: bool) -> None:
        for name, wanted, cls, view in (("orders", orders, OrdersFigure, scene.orders),
                                        ("depth", depth, DepthFigure, scene.depth)):
            if wanted and name not in self._figures:
                self._figures[name] = cls()
            elif not wanted and name in self._figures:
                self._retired.append(self._figures.pop(name))
            if wanted and view is not None:
                self._figures[name].apply(view, scene.scale)

    def close_retired(self) -> None:
        closing, self._retired = self._retired, []
        for panel in closing:
            panel.close_retired()
            close_all(panel.figure)

    def close_all(self) -> None:
        self._retired.extend(self._figures.values())
        self._figures = {}
        self.close_retired()
