"""Pruning by verdict: stop a run the data has not shaped (still red) or that stalls in yellow.

The rule, per run of ``E`` epochs (E = the sweep's epochs):

* **red**: a run whose zone is still red after ``k`` epochs, and whose loss fell by less than
  ``red_progress_db`` over its last ⌈k/2⌉ epochs, is stopped, with the reason
  ``"red after k epochs"`` (most runs start red: the initial weights have not seen the data; a
  run still falling steadily towards YES-0 is on its way out of red and is given its chance).
  ``k = max(min_red_epochs, ⌈c⌉, ⌈red_fraction · E⌉)``, where ``c`` is the cost of a fresh start
  in epochs of this run (YES-0, from FLOPs: shapes only, so the same on every machine; see
  :func:`restart_epochs`). Pruning earlier than ``c`` epochs would save less than the restart it
  makes room for costs; ``red_fraction`` of the budget is what a configuration may spend to show
  that it learns at all (``min_red_epochs``: a floor for short budgets). When ``k ≥ E`` the
  budget is too short to prune on red, and no run is.
* **plateau** (``prune="verdict"``): a run that plateaus in yellow by the plateau rule
  (:func:`yeswidget.core.plateau.find_plateau`: ``PLATEAU_EPOCHS`` epochs in yellow improving
  by less than ``PLATEAU_DB`` dB) is stopped with the plateau's words as its reason.
* a run whose current zone is green, or without a verdict (``none``), is never pruned.

The decision is taken at an epoch boundary, on the epoch's record, so a pruned run is the same
run (the same epochs, the same numbers) on any machine and under any load.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.plateau import PLATEAU_DB, PLATEAU_EPOCHS, find_plateau
from ..core.run import EpochRecord
from ..core.zones import to_db
from ..engine.bounds import anchor_sets
from ..monitor.cadence import update_flops

__all__ = ["PruneRule", "restart_epochs", "PRUNE_MODES"]

#: "red": prune red runs; "verdict": red runs and yellow plateaus; "off": never
PRUNE_MODES = ("red", "verdict", "off")


def restart_epochs(n_samples: int, widths: Sequence[int]) -> float:
    """The cost of a fresh start in training epochs (forward + backward ≈ 3 forward passes over
    ``n_samples``): YES-0, one least-squares basis (a YES-k update's FLOPs over its bases); building
    the model and its optimizer is negligible. ``widths``: the layer widths input … output."""
    if len(widths) < 2:
        raise ValueError(f"widths must list at least an input and an output width; got {list(widths)}")
    per_sample = sum(2.0 * a * b for a, b in zip(widths[:-1], widths[1:]))
    epoch = 3.0 * per_sample * n_samples
    bases = len(anchor_sets(len(widths) - 1))
    return update_flops(n_samples, widths[0], list(widths[1:-1]), widths[-1]) / bases / epoch


@dataclass(frozen=True)
class PruneRule:
    """``mode`` (one of :data:`PRUNE_MODES`), ``min_red_epochs``, ``red_fraction``, ``red_progress_db``,
    ``plateau_epochs`` and ``plateau_db`` (see the module)."""

    mode: str = "red"
    min_red_epochs: int = 3
    red_fraction: float = 0.25
    red_progress_db: float = 1.0
    plateau_epochs: int = PLATEAU_EPOCHS
    plateau_db: float = PLATEAU_DB

    def __post_init__(self) -> None:
        if self.mode not in PRUNE_MODES:
            raise ValueError(f"prune must be one of {PRUNE_MODES}, None or a PruneRule; got {self.mode!r}")
        if isinstance(self.min_red_epochs, bool) or not isinstance(self.min_red_epochs, int) \
                or self.min_red_epochs < 1:
            raise ValueError(f"min_red_epochs must be an int ≥ 1; got {self.min_red_epochs!r}")
        if not 0 <= self.red_fraction < 1:
            raise ValueError(f"red_fraction must be in [0, 1); got {self.red_fraction!r}")

    @classmethod
    def of(cls, prune: object) -> PruneRule:
        """``prune`` as a sweep accepts it: a mode name, None / False (off) or a PruneRule."""
        if isinstance(prune, PruneRule):
            return prune
        if prune is None or prune is False:
            return cls("off")
        if not isinstance(prune, str):
            raise ValueError(f"prune must be one of {PRUNE_MODES}, None or a PruneRule; got {prune!r}")
        return cls(prune)

    def red_patience(self, epochs: int, restart: float) -> int | None:
        """k: the epochs a red run gets, or None when the budget of ``epochs`` is too short to prune."""
        k = max(self.min_red_epochs, math.ceil(restart), math.ceil(self.red_fraction * epochs))
        return k if k < epochs else None

    def decide(self, records: Sequence[EpochRecord], epochs: int, restart: float) -> str | None:
        """Why the run should stop now (after its last record), or None to go on."""
        if self.mode == "off" or not records:
            return None
        last = records[-1]
        if last.zone == "red":
            k = self.red_patience(epochs, restart)
            if k is None or last.epoch < k:
                return None
            window = list(records[-math.ceil(k / 2) - 1:])
            fell = to_db(window[0].loss) - min(to_db(r.loss) for r in window)
            if math.isfinite(fell) and fell >= self.red_progress_db:
                return None  # still on its way down towards YES-0
            return f"red after {last.epoch} epochs"
        if self.mode == "verdict" and last.zone == "yellow":
            plateau = find_plateau(records, self.plateau_epochs, self.plateau_db)
            if plateau is not None:
                return plateau.text
        return None
