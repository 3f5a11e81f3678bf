"""Static pictures of the YES cloud with matplotlib (PNG / SVG), no widgets.

The picture :class:`yeswidget.widgets.chart.CloudChart` draws live, for papers,
reports and CI artefacts: both draw one :class:`~yeswidget.view.scene.Scene`
(bands in the zone colours of :mod:`yeswidget.core.zones` at their band
opacity, the YES-0 line, the lower edge dashed, the epoch loss, the minibatch
losses faint, finished runs faded, marks as dashed verticals).

Only the object-oriented matplotlib API is used (``matplotlib.figure.Figure``
with an Agg canvas), never ``pyplot``: drawing here does not touch global
state, open windows, or change the notebook backend.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.run import Run
from ..core.zones import ZONE_STYLES, ZONES
from .scene import (
    BAND_OPACITY,
    DOTS_UP_TO,
    LOSS_COLOR,
    LOWER_COLOR,
    PAST_COLORS,
    SCALES,
    STEP_COLOR,
    UPPER_COLOR,
    ZONE_COLORS,
    RunSeries,
    Scene,
    SceneSettings,
    check_scale,
    compose,
    depth_view,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ZONE_COLORS", "BAND_OPACITY", "UPPER_COLOR", "LOWER_COLOR", "LOSS_COLOR", "STEP_COLOR", "PAST_COLORS",
    "SCALES", "DOTS_UP_TO", "draw_cloud", "save_cloud", "draw_depth", "draw_scene", "scene_of",
]


# --------------------------------------------------------------------------
# matplotlib pictures
# --------------------------------------------------------------------------
def _new_figure(size: tuple[float, float] = (8, 4.5), dpi: int = 100) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _axes(ax: Any, size: tuple[float, float] = (8, 4.5), dpi: int = 100) -> tuple[Figure, Any]:
    """``ax``'s figure and ``ax``, or a new figure and its one axes when ``ax`` is None."""
    if ax is not None:
        return ax.figure, ax
    fig = _new_figure(size, dpi)
    return fig, fig.add_subplot(1, 1, 1)


def scene_of(run: Run, *, past_runs: Sequence[Run] = (), scale: str = "db", show_steps: bool = True,
             width_px: int = 800) -> Scene:
    """The scene :func:`draw_cloud` draws: ``run`` with ``past_runs`` faded, decimated to ``width_px``."""
    settings = SceneSettings(scale=check_scale(scale), width_px=width_px, show_steps=show_steps)
    past = [(RunSeries.from_run(r), PAST_COLORS[i % len(PAST_COLORS)])
            for i, r in enumerate(r for r in past_runs if r is not None)]
    return compose(RunSeries.from_run(run), settings, past=past)


def draw_cloud(
    run: Run,
    *,
    past_runs: Sequence[Run] = (),
    scale: str = "db",
    ax: Any = None,
    title: str | None = None,
    show_steps: bool = True,
    size: tuple[float, float] = (8, 4.5),
    dpi: int = 100,
) -> Figure:
    """Draw a run's YES cloud and loss curve; return the matplotlib ``Figure``.

    ``scale``: ``"db"`` (10·log10, the paper's view), ``"linear"`` or ``"log"``.
    ``ax``: draw into these axes instead of a new figure. ``title``: defaults to
    the run's label. Works for runs with no epochs yet (only YES-0, if known),
    one epoch, missing step data, and diverged runs (non-finite losses are
    drawn at the top edge with a red ✕).
    """
    fig, ax = _axes(ax, size, dpi)
    width = int(ax.bbox.width) if ax.bbox.width > 0 else int(size[0] * dpi)
    scene = scene_of(run, past_runs=past_runs, scale=scale, show_steps=show_steps, width_px=width)
    draw_scene(scene, ax, title=title if title is not None else run.label)
    return fig


def draw_scene(scene: Scene, ax: Any, *, title: str | None = None) -> None:
    """Draw ``scene`` into matplotlib axes ``ax``."""
    bottom, top = scene.y_limits
    _draw_bands(ax, scene)
    for past in scene.past:
        if past.line.size:
            ax.plot(past.line.x, past.line.y, color=past.color, alpha=0.45, linewidth=1.3, label=past.label)
    steps = _joined(scene.steps, scene.steps_tail)
    if steps.size and scene.step_axis is not None:
        # a loss that is not the metric E gets its own axis (right), never the cloud's dB axis
        own = ax.twinx()
        own.plot(steps.x, steps.y, color=STEP_COLOR, alpha=0.45, linewidth=0.8)
        own.set_ylim(*scene.step_axis)
        own.set_ylabel(scene.step_label, color=STEP_COLOR)
    elif steps.size:
        ax.plot(steps.x, steps.y, color=STEP_COLOR, alpha=0.3, linewidth=0.8, label="minibatch loss")
    _draw_loss(ax, scene)
    for mark in scene.marks:
        ax.axvline(mark.position, color="#666666", linestyle="--", linewidth=0.9, alpha=0.8)
        ax.annotate(mark.label, (mark.position, top), xytext=(3, -10), textcoords="offset points",
                    fontsize=7, color="#444444", rotation=0, va="top")
    if scene.scale == "log":
        ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    ax.set_xlim(*scene.x_limits)
    ax.set_xlabel("epoch")
    ax.set_ylabel(scene.axis_label)
    if title:
        ax.set_title(title)
    if scene.empty:
        ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center", color="#888888")
    _legend(ax)


def _joined(history: Any, tail: Any) -> Any:
    """The minibatch line as one series (the tail starts at the history's last point)."""
    if not tail.size:
        return history
    from .scene import Line

    return Line(np.r_[history.x[:-1], tail.x], np.r_[history.y[:-1], tail.y]) if history.size else tail


def _draw_bands(ax: Any, scene: Scene) -> None:
    bottom, top = scene.y_limits
    kw = dict(alpha=BAND_OPACITY, linewidth=0, interpolate=True)
    red, yellow, green = scene.red, scene.yellow, scene.green
    if red.size:
        ax.fill_between(red.x, red.y, top, where=np.isfinite(red.y), color=ZONE_COLORS["red"], **kw)
        ax.plot(red.x, red.y, color=UPPER_COLOR, linewidth=1.5, label="YES-0")
    if yellow.size and np.isfinite(yellow.y[1]).any():
        ok = np.isfinite(yellow.y).all(axis=0)
        ax.fill_between(yellow.x, yellow.y[1], yellow.y[0], where=ok, color=ZONE_COLORS["yellow"], **kw)
    if green.size and np.isfinite(green.y).any():
        ax.fill_between(green.x, bottom, green.y, where=np.isfinite(green.y), color=ZONE_COLORS["green"], **kw)
        ax.plot(green.x, green.y, color=LOWER_COLOR, linewidth=1.3, linestyle="--", label="lower edge")


def _draw_loss(ax: Any, scene: Scene) -> None:
    loss, top = scene.loss, scene.y_limits[1]
    if not loss.size:
        return
    ax.plot(loss.x, loss.y, color=LOSS_COLOR, linewidth=1.8, marker="o" if scene.dots else None,
            markersize=3.5, label="epoch loss", zorder=5)
    bad = scene.diverged
    if bad.size:
        ax.plot(bad.x, bad.y, linestyle="none", marker="x", color=UPPER_COLOR, markersize=8,
                markeredgewidth=2, zorder=6, label="diverged (off the plot)")
        ax.annotate("diverged", (bad.x[0], top), xytext=(4, -12), textcoords="offset points",
                    color=UPPER_COLOR, fontsize=9)


def _legend(ax: Any) -> None:
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    for zone in ZONES:
        handles.append(Patch(facecolor=ZONE_COLORS[zone], alpha=BAND_OPACITY, edgecolor="none"))
        labels.append(f"{zone}: {ZONE_STYLES[zone].word}")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False, borderaxespad=0.0)


def save_cloud(
    run: Run,
    path: str | os.PathLike[str],
    *,
    past_runs: Sequence[Run] = (),
    scale: str = "db",
    dpi: int = 100,
    size: tuple[float, float] = (8, 4.5),
    title: str | None = None,
    show_steps: bool = True,
) -> Figure:
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


def draw_depth(layer_errors: Sequence[float], *, ax: Any = None, title: str | None = None,
               scale: str = "db") -> Figure:
    """Per-layer YES-0 errors (layer 1 … L) as a line with dots (the paper's Figure 2 view)."""
    scale = check_scale(scale)
    fig, ax = _axes(ax, (5, 3.5))
    view = depth_view(layer_errors, scale)
    if view.values.size:
        ax.plot(view.layers, view.values, color=UPPER_COLOR, marker="o", linewidth=1.5)
        if scale == "log":
            ax.set_yscale("log")
        ax.set_ylim(*view.y_limits)
        ax.set_xticks(view.layers)
        ax.set_xlim(0.5, view.values.size + 0.5)
    else:
        ax.text(0.5, 0.5, "no per-layer errors", transform=ax.transAxes, ha="center",
                va="center", color="#888888")
    ax.set_xlabel("layer")
    ax.set_ylabel({"db": "YES-0 error (dB)", "linear": "YES-0 error", "log": "YES-0 error (log)"}[scale])
    ax.set_title(title if title is not None else "per-layer YES-0")
    return fig
