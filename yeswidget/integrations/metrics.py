"""What every tracker output logs: one metric dict per epoch and the verdict in words.

Metric names (values in the metric E of YES-BOUNDS.md, not dB, so they sit next to
the user's own loss curves; trackers draw them on a log axis):

* ``yes/loss`` the epoch loss on the certification set, ``yes/yes0`` YES-0,
  ``yes/lower`` the lower edge, ``yes/yes_k/<k>`` YES-1 … YES-(L-1) so far,
* ``yes/zone`` the zone as a number (``ZONE_CODES``: red 0, yellow 1, green 2, none -1),
* ``yes/margin_db`` dB from the loss to the next better zone's edge (positive: above it),
* ``yes/accuracy`` when the record carries one.

Non-finite values are left out (trackers reject or mis-draw them); ``yes/zone`` is always there.
"""
from __future__ import annotations

import math
from typing import Any

from ..core.run import EpochRecord, Run
from ..core.zones import ZONE_CODES, ZONE_WORDS

__all__ = ["epoch_metrics", "verdict_summary", "verdict_of"]


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def epoch_metrics(record: EpochRecord) -> dict[str, float]:
    """The metrics of one :class:`~yeswidget.core.run.EpochRecord` (names above)."""
    values: dict[str, Any] = {"yes/loss": record.loss, "yes/yes0": record.upper, "yes/lower": record.lower}
    for k, bound in enumerate(record.yes_k or (), start=1):
        values[f"yes/yes_k/{k}"] = bound
    values["yes/margin_db"] = record.margin
    accuracy = getattr(record, "accuracy", None)
    if accuracy is not None:
        values["yes/accuracy"] = accuracy
    metrics = {name: v for name, v in ((n, _finite(v)) for n, v in values.items()) if v is not None}
    metrics["yes/zone"] = float(ZONE_CODES.get(record.zone, ZONE_CODES["none"]))
    return metrics


def verdict_of(run: Run) -> str:
    """The run's verdict word: its last epoch's zone, or ``none`` before any epoch."""
    return run.final_zone or "none"


def verdict_summary(run: Run) -> str:
    """The verdict in a few lines of Markdown: zone and meaning, margins, certification set, notes."""
    from ..report.verdict import verdict_lines

    verdict = verdict_of(run)
    lines = [f"**YES verdict: {verdict}** ({ZONE_WORDS.get(verdict, '')})", ""]
    lines.extend(f"- {line}" for line in verdict_lines(run))
    return "\n".join(lines)
