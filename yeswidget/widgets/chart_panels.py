"""The chart's status line (zone badge, numbers, progress, ETA), its controls and its legend.

``StatusPanel.apply`` and ``ChartControls.show`` run on the pump thread and write
only what changed.
"""
from __future__ import annotations

import functools
import html
import math

import ipywidgets as widgets

from ..core.formats import DB_DECIMALS, lr_text
from ..core.zones import NO_VERDICT, ZONE_COLORS, ZONE_STYLES, ZONES, to_db
from ..view.scene import Status
from .sync import set_traits

__all__ = ["StatusPanel", "ChartControls", "legend", "status_html"]

# state words in the theme's colours (the Playground's stylesheet keeps them ≥ 3:1 on dark themes too)
_STATE_COLORS = {"failed": "var(--yw-bad, #b00020)", "diverged": "var(--yw-bad, #b00020)",
                 "stopped": "var(--yw-warn, #8a6d00)", "finished": "var(--yw-good, #1e6b3a)",
                 "paused": "var(--yw-warn, #8a6d00)", "hidden": "var(--jp-ui-font-color2, #555)"}
_BAR_STYLES = {"finished": "success", "failed": "danger", "diverged": "danger", "stopped": "warning"}


def _db_text(value: float) -> str:
    d = to_db(value)
    if math.isnan(d):
        return "n/a"
    if math.isinf(d):
        return "+∞ dB" if d > 0 else "−∞ dB"
    return f"{d:.{DB_DECIMALS}f} dB".replace("-", "−")


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 10 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _badge(status: Status) -> str:
    zone = status.zone or ""
    return (f'<span class="yes-badge yes-{zone}" style="background:{ZONE_COLORS[zone]};'
            f'color:#111;padding:2px 8px;border-radius:4px;font-weight:600">'
            f"{html.escape(status.words)}</span>")


def _ending(status: Status) -> str:
    if not status.state or status.state == "running":
        return ""
    color = _STATE_COLORS.get(status.state, "#333")
    message = ": " + html.escape(status.message) if status.message else ""
    out = f'<div class="yes-state yes-state-{html.escape(status.state)}" style="color:{color};font-weight:600">' \
          f"{html.escape(status.state)}{message}</div>"
    if status.state == "failed" and status.traceback:
        out += ("<details><summary>traceback</summary>"
                f'<pre style="font-size:0.8em;white-space:pre-wrap">{html.escape(status.traceback)}</pre></details>')
    return out


def status_html(status: Status, note: str = "") -> str:
    """The status line: zone badge, loss and edges in dB, margin, epoch, how the run ended."""
    if status.state == "hidden":  # nothing of a hidden run is drawn, its reading neither
        return f'<div class="yes-status">{_ending(status)}{_notes_area("")}{note}</div>'
    parts = []
    if status.zone is not None:
        if status.zone in ZONE_COLORS:
            parts.append(_badge(status))
        parts.append(f"loss {_db_text(status.loss)} · YES-0 {_db_text(status.upper)} · "
                     f"lower edge {_db_text(status.lower)}")
        if status.zone != NO_VERDICT:
            parts.append(status.margin_words)
        parts.append(f"epoch {status.epoch}" + (f" / {status.epochs_total}" if status.epochs_total else ""))
        if status.lr is not None:
            parts.append(f"lr {lr_text(status.lr)}")
        if status.accuracy is not None:
            parts.append(f"accuracy {100 * status.accuracy:.1f}%")
        if math.isfinite(status.val_loss):
            parts.append(f"validation {_db_text(status.val_loss)}"
                         + (f" ({100 * status.val_accuracy:.1f}%)" if status.val_accuracy is not None else ""))
    else:
        parts.append('<span style="color:#666">waiting for the first epoch…</span>')
        if status.epochs_total:
            parts.append(f"epoch 0 / {status.epochs_total}")
    line = " · ".join(p for p in parts if p)
    notes = "".join(f'<div class="yes-note" style="color:var(--yw-warn, #8a5a00)" title="{html.escape(n)}">'
                    f"note: {html.escape(n)}</div>" for n in status.notes)
    if status.step_loss_name:
        name = html.escape(status.step_loss_name)
        notes += (f'<div class="yes-note" style="color:var(--jp-ui-font-color2, #555)">the faint line is the {name} '
                  "of each minibatch, on its own axis (right); it is not compared with the cloud</div>")
    return f'<div class="yes-status">{line}{_ending(status)}{_notes_area(notes)}{note}</div>'


#: the notes' area keeps this height whether or not a note shows (a note coming or going moves nothing)
NOTES_HEIGHT = "2.6em"


def _notes_area(notes: str) -> str:
    """Two lines for the notes, always there (longer notes scroll inside it; the full text is the tooltip)."""
    return (f'<div class="yes-notes" style="height:{NOTES_HEIGHT};overflow-y:auto;font-size:0.9em;'
            f'line-height:1.3em">{notes}</div>')


class StatusPanel:
    """``status`` (HTML), ``progress`` (FloatProgress) and ``eta`` (HTML) in ``progress_box``."""

    def __init__(self) -> None:
        self.status = widgets.HTML(value="")
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info",
                                              layout=widgets.Layout(width="50%"))
        self.eta = widgets.HTML(value="")
        self.progress_box = widgets.HBox([self.progress, self.eta], layout=widgets.Layout(display="none"))

    def apply(self, status: Status, note: str = "") -> None:
        set_traits(self.status, value=status_html(status, note))
        fraction = status.fraction
        if fraction is None:
            set_traits(self.progress_box.layout, display="none")
            return
        with self.progress.hold_sync():
            set_traits(self.progress, value=fraction, bar_style=_BAR_STYLES.get(status.state, "info"))
        text = f"{100 * fraction:.0f}%"
        if status.state == "running" and status.eta_seconds is not None and fraction < 1.0:
            text += f" · ETA {duration(status.eta_seconds)}"
        set_traits(self.eta, value=text)
        if self.progress_box.layout.display is not None:
            self.progress_box.layout.display = None


class ChartControls:
    """Scale buttons and view checkboxes. The user's clicks set the chart's traits
    (``on_change(name, value)``); the pump shows the chart's values back with :meth:`show`."""

    def __init__(self, on_change) -> None:
        self.scale = widgets.ToggleButtons(
            options=[("dB", "db"), ("linear", "linear"), ("log", "log")], value="db",
            style={"button_width": "60px"}, tooltips=["10·log10(loss)", "loss", "loss on a log axis"])
        box = dict(indent=False, layout=widgets.Layout(width="auto"))
        self.steps = widgets.Checkbox(value=True, description="minibatch loss", **box)
        self.orders = widgets.Checkbox(value=False, description="YES-k per order", **box)
        self.depth = widgets.Checkbox(value=False, description="per-layer YES-0", **box)
        self.box = widgets.HBox([self.scale, self.steps, self.orders, self.depth],
                                layout=widgets.Layout(align_items="center", flex_flow="row wrap"))
        self._names = {"scale": self.scale, "show_steps": self.steps, "show_orders": self.orders,
                       "show_depth": self.depth}
        self._handlers = []
        for name, control in self._names.items():
            handler = functools.partial(_forward, on_change, name)
            control.observe(handler, names="value")
            self._handlers.append((control, handler))

    def show(self, **values) -> None:
        for name, value in values.items():
            set_traits(self._names[name], value=value)

    def detach(self) -> None:
        for control, handler in self._handlers:
            control.unobserve(handler, names="value")
        self._handlers = []


def _forward(on_change, name: str, change: dict) -> None:
    on_change(name, change["new"])


_LEGEND_ITEMS = {
    "red": ("the loss is above <b>YES-0</b> (the red line), the loss of a network built greedily by least "
            "squares from the data alone. Training is <b>ineffective</b> so far: the data has not shaped "
            "the weights yet."),
    "yellow": ("inside the cloud, between YES-0 and the lower edge (dashed). Training is <b>meaningful but "
               "certainly not optimal</b>. A loss that plateaus here is far from optimal: try another "
               "learning rate or batch size."),
    "green": ("at or below the lower edge (computed at that epoch), the best bound built from the network's "
              "own hidden layers so far. <b>Effective</b> training, possibly near-optimal; maybe diminishing "
              "returns."),
    "none": ("no verdict: the bounds are degenerate for this run (the reason is given in the status line), "
             "e.g. the data is reached exactly in closed form, or a hidden layer is as wide as the samples."),
}


def legend() -> widgets.Accordion:
    """'What do the colours mean?': the zones in their colours (from core/zones), in words."""
    items = "".join(f'<li><span style="background:{ZONE_STYLES[z].band}; padding: 0 0.5em">{z}</span>: '
                    f"{_LEGEND_ITEMS[z]}</li>" for z in (*ZONES, NO_VERDICT))
    body = ('<div style="font-size: 0.9em; line-height: 1.45"><p>The cloud comes from the training data: '
            "YES-0 from the data alone, the lower edge from the data and the network's own hidden layers "
            "(the YES bounds of Yeganegi, Eamaz and Soltanalian, 2024). The loss is compared with it after "
            "every epoch, on the same samples and in the same unit (squared error summed over outputs, "
            "averaged over samples).</p>"
            f'<ul style="margin: 0 0 0 1.2em; padding: 0">{items}</ul>'
            "<p>The faint line is the minibatch loss (as logged; not compared with the cloud). "
            "Axis: dB = 10·log10(loss).</p></div>")
    accordion = widgets.Accordion(children=[widgets.HTML(body)], titles=("What do the colours mean?",))
    accordion.selected_index = None
    return accordion
