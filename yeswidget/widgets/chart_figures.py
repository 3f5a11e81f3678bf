"""The bqplot figures of the live chart; each applies a :class:`~yeswidget.view.scene.Scene` as a diff.

Only the pump thread calls ``apply``. Every array travels as float32 (binary
buffers) and is assigned only when it changed.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import bqplot
import ipywidgets as widgets
import numpy as np

from ..core.zones import BAND_OPACITY, ZONE_COLORS
from ..view.scene import LOSS_COLOR, LOWER_COLOR, STEP_COLOR, UPPER_COLOR, DepthView, OrdersView, Scene
from .sync import f32, iter_widgets, set_arrays, set_line, set_traits

__all__ = ["YPlot", "MainFigure", "OrdersFigure", "DepthFigure"]

_TICK_FORMATS = {"db": None, "linear": None, "log": ".2g"}
_MARGIN = dict(top=40, bottom=45, left=65, right=20)
_EMPTY = np.empty(0, np.float32)


def _lines(sc: dict, **kw: Any) -> bqplot.Lines:
    return bqplot.Lines(x=_EMPTY, y=_EMPTY, scales=sc, **kw)


@contextlib.contextmanager
def held(items: Iterable[widgets.Widget]):
    """One state message per widget for everything assigned inside (``hold_sync`` on each)."""
    with contextlib.ExitStack() as stack:
        for w in items:
            stack.enter_context(w.hold_sync())
        yield


class YPlot:
    """A figure with an x scale and a y scale that is linear or log as the scene's scale needs.

    bqplot cannot turn a LinearScale into a LogScale: on a switch a new scale and a
    new y axis (its view does not redraw ticks when only the scale changes) replace
    the old ones, which are closed after the update (``retired``).
    """

    def __init__(self, y_label: dict[str, str], x_label: str, x_min: float = 0.0) -> None:
        self.y_label = y_label
        self.xs = bqplot.LinearScale(min=x_min, max=x_min + 1.0, allow_padding=False)
        self.ys: bqplot.Scale = bqplot.LinearScale(min=-30.0, max=10.0, allow_padding=False)
        self.x_axis = bqplot.Axis(scale=self.xs, label=x_label, grid_lines="dashed")
        self.y_axis = bqplot.Axis(scale=self.ys, side="left", label=y_label["db"], grid_lines="dashed",
                                  label_offset="45px")
        self.retired: list[widgets.Widget] = []
        self.figure: bqplot.Figure

    @property
    def sc(self) -> dict:
        return {"x": self.xs, "y": self.ys}

    def set_axes(self, scale: str, x_limits: tuple[float, float], y_limits: tuple[float, float]) -> None:
        """Limits, labels and the right kind of y scale (call inside ``held``)."""
        self._swap(scale, *y_limits)
        set_traits(self.xs, min=float(x_limits[0]), max=float(x_limits[1]))
        set_traits(self.ys, min=float(y_limits[0]), max=float(y_limits[1]))
        set_traits(self.y_axis, label=self.y_label[scale], tick_format=_TICK_FORMATS[scale])

    def _swap(self, scale: str, bottom: float, top: float) -> None:
        want_log = scale == "log"
        if isinstance(self.ys, bqplot.LogScale) == want_log:
            return
        kw = {} if want_log else {"allow_padding": False}
        old_scale, old_axis = self.ys, self.y_axis
        self.ys = (bqplot.LogScale if want_log else bqplot.LinearScale)(min=float(bottom), max=float(top), **kw)
        for mark in self.figure.marks:
            mark.scales = {**mark.scales, "y": self.ys}
        self.y_axis = bqplot.Axis(scale=self.ys, side="left", label=old_axis.label, grid_lines="dashed",
                                  label_offset=old_axis.label_offset, tick_format=_TICK_FORMATS[scale])
        self.figure.axes = [self.y_axis if a is old_axis else a for a in self.figure.axes]
        self.retired += [old_axis, old_scale]

    def held(self, *extra: widgets.Widget):
        return held([self.figure, self.xs, self.ys, self.x_axis, self.y_axis, *self.figure.marks,
                     *getattr(self, "own_axis_widgets", ()), *extra])

    def close_retired(self) -> None:
        # a retired mark refers to the figure's live scales: those stay open (closing them broke
        # every mark made later, e.g. past runs added back after ``clear_runs``)
        closing, self.retired = self.retired, []
        live = {id(w) for w in (self.xs, self.ys, *getattr(self, "own_axis_widgets", ()))}
        for w in closing:
            for item in iter_widgets(w):
                if id(item) not in live:
                    widgets.Widget.close(item)


class MainFigure(YPlot):
    """Bands, marks, past runs, minibatch line, epoch loss with hover dots, diverged crosses."""

    def __init__(self, title: str) -> None:
        super().__init__({"db": "loss (dB)", "linear": "loss", "log": "loss (log scale)"}, "epoch")
        sc = self.sc
        # red: YES-0 filled up to the top of the plot (its stroke is the YES-0 line); green: the
        # lower edge filled down to the bottom (stroke dashed); yellow between. The y scale has
        # no padding, so "top" and "bottom" are the scene's y limits.
        self.band_yellow = _lines(sc, fill="between", colors=[ZONE_COLORS["yellow"]] * 2,
                                  fill_colors=[ZONE_COLORS["yellow"]] * 2, opacities=[0.0, 0.0],
                                  fill_opacities=[BAND_OPACITY, 0.0], stroke_width=0.0, enable_hover=False,
                                  labels=["YES-0", "lower edge"])
        self.band_red = _lines(sc, fill="top", colors=[UPPER_COLOR], fill_colors=[ZONE_COLORS["red"]],
                               fill_opacities=[BAND_OPACITY], stroke_width=1.8, enable_hover=False,
                               labels=["YES-0"])
        self.band_green = _lines(sc, fill="bottom", colors=[LOWER_COLOR], line_style="dashed",
                                 fill_colors=[ZONE_COLORS["green"]], fill_opacities=[BAND_OPACITY],
                                 stroke_width=1.5, enable_hover=False, labels=["lower edge"])
        self.marks_tooltip = bqplot.Tooltip(fields=["name"], show_labels=False)
        self.marks_lines = _lines(sc, colors=["#666666"], stroke_width=1.2, line_style="dashed",
                                  opacities=[0.8], tooltip=self.marks_tooltip)
        self.step_line = _lines(sc, colors=[STEP_COLOR], opacities=[0.3], stroke_width=1.0,
                                labels=["minibatch loss"], enable_hover=False)
        self.step_tail = _lines(sc, colors=[STEP_COLOR], opacities=[0.3], stroke_width=1.0,
                                labels=["minibatch loss (latest)"], enable_hover=False)
        self.loss_line = _lines(sc, colors=[LOSS_COLOR], stroke_width=2.2, labels=["current run"],
                                enable_hover=False)
        # a minibatch loss in its own unit (cross-entropy, L1, …): its own scale and a right axis
        self.step_ys = bqplot.LinearScale(min=0.0, max=1.0, allow_padding=False)
        self.step_axis = bqplot.Axis(scale=self.step_ys, side="right", label="", visible=False,
                                     grid_lines="none", label_offset="50px", tick_format=".2g")
        self.own_axis_widgets = (self.step_ys, self.step_axis)
        self._build_dots(sc)
        self.past_marks: dict[int, bqplot.Lines] = {}
        self.figure = bqplot.Figure(
            # the right axis joins the figure only while it has a line to read: a hidden bqplot axis
            # still lays out its ticks, at translate(x, undefined) (console errors)
            marks=self._marks([]), axes=[self.x_axis, self.y_axis], title=title, padding_y=0.0,
            fig_margin=_MARGIN, legend_location="top-right", animation_duration=0,
            layout=widgets.Layout(width="100%", height="380px"),
        )

    def _build_dots(self, sc: dict) -> None:
        # bqplot ignores a Scatter's size / rotation / skew without a scale for them, but its
        # Tooltip shows any data field: they carry loss, YES-0 and the lower edge in dB (float32
        # buffers), the point names carry the zone.
        self.loss_tooltip = bqplot.Tooltip(fields=["x", "size", "rotation", "skew", "name"],
                                           labels=["epoch", "loss (dB)", "YES-0 (dB)", "lower edge (dB)", "zone"],
                                           formats=["d", ".2f", ".2f", ".2f", ""])
        self.loss_dots = bqplot.Scatter(x=_EMPTY, y=_EMPTY, size=_EMPTY, rotation=_EMPTY, skew=_EMPTY, scales=sc,
                                        colors=[LOSS_COLOR], default_size=28, stroke=None,
                                        names=np.array([], dtype=str), names_unique=False, display_names=False,
                                        tooltip=self.loss_tooltip, hovered_style={"opacity": "1.0", "fill": "#000000"})
        self.diverged_dots = bqplot.Scatter(x=_EMPTY, y=_EMPTY, scales=sc, marker="cross", colors=[UPPER_COLOR],
                                            default_size=90, enable_hover=False)

    def _marks(self, past: list) -> list:
        return ([self.band_yellow, self.band_red, self.band_green, self.marks_lines] + past
                + [self.step_line, self.step_tail, self.loss_line, self.loss_dots, self.diverged_dots])

    def apply(self, scene: Scene, past_ids: list[int], highlight: str | None, title: str | None) -> None:
        """Draw ``scene``; ``past_ids`` names each of ``scene.past`` (stable across frames)."""
        past = self._sync_past(past_ids, scene)
        with self.held(*past):
            self.set_axes(scene.scale, scene.x_limits, scene.y_limits)
            self._bands(scene)
            self._loss(scene)
            self._step_scale(scene)
            set_line(self.step_line, scene.steps.x, scene.steps.y)
            set_line(self.step_tail, scene.steps_tail.x, scene.steps_tail.y)
            self._marks_lines(scene)
            self._past_lines(scene, past, highlight)
            if title is not None:
                set_traits(self.figure, title=title)

    def _step_scale(self, scene: Scene) -> None:
        """The minibatch line on the cloud's y scale, or on its own right axis when it is not the metric E."""
        own = scene.step_axis is not None
        target = self.step_ys if own else self.ys
        for mark in (self.step_line, self.step_tail):
            if mark.scales.get("y") is not target:
                mark.scales = {**mark.scales, "y": target}
        if own:
            bottom, top = scene.step_axis  # type: ignore[misc]
            set_traits(self.step_ys, min=float(bottom), max=float(top))
            set_traits(self.step_axis, label=scene.step_label)
        if (self.step_axis in self.figure.axes) != own:  # the right axis shows only while it has a line to read
            set_traits(self.step_axis, visible=own)
            others = [a for a in self.figure.axes if a is not self.step_axis]
            self.figure.axes = [*others, self.step_axis] if own else others
            # room on the right for its ticks and label
            self.figure.fig_margin = {**_MARGIN, "right": 75} if own else dict(_MARGIN)
        label = scene.step_label or "minibatch loss"
        set_traits(self.step_line, labels=[label])

    def show_steps(self, visible: bool) -> None:
        set_traits(self.step_line, visible=visible)
        set_traits(self.step_tail, visible=visible)

    def _bands(self, scene: Scene) -> None:
        # before the first lower edge the yellow and green edges are all NaN: they are sent empty
        set_line(self.band_red, scene.red.x, scene.red.y)
        set_line(self.band_yellow, scene.yellow.x, scene.yellow.y)
        set_line(self.band_green, scene.green.x, scene.green.y)

    def _loss(self, scene: Scene) -> None:
        h = scene.hover
        set_line(self.loss_line, scene.loss.x, scene.loss.y)
        set_traits(self.loss_dots, default_size=28 if scene.dots else 40)
        set_arrays(self.loss_dots, opacities=np.array([1.0 if scene.dots else 0.0]))
        set_arrays(self.loss_dots, x=f32(h.x), y=f32(h.y), size=f32(h.loss_db), rotation=f32(h.upper_db),
                   skew=f32(h.lower_db), names=np.array(h.zones, dtype=str))
        set_arrays(self.diverged_dots, x=f32(scene.diverged.x), y=f32(scene.diverged.y))
        label = f"current: {scene.label}" if scene.label else "current run"
        set_traits(self.loss_line, labels=[label])
        color = scene.line_color or LOSS_COLOR
        for mark in (self.loss_line, self.loss_dots):
            if list(mark.colors) != [color]:
                mark.colors = [color]
            set_traits(mark, visible=scene.line_visible)

    def _marks_lines(self, scene: Scene) -> None:
        bottom, top = scene.y_limits
        pos = np.array([m.position for m in scene.marks], dtype=np.float64)
        set_line(self.marks_lines, np.repeat(pos[:, None], 2, axis=1), np.tile([bottom, top], (pos.size, 1)))
        set_traits(self.marks_lines, labels=[m.label for m in scene.marks])

    def _sync_past(self, past_ids: list[int], scene: Scene) -> list[bqplot.Lines]:
        """Create marks for new past runs, close those of removed ones; the figure's mark list."""
        for key in set(self.past_marks) - set(past_ids):
            self.retired.append(self.past_marks.pop(key))
        marks = []
        for key, line in zip(past_ids, scene.past, strict=True):
            if key not in self.past_marks:
                # no bqplot legend: its box is clipped and sits over the plot (the runs table names the colours)
                self.past_marks[key] = _lines(self.sc, colors=[line.color], opacities=[0.45], stroke_width=1.5,
                                              labels=[line.label], display_legend=False, enable_hover=False)
            marks.append(self.past_marks[key])
        wanted = self._marks(marks)
        if list(self.figure.marks) != wanted:
            self.figure.marks = wanted
        return marks

    def _past_lines(self, scene: Scene, marks: list, highlight: str | None) -> None:
        for mark, line in zip(marks, scene.past, strict=True):
            set_line(mark, line.line.x, line.line.y)
            if highlight is None:
                width, opacity = 1.5, 0.45
            elif line.run_id == highlight:
                width, opacity = 3.5, 1.0
            else:
                width, opacity = 1.2, 0.25
            set_traits(mark, stroke_width=width, opacities=[opacity])


class OrdersFigure(YPlot):
    """YES-1 … YES-k per epoch (running minima), YES-0 and the epoch loss."""

    def __init__(self) -> None:
        super().__init__({"db": "bound (dB)", "linear": "bound", "log": "bound (log scale)"}, "epoch")
        sc = self.sc
        self.lines = _lines(sc, stroke_width=1.6, display_legend=True, colors=["#1f77b4"])
        self.upper = _lines(sc, colors=[UPPER_COLOR], labels=["YES-0"], display_legend=True)
        self.loss = _lines(sc, colors=[LOSS_COLOR], labels=["epoch loss"], display_legend=True, stroke_width=2.0)
        self.figure = bqplot.Figure(marks=[self.lines, self.upper, self.loss], axes=[self.x_axis, self.y_axis],
                                    title="YES-k per order (running minimum)", legend_location="top-right",
                                    fig_margin=_MARGIN, animation_duration=0,
                                    layout=widgets.Layout(width="100%", height="300px"))

    def apply(self, view: OrdersView, scale: str) -> None:
        with self.held():
            self.set_axes(scale, (0.0, view.x_max), view.y_limits)
            if list(self.lines.labels) != list(view.labels):
                self.lines.labels = list(view.labels)
                self.lines.colors = list(view.colors) or ["#1f77b4"]
            rows = view.rows if view.rows.shape[0] else np.empty(0)
            set_line(self.lines, view.x if rows.size else [], rows)
            set_line(self.upper, view.x, view.upper)
            set_line(self.loss, view.x, view.loss)


class DepthFigure(YPlot):
    """The per-layer YES-0 errors (layer 1 … L)."""

    def __init__(self) -> None:
        super().__init__({"db": "YES-0 error (dB)", "linear": "YES-0 error", "log": "YES-0 error (log scale)"},
                         "layer", x_min=0.5)
        self.x_axis.tick_format = "d"
        self.x_axis.grid_lines = "none"
        self.line = _lines(self.sc, colors=[UPPER_COLOR], marker="circle", marker_size=40, stroke_width=1.8)
        self.figure = bqplot.Figure(marks=[self.line], axes=[self.x_axis, self.y_axis],
                                    title="per-layer YES-0 (error of each layer's least-squares fit)",
                                    fig_margin=_MARGIN, animation_duration=0,
                                    layout=widgets.Layout(width="100%", height="260px"))

    def apply(self, view: DepthView, scale: str) -> None:
        with self.held():
            self.set_axes(scale, (0.5, float(max(view.layers.size, 1)) + 0.5), view.y_limits)
            if view.layers.size:
                set_arrays(self.x_axis, tick_values=view.layers)
            elif self.x_axis.tick_values is not None:
                self.x_axis.tick_values = None
            set_line(self.line, view.layers, view.values)
