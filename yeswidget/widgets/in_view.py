"""A widget of no size that scrolls the widget around it into view when it is shown.

A training cell of a lesson shows the live chart again (:meth:`Playground.stage
<yeswidget.widgets.playground.Playground.stage>`); by then JupyterLab and Notebook 7 have
scrolled to the next cell, which can leave the chart off the screen. The front end
(``js/src/in_view.js``) scrolls the closest element matching ``target`` to the top of the visible
notebook, a few times in the first eight seconds of the view (while the figure lays itself out), and,
while ``follow`` is set, whenever it has left the screen (until the user scrolls by hand).
"""
from __future__ import annotations

import anywidget
import traitlets

from .tables import compose_esm

__all__ = ["InView"]


class InView(anywidget.AnyWidget):
    """Put inside a box: its views bring the closest ``target`` (a CSS selector) into view once shown."""

    _esm = compose_esm("in_view.js")

    target = traitlets.Unicode(".yeswidget-stage", help="CSS selector of the element to bring into view").tag(
        sync=True)
    tries = traitlets.Int(5, help="how many of the front end's timed tries to make (0: none)").tag(sync=True)
    follow = traitlets.Bool(False, help="while True, the newest view brings the target back whenever it leaves the "
                            "screen, until the user scrolls by hand (set while a run is live)").tag(sync=True)
