"""The stage: the live chart again, compactly, for a training cell of a lesson.

A lesson's training cell sits below the Playground; while it runs the screen would show the cell's
code, not the chart. ``display(pg.stage())`` in that cell shows the same live widgets again (the
zone timeline with the verdict, the chart with its status line, the learning-rate slider and the
Pause / Stop / Step buttons), about 400 px high, and an :class:`~yeswidget.widgets.in_view.InView`
brings them into the visible part of the notebook, and back again while the run is live (until
the lecturer scrolls by hand). Every copy is the same widget. A click reaches
the kernel only when no cell is running: while a cell waits in ``pg.wait()`` its Pause / Stop clicks
arrive after it ends (run the training without ``pg.wait()`` for live buttons).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..in_view import InView
from ..picture import Picture

if TYPE_CHECKING:
    from .app import Playground

__all__ = ["Stage"]


class Stage(Picture, widgets.VBox):
    """The verdict, the timeline, the chart and the run's buttons of ``pg`` (a ``VBox`` to display).

    Its output also carries a picture of the chart (refreshed by ``pg.wait()``), as the Playground's does;
    a refreshed output stays where it is (only a new ``display`` scrolls).
    """

    def __init__(self, pg: Playground) -> None:
        self._pg = pg
        buttons = widgets.HBox([pg.pause_button, pg.stop_button, pg.step_button],
                               layout=widgets.Layout(flex="0 0 auto"))
        self._row = widgets.HBox([pg.lr_slider, buttons],
                                 layout=widgets.Layout(width="100%", align_items="center",
                                                       flex_flow="row wrap"))
        self._buttons = buttons
        self._in_view = InView(target=".yeswidget-stage")
        super().__init__([pg.theme, pg.timeline, pg.chart, self._row, self._in_view],
                         layout=widgets.Layout(width="100%"))
        for name in ("yeswidget-playground", "yeswidget-compact", "yeswidget-stage"):
            self.add_class(name)

    def follow(self, live: bool) -> None:
        """Keep the newest view on the screen while the run is ``live`` (written by the UI pump only)."""
        if self._in_view.follow != live:
            self._in_view.follow = live

    def _picture_chart(self) -> Any:
        return self._pg.chart

    def _ipython_display_(self) -> None:
        self._in_view.tries = InView.tries.default_value  # a new output: it brings itself into view
        super()._ipython_display_()

    def refresh_picture(self) -> None:
        # a refreshed output is rendered anew when a run ends: each earlier cell's stage would pull the
        # notebook back up to itself for 8 s, the last one rendered winning
        self._in_view.tries = 0
        super().refresh_picture()

    def parts(self) -> list[widgets.Widget]:
        """The widgets this stage made (closed with its Playground); the shared ones are the Playground's."""
        return [self._in_view, self._buttons, self._row, self]
