"""The live sweep view: a grid of any two axes of a sweep (lr × batch size by default), each cell
coloured by its runs' final zone (or how early they turned green), filling in as runs finish;
clicking a cell shows that run over its cloud (:meth:`CloudChart.from_runs`).

Rows arrive on the sweep's thread (:meth:`Sweep.subscribe`), clicks on the kernel's: both only
mark the view dirty; the UI pump is the one thread that writes its widgets.
"""
from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from ..view.sweep_grid import SweepGrid, axis_value_text, sweep_grid
from .chart import CloudChart
from .pump import default_pump

__all__ = ["SweepView"]


class SweepView(widgets.VBox):
    """``SweepView(sweep, x="lr", y="batch_size", color_by="zone")``: display it in a notebook.

    ``cells[j][i]`` are the buttons at ``grid.ys[j]`` × ``grid.xs[i]`` (tooltip: the run's outcome);
    ``detail`` holds the clicked run's chart (``chart``), ``status`` a line about the sweep.
    :meth:`flush` waits until what arrived so far is drawn; :meth:`save` writes the static picture.
    """

    def __init__(self, sweep: Any, *, x: str = "lr", y: str = "batch_size", color_by: str = "zone") -> None:
        if not hasattr(sweep, "subscribe") or not hasattr(sweep, "configs"):
            raise TypeError("SweepView needs a yeswidget Sweep (from yeswidget.sweep(...)); "
                            f"got {type(sweep).__name__}")
        self.sweep = sweep
        self.x, self.y, self.color_by = x, y, color_by
        self.grid: SweepGrid = self._grid()  # checks the axes: a bad name is an error now
        self.selected: int | None = None  # the configuration index whose run is shown
        self.chart: CloudChart | None = None
        self._lock = threading.Lock()
        self._shown: int | None = None
        self.status = widgets.HTML()
        self.detail = widgets.Box(layout=widgets.Layout(min_height="0px"))
        self.cells = [[self._button(j, i) for i in range(len(self.grid.xs))] for j in range(len(self.grid.ys))]
        board = widgets.GridBox(self._board(), layout=widgets.Layout(
            grid_template_columns=f"6em repeat({len(self.grid.xs)}, 8em)", grid_gap="2px"))
        super().__init__([self.status, board, self.detail])
        self._ui = default_pump().register(self._apply, name="sweep-view")
        sweep.subscribe(lambda row: self._ui.mark())
        self._ui.mark()

    def _grid(self) -> SweepGrid:
        configs = [c.as_dict() if hasattr(c, "as_dict") else dict(c) for c in self.sweep.configs]
        return sweep_grid(configs, self.sweep.results, x=self.x, y=self.y, color_by=self.color_by)

    def _button(self, j: int, i: int) -> widgets.Button:
        button = widgets.Button(description="…", layout=widgets.Layout(width="8em", height="2.6em"))
        button.on_click(lambda _: self.show(self.grid.cells[j][i]))
        return button

    def _board(self) -> list[widgets.Widget]:
        corner = widgets.HTML(f"<b>{self.y.replace('_', ' ')} \\\\ {self.x.replace('_', ' ')}</b>")
        header = [corner] + [widgets.HTML(f"<b>{axis_value_text(self.x, v)}</b>") for v in self.grid.xs]
        lines: list[widgets.Widget] = list(header)
        for j, value in enumerate(self.grid.ys):
            lines.append(widgets.HTML(f"<b>{axis_value_text(self.y, value)}</b>"))
            lines.extend(self.cells[j])
        return lines

    # ------------------------------------------------------------------ events (any thread)
    def show(self, cell_or_index: Any) -> None:
        """Show a cell's run (or configuration ``index``'s) over its cloud below the grid.

        Drawn on the view's UI thread; ``flush()`` draws it now.
        """
        index = cell_or_index if isinstance(cell_or_index, int) else (
            cell_or_index.row["index"] if cell_or_index.row is not None else None)
        if index is None:
            return  # a cell not finished yet: nothing to show
        with self._lock:
            self.selected = int(index)
        self._ui.mark()

    # ------------------------------------------------------------------ the pump thread
    def _apply(self) -> None:
        self.grid = grid = self._grid()
        for j, line in enumerate(grid.cells):
            for i, cell in enumerate(line):
                button = self.cells[j][i]
                button.description, button.tooltip = cell.text, cell.title
                button.style.button_color = cell.color
        total = sum(len(line) for line in grid.cells)
        self.status.value = (f"{len(self.sweep.results)} of {len(self.sweep.configs)} runs finished "
                             f"({grid.filled} of {total} cells); colour: "
                             f"{'final zone' if self.color_by == 'zone' else 'final zone, green shaded by first green'}"
                             "; click a cell to see its run over its cloud")
        with self._lock:
            selected = self.selected
        if selected is not None and selected != self._shown:
            chart = CloudChart.from_runs(self.sweep.run(selected))
            old, self.chart, self._shown = self.chart, chart, selected
            self.detail.children = (chart,)
            if old is not None:
                old.close()

    def flush(self, timeout: float = 30.0) -> bool:
        """Draw what has arrived so far, now (on the pump thread); False if that failed."""
        return self._ui.flush(timeout)

    def save(self, path: Any, *, title: str | None = None) -> Any:
        """The static picture of the grid (see :func:`yeswidget.view.sweep_grid.save_sweep`)."""
        from ..view.sweep_grid import save_sweep

        return save_sweep(self._grid(), path, title=title)

    def close(self) -> None:
        """Stop drawing (safe twice; also for a view whose constructor failed)."""
        ui, chart = getattr(self, "_ui", None), getattr(self, "chart", None)
        if ui is not None:
            ui.close()
        if chart is not None:
            chart.close()
        super().close()
