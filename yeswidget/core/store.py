"""The run store: the only writer of a :class:`~yeswidget.core.run.Run`.

The monitor records through the store; the store appends under its lock, bumps a
version, hands the matching event to its *sinks* (the run log: called inline, on the
thread that made the change, before any subscriber sees it) and publishes it on the bus. Readers on any thread take a
:meth:`RunStore.snapshot` (a consistent copy at one version) or read the append-only
lists by index (``store.run.epochs[i:]``).
"""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .bus import EventBus
from .handle import Handle
from .run import EpochEvent, EpochPending, EpochRecord, Run, StatusEvent, StepEvent

__all__ = ["RunStore"]


class RunStore:
    """Owns one :class:`Run`; every change goes through a method here and is published on ``bus``."""

    def __init__(self, run: Run, bus: EventBus) -> None:
        self._run = run
        self.bus = bus
        self._lock = threading.RLock()
        self.version = 0
        self._sinks: list[Callable[[Any], None]] = []

    # ------------------------------------------------------------------ sinks
    def add_sink(self, sink: Callable[[Any], None]) -> Handle:
        """Call ``sink(event)`` inline for every change (also :class:`EpochPending`), before publishing.

        For writers that must not wait behind subscribers (the run log). A sink must be quick and
        must not raise: an exception it lets through becomes a note in the run.
        """
        if not callable(sink):
            raise TypeError(f"sink must be callable; got {type(sink).__name__}")
        with self._lock:
            self._sinks.append(sink)

        def undo() -> None:
            with self._lock:
                if sink in self._sinks:
                    self._sinks.remove(sink)

        return Handle(undo)

    def _to_sinks(self, event: Any) -> None:
        for sink in list(self._sinks):
            try:
                sink(event)
            except Exception as exc:  # never into the training loop
                self.note(f"run writer {sink!r} raised {type(exc).__name__}: {exc}")

    def add_pending(self, record: dict[str, Any]) -> None:
        """An epoch ended; its bounds follow (``record``: its loss and settings). Sinks only."""
        if self._sinks:
            self._to_sinks(EpochPending(self._run.run_id, record))

    @property
    def has_sinks(self) -> bool:
        return bool(self._sinks)

    @property
    def run(self) -> Run:
        """The live record (append-only lists; change it only through the store)."""
        return self._run

    def snapshot(self) -> tuple[int, Run]:
        """``(version, copy)``: a copy of the run that later writes do not change."""
        with self._lock:
            run = self._run
            copy = dataclasses.replace(
                run, config=dict(run.config), layer_errors=list(run.layer_errors),
                certification=dict(run.certification), epochs=list(run.epochs),
                step_losses=list(run.step_losses), step_positions=list(run.step_positions),
                marks=[dict(m) for m in run.marks], timings=dict(run.timings), warnings=list(run.warnings),
            )
            return self.version, copy

    # ----------------------------------------------------------------- writes
    def add_steps(self, positions: Sequence[float], losses: Sequence[float], *,
                  lr: float | None, batch_size: int | None) -> None:
        """Append minibatch losses at fractional epochs; publish one :class:`StepEvent`."""
        with self._lock:
            first = len(self._run.step_losses)
            self._run.step_losses.extend(losses)
            self._run.step_positions.extend(positions)
            self.version += 1
        self._emit(StepEvent(self._run.run_id, first, tuple(positions), tuple(losses), lr, batch_size))

    def reposition(self, first: int, positions: Sequence[float], *, lr: float | None = None,
                   batch_size: int | None = None) -> None:
        """Correct the positions of steps ``first …`` in place (provisional first-epoch positions);
        publish them again as one :class:`StepEvent` from ``first`` (subscribers replace from there)."""
        with self._lock:
            end = first + len(positions)
            self._run.step_positions[first:end] = [float(p) for p in positions]
            losses = tuple(self._run.step_losses[first:end])
            self.version += 1
        self._emit(StepEvent(self._run.run_id, first, tuple(float(p) for p in positions), losses,
                             lr, batch_size))

    def add_epoch(self, record: EpochRecord, epochs_total: int | None) -> None:
        """Append an epoch record; publish an :class:`EpochEvent`."""
        with self._lock:
            self._run.epochs.append(record)
            self._run.timings["wall_seconds"] = record.wall_time
            self.version += 1
        self._emit(EpochEvent(self._run.run_id, record, epochs_total))

    def set_status(self, status: str, message: str = "", traceback: str = "") -> None:
        """Set how the run stands; publish a :class:`StatusEvent`."""
        with self._lock:
            self._run.status, self._run.message, self._run.traceback = status, message, traceback
            self.version += 1
        self._emit(StatusEvent(self._run.run_id, status, message, traceback))

    def _emit(self, event: Any) -> None:
        """To the sinks (durable first), then to the subscribers."""
        if self._sinks:
            self._to_sinks(event)
        self.bus.publish(event)

    def note(self, message: str) -> None:
        """Add a warning to the run (shown by displays; no event)."""
        with self._lock:
            self._run.warnings.append(message)
            self.version += 1

    def mark(self, position: float, kind: str, value: Any, **extra: Any) -> None:
        """Record something that happened mid-run at a fractional epoch (drawn on charts)."""
        with self._lock:
            self._run.marks.append({"position": float(position), "kind": str(kind), "value": value, **extra})
            self.version += 1

    def set_timing(self, name: str, seconds: float) -> None:
        with self._lock:
            self._run.timings[name] = float(seconds)

    def add_timing(self, name: str, seconds: float) -> None:
        with self._lock:
            self._run.timings[name] = self._run.timings.get(name, 0.0) + float(seconds)

    def restore(self, earlier: Run) -> None:
        """Continue ``earlier``: take over its id, records, steps, marks and notes (no events)."""
        with self._lock:
            run = self._run
            run.run_id = earlier.run_id or run.run_id
            run.epochs[:0] = earlier.epochs
            run.step_losses[:0] = earlier.step_losses
            run.step_positions[:0] = earlier.step_positions
            run.marks[:0] = earlier.marks
            run.warnings[:0] = [w for w in earlier.warnings if w not in run.warnings]
            self.version += 1

    def update_config(self, **values: Any) -> None:
        with self._lock:
            self._run.config.update(values)
            self.version += 1
