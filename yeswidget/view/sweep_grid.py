"""A sweep as a grid of cells: any two axes of its configurations (lr × batch size by default),
each cell coloured by its runs' final zone (the one set of zone colours, ``core/zones``) and
labelled with the first green epoch. Pure data (numpy-free, no UI): the live sweep view
(``widgets/sweep_view``) and the static picture (:func:`save_sweep`, ``yeswidget show``) draw it.

A cell holds every run with its two values (other axes, seeds); it shows the best of them (green
first, then the earliest first green, then the lowest final loss) and how many there are.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.formats import lr_text
from ..core.zones import ZONE_COLORS

__all__ = ["SweepCell", "SweepGrid", "sweep_grid", "GRID_AXES", "COLOR_BY", "PENDING_COLOR", "FAILED_COLOR",
           "save_sweep", "draw_sweep", "axis_value_text"]

#: the axes a grid can use (those of a sweep's configuration)
GRID_AXES = ("lr", "batch_size", "schedule", "optimizer", "seed", "epochs")
#: "zone": the final zone's colour; "first_green": green cells shaded by how early they turned green
COLOR_BY = ("zone", "first_green")
PENDING_COLOR = "#e6e6e6"  # not run yet
FAILED_COLOR = "#9e9e9e"  # failed, or no verdict
_WHITE = (255, 255, 255)


@dataclass
class SweepCell:
    """One cell: its ``x`` and ``y`` values, the configuration ``indices`` in it, the ``row`` shown
    (None: none finished yet), ``color`` (CSS hex), ``text`` (first green epoch, "pruned", …) and
    ``title`` (a tooltip: the settings and the outcome)."""

    x: Any
    y: Any
    indices: list[int] = field(default_factory=list)
    row: dict[str, Any] | None = None
    color: str = PENDING_COLOR
    text: str = "…"
    title: str = ""

    @property
    def done(self) -> bool:
        return self.row is not None


@dataclass
class SweepGrid:
    """``xs`` (columns) and ``ys`` (rows) in sorted order; ``cells[j][i]`` is at ``ys[j]``, ``xs[i]``."""

    x: str
    y: str
    color_by: str
    xs: list[Any]
    ys: list[Any]
    cells: list[list[SweepCell]]

    @property
    def filled(self) -> int:
        return sum(cell.done for line in self.cells for cell in line)

    def cell_of(self, index: int) -> SweepCell:
        """The cell holding configuration ``index``."""
        for line in self.cells:
            for cell in line:
                if index in cell.indices:
                    return cell
        raise KeyError(f"no configuration {index} in this sweep")


def axis_value_text(axis: str, value: Any) -> str:
    """An axis value as a label (a learning rate to one significant digit)."""
    return lr_text(float(value)) if axis == "lr" else str(value)


def _rank(row: Mapping[str, Any]) -> tuple[int, float, float]:
    green = row.get("first_green")
    loss = row.get("final_loss")
    loss_key = float(loss) if isinstance(loss, (int, float)) and math.isfinite(loss) else math.inf
    return (0 if row.get("final_zone") == "green" else 1, math.inf if green is None else float(green), loss_key)


def _mix(hex_color: str, amount: float) -> str:
    """``hex_color`` mixed with white: amount 1 is the colour, 0 is white."""
    rgb = [int(hex_color.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)]
    mixed = (round(c * amount + w * (1 - amount)) for c, w in zip(rgb, _WHITE))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _paint(cell: SweepCell, rows: list[dict[str, Any]], color_by: str, epochs: int) -> None:
    best = min(rows, key=_rank)
    cell.row = best
    zone, green = best.get("final_zone"), best.get("first_green")
    if best.get("status") == "failed" or zone not in ZONE_COLORS:
        cell.color, cell.text = FAILED_COLOR, "failed" if best.get("status") == "failed" else "no verdict"
    else:
        cell.color = ZONE_COLORS[zone]
        if color_by == "first_green" and green is not None and zone == "green":
            cell.color = _mix(ZONE_COLORS["green"], 1.0 - 0.7 * (float(green) - 1) / max(1, epochs - 1))
        cell.text = (f"green at {green}" if green is not None else
                     f"pruned at {best.get('epochs_run')}" if best.get("pruned") else zone)
    more = f" (best of {len(rows)})" if len(rows) > 1 else ""
    reason = f"; {best['prune_reason']}" if best.get("prune_reason") else ""
    cell.title = (f"run {best.get('index')}{more}: final zone {zone or 'none'}, first green "
                  f"{green if green is not None else 'never'}, {best.get('epochs_run')} epochs{reason}")


def sweep_grid(configs: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], *, x: str = "lr",
               y: str = "batch_size", color_by: str = "zone") -> SweepGrid:
    """The grid of ``configs`` (a sweep's configurations, as dicts, in index order) over axes ``x`` and
    ``y``, painted with the finished ``rows`` (a sweep's ``results``)."""
    for name, axis in (("x", x), ("y", y)):
        if axis not in GRID_AXES:
            raise ValueError(f"{name} must be one of {GRID_AXES}; got {axis!r}")
    if x == y:
        raise ValueError(f"x and y must be two different axes; both are {x!r}")
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {COLOR_BY}; got {color_by!r}")
    xs = sorted({c[x] for c in configs}, key=lambda v: (str(type(v)), v))
    ys = sorted({c[y] for c in configs}, key=lambda v: (str(type(v)), v))
    cells = [[SweepCell(xv, yv) for xv in xs] for yv in ys]
    for index, config in enumerate(configs):
        cells[ys.index(config[y])][xs.index(config[x])].indices.append(index)
    by_index = {int(r["index"]): dict(r) for r in rows}
    epochs = max((int(c.get("epochs", 1)) for c in configs), default=1)
    for line in cells:
        for cell in line:
            done = [by_index[i] for i in cell.indices if i in by_index]
            if done:
                _paint(cell, done, color_by, epochs)
            else:
                cell.title = f"{x} {axis_value_text(x, cell.x)}, {y} {axis_value_text(y, cell.y)}: not finished yet"
    return SweepGrid(x, y, color_by, xs, ys, cells)


def draw_sweep(grid: SweepGrid, ax: Any, *, title: str | None = None) -> None:
    """The grid on matplotlib axes: coloured cells, each labelled."""
    from matplotlib.patches import Patch, Rectangle

    for j, line in enumerate(grid.cells):
        for i, cell in enumerate(line):
            ax.add_patch(Rectangle((i, j), 1, 1, facecolor=cell.color, edgecolor="white", lw=2))
            ax.text(i + 0.5, j + 0.5, cell.text, ha="center", va="center", fontsize=9)
    ax.set_xlim(0, len(grid.xs))
    ax.set_ylim(0, len(grid.ys))
    ax.set_xticks([i + 0.5 for i in range(len(grid.xs))], [axis_value_text(grid.x, v) for v in grid.xs])
    ax.set_yticks([j + 0.5 for j in range(len(grid.ys))], [axis_value_text(grid.y, v) for v in grid.ys])
    ax.set_xlabel(grid.x.replace("_", " "))
    ax.set_ylabel(grid.y.replace("_", " "))
    ax.set_title(title or f"sweep: {grid.filled} of {sum(len(line) for line in grid.cells)} cells finished")
    ax.legend(handles=[Patch(color=ZONE_COLORS[z], label=z) for z in ("red", "yellow", "green")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="final zone")


def save_sweep(grid: SweepGrid, path: str | os.PathLike[str], *, title: str | None = None,
               dpi: int = 100) -> Any:
    """Write the grid as a picture (.png, .svg or .pdf, by extension); the matplotlib Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in ("png", "svg", "pdf"):
        raise ValueError(f"save_sweep writes .png, .svg or .pdf, not {path!r}")
    fig = Figure(figsize=(1.6 * len(grid.xs) + 2.6, 1.0 * len(grid.ys) + 1.6), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)  # no pyplot: a script, a kernel or a worker thread alike
    draw_sweep(grid, fig.add_subplot(1, 1, 1), title=title)
    fig.savefig(path, format=ext, dpi=dpi)
    return fig
