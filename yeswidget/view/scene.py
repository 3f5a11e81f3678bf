"""The YES-cloud picture as plain numpy: what to draw, composed once.

:func:`compose` turns a run (plus finished runs drawn faded) and
:class:`SceneSettings` into a :class:`Scene`: the three bands, the YES-0 and
lower-edge lines, the epoch loss with its hover points, the minibatch line
(min/max decimated to the pixels available), past runs, marks, the axis
limits, the per-order and per-layer views and the status reading. The live
chart (:mod:`yeswidget.widgets.chart`) and the matplotlib pictures
(:mod:`yeswidget.view.render`) both draw a scene, so they agree about where
every band and line is.

No widgets, no matplotlib. Units: losses and bounds are the metric E; every
array in a scene is float64 in *plot units* (``db``: 10·log10; ``linear`` and
``log``: the values), already clipped into the y limits where a mark needs it.

Bands: red from YES-0 up to the top of the plot, yellow between YES-0 and the
lower edge, green from the lower edge down to the bottom, in the colours of
:mod:`yeswidget.core.zones`.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.formats import DB_DECIMALS
from ..core.plateau import PLATEAU_NOTE, find_plateau
from ..core.run import change_text
from ..core.zones import BAND_OPACITY, NO_VERDICT, ZONE_COLORS, ZONE_STYLES, ZONE_WORDS, to_db

__all__ = [
    "SCALES", "AXIS_LABELS", "BAND_OPACITY", "ZONE_COLORS", "UPPER_COLOR", "LOWER_COLOR", "LOSS_COLOR",
    "STEP_COLOR", "PAST_COLORS", "DOTS_UP_TO",
    "check_scale", "to_display", "y_limits", "band_geometry", "decimate_minmax", "clip_display",
    "order_colors", "estimate_eta", "step_kind",
    "SceneSettings", "RunSeries", "Line", "Hover", "PastLine", "MarkLine", "OrdersView", "DepthView",
    "Status", "Scene", "StepDecimator", "compose", "compose_status", "depth_view",
]

#: the y-axis units: ``db`` = 10·log10(loss) on a linear axis; ``linear``; ``log`` (log axis)
SCALES = ("db", "linear", "log")
#: y-axis label of the loss per scale
AXIS_LABELS = {"db": "loss (dB)", "linear": "loss", "log": "loss (log scale)"}
#: YES-0 line
UPPER_COLOR = "#d62728"
#: lower edge (dashed): the green zone's edge shade
LOWER_COLOR = ZONE_STYLES["green"].edge
#: epoch loss line
LOSS_COLOR = "#1a1a1a"
#: minibatch loss line (drawn faint)
STEP_COLOR = "#555555"
#: colours for finished runs drawn behind the current one (none of the zone colours)
PAST_COLORS = ("#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#ff7f0e", "#bcbd22")
#: below this many epochs the loss line gets visible dots
DOTS_UP_TO = 60

_DEFAULT_LIMITS = {"db": (-30.0, 10.0), "linear": (0.0, 1.0), "log": (1e-3, 10.0)}
_EMPTY = np.empty(0)


# --------------------------------------------------------------------------
# numeric helpers
# --------------------------------------------------------------------------
def check_scale(scale: str) -> str:
    """Normalise a scale name (``"dB"`` → ``"db"``); raise ``ValueError`` if unknown."""
    name = str(scale).strip().lower()
    if name not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return name


def to_display(values: Any, scale: str = "db") -> np.ndarray:
    """Loss values (metric units) → plot units, as float64.

    ``db``: ``10·log10`` (0 → -inf, negative or NaN → NaN, inf → inf). ``linear``
    and ``log``: the values; on a log axis 0 becomes -inf and negatives NaN.
    """
    arr: np.ndarray = np.asarray(values, dtype=np.float64)
    if scale == "db":
        with np.errstate(divide="ignore", invalid="ignore"):
            db: np.ndarray = 10.0 * np.log10(arr)
        return db
    out: np.ndarray = arr.copy()
    if scale == "log":
        with np.errstate(invalid="ignore"):
            out[arr == 0] = -np.inf
            out[arr < 0] = np.nan
    return out


def _to_space(values: np.ndarray, scale: str) -> np.ndarray:
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            logs: np.ndarray = np.log10(values)
        return logs
    return values


def y_limits(arrays: Iterable[Any], scale: str = "db", pad: float = 0.08) -> tuple[float, float]:
    """(bottom, top) of the y axis in plot units, from every finite value given.

    The span is padded by ``pad`` of its height on both sides (at least 1 dB,
    or 5% of a decade on a log axis), so the red band has room above YES-0 and
    the green band below the lower edge. A linear axis of non-negative data
    does not go below 0.
    """
    lo, hi = math.inf, -math.inf
    for arr in arrays:
        a = _to_space(np.asarray(arr, dtype=np.float64).ravel(), scale)
        a = a[np.isfinite(a)]
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    if lo > hi:
        return _DEFAULT_LIMITS[scale]
    min_pad = {"db": 1.0, "log": 0.05}.get(scale, 0.05 * max(abs(hi), abs(lo), 1e-12))
    margin = max(pad * (hi - lo), min_pad)
    bottom, top = lo - margin, hi + margin
    if scale == "linear" and lo >= 0.0:
        bottom = max(bottom, 0.0)
    if scale == "log":
        return 10.0 ** bottom, 10.0 ** top
    return bottom, top


def band_geometry(epochs: Any, upper: Any, lower: Any, x_end: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x positions and the two cloud edges for drawing the bands: ``(x, upper, lower)``.

    Records sit at epochs 1, 2, …; the bands are extended to x = 0 with the
    first edges and, when ``x_end`` lies past the last record (an epoch still
    running), to ``x_end`` with the last edges. A NaN lower edge (not yet
    computed) is carried forward from the last known one.
    """
    e = np.asarray(epochs, dtype=np.float64)
    up = np.asarray(upper, dtype=np.float64)
    lo = _carry_forward(np.asarray(lower, dtype=np.float64))
    if e.size == 0:
        return _EMPTY, _EMPTY, _EMPTY
    x = e
    if e[0] > 0:
        x, up, lo = np.r_[0.0, x], np.r_[up[:1], up], np.r_[lo[:1], lo]
    if x_end is not None and np.isfinite(x_end) and x_end > x[-1]:
        x, up, lo = np.r_[x, float(x_end)], np.r_[up, up[-1:]], np.r_[lo, lo[-1:]]
    return x, up, lo


def _carry_forward(values: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    if not missing.any():
        return values
    idx = np.where(~missing, np.arange(values.size), 0)
    np.maximum.accumulate(idx, out=idx)
    filled = values[idx]
    filled[missing & (np.cumsum(~missing) == 0)] = np.nan
    return filled


def decimate_minmax(x: Any, y: Any, max_points: int = 2000) -> np.ndarray:
    """Indices of the points to draw from a long series: min and max per horizontal bucket.

    ``x`` is split into ``(max_points - 2) // 2`` equal-width buckets; each keeps
    its smallest and largest ``y`` (spikes and dips survive), plus the first and
    last point, in order: at most ``max_points`` indices. NaN ``y`` are dropped,
    ±inf kept. Short series come back whole (minus NaNs). A non-monotone ``x``
    gets buckets of equal point counts instead.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n_all = min(x.size, y.size)
    x, y = x[:n_all], y[:n_all]
    keep = np.flatnonzero(~np.isnan(y) & ~np.isnan(x))
    n = keep.size
    if n <= max_points:
        return keep
    xs, ys = x[keep], y[keep]
    starts = _bucket_starts(xs, max((max_points - 2) // 2, 1))
    seg = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n)))
    chosen = [np.array([0, n - 1])]
    for reducer in (np.minimum, np.maximum):
        hit = np.flatnonzero(ys == reducer.reduceat(ys, starts)[seg])
        first = np.ones(hit.size, dtype=bool)
        first[1:] = seg[hit[1:]] != seg[hit[:-1]]
        chosen.append(hit[first])
    kept: np.ndarray = keep[np.unique(np.concatenate(chosen))]
    return kept


def _bucket_starts(xs: np.ndarray, buckets: int) -> np.ndarray:
    n = xs.size
    if xs[-1] > xs[0] and np.all(xs[1:] >= xs[:-1]):
        starts = np.searchsorted(xs, np.linspace(xs[0], xs[-1], buckets + 1)[:-1], side="left")
    else:
        starts = np.linspace(0, n, buckets + 1)[:-1].astype(np.int64)
    starts = np.unique(starts)
    return starts[starts < n]


def clip_display(values: Any, bottom: float, top: float) -> np.ndarray:
    """Loss values in plot units drawn inside the plot: NaN and huge at the top edge, -inf at the bottom."""
    out = np.array(values, dtype=np.float64)
    out[np.isnan(out) | (out > top)] = top
    out[out < bottom] = bottom
    return out


def _breakpoints(*rows: np.ndarray) -> np.ndarray:
    """Indices keeping piecewise-linear rows unchanged: the ends and every change (NaN-aware)."""
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


def order_colors(k: int) -> list[str]:
    """k colours from red-ish (YES-1) to green-ish (YES-(L-1)), the order of the cloud."""
    out = []
    for i in range(max(k, 0)):
        t = i / max(k - 1, 1)
        rgb = (round(214 - 184 * t), round(96 + 44 * t), round(77 - 7 * t))
        out.append("#{:02x}{:02x}{:02x}".format(*rgb))
    return out


def estimate_eta(first: Any, last: Any, epochs_total: int | None,
                 arrival: tuple[float, ...] | None = None) -> float | None:
    """Seconds left from two epoch records' ``wall_time`` (or arrival times ``(e0, t0, e1, t1)``)."""
    if last is None or not epochs_total:
        return None
    left = epochs_total - last.epoch
    if left <= 0:
        return 0.0
    per = None
    dw, de = float(last.wall_time or 0.0) - float(first.wall_time or 0.0), last.epoch - first.epoch
    if dw > 0 and de > 0:
        per = dw / de
    if per is None and arrival is not None and arrival[2] > arrival[0] and arrival[3] > arrival[1]:
        per = (arrival[3] - arrival[1]) / (arrival[2] - arrival[0])
    if per is None and 0 < float(last.wall_time or 0.0) < 1e8 and last.epoch > 0:
        per = float(last.wall_time) / last.epoch
    return None if per is None else per * left


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneSettings:
    """How to draw: y units, pixels across (sets decimation), which extra views, planned epochs."""

    scale: str = "db"
    width_px: int = 1000
    show_steps: bool = True
    show_orders: bool = False
    show_depth: bool = False
    epochs_total: int | None = None
    hover_points: int = 400
    line_color: str | None = None  # the current run's loss line (None: the default LOSS_COLOR)
    line_visible: bool = True

    @property
    def max_points(self) -> int:
        """Most points a long series keeps: a min and a max per pixel column."""
        return max(2 * int(self.width_px), 8)


@dataclass
class RunSeries:
    """One run as arrays (length n epochs; steps length s); what :func:`compose` reads.

    ``yes_k``: one list per epoch (YES-1 … so far); ``zones``: one word per epoch.
    """

    epochs: np.ndarray = field(default_factory=lambda: _EMPTY)
    loss: np.ndarray = field(default_factory=lambda: _EMPTY)
    upper: np.ndarray = field(default_factory=lambda: _EMPTY)
    lower: np.ndarray = field(default_factory=lambda: _EMPTY)
    zones: Sequence[str] = ()
    yes_k: Sequence[Sequence[float]] = ()
    step_x: np.ndarray = field(default_factory=lambda: _EMPTY)
    step_y: np.ndarray = field(default_factory=lambda: _EMPTY)
    run_upper: float = math.nan
    layer_errors: Sequence[float] = ()
    marks: Sequence[dict[str, Any]] = ()
    label: str = ""
    run_id: str = ""
    step_metric: bool = True  # the minibatch losses are the metric E (else: their own unit and axis)
    step_name: str = ""

    @classmethod
    def from_run(cls, run: Any) -> RunSeries:
        """Arrays from a :class:`~yeswidget.core.run.Run` (or anything with its fields)."""
        recs = list(run.epochs)
        sx = np.asarray(run.step_positions, dtype=np.float64)
        sy = np.asarray(run.step_losses, dtype=np.float64)
        n = min(sx.size, sy.size)
        return cls(
            epochs=np.array([r.epoch for r in recs], dtype=np.float64),
            loss=np.array([_f(r.loss) for r in recs], dtype=np.float64),
            upper=np.array([_f(r.upper) for r in recs], dtype=np.float64),
            lower=np.array([_f(r.lower) for r in recs], dtype=np.float64),
            zones=[r.zone for r in recs], yes_k=[list(r.yes_k or ()) for r in recs],
            step_x=sx[:n], step_y=sy[:n], run_upper=_f(run.upper),
            layer_errors=list(run.layer_errors or ()), marks=list(run.marks or ()),
            label=run.label if run.config else "", run_id=run.run_id, **step_kind(run),
        )

    def upper_filled(self) -> np.ndarray:
        """YES-0 per epoch, with the run's YES-0 where a record has none."""
        if self.upper.size and np.isnan(self.upper).any() and math.isfinite(self.run_upper):
            return np.where(np.isnan(self.upper), self.run_upper, self.upper)
        return self.upper

    def yes0(self) -> float:
        """The run's YES-0 (the last record's when the run does not say)."""
        if math.isfinite(self.run_upper) or not self.upper.size:
            return self.run_upper
        return float(self.upper[-1])


# --------------------------------------------------------------------------
# the scene
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """x (n,) and y ((n,) or (rows, n)) in plot units."""

    x: np.ndarray = field(default_factory=lambda: _EMPTY)
    y: np.ndarray = field(default_factory=lambda: _EMPTY)

    @property
    def size(self) -> int:
        return int(self.x.size)


@dataclass(frozen=True)
class Hover:
    """Hover targets on the loss line: position, and loss / YES-0 / lower edge in dB, zone word."""

    x: np.ndarray
    y: np.ndarray
    loss_db: np.ndarray
    upper_db: np.ndarray
    lower_db: np.ndarray
    zones: tuple[str, ...]


@dataclass(frozen=True)
class PastLine:
    run_id: str
    label: str
    color: str
    line: Line


@dataclass(frozen=True)
class MarkLine:
    position: float
    label: str


@dataclass(frozen=True)
class OrdersView:
    """YES-1 … YES-k per epoch (rows), YES-0 and the epoch loss; y limits of that view."""

    x: np.ndarray
    rows: np.ndarray
    labels: tuple[str, ...]
    colors: tuple[str, ...]
    upper: np.ndarray
    loss: np.ndarray
    y_limits: tuple[float, float]
    x_max: float


@dataclass(frozen=True)
class DepthView:
    """Per-layer YES-0 errors at layers 1 … L, clipped into ``y_limits``."""

    layers: np.ndarray
    values: np.ndarray
    y_limits: tuple[float, float]


@dataclass(frozen=True)
class Status:
    """The reading of the latest epoch and of the run's state."""

    zone: str | None = None
    loss: float = math.nan
    upper: float = math.nan
    lower: float = math.nan
    margin_db: float = math.nan
    epoch: int = 0
    epochs_total: int | None = None
    eta_seconds: float | None = None
    state: str = "running"
    message: str = ""
    traceback: str = ""
    reason: str = ""  # why the zone says what it says when the plain rule would mislead
    notes: tuple[str, ...] = ()  # the run's notes ("YES-0 is a reference …", plateau, overfitting)
    lr: float | None = None  # the learning rate of the latest epoch
    accuracy: float | None = None
    val_loss: float = math.nan
    val_accuracy: float | None = None
    step_loss_name: str = ""  # the minibatch losses' own unit when it is not the metric E

    @property
    def words(self) -> str:
        """The zone's meaning (core/zones) or its reason, or '' before the first epoch."""
        if self.zone not in ZONE_WORDS:
            return ""
        label = ZONE_STYLES[self.zone].word if self.zone == NO_VERDICT else self.zone
        return f"{label}: {self.reason or ZONE_WORDS[self.zone]}"

    @property
    def fraction(self) -> float | None:
        """Epochs done / planned (0 … 1), None when the plan is unknown."""
        if not self.epochs_total:
            return None
        return min(max(self.epoch / float(self.epochs_total), 0.0), 1.0)

    @property
    def margin_words(self) -> str:
        """How far the loss is from the next zone's edge, in dB."""
        if self.zone not in ("red", "yellow", "green") or not math.isfinite(self.margin_db):
            return ""
        edge = {"red": "above YES-0 (to yellow)", "yellow": "above the lower edge (to green)",
                "green": "below the lower edge"}[self.zone]
        return f"{abs(self.margin_db):.{DB_DECIMALS}f} dB {edge}"


def step_kind(run: Any) -> dict[str, Any]:
    """``step_metric``/``step_name`` of a run: whether its minibatch losses are the metric E."""
    info = (getattr(run, "config", None) or {}).get("step_loss") or {}
    return {"step_metric": bool(info.get("metric", True)), "step_name": str(info.get("name", "") or "")}


@dataclass(frozen=True)
class Scene:
    """Everything one frame of the cloud picture draws (plot units, see the module doc)."""

    scale: str
    x_limits: tuple[float, float]
    y_limits: tuple[float, float]
    red: Line
    yellow: Line
    green: Line
    loss: Line
    dots: bool
    hover: Hover
    diverged: Line
    steps: Line
    steps_tail: Line
    past: tuple[PastLine, ...]
    marks: tuple[MarkLine, ...]
    label: str
    status: Status
    orders: OrdersView | None = None
    depth: DepthView | None = None
    step_axis: tuple[float, float] | None = None  # limits of the minibatch losses' own axis, if any
    step_label: str = ""
    line_color: str | None = None  # the current run's loss line colour (None: the default)
    line_visible: bool = True

    @property
    def empty(self) -> bool:
        """Nothing to draw: no epochs, no known YES-0, no past runs."""
        return self.loss.size == 0 and self.red.size == 0 and not self.past

    @property
    def axis_label(self) -> str:
        return AXIS_LABELS[self.scale]


class StepDecimator:
    """The minibatch line of a growing run as a decimated *history* plus a raw *tail*.

    The history (steps before ``frozen``) is min/max decimated and recomputed only
    when the tail would pass ``tail_points``, so a live chart resends the long
    part rarely. ``tail_points=0``: everything is history (one-shot pictures).
    """

    def __init__(self, tail_points: int = 0) -> None:
        self.tail_points = int(tail_points)
        self.frozen = 0
        self._keep: np.ndarray | None = None
        self._budget = 0

    def split(self, x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, int]:
        """(history indices, tail start): the tail is ``x[start:]`` (it joins the history's last point)."""
        n = min(x.size, y.size)
        budget = max(max_points - self.tail_points - 1, 8)
        if (self._keep is None or n < self.frozen or n - self.frozen > self.tail_points
                or budget != self._budget):
            self._keep = decimate_minmax(x[:n], y[:n], budget)
            self.frozen, self._budget = n, budget
        return self._keep, max(self.frozen - 1, 0) if n > self.frozen else n

    def reset(self) -> None:
        self.frozen, self._keep = 0, None


def compose(current: RunSeries | None, settings: SceneSettings, *, past: Sequence[tuple[RunSeries, str]] = (),
            status: Status | None = None, steps: StepDecimator | None = None) -> Scene:
    """The scene of ``current`` (may be None) with ``past`` runs (series, colour) drawn faded."""
    scale = check_scale(settings.scale)
    run = current if current is not None else RunSeries()
    up = to_display(run.upper_filled(), scale)
    lo, loss = to_display(run.lower, scale), to_display(run.loss, scale)
    # a loss that is not the metric E (cross-entropy, L1, …) is never drawn on the cloud's axis
    own = not run.step_metric
    hist, tail = _step_lines(run, settings, steps or StepDecimator(), "linear" if own else scale)
    run_up = float(to_display([run.yes0()], scale)[0])
    past_d = [(s, color, to_display(s.loss, scale)) for s, color in past]
    on_cloud_axis = [] if own else [hist.y, tail.y]
    bottom, top = y_limits([loss, up, lo, *on_cloud_axis, [run_up]] + [d for _, _, d in past_d], scale)
    step_axis = y_limits([hist.y, tail.y], "linear") if own and (hist.size or tail.size) else None
    x_end = _epoch_end(run.step_x)
    x_max = _x_max(run, past, settings, x_end)
    red, yellow, green = _bands(run.epochs, up, lo, run_up, x_end, x_max, (bottom, top), settings.max_points)
    return Scene(
        scale=scale, x_limits=(0.0, x_max), y_limits=(bottom, top), red=red, yellow=yellow, green=green,
        loss=_loss_line(run.epochs, loss, bottom, top, settings.max_points),
        dots=run.epochs.size <= DOTS_UP_TO, hover=_hover(run, loss, bottom, top, settings.hover_points),
        diverged=_diverged(run.epochs, loss, top),
        steps=hist if own else _clip_line(hist, bottom, top),
        steps_tail=tail if own else _clip_line(tail, bottom, top),
        step_axis=step_axis, step_label=f"{run.step_name} (minibatch)" if own else "",
        past=tuple(_past_line(s, color, d, bottom, top, settings.max_points) for s, color, d in past_d),
        marks=_marks(run.marks), label=run.label, status=status or Status(),
        orders=_orders(run, loss, up, scale, settings.max_points) if settings.show_orders else None,
        depth=depth_view(run.layer_errors, scale) if settings.show_depth else None,
        line_color=settings.line_color, line_visible=settings.line_visible,
    )


def _step_lines(run: RunSeries, settings: SceneSettings, steps: StepDecimator,
                scale: str) -> tuple[Line, Line]:
    n = min(run.step_x.size, run.step_y.size)
    if not settings.show_steps or n == 0:
        steps.reset()
        return Line(), Line()
    keep, start = steps.split(run.step_x, run.step_y, settings.max_points)
    hist = Line(run.step_x[keep], to_display(run.step_y[keep], scale))
    return hist, Line(run.step_x[start:n], to_display(run.step_y[start:n], scale))


def _clip_line(line: Line, bottom: float, top: float) -> Line:
    """Minibatch losses: ±inf to the plot's edge, NaN stays a gap (finite ones are inside the limits)."""
    if not np.isinf(line.y).any():
        return line
    return Line(line.x, np.clip(line.y, bottom, top))


def _epoch_end(step_x: np.ndarray) -> float | None:
    """Where the cloud ends: the end of the epoch of the newest step (it moves once per epoch,
    so a live chart does not resend the bands with every step)."""
    if not step_x.size or not math.isfinite(float(step_x[-1])):
        return None
    return float(math.ceil(float(step_x[-1]) - 1e-9))


def _x_max(run: RunSeries, past: Sequence[tuple[RunSeries, str]], settings: SceneSettings,
           x_end: float | None) -> float:
    x_max = 1.0
    for arr in [run.epochs] + [s.epochs for s, _ in past]:
        if arr.size:
            x_max = max(x_max, float(np.nanmax(arr)))
    if x_end is not None and math.isfinite(x_end):
        x_max = max(x_max, x_end)
    if settings.epochs_total:
        x_max = max(x_max, float(settings.epochs_total))
    return x_max


def _bands(epochs: np.ndarray, up: np.ndarray, lo: np.ndarray, run_up: float, x_end: float | None,
           x_max: float, limits: tuple[float, float], max_points: int) -> tuple[Line, Line, Line]:
    bx, bu, bl = band_geometry(epochs, up, lo, x_end)
    if bx.size == 0 and math.isfinite(run_up):
        bx, bu, bl = np.array([0.0, x_end or x_max]), np.array([run_up, run_up]), np.full(2, np.nan)
    if bx.size < 2:
        return Line(), Line(), Line()
    bu_c, bl_c = np.clip(bu, *limits), np.clip(bl, *limits)
    lo_ok = np.isfinite(bl_c) & np.isfinite(bu_c)
    rows = np.vstack([np.where(lo_ok, bu_c, np.nan), bl_c])
    k_red, k_yel, k_grn = (_band_points(bx, max_points, *r) for r in ((bu_c,), (bu_c, bl_c), (bl_c,)))
    return Line(bx[k_red], bu_c[k_red]), Line(bx[k_yel], rows[:, k_yel]), Line(bx[k_grn], bl_c[k_grn])


def _band_points(x: np.ndarray, max_points: int, *rows: np.ndarray) -> np.ndarray:
    """Drop interior points of constant stretches (YES-0 is constant, the lower edge a running minimum)."""
    k = _breakpoints(*rows)
    if k.size > max_points:
        k = k[decimate_minmax(x[k], np.nan_to_num(rows[-1][k], nan=np.inf), max_points)]
    return k


def _decimated(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    if x.size <= max_points:
        return np.arange(x.size)
    return decimate_minmax(x, np.nan_to_num(y, nan=np.inf), max_points)


def _loss_line(epochs: np.ndarray, loss: np.ndarray, bottom: float, top: float, max_points: int) -> Line:
    keep = _decimated(epochs, loss, max_points)
    return Line(epochs[keep], clip_display(loss[keep], bottom, top))


def _hover(run: RunSeries, loss: np.ndarray, bottom: float, top: float, points: int) -> Hover:
    k = _decimated(run.epochs, loss, points)
    return Hover(x=run.epochs[k], y=clip_display(loss[k], bottom, top), loss_db=to_display(run.loss[k]),
                 upper_db=to_display(run.upper_filled()[k]), lower_db=to_display(run.lower[k]),
                 zones=tuple(run.zones[i] for i in k))


def _diverged(epochs: np.ndarray, loss: np.ndarray, top: float) -> Line:
    bad = np.isnan(loss) | np.isposinf(loss)
    return Line(epochs[bad], np.full(int(bad.sum()), top))


def _past_line(series: RunSeries, color: str, loss: np.ndarray, bottom: float, top: float,
               max_points: int) -> PastLine:
    keep = _decimated(series.epochs, loss, max_points)
    line = Line(series.epochs[keep], clip_display(loss[keep], bottom, top))
    return PastLine(series.run_id, series.label or series.run_id or "run", color, line)


def _marks(marks: Sequence[dict[str, Any]]) -> tuple[MarkLine, ...]:
    out = []
    for mark in marks:
        pos = _f(mark.get("position")) if isinstance(mark, dict) else math.nan
        if math.isfinite(pos):
            out.append(MarkLine(pos, change_text(mark)))
    return tuple(out)


def _orders(run: RunSeries, loss: np.ndarray, up: np.ndarray, scale: str, max_points: int) -> OrdersView:
    k = max((len(v) for v in run.yes_k), default=0)
    mat = np.full((k, run.epochs.size), np.nan)
    for j, vals in enumerate(run.yes_k):
        if vals:
            mat[: len(vals), j] = vals
    mat_d = to_display(mat, scale)
    bottom, top = y_limits([mat_d, loss, up], scale)
    x_max = float(max(1.0, run.epochs.max() if run.epochs.size else 1.0))
    return OrdersView(x=run.epochs, rows=np.clip(mat_d, bottom, top),
                      labels=tuple(f"YES-{i + 1}" for i in range(k)), colors=tuple(order_colors(k)),
                      upper=up, loss=clip_display(loss, bottom, top), y_limits=(bottom, top), x_max=x_max)


def depth_view(layer_errors: Sequence[float], scale: str = "db") -> DepthView:
    """The per-layer YES-0 errors (the paper's Figure 2 view) in plot units."""
    values = to_display(np.asarray(list(layer_errors), dtype=np.float64), check_scale(scale))
    bottom, top = y_limits([values], scale)
    shown = clip_display(values, bottom, top) if values.size else values
    return DepthView(np.arange(1, values.size + 1, dtype=np.float64), shown, (bottom, top))


def compose_status(last: Any, *, first: Any = None, epochs_total: int | None = None,
                   state: tuple[str, str, str] = ("running", "", ""), arrival: tuple[float, ...] | None = None,
                   run: Any = None) -> Status:
    """The reading of the latest epoch record ``last`` (None before the first), the run state,
    and what the run itself says (``run``: its notes and the kind of its minibatch losses)."""
    name, message, tb = state
    notes = tuple(dict.fromkeys(getattr(run, "warnings", None) or ()))
    records = getattr(run, "epochs", None) or ()
    if last is not None and (last.zone != "yellow" or find_plateau(records) is None):
        notes = tuple(n for n in notes if not n.startswith(PLATEAU_NOTE))  # for while the loss sits on it
    step_loss = (getattr(run, "config", None) or {}).get("step_loss") or {}
    extra: dict[str, Any] = {"notes": notes, "step_loss_name": "" if step_loss.get("metric", True)
                             else str(step_loss.get("name", ""))}
    if last is None:
        return Status(epochs_total=epochs_total, state=name or "running", message=message, traceback=tb, **extra)
    val_loss = getattr(last, "val_loss", None)
    extra.update(reason=str(getattr(last, "reason", "") or ""), lr=getattr(last, "lr", None),
                 accuracy=getattr(last, "accuracy", None), val_accuracy=getattr(last, "val_accuracy", None),
                 val_loss=math.nan if val_loss is None else _f(val_loss))
    zone = last.zone if last.zone in ZONE_STYLES else NO_VERDICT
    edge = last.upper if zone == "red" else last.lower
    return Status(zone=zone, loss=_f(last.loss), upper=_f(last.upper), lower=_f(last.lower),
                  margin_db=to_db(last.loss) - to_db(edge), epoch=int(last.epoch), epochs_total=epochs_total,
                  eta_seconds=estimate_eta(first if first is not None else last, last, epochs_total, arrival),
                  state=name or "running", message=message, traceback=tb, **extra)
