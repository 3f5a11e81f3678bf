"""Minibatch losses: kept on the training thread without a device sync, sent in batches."""
from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from typing import Any

import torch

from ..core.store import RunStore

__all__ = ["StepLog", "check_log_values"]


def check_log_values(loss: Any, lr: Any, batch_size: Any) -> tuple[float | None, int | None]:
    """``log(loss, lr=, batch_size=)``'s values checked: a clear error, never a silent coercion.

    Returns ``(lr, batch_size)`` as float / int (None where not given).
    """
    if loss is not None and not isinstance(loss, torch.Tensor) and (
            isinstance(loss, bool) or not isinstance(loss, numbers.Real)):
        raise TypeError(f"log(loss) expects one scalar loss (a 0-d tensor, e.g. loss, or a number); got "
                        f"{type(loss).__name__} {loss!r:.60}; log each step's loss once")
    if isinstance(loss, torch.Tensor) and (loss.is_sparse or loss.is_complex()):
        kind = "sparse" if loss.is_sparse else "complex"
        raise TypeError(f"log(loss) expects a real scalar loss; got a {kind} tensor")
    if lr is not None:
        if isinstance(lr, torch.Tensor) and lr.numel() == 1:
            lr = lr.item()
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr < 0:
            raise TypeError(f"log(lr=…) must be the learning rate, a finite number ≥ 0; got {lr!r:.60}")
        lr = float(lr)
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise TypeError(f"log(batch_size=…) must be a whole number of samples ≥ 1; got {batch_size!r:.60} "
                            "(it is recorded as given, never rounded)")
        batch_size = int(batch_size)
    return lr, batch_size


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
