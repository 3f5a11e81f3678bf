"""The live YES cloud: a bqplot chart that follows a training monitor.

:class:`CloudChart` subscribes to a monitor's events (``StepEvent``,
``EpochEvent``, ``StatusEvent``), possibly sent from a background training
thread, and draws the cloud of YES-BOUNDS.md behind the loss curve:

* red band ``#FFB6C1`` from YES-0 up to the top of the plot (ineffective),
* yellow band ``#FFD700`` between YES-0 and the lower edge (meaningful, not optimal),
* green band ``#00FF7F`` from the lower edge down to the bottom (effective),

at 40% opacity, with the YES-0 line in red, the lower edge dashed, the epoch loss
as the main line, the minibatch losses as a faint line, and a status line that
reads the zone out in words.

Streaming model: the event callback only appends to buffers under a lock; a
redraw copies what is new, and redraws are coalesced to at most one per
``min_interval`` seconds (the first one at once, the rest by a single pending
``threading.Timer``). Every redraw sends numpy arrays inside ``hold_sync`` and
long series are reduced to min/max per horizontal bucket, so a 100,000-step run
costs the browser a bounded payload per redraw while the full-resolution data
stays in the monitor's :class:`~yeswidget.run.Run`.
"""
from __future__ import annotations

import contextlib
import html
import itertools
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import bqplot
import ipywidgets as widgets
import traitlets

from .run import EpochEvent, EpochRecord, Run, StatusEvent, StepEvent, to_db
from . import render as _render
from .render import (
    BAND_OPACITY,
    LOSS_COLOR,
    LOWER_COLOR,
    PAST_COLORS,
    STEP_COLOR,
    UPPER_COLOR,
    ZONE_COLORS,
    band_geometry,
    check_scale,
    decimate_minmax,
    mark_label,
    to_display,
    y_limits,
)

__all__ = ["CloudChart", "ZONE_WORDS", "state_nbytes", "iter_widgets"]

log = logging.getLogger(__name__)

#: the status line's words for each zone
ZONE_WORDS = {
    "red": "red: above YES-0, training is ineffective so far",
    "yellow": "yellow: inside the cloud, training is meaningful but not optimal",
    "green": "green: below the lower edge, effective training (maybe diminishing returns)",
}

#: badge colours (solid versions of the band colours, dark text on top)
_BADGE_COLORS = dict(ZONE_COLORS)
_TICK_FORMATS = {"db": None, "linear": None, "log": ".2g"}
_STATUS_COLORS = {"failed": "#b00020", "diverged": "#b00020", "stopped": "#8a6d00", "finished": "#1e6b3a"}

_LEGEND_HTML = """
<div style="font-size: 0.9em; line-height: 1.45">
<p>The cloud is computed from the training data alone (YES-BOUNDS.md); the loss is
compared with it after every epoch, on the same samples and in the same unit
(squared error summed over outputs, averaged over samples).</p>
<ul style="margin: 0 0 0 1.2em; padding: 0">
<li><span style="background:#FFB6C1; padding: 0 0.5em">red</span>: the loss is above
<b>YES-0</b> (the red line), the loss of a network built greedily by least squares from the
data alone. Training is <b>ineffective</b> so far: the data has not shaped the weights yet.</li>
<li><span style="background:#FFD700; padding: 0 0.5em">yellow</span>: inside the cloud,
between YES-0 and the lower edge (dashed). Training is <b>meaningful but certainly not
optimal</b>. A loss that plateaus here is far from optimal: try another learning rate or
batch size.</li>
<li><span style="background:#00FF7F; padding: 0 0.5em">green</span>: below the lower edge,
the best bound built from the network's own hidden layers so far. <b>Effective</b>
training, possibly near-optimal; maybe diminishing returns.</li>
</ul>
<p>The faint line is the minibatch loss (as logged; not compared with the cloud).
Axis: dB = 10·log10(loss).</p>
</div>
"""


# --------------------------------------------------------------------------
# payload measurement helpers (tests and the benchmark use them)
# --------------------------------------------------------------------------
def iter_widgets(root: widgets.Widget):
    """Every widget reachable from ``root`` through its traits (children, marks, scales, …)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        yield w
        for name in w.trait_names():
            try:
                value = getattr(w, name)
            except Exception:  # pragma: no cover - exotic traits
                continue
            for item in _widget_items(value):
                if id(item) not in seen:
                    stack.append(item)


def _widget_items(value):
    if isinstance(value, widgets.Widget):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, widgets.Widget):
                yield item
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, widgets.Widget):
                yield item


def state_nbytes(root: widgets.Widget, *, only_synced: bool = True) -> int:
    """Bytes of the full widget state under ``root``: JSON text plus binary buffers.

    This is what a front-end receives when it first renders the chart (each
    widget's ``get_state()``, numpy arrays counted by their buffer size).
    """
    from ipywidgets.widgets.widget import _remove_buffers

    total = 0
    for w in iter_widgets(root):
        if only_synced and getattr(w, "comm", None) is None:  # closed: nothing to send
            continue
        state, _paths, buffers = _remove_buffers(w.get_state())
        total += len(json.dumps(state, default=str, ensure_ascii=False).encode("utf-8"))
        total += sum(memoryview(b).nbytes for b in buffers)
    return total


# --------------------------------------------------------------------------
# small internals
# --------------------------------------------------------------------------
class _Growable:
    """A float64 array that grows by doubling (append-only)."""

    __slots__ = ("_data", "_n")

    def __init__(self, capacity: int = 1024):
        self._data = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def extend(self, values: np.ndarray) -> None:
        k = values.size
        if self._n + k > self._data.size:
            grown = np.empty(max(2 * self._data.size, self._n + k), dtype=np.float64)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : self._n + k] = values
        self._n += k

    def view(self) -> np.ndarray:
        return self._data[: self._n]

    def clear(self) -> None:
        self._n = 0

    def __len__(self) -> int:
        return self._n


@dataclass
class _Past:
    run: Run
    color: str
    mark: Any
    epochs: np.ndarray
    losses: np.ndarray


@dataclass
class _Retired:
    """A run that ended inside a monitor (its id changed) or when ``watch`` moved on."""

    run: Run | None
    run_id: str
    records: list
    steps: list
    status: tuple


@dataclass
class _Snapshot:
    records: list
    status: tuple
    epochs_total: int | None
    run: Run | None
    retired: list = field(default_factory=list)
    arrival: tuple | None = None


def _f32(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).astype(np.float32))


def _same(old, new) -> bool:
    if old is None or new is None:
        return old is new
    if not isinstance(old, np.ndarray):
        return False
    if old.shape != new.shape or old.dtype != new.dtype:
        return False
    if new.dtype.kind == "f":
        return bool(np.array_equal(old, new, equal_nan=True))
    return bool(np.array_equal(old, new))


def _set_arrays(mark, **arrays) -> None:
    """Assign array traits only when they changed (NaN-aware), so nothing identical is resent."""
    for name, value in arrays.items():
        if not _same(getattr(mark, name), value):
            setattr(mark, name, value)


def _db_text(value: float) -> str:
    d = to_db(value)
    if d is None or math.isnan(d):
        return "n/a"
    if math.isinf(d):
        return "+∞ dB" if d > 0 else "−∞ dB"
    return f"{d:.2f} dB".replace("-", "−")


def _duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


# --------------------------------------------------------------------------
# the chart
# --------------------------------------------------------------------------
class CloudChart(widgets.VBox):
    """Live YES-cloud chart for a training monitor (a ``VBox``: display it in Jupyter).

    Parameters
    ----------
    monitor:
        Anything with ``subscribe(callback) -> handle`` (``handle.remove()``),
        ``run`` (the :class:`~yeswidget.run.Run` being filled) and optionally
        ``epochs_total``. ``None``: watch nothing yet (see :meth:`watch`,
        :meth:`add_run`, :meth:`handle_event`).
    scale:
        y units: ``"db"`` (10·log10, default), ``"linear"`` or ``"log"``.
    show_steps, show_orders, show_depth:
        draw the minibatch losses; show the YES-k-per-order figure; show the
        per-layer YES-0 figure.
    title:
        figure title (default: the run's label).

    Attributes
    ----------
    figure, orders_figure, depth_figure: bqplot ``Figure``
    badge / status: ``ipywidgets.HTML`` with the zone badge and the numbers
    progress: ``ipywidgets.FloatProgress`` (shown when the number of epochs is known)
    min_interval: seconds between redraws (default 0.1)
    redraw_count: number of redraws so far; last_error: the last redraw failure or None
    clock, timer_factory: injectable time source and timer (tests)
    """

    scale = traitlets.Unicode("db", help="y-axis units: 'db' (10·log10 of the loss), 'linear' or 'log'")
    show_steps = traitlets.Bool(True, help="draw the per-step minibatch loss as a faint line")
    show_orders = traitlets.Bool(False, help="show the per-order YES-k curves (YES-1 … YES-(L-1))")
    show_depth = traitlets.Bool(False, help="show the per-layer YES-0 errors (layer 1 … L)")

    #: epoch-line dots (hover targets) are drawn for at most this many points
    HOVER_POINTS = 400
    #: most points a decimated series sends
    MAX_POINTS = 2000
    #: the newest minibatch losses are sent raw, up to this many, as a separate "tail" line;
    #: the rest (the "history") is decimated and only resent when the tail is full
    TAIL_POINTS = 400

    @traitlets.validate("scale")
    def _validate_scale(self, proposal):
        try:
            return check_scale(proposal["value"])
        except ValueError as exc:
            raise traitlets.TraitError(str(exc)) from None

    def __init__(
        self,
        monitor=None,
        *,
        scale: str = "db",
        show_steps: bool = True,
        show_orders: bool = False,
        show_depth: bool = False,
        title: str | None = None,
        min_interval: float = 0.1,
        **kwargs,
    ):
        self._ready = False
        self.min_interval = float(min_interval)
        self.clock: Callable[[], float] = time.monotonic
        self.timer_factory: Callable[..., Any] = threading.Timer
        self.redraw_count = 0
        self.last_error: BaseException | None = None
        self.monitor = None
        self._title = title
        self._lock = threading.Lock()
        self._draw_lock = threading.RLock()
        self._timer = None
        self._last_timer = None  # the latest redraw timer, pending or running: close() joins it
        self._timer_seq = 0
        self._timer_live: int | None = None
        self._closed = False
        self._last_draw = -math.inf
        self._dirty = False
        self._handle = None
        self._generation = 0
        self._to_close: list = []
        self._error_note = ""
        self._last_logged = None
        # buffers filled by the event callback (under _lock)
        self._run: Run | None = None
        self._run_id = ""
        self._pend_records: list[EpochRecord] = []
        self._pend_steps: list[tuple] = []
        self._status = ("running", "", "")
        self._epochs_total: int | None = None
        self._retired: list[_Retired] = []
        self._arrival: list | None = None  # [first_epoch, first_t, last_epoch, last_t]
        # drawn state (under _draw_lock)
        self._records: list[EpochRecord] = []
        self._zones: list[str] = []  # zone per drawn record (hover names)
        self._sx = _Growable()
        self._sy = _Growable()
        self._frozen = 0                 # steps covered by the decimated history line
        self._hist = None                # (x, y) of the history line, plot units
        self._hist_scale = None
        self._past: list[_Past] = []
        self._highlight: str | None = None

        self._build_widgets()
        super().__init__(children=self._children(), **kwargs)
        self.scale = scale
        self.show_steps = show_steps
        self.show_orders = show_orders
        self.show_depth = show_depth
        self._apply_visibility()
        self._ready = True
        if monitor is not None:
            self.watch(monitor)
        else:
            self.flush()

    # ------------------------------------------------------------------ build
    def _build_widgets(self) -> None:
        self._xs = bqplot.LinearScale(min=0.0, max=1.0, allow_padding=False)
        self._ys = bqplot.LinearScale(min=-30.0, max=10.0, allow_padding=False)
        sc = {"x": self._xs, "y": self._ys}

        empty = np.empty(0, np.float32)
        # The red band is the YES-0 line filled up to the top of the plot (its stroke is the
        # red YES-0 line); the green band is the lower edge filled down to the bottom (its
        # stroke is the dashed lower edge); the yellow band fills between the two edges.
        # The y scale's min/max are set from the data on every redraw and the figure has
        # no vertical padding, so "top" and "bottom" of the plot are those values.
        self.band_yellow = bqplot.Lines(
            x=empty, y=empty, scales=sc, fill="between", colors=[ZONE_COLORS["yellow"]] * 2,
            fill_colors=[ZONE_COLORS["yellow"]] * 2, opacities=[0.0, 0.0],
            fill_opacities=[BAND_OPACITY, 0.0], stroke_width=0.0, enable_hover=False,
            labels=["YES-0", "lower edge"],
        )
        self.band_red = bqplot.Lines(
            x=empty, y=empty, scales=sc, fill="top", colors=[UPPER_COLOR],
            fill_colors=[ZONE_COLORS["red"]], fill_opacities=[BAND_OPACITY], stroke_width=1.8,
            enable_hover=False, labels=["YES-0"],
        )
        self.band_green = bqplot.Lines(
            x=empty, y=empty, scales=sc, fill="bottom", colors=[LOWER_COLOR], line_style="dashed",
            fill_colors=[ZONE_COLORS["green"]], fill_opacities=[BAND_OPACITY], stroke_width=1.5,
            enable_hover=False, labels=["lower edge"],
        )
        self.marks_tooltip = bqplot.Tooltip(fields=["name"], show_labels=False)
        self.marks_lines = bqplot.Lines(x=np.empty(0, np.float32), y=np.empty(0, np.float32), scales=sc,
                                        colors=["#666666"], stroke_width=1.2, line_style="dashed",
                                        opacities=[0.8], tooltip=self.marks_tooltip)
        self.step_line = bqplot.Lines(x=np.empty(0, np.float32), y=np.empty(0, np.float32), scales=sc,
                                      colors=[STEP_COLOR], opacities=[0.3], stroke_width=1.0,
                                      labels=["minibatch loss"], enable_hover=False)
        self.step_tail = bqplot.Lines(x=np.empty(0, np.float32), y=np.empty(0, np.float32), scales=sc,
                                      colors=[STEP_COLOR], opacities=[0.3], stroke_width=1.0,
                                      labels=["minibatch loss (latest)"], enable_hover=False)
        self.loss_line = bqplot.Lines(x=np.empty(0, np.float32), y=np.empty(0, np.float32), scales=sc,
                                      colors=[LOSS_COLOR], stroke_width=2.2, labels=["current run"],
                                      enable_hover=False)
        # Hover tooltip of the loss dots. bqplot ignores a Scatter's size / rotation / skew
        # data when the mark has no scale for them (documented), but its Tooltip can show
        # any data field: they carry the loss, YES-0 and the lower edge in dB, and the
        # point names carry the zone. Numbers travel as float32 buffers, not strings.
        self.loss_tooltip = bqplot.Tooltip(
            fields=["x", "size", "rotation", "skew", "name"],
            labels=["epoch", "loss (dB)", "YES-0 (dB)", "lower edge (dB)", "zone"],
            formats=["d", ".2f", ".2f", ".2f", ""],
        )
        self.loss_dots = bqplot.Scatter(x=empty, y=empty, size=empty, rotation=empty, skew=empty,
                                        scales=sc, colors=[LOSS_COLOR], default_size=28, stroke=None,
                                        names=np.array([], dtype=str), names_unique=False,
                                        display_names=False, tooltip=self.loss_tooltip,
                                        hovered_style={"opacity": "1.0", "fill": "#000000"})
        self.diverged_dots = bqplot.Scatter(x=np.empty(0, np.float32), y=np.empty(0, np.float32),
                                            scales=sc, marker="cross", colors=[UPPER_COLOR],
                                            default_size=90, enable_hover=False)
        self._x_axis = bqplot.Axis(scale=self._xs, label="epoch", grid_lines="dashed")
        self._y_axis = bqplot.Axis(scale=self._ys, side="left", label="loss (dB)",
                                   grid_lines="dashed", label_offset="45px")
        self.figure = bqplot.Figure(
            marks=self._main_marks(), axes=[self._x_axis, self._y_axis], title=self._title or "",
            padding_y=0.0,
            fig_margin=dict(top=40, bottom=45, left=65, right=20), legend_location="top-right",
            animation_duration=0, layout=widgets.Layout(width="100%", height="380px"),
        )

        # per-order YES-k figure
        self._oxs = bqplot.LinearScale(min=0.0, max=1.0, allow_padding=False)
        self._oys = bqplot.LinearScale(min=-30.0, max=10.0, allow_padding=False)
        osc = {"x": self._oxs, "y": self._oys}
        self.orders_lines = bqplot.Lines(x=np.empty(0, np.float32), y=np.empty(0, np.float32),
                                         scales=osc, stroke_width=1.6, display_legend=True,
                                         colors=["#1f77b4"])
        self.orders_upper = bqplot.Lines(x=np.empty(0, np.float32), y=np.empty(0, np.float32),
                                         scales=osc, colors=[UPPER_COLOR], labels=["YES-0"],
                                         display_legend=True)
        self.orders_loss = bqplot.Lines(x=np.empty(0, np.float32), y=np.empty(0, np.float32),
                                        scales=osc, colors=[LOSS_COLOR], labels=["epoch loss"],
                                        display_legend=True, stroke_width=2.0)
        self._oy_axis = bqplot.Axis(scale=self._oys, side="left", label="bound (dB)",
                                    grid_lines="dashed", label_offset="45px")
        self.orders_figure = bqplot.Figure(
            marks=[self.orders_lines, self.orders_upper, self.orders_loss],
            axes=[bqplot.Axis(scale=self._oxs, label="epoch", grid_lines="dashed"), self._oy_axis],
            title="YES-k per order (running minimum)", legend_location="top-right",
            fig_margin=dict(top=40, bottom=45, left=65, right=20), animation_duration=0,
            layout=widgets.Layout(width="100%", height="300px"),
        )

        # per-layer YES-0 figure
        self._dxs = bqplot.LinearScale(min=0.5, max=1.5, allow_padding=False)
        self._dys = bqplot.LinearScale(min=-30.0, max=10.0, allow_padding=False)
        self.depth_line = bqplot.Lines(x=np.empty(0, np.float32), y=np.empty(0, np.float32),
                                       scales={"x": self._dxs, "y": self._dys}, colors=[UPPER_COLOR],
                                       marker="circle", marker_size=40, stroke_width=1.8)
        self._dx_axis = bqplot.Axis(scale=self._dxs, label="layer", tick_format="d")
        self._dy_axis = bqplot.Axis(scale=self._dys, side="left", label="YES-0 error (dB)",
                                    grid_lines="dashed", label_offset="45px")
        self.depth_figure = bqplot.Figure(
            marks=[self.depth_line], axes=[self._dx_axis, self._dy_axis],
            title="per-layer YES-0 (error of each layer's least-squares fit)",
            fig_margin=dict(top=40, bottom=45, left=65, right=20), animation_duration=0,
            layout=widgets.Layout(width="100%", height="260px"),
        )

        # status line, progress, controls, legend
        self.status = widgets.HTML(value="")
        self.badge = self.status
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info",
                                              layout=widgets.Layout(width="50%"))
        self.eta = widgets.HTML(value="")
        self._progress_box = widgets.HBox([self.progress, self.eta],
                                          layout=widgets.Layout(display="none"))
        self._steps_box = widgets.Checkbox(value=True, description="minibatch loss", indent=False,
                                           layout=widgets.Layout(width="auto"))
        self._orders_box = widgets.Checkbox(value=False, description="YES-k per order",
                                            indent=False, layout=widgets.Layout(width="auto"))
        self._depth_box = widgets.Checkbox(value=False, description="per-layer YES-0",
                                           indent=False, layout=widgets.Layout(width="auto"))
        self._scale_buttons = widgets.ToggleButtons(
            options=[("dB", "db"), ("linear", "linear"), ("log", "log")], value="db",
            style={"button_width": "60px"}, tooltips=["10·log10(loss)", "loss", "loss on a log axis"],
        )
        self.controls = widgets.HBox([self._scale_buttons, self._steps_box, self._orders_box,
                                      self._depth_box],
                                     layout=widgets.Layout(align_items="center", flex_flow="row wrap"))
        self.legend = widgets.Accordion(children=[widgets.HTML(_LEGEND_HTML)],
                                        titles=("What do the colours mean?",))
        self.legend.selected_index = None
        self._links = [
            traitlets.link((self._steps_box, "value"), (self, "show_steps")),
            traitlets.link((self._orders_box, "value"), (self, "show_orders")),
            traitlets.link((self._depth_box, "value"), (self, "show_depth")),
            traitlets.link((self._scale_buttons, "value"), (self, "scale")),
        ]

    def _main_marks(self) -> list:
        return ([self.band_yellow, self.band_red, self.band_green, self.marks_lines]
                + [p.mark for p in getattr(self, "_past", [])]
                + [self.step_line, self.step_tail, self.loss_line, self.loss_dots, self.diverged_dots])

    # ------------------------------------------------------------------ options
    @traitlets.observe("scale", "show_steps", "show_orders", "show_depth")
    def _on_option(self, change) -> None:
        if not getattr(self, "_ready", False):
            return
        self._apply_visibility()
        self.flush()

    def _children(self) -> list:
        # the optional figures are left out of the box when off (not just hidden: a
        # bqplot figure laid out at zero size logs errors in the browser)
        return ([self.status, self._progress_box, self.figure, self.controls]
                + ([self.orders_figure] if self.show_orders else [])
                + ([self.depth_figure] if self.show_depth else [])
                + [self.legend])

    def _apply_visibility(self) -> None:
        self.step_line.visible = bool(self.show_steps)
        self.step_tail.visible = bool(self.show_steps)
        children = tuple(self._children())
        if tuple(self.children) != children:
            self.children = children

    # ------------------------------------------------------------------ monitors
    def watch(self, monitor, *, keep_previous: bool = True) -> "CloudChart":
        """Follow ``monitor`` from now on (unsubscribing from the previous one).

        With ``keep_previous`` the run shown so far becomes a past run (a faded
        line). Data the monitor's run already holds is drawn at once.
        """
        # The monitor may call us while holding its own lock, so (un)subscribing happens
        # outside this chart's locks; events still in flight from the previous monitor
        # carry an old generation number and are dropped.
        self._unsubscribe()
        with self._draw_lock:
            if keep_previous:
                self._retire_current()
                self._drain_retired()
            else:
                self._reset_current()
            run = getattr(monitor, "run", None) if monitor is not None else None
            with self._lock:
                self._generation += 1
                generation = self._generation
                self.monitor = monitor
                self._run = run
                self._run_id = getattr(run, "run_id", "") or ""
                self._epochs_total = getattr(monitor, "epochs_total", None)
        if monitor is not None:
            handle = monitor.subscribe(lambda event: self._handle_event(event, generation))
            with self._lock:
                stale = self._generation != generation or self._closed
                self._handle = handle
            if stale:
                self._unsubscribe()
            elif run is not None:
                self._load_run(run)
        self.flush()
        return self

    def unwatch(self) -> None:
        """Stop following the monitor (the drawing stays)."""
        self._unsubscribe()
        with self._lock:
            self._generation += 1
            self.monitor = None

    def _unsubscribe(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.remove()
            except Exception:  # a monitor that is already gone
                log.debug("removing the subscription failed", exc_info=True)

    def _load_run(self, run: Run) -> None:
        """Queue what ``run`` already holds, ahead of anything the callback buffered meanwhile."""
        records = list(run.epochs)
        pos = list(run.step_positions)
        loss = list(run.step_losses)
        n = min(len(pos), len(loss))
        with self._lock:
            self._pend_records[:0] = records
            if n:
                self._pend_steps.insert(0, (pos[:n], loss[:n]))
            status = getattr(run, "status", "running") or "running"
            if self._status[0] == "running":
                self._status = (status, getattr(run, "message", "") or "",
                                getattr(run, "traceback", "") or "")
            self._dirty = True

    def _retire_current(self) -> None:
        with self._lock:
            entry = _Retired(self._run, self._run_id, self._pend_records, self._pend_steps, self._status)
            self._pend_records, self._pend_steps = [], []
            self._status = ("running", "", "")
            self._run, self._run_id = None, ""
            self._arrival = None
            self._retired.append(entry)

    def _reset_current(self) -> None:
        with self._lock:
            self._pend_records, self._pend_steps = [], []
            self._status = ("running", "", "")
            self._run, self._run_id = None, ""
            self._arrival = None
        self._records, self._zones = [], []
        self._clear_steps()

    # ------------------------------------------------------------------ events
    def handle_event(self, event) -> None:
        """Feed one event (``StepEvent``, ``EpochEvent``, ``StatusEvent``) by hand.

        This is what the monitor subscription calls: buffer the event and ask for
        a (throttled) redraw. Safe to call from any thread; never raises.
        """
        self._handle_event(event, None)

    def _handle_event(self, event, generation: int | None) -> None:
        try:
            with self._lock:
                if self._closed or (generation is not None and generation != self._generation):
                    return
                run_id = getattr(event, "run_id", "") or ""
                if run_id and self._run_id and run_id != self._run_id:
                    # the monitor started a new run: the old one becomes a past run
                    self._retired.append(_Retired(self._run, self._run_id, self._pend_records,
                                                  self._pend_steps, self._status))
                    self._pend_records, self._pend_steps = [], []
                    self._status = ("running", "", "")
                    self._arrival = None
                    new_run = getattr(self.monitor, "run", None)
                    self._run = new_run if getattr(new_run, "run_id", None) == run_id else None
                if run_id:
                    self._run_id = run_id
                if isinstance(event, StepEvent):
                    self._pend_steps.append((event.positions, event.losses))
                elif isinstance(event, EpochEvent):
                    self._pend_records.append(event.record)
                    if event.epochs_total is not None:
                        self._epochs_total = event.epochs_total
                    now = self.clock()
                    if self._arrival is None:
                        self._arrival = [event.record.epoch, now, event.record.epoch, now]
                    else:
                        self._arrival[2:] = [event.record.epoch, now]
                elif isinstance(event, StatusEvent):
                    self._status = (event.status, event.message or "", event.traceback or "")
                else:
                    return
                self._dirty = True
            self._request_redraw()
        except Exception as exc:  # never into the training loop
            self._remember_error(exc)

    def _request_redraw(self) -> None:
        draw_now = False
        with self._lock:
            if self._closed:
                return
            now = self.clock()
            wait = self._last_draw + self.min_interval - now
            if wait <= 0:
                self._last_draw = now
                draw_now = True
            elif self._timer is None:
                self._timer_seq += 1
                seq = self._timer_seq
                timer = self.timer_factory(wait, lambda: self._on_timer(seq))
                timer.daemon = True
                self._timer, self._timer_live = timer, seq
                self._last_timer = timer
                timer.start()
        if draw_now:
            self._redraw()

    def _on_timer(self, seq: int) -> None:
        # the timer stays "pending" until its redraw is done, so callers waiting on
        # ``pending_redraw`` see the drawn state; events that came in meanwhile are
        # picked up by asking again
        with self._lock:
            run = self._dirty and not self._closed
        if run:
            self._redraw()
        with self._lock:
            if self._timer_live == seq:  # not cancelled and replaced meanwhile
                self._timer, self._timer_live = None, None
            again = self._dirty and not self._closed and self._timer is None
        if again:
            self._request_redraw()

    @property
    def pending_redraw(self) -> bool:
        """Whether a throttled redraw is scheduled."""
        return self._timer is not None

    def flush(self) -> bool:
        """Redraw now (cancelling a pending timer). Returns False if the redraw failed."""
        with self._lock:
            timer, self._timer, self._timer_live = self._timer, None, None
        if timer is not None:
            timer.cancel()
        return self._redraw()

    def close(self) -> None:
        """Unsubscribe, cancel and join the redraw timer, close the widget: no thread is left."""
        with self._lock:
            self._closed = True
            timer, self._timer, self._timer_live = self._timer, None, None
            last, self._last_timer = self._last_timer, None
        for t in {id(x): x for x in (timer, last) if x is not None}.values():
            t.cancel()
            if t is not threading.current_thread() and getattr(t, "ident", None) is not None:
                t.join(30)
        self._unsubscribe()
        super().close()

    # ------------------------------------------------------------------ redraw
    def _redraw(self) -> bool:
        with self._draw_lock:
            try:
                with self._lock:
                    self._dirty = False
                    self._last_draw = self.clock()
                    snap = _Snapshot(
                        records=self._pend_records, status=self._status,
                        epochs_total=self._epochs_total, run=self._run,
                        retired=self._retired,
                        arrival=tuple(self._arrival) if self._arrival else None,
                    )
                    steps, self._pend_steps = self._pend_steps, []
                    self._pend_records, self._retired = [], []
                self.redraw_count += 1
                if snap.retired:
                    self._drain_retired(snap.retired)
                self._absorb(snap.records, steps)
                try:
                    self._draw(snap)
                finally:
                    self._close_retired_widgets()
                if self._error_note:
                    self._error_note = ""
                    self._update_status(snap)
                return True
            except Exception as exc:
                self._remember_error(exc)
                try:
                    self._update_status(None)
                except Exception:
                    log.debug("status update failed", exc_info=True)
                return False

    def _close_retired_widgets(self) -> None:
        closing, self._to_close = self._to_close, []
        for w in closing:
            try:
                w.close()
            except Exception:
                log.debug("closing a replaced widget failed", exc_info=True)

    def _remember_error(self, exc: BaseException) -> None:
        self.last_error = exc
        key = (type(exc).__name__, str(exc))
        if key != self._last_logged:
            self._last_logged = key
            log.error("CloudChart redraw failed: %s", exc, exc_info=exc)
        self._error_note = (f'<div style="color:#a00;font-size:0.85em">display error '
                            f"(the training is not affected): {html.escape(type(exc).__name__)}: "
                            f"{html.escape(str(exc))[:200]}</div>")

    def _absorb(self, records: list, steps: list) -> None:
        """Append new records and steps to the drawn state (dropping duplicates)."""
        last_epoch = self._records[-1].epoch if self._records else -math.inf
        for rec in records:
            if rec.epoch > last_epoch:
                self._records.append(rec)
                self._zones.append(rec.zone)
                last_epoch = rec.epoch
        if steps:
            px = np.fromiter(itertools.chain.from_iterable(p for p, _ in steps), dtype=np.float64)
            py = np.fromiter(itertools.chain.from_iterable(l for _, l in steps), dtype=np.float64)
            n = min(px.size, py.size)
            px, py = px[:n], py[:n]
            if len(self._sx):
                last = self._sx.view()[-1]
                keep = px > last
                if not keep.all():
                    px, py = px[keep], py[keep]
            self._sx.extend(px)
            self._sy.extend(py)

    def _drain_retired(self, entries: list | None = None) -> None:
        """Turn retired current runs into past runs (called under the draw lock)."""
        if entries is None:
            with self._lock:
                entries, self._retired = self._retired, []
        for entry in entries:
            self._absorb(entry.records, entry.steps)
            run = entry.run
            if run is None or not run.epochs:
                run = self._snapshot_run(entry.run_id, entry.status, entry.run)
            if run.epochs:
                self._add_past(run, None)
            self._records, self._zones = [], []
            self._clear_steps()

    def _clear_steps(self) -> None:
        self._sx.clear()
        self._sy.clear()
        self._frozen, self._hist, self._hist_scale = 0, None, None

    def _snapshot_run(self, run_id: str = "", status: tuple | None = None, base: Run | None = None) -> Run:
        """A Run holding what this chart has drawn for the current run."""
        status = status or self._status
        run = Run(run_id=run_id or self._run_id)
        if base is not None:
            run.config = dict(base.config)
            run.upper = base.upper
            run.depth = base.depth
            run.layer_errors = list(base.layer_errors)
            run.marks = list(base.marks)
        run.epochs = list(self._records)
        run.step_positions = self._sx.view().tolist()
        run.step_losses = self._sy.view().tolist()
        run.status, run.message, run.traceback = status
        return run

    # ------------------------------------------------------------------ drawing
    def _draw(self, snap: _Snapshot) -> None:
        scale = self.scale
        recs = self._records
        run = snap.run
        e = np.array([r.epoch for r in recs], dtype=np.float64)
        loss = np.array([r.loss for r in recs], dtype=np.float64)
        upper = np.array([r.upper for r in recs], dtype=np.float64)
        lower = np.array([r.lower for r in recs], dtype=np.float64)
        run_upper = float(getattr(run, "upper", math.nan)) if run is not None else math.nan
        if upper.size and np.isnan(upper).any() and math.isfinite(run_upper):
            upper[np.isnan(upper)] = run_upper
        if not math.isfinite(run_upper) and upper.size:
            run_upper = float(upper[-1])

        sx, sy = self._sx.view(), self._sy.view()
        hx, hy, tx, ty = self._step_series(sx, sy, scale)

        loss_d = to_display(loss, scale)
        up_d = to_display(upper, scale)
        lo_d = to_display(lower, scale)
        run_up_d = float(to_display([run_upper], scale)[0])
        past_d = [(p, to_display(p.losses, scale)) for p in self._past]

        bottom, top = y_limits([loss_d, up_d, lo_d, hy, ty, [run_up_d]] + [d for _, d in past_d], scale)
        x_max = 1.0
        for arr in [e, sx] + [p.epochs for p in self._past]:
            if arr.size:
                x_max = max(x_max, float(np.nanmax(arr)))
        if snap.epochs_total:
            x_max = max(x_max, float(snap.epochs_total))
        x_end = float(sx[-1]) if sx.size else None

        # bands in plot units
        bx, bu, bl = band_geometry(e, up_d, lo_d, x_end)
        if bx.size == 0 and math.isfinite(run_up_d):
            bx = np.array([0.0, x_end if x_end else x_max])
            bu = np.array([run_up_d, run_up_d])
            bl = np.full(2, np.nan)
        if bx.size < 2:
            bx, bu, bl = np.empty(0), np.empty(0), np.empty(0)
        bu_c = np.clip(bu, bottom, top)
        bl_c = np.clip(bl, bottom, top)
        lo_ok = np.isfinite(bl_c) & np.isfinite(bu_c)
        # Drop interior points of constant stretches (YES-0 is constant, the lower edge a
        # running minimum): the drawn polygons are the same, the payload smaller.
        k_red = self._band_points(bx, bu_c)
        k_yel = self._band_points(bx, bu_c, bl_c)
        k_grn = self._band_points(bx, bl_c)
        yel_rows = np.vstack([np.where(lo_ok, bu_c, np.nan), bl_c])

        # epoch loss (decimated if huge) and hover dots
        if e.size > self.MAX_POINTS:
            keep = decimate_minmax(e, np.nan_to_num(loss_d, nan=np.inf), self.MAX_POINTS)
        else:
            keep = np.arange(e.size)
        shown = _render._clip_display(loss_d, bottom, top)
        hover = (decimate_minmax(e, np.nan_to_num(loss_d, nan=np.inf), self.HOVER_POINTS)
                 if e.size > self.HOVER_POINTS else np.arange(e.size))
        names = np.array([self._zones[i] for i in hover], dtype=str) if hover.size else np.array([], dtype=str)
        tip_loss = to_display(loss[hover], "db")
        tip_upper = to_display(upper[hover], "db")
        tip_lower = to_display(lower[hover], "db")
        bad = np.isnan(loss_d) | np.isposinf(loss_d)

        # marks (batch-size changes, …)
        mx, my, mlabels = np.empty(0), np.empty(0), []
        run_marks = list(getattr(run, "marks", []) or []) if run is not None else []
        pos = []
        for m in run_marks:
            if isinstance(m, dict):
                try:
                    p = float(m.get("position"))
                except (TypeError, ValueError):
                    continue
                if math.isfinite(p):
                    pos.append(p)
                    mlabels.append(mark_label(m))
        if pos:
            mx = np.repeat(np.array(pos)[:, None], 2, axis=1)
            my = np.tile(np.array([bottom, top]), (len(pos), 1))

        touched = [self.figure, self._xs, self._ys, self._y_axis, self.band_red, self.band_yellow,
                   self.band_green, self.marks_lines, self.step_line, self.step_tail,
                   self.loss_line, self.loss_dots, self.diverged_dots] + [p.mark for p in self._past]
        with contextlib.ExitStack() as stack:
            for w in touched:
                stack.enter_context(w.hold_sync())
            self._swap_y_scale(self.figure, "_ys", "_y_axis", self._main_marks(), scale, bottom, top)
            self._xs.min, self._xs.max = 0.0, float(x_max)
            self._ys.min, self._ys.max = float(bottom), float(top)
            self._y_axis.label = {"db": "loss (dB)", "linear": "loss", "log": "loss (log scale)"}[scale]
            self._y_axis.tick_format = _TICK_FORMATS[scale]
            _set_arrays(self.band_red, x=_f32(bx[k_red]), y=_f32(bu_c[k_red]))
            _set_arrays(self.band_yellow, x=_f32(bx[k_yel]),
                        y=_f32(yel_rows[:, k_yel]) if k_yel.size else _f32([]))
            _set_arrays(self.band_green, x=_f32(bx[k_grn]), y=_f32(bl_c[k_grn]))
            _set_arrays(self.marks_lines, x=_f32(mx), y=_f32(my))
            if list(self.marks_lines.labels) != mlabels:
                self.marks_lines.labels = mlabels
            # minibatch losses are not clipped: a non-finite one is a gap in the faint line
            _set_arrays(self.step_line, x=_f32(hx), y=_f32(hy))
            _set_arrays(self.step_tail, x=_f32(tx), y=_f32(ty))
            _set_arrays(self.loss_line, x=_f32(e[keep]), y=_f32(shown[keep]))
            few = e.size <= _render.DOTS_UP_TO
            self.loss_dots.default_size = 28 if few else 40
            self.loss_dots.opacities = np.array([1.0 if few else 0.0])
            _set_arrays(self.loss_dots, x=_f32(e[hover]), y=_f32(shown[hover]), size=_f32(tip_loss),
                        rotation=_f32(tip_upper), skew=_f32(tip_lower), names=names)
            _set_arrays(self.diverged_dots, x=_f32(e[bad]), y=_f32(np.full(int(bad.sum()), top)))
            self.loss_line.display_legend = bool(self._past)
            label = "current run"
            if run is not None and getattr(run, "label", ""):
                label = f"current: {run.label}"
            if list(self.loss_line.labels) != [label]:
                self.loss_line.labels = [label]
            if self._title is None and run is not None:
                self.figure.title = run.label if getattr(run, "config", None) else ""
            for p, pd in past_d:
                _set_arrays(p.mark, x=_f32(p.epochs), y=_f32(_render._clip_display(pd, bottom, top)))
            self._style_past()

        if self.show_orders:
            self._draw_orders(e, loss_d, up_d, scale)
        if self.show_depth:
            self._draw_depth(run, scale)
        self._update_status(snap)

    def _step_series(self, sx: np.ndarray, sy: np.ndarray, scale: str):
        """(history x, y, tail x, y) of the minibatch line, in plot units.

        The history (steps before ``_frozen``) is decimated to at most
        ``MAX_POINTS - TAIL_POINTS - 1`` points and recomputed only when the raw
        tail would exceed ``TAIL_POINTS`` (or the scale changed), so most redraws
        send only the short tail. The tail starts at the history's last step so
        the two lines join.
        """
        n = sx.size
        if not self.show_steps or n == 0:
            self._frozen, self._hist = 0, None
            empty = np.empty(0)
            return empty, empty, empty, empty
        if (self._hist is None or self._hist_scale != scale or n < self._frozen
                or n - self._frozen > self.TAIL_POINTS):
            keep = decimate_minmax(sx, sy, self.MAX_POINTS - self.TAIL_POINTS - 1)
            self._hist = (sx[keep].copy(), to_display(sy[keep], scale))
            self._hist_scale = scale
            self._frozen = n
        hx, hy = self._hist
        start = max(self._frozen - 1, 0)
        if n > self._frozen:
            tx, ty = sx[start:n], to_display(sy[start:n], scale)
        else:
            tx = ty = np.empty(0)
        return hx, hy, tx, ty

    def _band_points(self, x: np.ndarray, *rows: np.ndarray) -> np.ndarray:
        if x.size == 0:
            return np.arange(0)
        k = _breakpoints(*rows)
        if k.size > self.MAX_POINTS:
            k = k[decimate_minmax(x[k], np.nan_to_num(rows[-1][k], nan=np.inf), self.MAX_POINTS)]
        return k

    def _swap_y_scale(self, figure, attr: str, axis_attr: str, marks: list, scale: str,
                      bottom: float, top: float) -> None:
        """Give the marks a LogScale or a LinearScale as ``scale`` needs (called under hold_sync).

        The new scale is created with its final min/max and the marks switch to it
        in the same held update as their new data. The y axis is replaced by a new
        one rather than re-pointed: bqplot's axis view does not redraw its ticks
        when only its scale changes.
        """
        want_log = scale == "log"
        old_scale = getattr(self, attr)
        if isinstance(old_scale, bqplot.LogScale) == want_log:
            return
        kw = {} if want_log else {"allow_padding": False}
        new = (bqplot.LogScale if want_log else bqplot.LinearScale)(min=float(bottom), max=float(top), **kw)
        setattr(self, attr, new)
        for mark in marks:
            scales = dict(mark.scales)
            scales["y"] = new
            mark.scales = scales
        old_axis = getattr(self, axis_attr)
        axis = bqplot.Axis(scale=new, side="left", label=old_axis.label, grid_lines=old_axis.grid_lines,
                           label_offset=old_axis.label_offset, tick_format=_TICK_FORMATS[scale])
        setattr(self, axis_attr, axis)
        figure.axes = [a if a is not old_axis else axis for a in figure.axes]
        self._to_close.extend([old_axis, old_scale])

    def _draw_orders(self, e, loss_d, up_d, scale) -> None:
        recs = self._records
        k = max((len(r.yes_k or ()) for r in recs), default=0)
        mat = np.full((k, len(recs)), np.nan)
        for j, r in enumerate(recs):
            vals = list(r.yes_k or ())
            if vals:
                mat[: len(vals), j] = vals
        mat_d = to_display(mat, scale) if k else np.empty(0)
        bottom, top = y_limits([mat_d, loss_d, up_d], scale)
        with contextlib.ExitStack() as stack:
            for w in (self.orders_figure, self._oxs, self._oys, self._oy_axis, self.orders_lines,
                      self.orders_upper, self.orders_loss):
                stack.enter_context(w.hold_sync())
            self._swap_y_scale(self.orders_figure, "_oys", "_oy_axis",
                               [self.orders_lines, self.orders_upper, self.orders_loss], scale, bottom, top)
            self._oxs.min, self._oxs.max = 0.0, float(max(1.0, e.max() if e.size else 1.0))
            self._oys.min, self._oys.max = float(bottom), float(top)
            self._oy_axis.tick_format = _TICK_FORMATS[scale]
            self._oy_axis.label = {"db": "bound (dB)", "linear": "bound", "log": "bound (log scale)"}[scale]
            labels = [f"YES-{i + 1}" for i in range(k)]
            if list(self.orders_lines.labels) != labels:
                self.orders_lines.labels = labels
                self.orders_lines.colors = _order_colors(k) or ["#1f77b4"]
            if k:
                _set_arrays(self.orders_lines, x=_f32(e), y=_f32(np.clip(mat_d, bottom, top)))
            else:
                _set_arrays(self.orders_lines, x=_f32([]), y=_f32([]))
            _set_arrays(self.orders_upper, x=_f32(e), y=_f32(up_d))
            _set_arrays(self.orders_loss, x=_f32(e), y=_f32(_render._clip_display(loss_d, bottom, top)))

    def _draw_depth(self, run, scale) -> None:
        errors = list(getattr(run, "layer_errors", []) or []) if run is not None else []
        values = to_display(np.asarray(errors, dtype=np.float64), scale)
        layers = np.arange(1, values.size + 1, dtype=np.float64)
        bottom, top = y_limits([values], scale)
        with contextlib.ExitStack() as stack:
            for w in (self.depth_figure, self._dxs, self._dys, self._dx_axis, self._dy_axis, self.depth_line):
                stack.enter_context(w.hold_sync())
            self._swap_y_scale(self.depth_figure, "_dys", "_dy_axis", [self.depth_line], scale, bottom, top)
            self._dxs.min, self._dxs.max = 0.5, float(max(values.size, 1)) + 0.5
            self._dys.min, self._dys.max = float(bottom), float(top)
            self._dy_axis.tick_format = _TICK_FORMATS[scale]
            self._dx_axis.tick_values = layers if layers.size else None
            self._dy_axis.label = {"db": "YES-0 error (dB)", "linear": "YES-0 error",
                                   "log": "YES-0 error (log scale)"}[scale]
            _set_arrays(self.depth_line, x=_f32(layers),
                        y=_f32(_render._clip_display(values, bottom, top)) if values.size else _f32([]))

    # ------------------------------------------------------------------ status line
    def _update_status(self, snap: _Snapshot | None) -> None:
        recs = self._records
        if snap is None:
            with self._lock:
                status, epochs_total, arrival = self._status, self._epochs_total, self._arrival
        else:
            status, epochs_total, arrival = snap.status, snap.epochs_total, snap.arrival
        if epochs_total is None and self.monitor is not None:
            epochs_total = getattr(self.monitor, "epochs_total", None)
        parts = []
        rec = recs[-1] if recs else None
        if rec is not None:
            zone = rec.zone if rec.zone in ZONE_WORDS else None
            if zone:
                parts.append(
                    f'<span class="yes-badge yes-{zone}" style="background:{_BADGE_COLORS[zone]};'
                    f'color:#111;padding:2px 8px;border-radius:4px;font-weight:600">'
                    f"{html.escape(ZONE_WORDS[zone])}</span>"
                )
            parts.append(
                f"loss {_db_text(rec.loss)} · YES-0 {_db_text(rec.upper)} · "
                f"lower edge {_db_text(rec.lower)}"
            )
            margin = rec.margin
            if zone and math.isfinite(margin):
                if zone == "red":
                    parts.append(f"{abs(margin):.2f} dB above YES-0 (to yellow)")
                elif zone == "yellow":
                    parts.append(f"{abs(margin):.2f} dB above the lower edge (to green)")
                else:
                    parts.append(f"{abs(margin):.2f} dB below the lower edge")
        else:
            parts.append('<span style="color:#666">waiting for the first epoch…</span>')
        epoch_now = rec.epoch if rec is not None else 0
        if epochs_total:
            parts.append(f"epoch {epoch_now} / {epochs_total}")
        elif rec is not None:
            parts.append(f"epoch {epoch_now}")
        state, message, tb = status
        line = " · ".join(p for p in parts if p)
        extra = ""
        if state and state != "running":
            color = _STATUS_COLORS.get(state, "#333")
            extra = (f'<div style="color:{color};font-weight:600">{html.escape(state)}'
                     f'{": " + html.escape(message) if message else ""}</div>')
            if state == "failed" and tb:
                extra += ("<details><summary>traceback</summary>"
                          f'<pre style="font-size:0.8em;white-space:pre-wrap">{html.escape(tb)}</pre></details>')
        value = f'<div class="yes-status">{line}{extra}{self._error_note}</div>'
        if self.status.value != value:
            self.status.value = value

        # progress and ETA
        if epochs_total:
            frac = min(max(epoch_now / float(epochs_total), 0.0), 1.0)
            eta = self._eta(recs, epochs_total, arrival)
            style = {"finished": "success", "failed": "danger", "diverged": "danger",
                     "stopped": "warning"}.get(state, "info")
            with self.progress.hold_sync():
                self.progress.value = frac
                self.progress.bar_style = style
            text = f"{100 * frac:.0f}%"
            if state == "running" and eta is not None and epoch_now < epochs_total:
                text += f" · ETA {_duration(eta)}"
            if self.eta.value != text:
                self.eta.value = text
            self._progress_box.layout.display = None
        else:
            self._progress_box.layout.display = "none"

    def _eta(self, recs, epochs_total, arrival) -> float | None:
        if not recs:
            return None
        left = epochs_total - recs[-1].epoch
        if left <= 0:
            return 0.0
        per = None
        if len(recs) >= 2:
            dw = float(recs[-1].wall_time or 0.0) - float(recs[0].wall_time or 0.0)
            de = recs[-1].epoch - recs[0].epoch
            if dw > 0 and de > 0:
                per = dw / de
        if per is None and arrival is not None and arrival[2] > arrival[0] and arrival[3] > arrival[1]:
            per = (arrival[3] - arrival[1]) / (arrival[2] - arrival[0])
        if per is None and 0 < float(recs[-1].wall_time or 0.0) < 1e8 and recs[-1].epoch > 0:
            per = float(recs[-1].wall_time) / recs[-1].epoch
        return None if per is None else per * left

    # ------------------------------------------------------------------ past runs
    def add_run(self, run: Run, *, color: str | None = None) -> None:
        """Draw a finished run as a faded line labelled ``run.label`` (kept across :meth:`watch`)."""
        with self._draw_lock:
            self._add_past(run, color)
        self.flush()

    def _add_past(self, run: Run, color: str | None) -> None:
        e = np.array([r.epoch for r in run.epochs], dtype=np.float64)
        loss = np.array([r.loss for r in run.epochs], dtype=np.float64)
        if e.size > self.MAX_POINTS:
            keep = decimate_minmax(e, np.nan_to_num(loss, nan=np.inf), self.MAX_POINTS)
            e, loss = e[keep], loss[keep]
        color = color or PAST_COLORS[len(self._past) % len(PAST_COLORS)]
        mark = bqplot.Lines(
            x=_f32(e), y=_f32(to_display(loss, self.scale)), scales={"x": self._xs, "y": self._ys},
            colors=[color], opacities=[0.45], stroke_width=1.5, labels=[run.label or run.run_id or "run"],
            display_legend=True, enable_hover=False,
        )
        self._past.append(_Past(run, color, mark, e, loss))
        self.figure.marks = self._main_marks()

    @property
    def past_runs(self) -> list[Run]:
        """The runs drawn as faded lines, oldest first."""
        return [p.run for p in self._past]

    @property
    def run(self) -> Run | None:
        """The run being drawn: the monitor's run, or what this chart received as events."""
        return self._run if self._run is not None else (self._snapshot_run() if self._records else None)

    def highlight(self, run_id: str | None) -> None:
        """Draw the past run with this ``run_id`` bold (``None`` clears)."""
        with self._draw_lock:
            self._highlight = run_id
            self._style_past()

    def _style_past(self) -> None:
        for p in self._past:
            if self._highlight is None:
                width, opacity = 1.5, 0.45
            elif p.run.run_id == self._highlight:
                width, opacity = 3.5, 1.0
            else:
                width, opacity = 1.2, 0.25
            if p.mark.stroke_width != width:
                p.mark.stroke_width = width
            if list(p.mark.opacities) != [opacity]:
                p.mark.opacities = [opacity]

    def clear_runs(self) -> None:
        """Remove every past run."""
        with self._draw_lock:
            old, self._past = self._past, []
            self._highlight = None
            self.figure.marks = self._main_marks()
            for p in old:
                p.mark.close()
        self.flush()

    # ------------------------------------------------------------------ export
    def _export_args(self):
        with self._draw_lock:
            run = self._run
            if run is None or (not run.epochs and self._records):
                run = self._snapshot_run(base=run)
            return run, [p.run for p in self._past]

    def to_png(self, path, **kw):
        """Save the chart's picture with matplotlib (see :func:`yeswidget.render.save_cloud`)."""
        run, past = self._export_args()
        kw.setdefault("scale", self.scale)
        kw.setdefault("show_steps", self.show_steps)
        if self._title is not None:
            kw.setdefault("title", self._title)
        return _render.save_cloud(run, _with_ext(path, ".png"), past_runs=past, **kw)

    def to_svg(self, path, **kw):
        """Save the chart's picture as SVG (see :func:`yeswidget.render.save_cloud`)."""
        run, past = self._export_args()
        kw.setdefault("scale", self.scale)
        kw.setdefault("show_steps", self.show_steps)
        if self._title is not None:
            kw.setdefault("title", self._title)
        return _render.save_cloud(run, _with_ext(path, ".svg"), past_runs=past, **kw)


def _breakpoints(*rows: np.ndarray) -> np.ndarray:
    """Indices to keep so that piecewise-linear rows are drawn unchanged.

    Keeps the ends and every point where some row changes value on either side
    (NaN-aware); interior points of constant stretches go.
    """
    n = rows[0].size
    if n <= 2:
        return np.arange(n)
    change = np.zeros(n - 1, dtype=bool)
    for row in rows:
        a, b = row[:-1], row[1:]
        change |= ~((a == b) | (np.isnan(a) & np.isnan(b)))
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    keep[:-1] |= change
    keep[1:] |= change
    return np.flatnonzero(keep)


def _with_ext(path, ext: str) -> str:
    import os

    path = os.fspath(path)
    return path if path.lower().endswith(ext) else path + ext


def _order_colors(k: int) -> list[str]:
    """k colours from red-ish (YES-1) to green-ish (YES-(L-1)), the order of the cloud."""
    if k <= 0:
        return []
    out = []
    for i in range(k):
        t = i / max(k - 1, 1)
        r = int(round(214 + (30 - 214) * t))
        g = int(round(96 + (140 - 96) * t))
        b = int(round(77 + (70 - 77) * t))
        out.append(f"#{r:02x}{g:02x}{b:02x}")
    return out
