"""When YES-k is recomputed.

``every=k``: epoch 1 and every k-th epoch. ``"auto"``: a k fixed after the first epoch
from shapes alone (the bounds' FLOPs against the training epoch's), so the same seeded
run certifies at the same epochs on any machine and under any load. ``"time"``: the
bounds may use at most ``budget`` of the wall time (adapts to the machine; not
reproducible). Confirmation (an epoch is green only against an edge computed at that
epoch) is decided by the monitor on top of this.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from ..engine.bounds import anchor_sets

__all__ = ["Cadence", "update_flops"]


def update_flops(n_samples: int, input_width: int, hidden_widths: Sequence[int], output_width: int) -> float:
    """FLOPs of one YES-k update (an upper estimate: no prefix sharing counted).

    Each least-squares layer step from width a to width b on N samples costs about
    2·N·a² (the Gram matrix of ``[Z, 1]``) + 4·N·a·b (projecting the target).
    """
    depth = len(hidden_widths) + 1
    total = 0.0
    for anchors in anchor_sets(depth):
        width = input_width  # the state Z_l; layer l is fitted to the first anchor at or after it, else Y
        for layer in range(depth):
            later = [s for s in anchors if s >= layer]
            target = hidden_widths[later[0]] if later and layer < depth - 1 else output_width
            a = width + 1
            total += 2.0 * n_samples * a * a + 4.0 * n_samples * a * target
            width = target
    return total


class Cadence:
    """Decide, epoch by epoch, whether YES-k is due (before confirmation)."""

    def __init__(self, every: int | str, budget: float, bounds_flops: float) -> None:
        self.every = every
        self.budget = budget
        self.bounds_flops = bounds_flops
        self.period: int | None = every if isinstance(every, int) else None

    def fix_period(self, training_flops_per_epoch: float) -> int:
        """``"auto"``: the period k from the first epoch's training FLOPs (kept for the run)."""
        if self.period is None:
            spend = max(self.budget * training_flops_per_epoch, 1.0)
            self.period = max(1, math.ceil(self.bounds_flops / spend))
        return self.period

    def due(self, epoch: int, *, time_spent: float = 0.0, next_cost: float = 0.0, wall: float = 0.0,
            busy: bool = False) -> bool:
        if epoch == 1:
            return True  # one update gives the cloud its lower edge
        if self.every == "time":
            # everything the monitor costs counts; never let work pile up
            return not busy and time_spent + next_cost <= self.budget * wall
        assert self.period is not None, "fix_period() is called at the end of epoch 1"
        return epoch % self.period == 0
