"""What the Playground draws, on the UI pump thread only: its controls (:mod:`.controls`), buttons,
runs table, zone timeline and notes. The chart draws itself from the runs' events."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from ...core.formats import db_text
from ...core.run import Run, change_text
from ...view.rows import run_row
from .controls import apply_controls

if TYPE_CHECKING:
    from .app import Playground

__all__ = ["chosen", "apply", "apply_buttons", "info_html", "row", "number", "edge_note", "failure_html"]


def apply(pg: Playground) -> None:
    """On the UI pump thread: controls, buttons, runs table, zone timeline, messages."""
    if pg._closed:
        return
    values, pg._pending_controls = pg._pending_controls, {}
    apply_controls(pg, values)
    apply_buttons(pg)
    paused = pg._trainer.run if pg.paused and pg._trainer is not None else None
    pg.chart.set_paused(paused is not None and pg.chart.run is paused)
    pg.table.set_runs([row(run, run.run_id in pg.hidden, paused=run is paused) for run in pg.runs])
    pg.predictions.apply(up_to=pg.chart.shown_epoch)  # one epoch counter: the chart's
    current = pg.runs[-1] if pg.runs else None
    drawn_run = pg.chart.run if any(r is pg.chart.run for r in pg.runs) else None
    shown = (drawn_run.run_id, pg.chart.shown_epoch) if drawn_run is not None else None
    if shown != pg._shown_epochs:  # the timeline follows the chart's run, resent when an epoch was drawn
        pg._shown_epochs = shown
        pg.timeline.set_run(_Upto(drawn_run, pg.chart.shown_epoch) if drawn_run is not None else _Upto(None, 0))
    share = f"<small>settings: <code>{html.escape(pg.settings_string())}</code></small>"
    if pg.share.value != share:
        pg.share.value = share
    info = info_html(pg)
    if pg.info.value != info:
        pg.info.value = info
    note = edge_note(current) if current is not None else ""
    if pg.edge_note.value != note:
        pg.edge_note.value = note
    message = pg._message_html
    if message is None and current is not None and current.warnings and current.status != "failed":
        # e.g. "hidden width 3 is narrower than the output width 8: YES-0 is a reference …"
        notes = "".join(f"<li>{html.escape(w)}</li>" for w in dict.fromkeys(current.warnings))
        message = f"<div style='color:#8a5a00'><b>note</b><ul>{notes}</ul></div>"
    if message is not None and pg.message.value != message:
        pg.message.value = message


def apply_buttons(pg: Playground) -> None:
    """The buttons' words and states (a run whose status has ended counts as done while its thread winds down)."""
    running = pg.running and pg._trainer is not None and pg._trainer.run.status == "running"
    paused = pg.paused
    for widget, name, value in (
        (pg.retry_button, "description", "Retry" if pg.runs else "Train"),
        (pg.pause_button, "disabled", not running), (pg.stop_button, "disabled", not running),
        (pg.pause_button, "description", "Resume" if paused else "Pause"),
        (pg.pause_button, "icon", "play" if paused else "pause"),
    ):
        if getattr(widget, name) != value:
            setattr(widget, name, value)
    if pg._stage is not None:  # a paused run is live too: the lecturer is talking about its chart
        pg._stage.follow(running)
    picked = chosen(pg)
    hide_text = f"{'Show' if picked.run_id in pg.hidden else 'Hide'} {picked.run_id}" if picked else "Hide run"
    for widget, name, value in (
        (pg.retry_button, "disabled", pg.starting),
        (pg.hide_button, "description", hide_text), (pg.hide_button, "disabled", picked is None),
        (pg.delete_button, "description", f"Delete {picked.run_id}" if picked else "Delete run"),
        (pg.delete_button, "disabled", picked is None),
    ):
        if getattr(widget, name) != value:
            setattr(widget, name, value)


def info_html(pg: Playground) -> str:
    """The task, its certification set and the current family's YES-0."""
    family = pg.family
    return (f"<b>{html.escape(pg.task.name)}</b>: {html.escape(pg.task.description)}<br><small>"
            f"{family.certification_text()}; losses in the metric E "
            f"(squared error summed over outputs, mean over samples), in dB. "
            f"Family {family.description}: YES-0 = {db_text(family.cloud.upper)} "
            f"for this data and architecture.</small>")


def number(run: Run) -> int:
    """The table's ``#``: the run's number, as in its name (``run 3`` → 3; kept after a delete)."""
    try:
        return int(str(run.run_id).rsplit(" ", 1)[-1])
    except ValueError:
        return -1


class _Upto:
    """A run's epochs up to ``epoch`` (what the chart has drawn), for the timeline."""

    def __init__(self, run: Run | None, epoch: int) -> None:
        self.epochs = [r for r in list(run.epochs) if r.epoch <= epoch] if run is not None else []


def row(run: Run, hidden: bool = False, paused: bool = False) -> dict[str, Any]:
    """The runs table's row of ``run`` (:func:`~yeswidget.view.rows.run_row`): numbered as its
    name, labelled with its family and live changes; ``lr`` the current one (after live changes),
    ``status`` "paused" while it waits."""
    out = run_row(run, number(run), label=_row_label(run) + (" (hidden)" if hidden else ""))
    lr_marks = [m for m in run.marks if m.get("kind") == "lr"]
    if lr_marks:
        out["lr"] = lr_marks[-1].get("value")
    if paused and out["status"] == "running":
        out["status"] = "paused"
    return out


def _row_label(run: Run) -> str:
    """The run's name and its live changes, e.g. ``run 2 · lr 1e-03→7e-03 @ 1``."""
    changes = [change_text(m) for m in run.marks if m.get("kind") in ("lr", "batch_size")]
    family = run.config.get("family")
    tag = [f"{family} ({run.config.get('depth')}×{run.config.get('width')})"] if family not in (None, "A") else []
    return " · ".join([run.run_id, *tag, *changes])


def edge_note(run: Run) -> str:
    """Says when the lower edge on screen was computed at an earlier epoch than the loss (``every`` > 1)."""
    if not run.epochs or run.epochs[-1].bounds_updated:
        return ""
    latest = run.epochs[-1].epoch
    computed = next((r.epoch for r in reversed(run.epochs) if r.bounds_updated), None)
    since = f"computed at epoch {computed}" if computed is not None else "not computed yet"
    return (f"<small>lower edge {since}, loss at epoch {latest}: the edge is stale until it is "
            f"recomputed (every few epochs, see <code>every</code>)</small>")


def failure_html(message: str, traceback: str) -> str:
    details = (f"<details><summary>last frames</summary><pre>{html.escape(traceback)}</pre></details>"
               if traceback else "")
    return (f"<div style='color:#a00'><b>training failed</b>: {html.escape(message)} "
            f"(the run is kept in the table){details}</div>")


def chosen(pg: Playground) -> Run | None:
    """The run chosen in the runs table, if any."""
    chosen = pg.table.selected
    return next((r for r in pg.runs if number(r) == chosen), None)
