"""When YES-k is recomputed.

``every=k``: epoch 1 and every k-th epoch. ``"auto"``: a k fixed after the first epoch
from shapes alone (the bounds' FLOPs against the training epoch's), so the same seeded
run certifies at the same epochs on any machine and under any load. ``"time"``: the
bounds may use at most ``budget`` of the wall time (adapts to the machine; not
reproducible).

Confirmation (an epoch whose loss reaches the lower edge asks for a fresh edge) draws on
the same FLOPs budget as the period (:class:`Ledger`): ``budget`` × the training FLOPs so
far is the credit, every update is charged its FLOPs (estimated from shapes; the solves in the
user's own loss as counted), and an update is affordable while the spending has not passed the
credit. A move into green is checked whatever the budget (with back-off after checks that found
a lower edge); an epoch that stays green gets a fresh edge when affordable, else it is green
*against the edge of epoch k*, said so in its record. The first update runs at epoch 1 (ahead of
the credit) unless it costs more than the whole planned training (the planned epochs' training
FLOPs, or :data:`HORIZON_EPOCHS` epochs' when the plan is unknown) and more than
:data:`FREE_FLOPS`; such an update waits until the credit has grown to its cost (until then the
run has no lower edge, and says so). All of this is decided
in epoch order from shapes and losses, so the same seeded run gets the same verdicts on any
machine and under any load.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from ..engine.bounds import anchor_sets

__all__ = ["Cadence", "Ledger", "update_flops", "HORIZON_EPOCHS", "FREE_FLOPS"]

#: the epochs a run's budget is counted over for its first update when the plan is unknown
HORIZON_EPOCHS = 100
#: a first update this cheap runs at epoch 1 whatever the budget (about a second on one CPU core: a short
#: run of the paper's task, 8 epochs, gets its edge; a small model's training is mostly per-step overhead
#: that its FLOPs do not count)
FREE_FLOPS = 1e10


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

    def __init__(self, every: int | str, budget: float, bounds_flops: float, *, estimated_solve: float = 0.0,
                 first_update: float | None = None) -> None:
        self.every = every
        self.budget = budget
        self.bounds_flops = bounds_flops
        self.period: int | None = every if isinstance(every, int) else None
        #: the FLOPs budget the period and the confirmations share
        self.ledger = Ledger(budget, bounds_flops, estimated_solve=estimated_solve, first_update=first_update)

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


class Ledger:
    """The FLOPs budget shared by scheduled updates and confirmations (decided in epoch order).

    ``credit``: ``budget`` × the training FLOPs of the epochs seen; ``spent``: the FLOPs of the
    updates done (estimated from shapes; the last-layer solves in the user's own loss, whose Newton
    steps depend on the data, as counted by the solver). An update is affordable while
    ``spent <= credit`` (so one update may run ahead of the credit). ``first_update``: the estimated
    FLOPs of the run's first update (its own-loss solves cold), held against the whole run's training.
    """

    def __init__(self, budget: float, update_cost: float, *, estimated_solve: float = 0.0,
                 first_update: float | None = None) -> None:
        self.budget = budget
        self.update_cost = update_cost
        self.estimated_solve = estimated_solve  # the part of update_cost that a counted solve replaces
        self.first_update = update_cost if first_update is None else float(first_update)
        self.credit = 0.0
        self.spent = 0.0
        self.updates = 0
        #: after a check that found a lower edge, the next move into green is checked at
        #: this epoch or later (the gap doubles after each such check, reset by a green)
        self.next_check = 0
        self._gap = 1

    def earn(self, training_flops: float) -> None:
        self.credit += self.budget * max(float(training_flops), 0.0)

    @property
    def affordable(self) -> bool:
        return self.spent <= self.credit

    def first_affordable(self, epoch_flops: float, epochs_planned: int | None) -> bool:
        """May the run's first update run now? Yes unless it costs more than the whole planned training
        (``epoch_flops`` × the planned epochs, or :data:`HORIZON_EPOCHS`) and :data:`FREE_FLOPS`, and the
        credit does not cover it yet."""
        return (self.first_update <= max(FREE_FLOPS, max(epoch_flops, 0.0) * self.horizon(epochs_planned))
                or self.spent + self.first_update <= self.credit)

    @staticmethod
    def horizon(epochs_planned: int | None) -> int:
        return epochs_planned or HORIZON_EPOCHS

    def first_epoch(self, epoch_flops: float) -> int | None:
        """The epoch at which the credit covers the first update (None: no training FLOPs)."""
        per_epoch = self.budget * epoch_flops
        return math.ceil(self.first_update / per_epoch) if per_epoch > 0 else None

    def charge(self, solve_flops: float = 0.0) -> None:
        """One update done; ``solve_flops``: what its own-loss solves took (0: not counted, the estimate)."""
        counted = solve_flops > 0 and self.estimated_solve > 0
        self.spent += self.update_cost - self.estimated_solve + solve_flops if counted else self.update_cost
        self.updates += 1

    def may_check_entry(self, epoch: int) -> bool:
        """May a move into green at ``epoch`` be checked against a fresh edge?"""
        return self.affordable or epoch >= self.next_check

    def checked(self, epoch: int, green: bool) -> None:
        """After a check at ``epoch``: green resets the back-off, a lower edge doubles it."""
        if green:
            self._gap, self.next_check = 1, 0
        else:
            self.next_check = epoch + self._gap
            self._gap *= 2

    @property
    def fraction(self) -> float:
        """FLOPs spent on updates as a fraction of the training FLOPs (the budget's unit)."""
        training = self.credit / self.budget if self.budget else 0.0
        return self.spent / training if training else 0.0
