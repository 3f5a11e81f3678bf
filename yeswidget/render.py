"""Static pictures of the YES cloud with matplotlib (PNG / SVG), no widgets.

The same picture :class:`yeswidget.chart.CloudChart` draws live, for papers,
reports and CI artefacts:

* red band (``#FFB6C1``) from YES-0 up to the top of the plot,
* yellow band (``#FFD700``) between YES-0 and the lower edge,
* green band (``#00FF7F``) from the lower edge down to the bottom of the plot,

all at 40% opacity, the YES-0 line in red, the lower edge dashed, the epoch
loss as a dark line, the minibatch losses as a faint line, and finished runs
as faded lines.

Only the object-oriented matplotlib API is used (``matplotlib.figure.Figure``
with an Agg canvas), never ``pyplot``: drawing here does not touch global
state, open windows, or change the notebook backend.

The module also holds the pure-numpy helpers the live chart shares (unit
transforms, the y range, band geometry, min/max decimation), so both pictures
agree to the pixel about where the bands are.
"""
from __future__ import annotations

import math
import os
from typing import Iterable, Sequence

import numpy as np

from .core.run import Run

__all__ = [
    "ZONE_COLORS",
    "BAND_OPACITY",
    "UPPER_COLOR",
    "LOWER_COLOR",
    "LOSS_COLOR",
    "STEP_COLOR",
    "SCALES",
    "draw_cloud",
    "save_cloud",
    "draw_depth",
    "to_display",
    "y_limits",
    "band_geometry",
    "decimate_minmax",
]

#: the paper's area colours
ZONE_COLORS = {"red": "#FFB6C1", "yellow": "#FFD700", "green": "#00FF7F"}
#: opacity of the three bands
BAND_OPACITY = 0.4
#: YES-0 line
UPPER_COLOR = "#d62728"
#: lower edge (dashed)
LOWER_COLOR = "#1e6b3a"
#: epoch loss line
LOSS_COLOR = "#1a1a1a"
#: minibatch loss line (drawn faint)
STEP_COLOR = "#555555"
#: colours for finished runs drawn behind the current one
PAST_COLORS = ("#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#ff7f0e", "#bcbd22")
#: the y-axis units: ``db`` = 10·log10(loss) on a linear axis; ``linear``; ``log`` (log axis)
SCALES = ("db", "linear", "log")

#: below this many epochs the loss line gets dots
DOTS_UP_TO = 60

_DEFAULT_LIMITS = {"db": (-30.0, 10.0), "linear": (0.0, 1.0), "log": (1e-3, 10.0)}


# --------------------------------------------------------------------------
# shared numeric helpers (also used by the live chart)
# --------------------------------------------------------------------------
def check_scale(scale: str) -> str:
    """Normalise a scale name (``"dB"`` → ``"db"``); raise ``ValueError`` if unknown."""
    name = str(scale).strip().lower()
    if name not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return name


def to_display(values, scale: str = "db") -> np.ndarray:
    """Loss values (metric units) → plot units, as float64.

    ``db``: ``10·log10`` (0 → -inf, negative or NaN → NaN, inf → inf, like
    :func:`yeswidget.core.run.to_db`). ``linear`` and ``log``: the values themselves;
    on a log axis a non-positive value cannot be drawn and becomes -inf
    (clipped to the bottom later) or NaN when negative.
    """
    arr = np.asarray(values, dtype=np.float64)
    if scale == "db":
        with np.errstate(divide="ignore", invalid="ignore"):
            return 10.0 * np.log10(arr)
    if scale == "log":
        out = arr.copy()
        with np.errstate(invalid="ignore"):
            out[arr == 0] = -np.inf
            out[arr < 0] = np.nan
        return out
    return arr.copy()


def _to_space(values: np.ndarray, scale: str) -> np.ndarray:
    """Plot units → the axis' linear space (log10 on a log axis)."""
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(values)
    return values


def _from_space(value: float, scale: str) -> float:
    return 10.0 ** value if scale == "log" else value


def y_limits(arrays: Iterable, scale: str = "db", pad: float = 0.08) -> tuple[float, float]:
    """(bottom, top) of the y axis in plot units, from every finite value given.

    ``arrays`` are in plot units (see :func:`to_display`). The span is padded
    by ``pad`` of its height on both sides (at least 1 dB, or 5% of a decade on
    a log axis), so the red band always has room above YES-0 and the green band
    below the lower edge. On a linear axis of non-negative data the bottom is
    not taken below 0.
    """
    parts = []
    for arr in arrays:
        a = np.asarray(arr, dtype=np.float64).ravel()
        if a.size:
            s = _to_space(a, scale)
            s = s[np.isfinite(s)]
            if s.size:
                parts.append((float(s.min()), float(s.max())))
    if not parts:
        return _DEFAULT_LIMITS[scale]
    lo = min(p[0] for p in parts)
    hi = max(p[1] for p in parts)
    span = hi - lo
    if scale == "db":
        min_pad = 1.0
    elif scale == "log":
        min_pad = 0.05
    else:
        min_pad = 0.05 * max(abs(hi), abs(lo), 1e-12)
    margin = max(pad * span, min_pad)
    bottom, top = lo - margin, hi + margin
    if scale == "linear" and lo >= 0.0:
        bottom = max(bottom, 0.0)
    return _from_space(bottom, scale), _from_space(top, scale)


def band_geometry(epochs, upper, lower, x_end: float | None = None):
    """x positions and the two cloud edges for drawing the bands.

    The epoch records sit at epochs 1, 2, …; the bands are extended to x = 0
    with the first record's edges (YES-0 does not depend on the weights; the
    lower edge is the first one measured) and, when ``x_end`` lies past the last
    record (minibatch losses of an epoch still running), to ``x_end`` with the
    last edges, so the cloud spans everything drawn. A NaN lower edge (not yet
    computed) is carried forward from the last known one.

    Returns ``(x, upper, lower)`` as float64 arrays (may be empty).
    """
    e = np.asarray(epochs, dtype=np.float64)
    up = np.asarray(upper, dtype=np.float64)
    lo = np.asarray(lower, dtype=np.float64).copy()
    if e.size == 0:
        return np.empty(0), np.empty(0), np.empty(0)
    # carry the lower edge forward over gaps
    if np.isnan(lo).any():
        idx = np.where(~np.isnan(lo), np.arange(lo.size), 0)
        np.maximum.accumulate(idx, out=idx)
        filled = lo[idx]
        filled[np.isnan(lo) & (np.cumsum(~np.isnan(lo)) == 0)] = np.nan
        lo = filled
    x = e
    if e[0] > 0:
        x = np.concatenate(([0.0], x))
        up = np.concatenate((up[:1], up))
        lo = np.concatenate((lo[:1], lo))
    if x_end is not None and np.isfinite(x_end) and x_end > x[-1]:
        x = np.concatenate((x, [float(x_end)]))
        up = np.concatenate((up, up[-1:]))
        lo = np.concatenate((lo, lo[-1:]))
    return x, up, lo


def decimate_minmax(x, y, max_points: int = 2000) -> np.ndarray:
    """Indices of the points to draw from a long series: min and max per horizontal bucket.

    ``x`` is split into ``(max_points - 2) // 2`` equal-width buckets; each
    keeps the position of its smallest and its largest ``y`` (so spikes and
    dips survive), plus the first and last point, in their original order: at
    most ``max_points`` indices. NaN ``y`` values (steps that logged nothing)
    are dropped; ±inf are kept as extremes. Short series come back whole
    (minus NaNs). ``x`` should be non-decreasing (fractional epochs are); if it
    is not, the buckets are equal counts of points instead.
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
    buckets = max((max_points - 2) // 2, 1)
    if xs[-1] > xs[0] and np.all(xs[1:] >= xs[:-1]):
        edges = np.linspace(xs[0], xs[-1], buckets + 1)[:-1]
        starts = np.searchsorted(xs, edges, side="left")
    else:
        starts = np.linspace(0, n, buckets + 1)[:-1].astype(np.int64)
    starts = np.unique(starts)
    starts = starts[starts < n]
    lengths = np.diff(np.append(starts, n))
    seg = np.repeat(np.arange(starts.size), lengths)
    chosen = [np.array([0, n - 1])]
    for reducer in (np.minimum, np.maximum):
        ext = reducer.reduceat(ys, starts)
        hit = np.flatnonzero(ys == ext[seg])
        first = np.ones(hit.size, dtype=bool)
        first[1:] = seg[hit[1:]] != seg[hit[:-1]]
        chosen.append(hit[first])
    idx = np.unique(np.concatenate(chosen))
    return keep[idx]


def _record_arrays(run: Run):
    """epochs, loss, upper, lower as float64 arrays from a run's records."""
    recs = list(run.epochs)
    e = np.array([r.epoch for r in recs], dtype=np.float64)
    loss = np.array([_f(r.loss) for r in recs], dtype=np.float64)
    upper = np.array([_f(r.upper) for r in recs], dtype=np.float64)
    lower = np.array([_f(r.lower) for r in recs], dtype=np.float64)
    run_upper = _f(run.upper)
    if upper.size and np.isnan(upper).any() and math.isfinite(run_upper):
        upper[np.isnan(upper)] = run_upper
    return e, loss, upper, lower


def _f(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------
# matplotlib pictures
# --------------------------------------------------------------------------
def _new_figure(size=(8, 4.5), dpi=100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _axes(ax, size=(8, 4.5), dpi=100):
    if ax is not None:
        return ax.figure, ax
    fig = _new_figure(size, dpi)
    return fig, fig.add_subplot(1, 1, 1)


def draw_cloud(
    run: Run,
    *,
    past_runs: Sequence[Run] = (),
    scale: str = "db",
    ax=None,
    title: str | None = None,
    show_steps: bool = True,
    size=(8, 4.5),
    dpi: int = 100,
):
    """Draw a run's YES cloud and loss curve; return the matplotlib ``Figure``.

    ``scale``: ``"db"`` (10·log10, the paper's view), ``"linear"`` or ``"log"``.
    ``ax``: draw into these axes instead of a new figure. ``title``: defaults to
    the run's label. Works for runs with no epochs yet (only YES-0, if known),
    one epoch, missing step data, and diverged runs (non-finite losses are
    drawn at the top edge with a red ✕).
    """
    scale = check_scale(scale)
    fig, ax = _axes(ax, size, dpi)
    past_runs = [r for r in past_runs if r is not None]

    e, loss, upper, lower = _record_arrays(run)
    sx = np.asarray(run.step_positions, dtype=np.float64)
    sy = np.asarray(run.step_losses, dtype=np.float64)
    n = min(sx.size, sy.size)
    sx, sy = sx[:n], sy[:n]
    if n and show_steps:
        keep = decimate_minmax(sx, sy, 4000)
        sx, sy = sx[keep], sy[keep]
    else:
        sx, sy = np.empty(0), np.empty(0)

    loss_d = to_display(loss, scale)
    up_d = to_display(upper, scale)
    lo_d = to_display(lower, scale)
    step_d = to_display(sy, scale)
    run_up = _f(run.upper)
    run_up_d = float(to_display([run_up], scale)[0]) if math.isfinite(run_up) else math.nan

    past = []
    for i, prun in enumerate(past_runs):
        pe, ploss, _pu, _pl = _record_arrays(prun)
        past.append((prun, pe, to_display(ploss, scale), PAST_COLORS[i % len(PAST_COLORS)]))

    bottom, top = y_limits(
        [loss_d, up_d, lo_d, step_d, [run_up_d]] + [p[2] for p in past], scale
    )

    x_candidates = [1.0]
    for arr in [e, sx] + [p[1] for p in past]:
        if arr.size:
            x_candidates.append(float(np.nanmax(arr)))
    x_max = max(x_candidates)
    x_end = float(sx.max()) if sx.size else None

    # ---- bands -----------------------------------------------------------
    bx, bu, bl = band_geometry(e, up_d, lo_d, x_end)
    if bx.size == 0 and math.isfinite(run_up_d):
        bx = np.array([0.0, x_max])
        bu = np.array([run_up_d, run_up_d])
        bl = np.full(2, np.nan)
    if bx.size:
        bu_c = np.clip(bu, bottom, top)
        bl_c = np.clip(bl, bottom, top)
        ok_u = np.isfinite(bu)
        ok_l = np.isfinite(bl) & ok_u
        kw = dict(alpha=BAND_OPACITY, linewidth=0, interpolate=True)
        ax.fill_between(bx, bu_c, top, where=ok_u, color=ZONE_COLORS["red"], **kw)
        ax.fill_between(bx, bl_c, bu_c, where=ok_l, color=ZONE_COLORS["yellow"], **kw)
        ax.fill_between(bx, bottom, bl_c, where=ok_l, color=ZONE_COLORS["green"], **kw)
        ax.plot(bx, np.where(ok_u, bu, np.nan), color=UPPER_COLOR, linewidth=1.5, label="YES-0")
        if ok_l.any():
            ax.plot(bx, np.where(ok_l, bl, np.nan), color=LOWER_COLOR, linewidth=1.3,
                    linestyle="--", label="lower edge")

    # ---- past runs --------------------------------------------------------
    for prun, pe, pl, color in past:
        if pe.size:
            ax.plot(pe, _clip_display(pl, bottom, top), color=color, alpha=0.45,
                    linewidth=1.3, label=prun.label)

    # ---- minibatch losses -------------------------------------------------
    if sx.size:
        ax.plot(sx, _clip_display(step_d, bottom, top), color=STEP_COLOR, alpha=0.3,
                linewidth=0.8, label="minibatch loss")

    # ---- epoch loss -------------------------------------------------------
    if e.size:
        shown = _clip_display(loss_d, bottom, top)
        marker = "o" if e.size <= DOTS_UP_TO else None
        ax.plot(e, shown, color=LOSS_COLOR, linewidth=1.8, marker=marker, markersize=3.5,
                label="epoch loss", zorder=5)
        bad = ~np.isfinite(loss_d) & ~(np.isneginf(loss_d))
        if bad.any():
            ax.plot(e[bad], np.full(int(bad.sum()), top), linestyle="none", marker="x",
                    color=UPPER_COLOR, markersize=8, markeredgewidth=2, zorder=6,
                    label="diverged (off the plot)")
            ax.annotate("diverged", (e[bad][0], top), xytext=(4, -12), textcoords="offset points",
                        color=UPPER_COLOR, fontsize=9)

    # ---- marks (batch-size changes, …) -----------------------------------
    for mark in run.marks or ():
        pos = _f(mark.get("position")) if isinstance(mark, dict) else math.nan
        if math.isfinite(pos):
            ax.axvline(pos, color="#666666", linestyle="--", linewidth=0.9, alpha=0.8)
            ax.annotate(mark_label(mark), (pos, top), xytext=(3, -10), textcoords="offset points",
                        fontsize=7, color="#444444", rotation=0, va="top")

    # ---- axes -------------------------------------------------------------
    if scale == "log":
        ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    ax.set_xlim(0.0, x_max)
    ax.set_xlabel("epoch")
    ax.set_ylabel({"db": "loss (dB)", "linear": "loss", "log": "loss (log scale)"}[scale])
    label = title if title is not None else run.label
    if label:
        ax.set_title(label)
    if not e.size and not math.isfinite(run_up_d) and not past:
        ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center",
                color="#888888")
    _legend(ax)
    return fig


def _legend(ax):
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    zone_words = {"red": "red: ineffective", "yellow": "yellow: meaningful, not optimal",
                  "green": "green: effective"}
    for zone, words in zone_words.items():
        handles.append(Patch(facecolor=ZONE_COLORS[zone], alpha=BAND_OPACITY, edgecolor="none"))
        labels.append(words)
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False, borderaxespad=0.0)


def _clip_display(values: np.ndarray, bottom: float, top: float) -> np.ndarray:
    """Non-finite or huge values drawn at the top edge, -inf at the bottom."""
    out = np.array(values, dtype=np.float64)
    out[np.isnan(out) | (out > top)] = top
    out[out < bottom] = bottom
    return out


def mark_label(mark: dict) -> str:
    """Human words for a ``Run.marks`` entry, e.g. ``batch size → 128 at epoch 3.50``."""
    kind = str(mark.get("kind", "mark"))
    value = mark.get("value")
    pos = _f(mark.get("position"))
    words = kind.replace("_", " ")
    if value is not None and value != "":
        words += f" → {value}"
    if math.isfinite(pos):
        words += f" at epoch {pos:.2f}"
    return words


def save_cloud(
    run: Run,
    path: str | os.PathLike,
    *,
    past_runs: Sequence[Run] = (),
    scale: str = "db",
    dpi: int = 100,
    size=(8, 4.5),
    title: str | None = None,
    show_steps: bool = True,
):
    """Write :func:`draw_cloud`'s picture to ``path``; PNG or SVG by extension.

    Returns the matplotlib ``Figure`` (its axes map data to the saved pixels:
    ``fig.axes[0].transData``, origin bottom-left).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in ("png", "svg", "pdf"):
        raise ValueError(f"save_cloud writes .png or .svg (or .pdf), not {path!r}")
    fig = draw_cloud(run, past_runs=past_runs, scale=scale, title=title, show_steps=show_steps,
                     size=size, dpi=dpi)
    fig.savefig(path, format=ext, dpi=dpi)
    return fig


def draw_depth(layer_errors: Sequence[float], *, ax=None, title: str | None = None,
               scale: str = "db"):
    """Per-layer YES-0 errors (layer 1 … L) as a line with dots (the paper's Figure 2 view)."""
    scale = check_scale(scale)
    fig, ax = _axes(ax, (5, 3.5))
    values = to_display(np.asarray(list(layer_errors), dtype=np.float64), scale)
    layers = np.arange(1, values.size + 1, dtype=np.float64)
    if values.size:
        bottom, top = y_limits([values], scale)
        ax.plot(layers, _clip_display(values, bottom, top), color=UPPER_COLOR, marker="o",
                linewidth=1.5)
        if scale == "log":
            ax.set_yscale("log")
        ax.set_ylim(bottom, top)
        ax.set_xticks(layers)
        ax.set_xlim(0.5, values.size + 0.5)
    else:
        ax.text(0.5, 0.5, "no per-layer errors", transform=ax.transAxes, ha="center",
                va="center", color="#888888")
    ax.set_xlabel("layer")
    ax.set_ylabel({"db": "YES-0 error (dB)", "linear": "YES-0 error", "log": "YES-0 error (log)"}[scale])
    ax.set_title(title if title is not None else "per-layer YES-0")
    return fig
