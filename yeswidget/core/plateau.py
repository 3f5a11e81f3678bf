"""The plateau note: the loss has sat in yellow for ``k`` epochs while improving by
less than ``x`` dB and is no longer descending steadily — the paper's "try another
learning rate or batch size" moment.

"Stalled" is judged against the run's own recent progress: a loss that falls a little
every epoch, as fast at the end of the window as before (the paper's good run on its way
to green), is not a plateau even when the window's total is under ``x`` dB. Only a loss
whose trend over the window is lost in its own epoch-to-epoch scatter, or whose recent
rate has dropped to a fraction of the window's rate, is stalled.

Pure functions over :class:`~yeswidget.core.run.EpochRecord` lists; the monitor records
the note in ``Run.warnings`` and every tracker output uses the same rule.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .zones import to_db

#: how a plateau note begins (displays hide it once the loss has left the plateau's zone)
PLATEAU_NOTE = "plateau:"

__all__ = ["PLATEAU_EPOCHS", "PLATEAU_DB", "Plateau", "find_plateau", "plateau_starts", "plateau_note",
           "descending_steadily"]

#: epochs the loss must stay in yellow
PLATEAU_EPOCHS = 10
#: improvement (dB) over those epochs below which training may have stalled
PLATEAU_DB = 0.5
#: a descent is steady when its fitted drop over the window is this many times the scatter around the fit
STEADY_SIGNAL = 3.0
#: … and the window's later half still falls at least this fraction of the window's rate (not flattening)
STEADY_LATE_RATE = 0.5


@dataclass(frozen=True)
class Plateau:
    """Epochs ``first`` … ``last`` were all yellow and the loss fell by only ``improvement_db``."""

    first: int
    last: int
    improvement_db: float
    epochs: int
    min_improvement_db: float

    @property
    def text(self) -> str:
        return (f"{PLATEAU_NOTE} the loss stayed in yellow for {self.epochs} epochs ({self.first}–{self.last}) and "
                f"improved by only {self.improvement_db:.2f} dB (< {self.min_improvement_db:g} dB); "
                "try another learning rate or batch size")


def _check(epochs: int, min_improvement_db: float) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 2:
        raise ValueError(f"epochs must be an int ≥ 2 (epochs in yellow before a plateau is noted); got {epochs!r}")
    if not isinstance(min_improvement_db, (int, float)) or not min_improvement_db > 0:
        raise ValueError(f"min_improvement_db must be a positive number of dB; got {min_improvement_db!r}")


def _slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against 0, 1, 2, … (units per epoch)."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    sxx = sum((i - mean_x) ** 2 for i in range(n))
    return sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values)) / sxx


def descending_steadily(losses_db: Sequence[float]) -> bool:
    """True when the losses (dB, one per epoch, ≥ 4) still fall steadily: the fitted drop over the
    window is ≥ :data:`STEADY_SIGNAL` × the scatter around the fit, and the later half falls at
    ≥ :data:`STEADY_LATE_RATE` × the window's rate (a descent that is not flattening out)."""
    values = [float(v) for v in losses_db]
    n = len(values)
    if n < 4 or not all(math.isfinite(v) for v in values):
        return False
    slope = _slope(values)
    if not slope < 0:
        return False
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    scatter = math.sqrt(sum((v - (mean_y + slope * (i - mean_x))) ** 2 for i, v in enumerate(values)) / (n - 2))
    late = _slope(values[n // 2:])
    return -slope * (n - 1) >= STEADY_SIGNAL * scatter and late <= STEADY_LATE_RATE * slope


def find_plateau(records: Sequence[Any], epochs: int = PLATEAU_EPOCHS,
                 min_improvement_db: float = PLATEAU_DB) -> Plateau | None:
    """The plateau ending at the last record, or None.

    The last ``epochs`` records must all be yellow, the best loss among them must be less
    than ``min_improvement_db`` dB below the first one's loss, and the loss must not be
    :func:`descending_steadily` over them.
    """
    _check(epochs, min_improvement_db)
    window = list(records[-epochs:])
    if len(window) < epochs or any(r.zone != "yellow" for r in window):
        return None
    start = to_db(window[0].loss)
    best = min(to_db(r.loss) for r in window)
    improvement = start - best
    if not math.isfinite(improvement) or improvement >= min_improvement_db:
        return None
    if descending_steadily([to_db(r.loss) for r in window]):
        return None
    return Plateau(window[0].epoch, window[-1].epoch, improvement, epochs, float(min_improvement_db))


def plateau_starts(records: Sequence[Any], epochs: int = PLATEAU_EPOCHS,
                   min_improvement_db: float = PLATEAU_DB) -> Plateau | None:
    """The plateau ending at the last record if it is a new one, else None.

    New: no plateau ended at any of the ``epochs - 1`` records before, so one long
    stall is noted once (and again only after ``epochs`` epochs without one).
    Looks at the last ``2·epochs`` records only (cheap at every epoch).
    """
    found = find_plateau(records, epochs, min_improvement_db)
    if found is None:
        return None
    tail = list(records[-(2 * epochs - 1):])
    for end in range(len(tail) - 1, max(len(tail) - epochs, 0), -1):
        if find_plateau(tail[:end], epochs, min_improvement_db) is not None:
            return None
    return found


def plateau_note(records: Sequence[Any], epochs: int = PLATEAU_EPOCHS,
                 min_improvement_db: float = PLATEAU_DB) -> str | None:
    """The note's text when a new plateau ends at the last record (for ``Run.warnings``), else None."""
    found = plateau_starts(records, epochs, min_improvement_db)
    return None if found is None else found.text
