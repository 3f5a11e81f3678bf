"""The bounds worker: finishes epochs (YES-k updates) in order, off the training loop.

Every wait here is a loop of short waits, so one Ctrl-C in the training thread gets
through at once; :meth:`BoundsWorker.cancel` drops the heavy work not yet started, so
an interrupted run ends in moments with every finished epoch recorded.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.serial import SerialThread, wait_for

__all__ = ["INLINE_STEP_FLOPS", "BoundsWorker", "EpochItem", "runs_alongside"]

#: a CPU training step (forward + backward) under this many FLOPs spends most of its time in the
#: interpreter (about half a millisecond of Python per step): a worker thread would mostly wait for
#: Python's lock while the step runs, and slow it down (measured by ``benchmarks/bench_monitor.py``)
INLINE_STEP_FLOPS = 5e6


def runs_alongside(step_flops: float | None, device: torch.device) -> bool:
    """Whether a worker thread runs alongside training steps of ``step_flops`` FLOPs on ``device``
    (None: unknown, no steps were seen), rather than taking turns with them."""
    return device.type != "cpu" or step_flops is None or step_flops >= INLINE_STEP_FLOPS


@dataclass
class EpochItem:
    """One finished epoch waiting for its bounds: ``loss`` a 0-d tensor (metric E),
    ``hidden`` the L-1 hidden outputs (N × h each) when YES-k is due, else None."""

    epoch: int
    loss: Any
    hidden: list[torch.Tensor | None] | None
    info: dict[str, Any] = field(default_factory=dict)  # lr, batch_size, step, wall_time, accuracy, …
    scheduled: bool = True  # False: the hidden outputs came for a possible confirmation only
    training_flops: float = 0.0  # the epoch's training FLOPs, estimated from shapes (the budget's credit)
    deferred: bool = False  # the certification pass (loss, hidden outputs) runs on the worker, on the shadow

    @property
    def heavy(self) -> bool:
        return self.hidden is not None


class BoundsWorker:
    """Run ``finish(item)`` for each submitted item, in order, on one thread (or inline).

    At most ``max_waiting_hidden`` items holding hidden activations wait at once: when the
    worker falls behind, :meth:`submit` waits instead of memory growing without limit.
    """

    def __init__(self, finish: Callable[[EpochItem], None], *, background: bool = True,
                 max_waiting_hidden: int = 2, name: str = "yeswidget-bounds") -> None:
        self._finish = finish
        self.background = background
        self._max_heavy = max_waiting_hidden
        self._cond = threading.Condition()
        self._thread: SerialThread[EpochItem] = SerialThread(self._run, name=name, cond=self._cond)
        self._heavy = 0       # queued items holding hidden outputs, not yet finished
        self._inflight = 0    # submitted items not yet finished
        self.cancelled = False

    @property
    def busy(self) -> bool:
        return self._inflight > 0

    @property
    def on_worker(self) -> bool:
        return self._thread.on_thread

    def submit(self, item: EpochItem) -> None:
        """Queue an epoch (waits, interruptibly, while too many hidden activations are queued)."""
        if not self.background:
            with self._cond:
                self._inflight += 1
            self._run(item)
            return
        with self._cond:
            if item.heavy:
                try:
                    wait_for(self._cond, lambda: self._heavy < self._max_heavy or self.cancelled, None)
                except BaseException:
                    item.hidden = None  # interrupted while waiting: the epoch is kept, without an update
                    self._enqueue(item)
                    raise
                if self.cancelled:
                    item.hidden = None
                else:
                    self._heavy += 1
            self._enqueue(item)

    def _enqueue(self, item: EpochItem) -> None:
        with self._cond:
            self._inflight += 1
            self._thread.put(item)

    def _run(self, item: EpochItem) -> None:
        with self._cond:
            heavy = item.heavy  # counted in self._heavy when queued (a dropped item was uncounted then)
            if self.cancelled and heavy:
                item.hidden = None  # dropped: the epoch is still recorded, without an update
        try:
            self._finish(item)
        finally:
            item.hidden = None
            with self._cond:
                self._inflight -= 1
                if self.background and heavy:
                    self._heavy -= 1
                self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted epoch is finished; False if ``timeout`` ran out."""
        if self.on_worker:
            return self._inflight <= 1  # inside a subscriber of this worker: the rest runs after it
        with self._cond:
            return wait_for(self._cond, lambda: self._inflight == 0, timeout)

    def cancel(self) -> None:
        """Drop heavy work not yet started (epochs are still recorded, without a YES-k update)."""
        with self._cond:
            self.cancelled = True
            for item in self._thread.items:
                if item.hidden is not None:
                    item.hidden = None
                    self._heavy -= 1
            self._cond.notify_all()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Finish what is queued, then end the thread (a later submit restarts it)."""
        return self._thread.stop(timeout)
