"""What a live chart knows: an inbox filled from any thread, drained on the pump thread.

:class:`Inbox` takes monitor events and chart commands (watch, add a past run,
clear) from any thread in arrival order; :class:`ChartModel` drains it on the
pump thread into the current :class:`RunTrack` and the list of :class:`PastEntry`,
and hands :func:`~yeswidget.view.scene.compose` its inputs.

Steps are deduplicated by their index in the run (``StepEvent.first_step``),
records by epoch, so data a run already held when it was watched, or an event
delivered twice, is drawn once. Steps of a first epoch (positions provisional
until steps-per-epoch is known) are drawn as they come.
"""
from __future__ import annotations

import collections
import itertools
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.run import EpochEvent, EpochRecord, Run, StatusEvent, StepEvent
from ..view.scene import RunSeries, Status, compose_status, step_kind

__all__ = ["Growable", "RunTrack", "PastEntry", "Inbox", "ChartModel"]


class Growable:
    """A float64 array that grows by doubling (append-only)."""

    __slots__ = ("_data", "_n")

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def extend(self, values: Any) -> None:
        values = np.asarray(values, dtype=np.float64)
        k = values.size
        if self._n + k > self._data.size:
            grown = np.empty(max(2 * self._data.size, self._n + k), dtype=np.float64)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : self._n + k] = values
        self._n += k

    def view(self) -> np.ndarray:
        return self._data[: self._n]

    def __len__(self) -> int:
        return self._n


class RunTrack:
    """The current run as the chart received it (records, steps, status); pump thread only."""

    def __init__(self, run: Run | None = None, run_id: str = "", epochs_total: int | None = None) -> None:
        self.run = run
        self.run_id = run_id or getattr(run, "run_id", "") or ""
        self.epochs_total = epochs_total
        self.records: list[EpochRecord] = []
        self.zones: list[str] = []
        self.yes_k: list[list[float]] = []
        self.cols = {name: Growable(256) for name in ("epoch", "loss", "upper", "lower")}
        self.step_x, self.step_y = Growable(), Growable()
        self.revision = 0  # counts rewrites of steps already held
        self.serial = next(_SERIALS)
        self.status: tuple[str, str, str] = ("running", "", "")
        self.arrival: list[float] | None = None

    def load(self, run: Run) -> None:
        """Take what ``run`` already holds (steps and records), then its status."""
        n = min(len(run.step_positions), len(run.step_losses))
        self.add_steps(0, run.step_positions[:n], run.step_losses[:n])
        for record in list(run.epochs):
            self.add_record(record, None)
        if run.status != "running" or run.message:
            self.status = (run.status, run.message or "", run.traceback or "")

    def add_steps(self, first: int, positions: Any, losses: Any) -> None:
        """Steps ``first …`` of the run (index in the run). A step already held keeps its loss and
        takes the new position: a monitor may re-send the first epoch's steps with their final
        positions once steps-per-epoch is known."""
        n, held, first = min(len(positions), len(losses)), len(self.step_x), int(first)
        overlap = min(max(held - first, 0), n)
        if overlap:
            x = self.step_x.view()
            new_x = np.asarray(positions[:overlap], dtype=np.float64)
            if not np.array_equal(x[first:first + overlap], new_x, equal_nan=True):
                x[first:first + overlap] = new_x
                self.revision += 1  # the decimated history must be recomputed
        if overlap < n:  # new steps (after a gap too: kept, in order)
            self.step_x.extend(positions[overlap:n])
            self.step_y.extend(losses[overlap:n])

    def add_record(self, record: EpochRecord, arrived: float | None) -> None:
        if self.records and record.epoch <= self.records[-1].epoch:
            return
        if not self.records:
            self._settle_first_epoch()
        self.records.append(record)
        self.zones.append(record.zone)
        self.yes_k.append(record.yes_k)
        for name, value in (("epoch", record.epoch), ("loss", record.loss), ("upper", record.upper),
                            ("lower", record.lower)):
            self.cols[name].extend([_f(value)])
        if arrived is not None:
            if self.arrival is None:
                self.arrival = [record.epoch, arrived, record.epoch, arrived]
            else:
                self.arrival[2:] = [record.epoch, arrived]

    def _settle_first_epoch(self) -> None:
        """The first epoch ended: its steps take their final positions from the run (a monitor
        sends them before it knows the steps per epoch)."""
        n = len(self.step_x)
        final = list(getattr(self.run, "step_positions", ())[:n])
        if n and len(final) == n:
            self.step_x.view()[:] = final
        elif n:
            self.step_x.view()[:] = self.step_positions()
        self.revision += 1

    def step_positions(self) -> np.ndarray:
        """x of the steps: as received; before the first record, positions that do not increase
        (provisional ones: the steps per epoch were estimated short) are spread evenly over the
        first epoch."""
        x = self.step_x.view()
        if self.records or x.size < 2 or bool(np.all(x[1:] > x[:-1])):
            return x
        return np.arange(1, x.size + 1, dtype=np.float64) / x.size

    def series(self) -> RunSeries:
        """Arrays for the scene (views: valid until the next drain)."""
        run = self.run
        return RunSeries(
            epochs=self.cols["epoch"].view(), loss=self.cols["loss"].view(), upper=self.cols["upper"].view(),
            lower=self.cols["lower"].view(), zones=self.zones,
            yes_k=self.yes_k, step_x=self.step_positions(), step_y=self.step_y.view(),
            run_upper=_f(getattr(run, "upper", math.nan)), layer_errors=list(getattr(run, "layer_errors", ()) or ()),
            marks=list(getattr(run, "marks", ()) or ()), label=run.label if run is not None and run.config else "",
            run_id=self.run_id, **step_kind(run),
        )

    def reading(self, epochs_total: int | None) -> Status:
        last = self.records[-1] if self.records else None
        first = self.records[0] if self.records else None
        return compose_status(last, first=first, epochs_total=epochs_total, state=self.status,
                              arrival=tuple(self.arrival) if self.arrival else None, run=self.run)

    def as_run(self) -> Run:
        """A Run holding what this track received (the monitor's run when it holds more)."""
        base = self.run
        if base is not None and len(base.epochs) >= len(self.records):
            return base
        run = Run(run_id=self.run_id)
        if base is not None:
            run.config, run.upper, run.depth = dict(base.config), base.upper, base.depth
            run.layer_errors, run.marks = list(base.layer_errors), list(base.marks)
        run.epochs = list(self.records)
        run.step_positions = self.step_x.view().tolist()
        run.step_losses = self.step_y.view().tolist()
        run.status, run.message, run.traceback = self.status
        return run

    @property
    def empty(self) -> bool:
        return not self.records and not len(self.step_x)


@dataclass
class PastEntry:
    """A finished run drawn faded."""

    run: Run
    color: str
    series: RunSeries


class Inbox:
    """Events and commands in arrival order; ``put`` from any thread, ``take`` on the pump."""

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()

    def put(self, item: tuple) -> None:
        self._items.append(item)  # deque.append is atomic: no lock on the event path

    def take(self) -> list[tuple]:
        out = []
        while self._items:
            out.append(self._items.popleft())
        return out


class ChartModel:
    """The chart's data: current track, past runs, highlight; guarded by ``lock``."""

    def __init__(self, past_colors: tuple[str, ...]) -> None:
        self.lock = threading.Lock()
        self.inbox = Inbox()
        self.track = RunTrack()
        self.past: list[PastEntry] = []
        self.highlight: str | None = None
        self.monitor: Any = None
        self.generation = 0  # of the subscription whose events are drawn
        self.generation_seq = 0  # the latest one handed out (by watch / unwatch)
        self._colors = past_colors

    # ------------------------------------------------------------ producers (any thread)
    def event(self, event: Any, generation: int | None) -> None:
        self.inbox.put(("event", generation, event, time.monotonic()))

    def post_generation(self, kind: str, *args: Any) -> int:
        """Queue a watch / unwatch with a new subscription number; events of older ones are dropped."""
        with self.lock:
            self.generation_seq += 1
            self.inbox.put((kind, self.generation_seq, *args))
            return self.generation_seq

    # ------------------------------------------------------------ the pump (under lock)
    def drain(self) -> None:
        items, i = self.inbox.take(), 0
        while i < len(items):
            item = items[i]
            if item[0] == "event" and isinstance(item[2], StepEvent):
                i = self._steps_from(items, i)
            else:
                getattr(self, "_on_" + item[0])(*item[1:])
                i += 1

    def _steps_from(self, items: list, i: int) -> int:
        """Consecutive step events of one run as one batch (the event path's cost is per batch)."""
        _kind, generation, event, arrived = items[i]
        positions, losses = list(event.positions), list(event.losses)
        expected = event.first_step + len(event.positions)
        j = i + 1
        while j < len(items):
            _kind, gen, nxt, _ = items[j]
            if (_kind != "event" or gen != generation or not isinstance(nxt, StepEvent)
                    or nxt.run_id != event.run_id or nxt.first_step != expected):
                break
            positions += nxt.positions
            losses += nxt.losses
            expected += len(nxt.positions)
            j += 1
        if j > i + 1:
            event = StepEvent(event.run_id, event.first_step, tuple(positions), tuple(losses))
        self._on_event(generation, event, arrived)
        return j

    def _on_watch(self, generation: int, monitor: Any, keep_previous: bool) -> None:
        self._retire(keep_previous)
        run = getattr(monitor, "run", None) if monitor is not None else None
        self.monitor, self.generation = monitor, generation
        self.track = RunTrack(run, epochs_total=getattr(monitor, "epochs_total", None))
        if run is not None:
            self.track.load(run)

    def _on_unwatch(self, generation: int) -> None:
        self.monitor, self.generation = None, generation

    def _on_add(self, run: Run, color: str | None) -> None:
        color = color or self._colors[len(self.past) % len(self._colors)]
        self.past.append(PastEntry(run, color, RunSeries.from_run(run)))

    def _on_clear(self) -> None:
        self.past, self.highlight = [], None

    def _on_event(self, generation: int | None, event: Any, arrived: float) -> None:
        if generation is not None and generation != self.generation:
            return  # from a monitor this chart no longer watches
        run_id = getattr(event, "run_id", "") or ""
        if run_id and self.track.run_id and run_id != self.track.run_id:
            self._new_run_in_monitor(run_id)
        if run_id:
            self.track.run_id = run_id
        if isinstance(event, StepEvent):
            self.track.add_steps(event.first_step, event.positions, event.losses)
        elif isinstance(event, EpochEvent):
            self.track.add_record(event.record, arrived)
            if event.epochs_total is not None:
                self.track.epochs_total = event.epochs_total
        elif isinstance(event, StatusEvent):
            self.track.status = (event.status, event.message or "", event.traceback or "")

    def _new_run_in_monitor(self, run_id: str) -> None:
        self._retire(True)
        run = getattr(self.monitor, "run", None)
        self.track = RunTrack(run if getattr(run, "run_id", None) == run_id else None, run_id,
                              getattr(self.monitor, "epochs_total", None))

    def _retire(self, keep: bool) -> None:
        if keep and self.track.records:
            self._on_add(self.track.as_run(), None)
        self.track = RunTrack()

    # ------------------------------------------------------------ readers (under lock)
    def current_run(self) -> Run | None:
        track = self.track
        if track.run is not None:
            return track.run
        return track.as_run() if track.records else None

    def epochs_total(self) -> int | None:
        total = self.track.epochs_total
        if total is None and self.monitor is not None:
            total = getattr(self.monitor, "epochs_total", None)
        return total


_SERIALS = itertools.count(1)


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
