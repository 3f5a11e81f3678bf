"""Minibatch losses: kept on the training thread without a device sync, sent in batches."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from ..core.store import RunStore

__all__ = ["StepLog"]


class StepLog:
    """Counts optimizer steps and buffers logged losses; :meth:`flush` sends them as one batch.

    Positions are fractional epochs (0.5 = half-way through the first epoch). During the
    first epoch the steps per epoch are estimated (data size / batch size), so points reach
    the chart before the first epoch ends; when it ends, the run's first-epoch positions are
    corrected in place (displays re-read them then). ``flush_every`` seconds between sends.
    """

    def __init__(self, store: RunStore, to_metric: Callable[[Any], Any], *, flush_every: float = 0.25) -> None:
        self._store = store
        self._to_metric = to_metric
        self.flush_every = flush_every
        self.total = 0
        self.this_epoch = 0
        self.per_epoch: int | None = None
        self._pending: list[tuple[float, Any]] = []  # (position, loss tensor or float)
        self._last_flush = time.perf_counter()
        self._first_epoch: list[int] | None = []  # step-in-epoch of each first-epoch loss (None after)
        self._lr: float | None = None
        self._batch_size: int | None = None

    def count(self) -> None:
        self.total += 1
        self.this_epoch += 1

    def position(self, epoch: int, expected_steps: int | None = None) -> float:
        """The fractional epoch now (``epoch`` completed epochs plus the share of this one)."""
        per_epoch = self.per_epoch or expected_steps
        if not per_epoch:
            return float(epoch)
        # an estimate may be short: a position never reaches the next epoch
        return epoch + min(self.this_epoch / per_epoch, 1.0 if self.per_epoch else 0.999)

    def log(self, loss: Any, *, epoch: int, lr: float | None, batch_size: int | None,
            expected_steps: int | None) -> None:
        self._lr, self._batch_size = lr, batch_size
        if loss is not None:
            if isinstance(loss, torch.Tensor):
                loss = loss.detach()
                if loss.numel() != 1:
                    raise ValueError(f"log(loss) expects a scalar loss; got a tensor of shape {tuple(loss.shape)}")
            else:
                loss = float(loss)
            self._pending.append((self.position(epoch, expected_steps), self._to_metric(loss)))
            if self._first_epoch is not None and epoch == 0:
                self._first_epoch.append(self.this_epoch)
        if time.perf_counter() - self._last_flush > self.flush_every:
            self.flush()

    def end_epoch(self) -> None:
        if self.this_epoch:
            self.per_epoch = self.this_epoch
        self.flush()
        if self._first_epoch is not None:
            if self._first_epoch and self.per_epoch:  # the first epoch's steps at their final positions
                per = self.per_epoch
                self._store.reposition(0, [min(k, per) / per for k in self._first_epoch], lr=self._lr,
                                       batch_size=self._batch_size)
            self._first_epoch = None
        self.this_epoch = 0

    def flush(self) -> None:
        """Send pending losses as one StepEvent (one device sync for all of them)."""
        self._last_flush = time.perf_counter()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        values = [v for _, v in pending]
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        if tensors:
            floats = iter(torch.stack([t.reshape(()).to(torch.float64) for t in tensors]).tolist())
            values = [next(floats) if isinstance(v, torch.Tensor) else v for v in values]
        self._store.add_steps([p for p, _ in pending], values, lr=self._lr, batch_size=self._batch_size)
