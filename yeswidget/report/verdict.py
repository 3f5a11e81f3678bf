"""The written verdict of a run: the lines the CLI prints and the self-contained HTML report.

Colours and words come from :mod:`yeswidget.core.zones`, numbers in dB from :mod:`yeswidget.core.formats`.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from ..core.formats import db_number, db_text, margin_text
from ..core.run import Run
from ..core.zones import ZONE_STYLES, ZONE_WORDS

__all__ = ["verdict_lines", "write_report_html"]


def verdict_lines(run: Run) -> list[str]:
    """Human-readable verdict of a run: final zone, epochs until green, margins (dB)."""
    final = run.final
    if final is None:
        return [f"run {run.run_id or ''}: no epochs recorded (status {run.status}); no verdict".replace("  ", " ")]
    green = run.epochs_to_green
    lines = [
        f"final zone: {final.zone} ({final.reason or ZONE_WORDS.get(final.zone, 'unknown zone')})",
        f"epochs: {final.epoch} · status: {run.status}" + (f" ({run.message})" if run.message else ""),
        f"epochs until green: {green if green is not None else 'never'}",
        f"final loss {db_text(final.loss)} · YES-0 {db_text(final.upper)} · lower edge {db_text(final.lower)}",
    ]
    if final.zone != "none":
        lines.append(f"margin to YES-0: {margin_text(final.loss, final.upper)} · "
                     f"margin to the lower edge: {margin_text(final.loss, final.lower)}")
    if run.certification.get("text"):
        lines.append(run.certification["text"])
    lines.extend(f"note: {w}" for w in dict.fromkeys(run.warnings))
    return lines


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _db_cell(value: Any) -> str:
    """A table cell's loss in dB; a value that is not a number is shown escaped, as it is."""
    try:
        return db_number(float(value))
    except (TypeError, ValueError):
        return html.escape(repr(value))


def write_report_html(run: Run, png_path: Path, out_path: Path) -> None:
    """A self-contained report: the cloud picture inline (base64), settings and verdict tables."""
    image = base64.b64encode(png_path.read_bytes()).decode("ascii")
    settings = [(str(k), str(v)) for k, v in sorted(run.config.items())]
    verdict = [(line.split(":", 1)[0], line.split(":", 1)[1].strip()) if ":" in line else ("", line)
               for line in verdict_lines(run)]
    epochs = run.epochs
    shown = epochs if len(epochs) <= 40 else [epochs[i * (len(epochs) - 1) // 39] for i in range(40)]
    # every value that reaches the page is escaped (a loaded run may hold anything); the row's class
    # is one of the known zones only
    epoch_rows = "".join(
        f"<tr class='{r.zone if r.zone in ZONE_STYLES else 'none'}'><td>{html.escape(str(r.epoch))}</td>"
        f"<td>{_db_cell(r.loss)}</td><td>{_db_cell(r.upper)}</td>"
        f"<td>{_db_cell(r.lower)}</td><td>{html.escape(str(r.zone))}</td></tr>" for r in shown
    )
    # the zones' colours and words: the one definition (yeswidget.core.zones)
    zone_rows = " ".join(f"tr.{name} td {{ background: {style.band}66; }}" for name, style in ZONE_STYLES.items())
    zone_words = "".join(f"<li><b>{name}</b>: {html.escape(style.meaning)}</li>" for name, style in ZONE_STYLES.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>yeswidget report: {html.escape(run.label)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ padding: .2em .8em; border-bottom: 1px solid #ddd; text-align: left; }}
{zone_rows}
img {{ max-width: 100%; }}
</style></head><body>
<h1>YES training report</h1>
<ul>{zone_words}</ul>
<p>Losses are the metric E (squared error summed over outputs, mean over samples) in dB.</p>
<img alt="the YES cloud and the training loss" src="data:image/png;base64,{image}">
<h2>Verdict</h2>{_table(verdict)}
<h2>Settings</h2>{_table(settings)}
<h2>Epochs</h2><table><tr><th>epoch</th><th>loss dB</th><th>YES-0 dB</th><th>lower dB</th><th>zone</th></tr>
{epoch_rows}</table>
</body></html>
"""
    out_path.write_text(page, encoding="utf-8")
