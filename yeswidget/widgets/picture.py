"""The static fallback of a widget output: every Playground, LiveCloud and CloudChart output also
carries a PNG of its chart (drawn by matplotlib from the same scene) in the same output bundle.

A notebook opened without a kernel, or in a viewer without widget support (GitHub, nbviewer,
``jupyter nbconvert``), shows the picture; a live kernel shows the widget. The picture is refreshed
(``update_display`` on the output's display id) when a run ends: by ``wait()`` on the kernel's main
thread, or by calling :meth:`Picture.refresh_picture`.
"""
from __future__ import annotations

import base64
import logging
import os
import tempfile
import uuid
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["Picture", "PNG"]

PNG = "image/png"
_WIDGET = "application/vnd.jupyter.widget-view+json"


class Picture:
    """Mixin for an ipywidgets widget that has a chart: ``_picture_chart()`` returns its CloudChart."""

    def _picture_chart(self) -> Any:
        return self

    def picture_png(self) -> bytes:
        """The chart's current state as PNG bytes (the current run, its past runs, the cloud)."""
        with tempfile.TemporaryDirectory(prefix="yeswidget-picture-") as folder:
            path = os.path.join(folder, "chart.png")
            self._picture_chart().to_png(path, dpi=80)  # the chart's own export (no import back)
            with open(path, "rb") as handle:
                return handle.read()

    def _bundle(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})  # type: ignore[misc]
        try:
            bundle[PNG] = picture = base64.b64encode(self.picture_png()).decode("ascii")
            # nbconvert and static viewers rank text/html above image/png: the same picture, so a saved
            # lesson shows the chart (a widget view, when a kernel runs, ranks above both)
            bundle["text/html"] = (f'<img src="data:image/png;base64,{picture}" '
                                   'alt="yeswidget chart (static picture of its state when saved)"/>')
        except Exception:  # the picture is a fallback: the widget still shows without it
            log.warning("yeswidget: the static picture of this output could not be drawn", exc_info=True)
        return bundle

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self._bundle(**kwargs)

    def _ipython_display_(self) -> None:
        """Display with a display id, so that the picture can be refreshed in place."""
        from IPython.display import display
        display_id = uuid.uuid4().hex
        self.__dict__.setdefault("_picture_ids", []).append(display_id)
        display(self._bundle(), raw=True, display_id=display_id)

    def refresh_picture(self) -> None:
        """Redraw the picture in every output that shows this widget (call on the kernel's main thread)."""
        ids = self.__dict__.get("_picture_ids") or []
        if not ids:
            return
        from IPython.display import update_display
        bundle = self._bundle()
        picture = {kind: data for kind, data in bundle.items() if kind != _WIDGET}
        for display_id in ids:
            # JupyterLab and Notebook 7 render an update of the same kind into the output's old renderer,
            # which leaves the old widget view alive but out of the page: it goes on drawing every frame,
            # and a figure added to it later lays out at zero size (negative <rect> sizes in the console).
            # The picture alone first makes them dispose the old output; the widget comes back in a new one.
            if picture != bundle:
                update_display(picture, raw=True, display_id=display_id)
            update_display(bundle, raw=True, display_id=display_id)
