"""The plateau note: the loss has sat in yellow for ``k`` epochs while improving by
less than ``x`` dB — the paper's "try another learning rate or batch size" moment.

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

__all__ = ["PLATEAU_EPOCHS", "PLATEAU_DB", "Plateau", "find_plateau", "plateau_starts", "plateau_note"]

#: epochs the loss must stay in yellow
PLATEAU_EPOCHS = 10
#: improvement (dB) over those epochs below which training has stalled
PLATEAU_DB = 0.5


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


def find_plateau(records: Sequence[Any], epochs: int = PLATEAU_EPOCHS,
                 min_improvement_db: float = PLATEAU_DB) -> Plateau | None:
    """The plateau ending at the last record, or None.

    The last ``epochs`` records must all be yellow, and the best loss among them
    must be less than ``min_improvement_db`` dB below the first one's loss.
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
