"""The Playground's displays (chart, predictions, timeline, runs table, notes) and its two layouts."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..chart import CloudChart
from ..tables import RunsTable, ZoneTimeline
from .controls import control_rows
from .predictions import PredictionsPanel
from .theme import theme_html

if TYPE_CHECKING:
    from .app import Playground

__all__ = ["LAYOUTS", "build_displays", "arrange"]

LAYOUTS = ("default", "compact")


def build_displays(pg: Playground, layout: str, run_colors: tuple[str, ...]) -> None:
    """The chart, the predictions panel, the zone timeline, the runs table and the notes of ``pg``."""
    pg.chart = CloudChart(title="" if layout == "compact" else pg.task.name,
                          layout=widgets.Layout(flex="1 1 auto", min_width="0"))
    pg.predictions = PredictionsPanel(pg.task)
    pg._chart_row = widgets.HBox([pg.chart, pg.predictions.box], layout=widgets.Layout(width="100%"))
    pg.timeline = ZoneTimeline()
    pg.table = RunsTable()
    pg._select_handle = pg.table.on_select(pg._on_select)
    pg.message = widgets.HTML(layout=widgets.Layout(width="100%"))
    pg.edge_note = widgets.HTML(layout=widgets.Layout(width="100%"))  # is the lower edge stale?
    pg.info = widgets.HTML()
    pg.share = widgets.HTML(layout=widgets.Layout(width="100%"))  # the settings string, to copy
    pg._run_actions = widgets.HBox([pg.hide_button, pg.delete_button, pg.share])
    # hatch patterns and theme rules (an HTML widget that takes no room)
    pg.theme = widgets.HTML(theme_html(run_colors), layout=widgets.Layout(height="0px", margin="0px"))


def arrange(pg: Playground, layout: str) -> tuple[list[Any], list[Any]]:
    """``(children, boxes)``: what ``pg`` shows, and the boxes it made for that (closed with it)."""
    rows = control_rows(pg)
    if layout == "compact":
        children, boxes = _compact(pg, rows)
    else:
        controls = widgets.VBox(rows)
        boxes = [*rows, controls]
        children = [pg.theme, pg.info, controls, pg.message, pg.edge_note, pg._chart_row, pg.timeline,
                    pg.table, pg._run_actions]
    return children, [*boxes, pg._run_actions, pg._chart_row]


def _compact(pg: Playground, rows: list[Any]) -> tuple[list[Any], list[Any]]:
    """The projector layout: badge and timeline above the chart, the controls in a column beside it."""
    column = "330px"
    for slider in (pg.lr_slider, pg.batch_slider):
        slider.layout.width = "320px"
        slider.style.description_width = "6.5em"
    for box in (pg.epochs_box, pg.seed_box, pg.depth_box, pg.width_box):
        box.layout.width = "158px"
    pg.schedule_box.layout.width = pg.task_box.layout.width = "320px"
    pg.optimizer_box.style.button_width = "4.5em"
    for button in (pg.retry_button, pg.pause_button, pg.stop_button, pg.reset_button):
        button.layout.width = "104px"
    pg.step_button.layout.width = "208px"
    pg.depth_box.description = "depth"
    boxes = [widgets.HBox([pg.epochs_box, pg.seed_box]), widgets.HBox([pg.depth_box, pg.width_box]),
             widgets.HBox([pg.retry_button, pg.step_button]),
             widgets.HBox([pg.pause_button, pg.stop_button, pg.reset_button])]
    controls = widgets.VBox([pg.lr_slider, pg.batch_slider, boxes[0], pg.optimizer_box, pg.schedule_box,
                             pg.task_box, boxes[1], boxes[2], boxes[3]],
                            layout=widgets.Layout(width=column, min_width=column, flex="0 0 auto"))
    controls.add_class("yeswidget-controls")
    # 576 CSS px high, less JupyterLab's bars: timeline, status and a 250 px figure fit
    pg.chart.figure.layout.height = "250px"
    pg.chart.figure.fig_margin = dict(top=20, bottom=45, left=65, right=20)
    pg.chart.progress.layout.display = pg.chart.eta.layout.display = "none"  # the timeline shows it
    pg.chart.controls.layout.display = "none"  # scale / minibatch toggles: below the fold would hide them
    pg.chart.legend.layout.display = "none"
    pg.timeline.layout.width = "100%"
    pg._chart_row.children = (pg.chart,)
    main = widgets.HBox([controls, pg._chart_row], layout=widgets.Layout(width="100%", align_items="flex-start"))
    pg._chart_row.layout.flex, pg._chart_row.layout.min_width = "1 1 auto", "0"
    children = [pg.theme, pg.timeline, main, pg.message, pg.edge_note, pg.predictions.box, pg.table,
                pg._run_actions, pg.info]
    return children, [*rows, *boxes, controls, main]
