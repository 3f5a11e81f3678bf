"""The run log: every run appended to a JSON-lines file as it happens, so a crash loses nothing finished.

One file per run, ``<runs folder>/<YYYYmmdd-HHMMSS.mmm>-<run id>.jsonl``, created ``0600``
(owner only: it holds tracebacks, paths and settings). Format ``yeswidget-run-log`` version 2
(:data:`~yeswidget.core.persist.LOG_VERSION`; version 1 logs are still read by
:mod:`yeswidget.core.logread`), one JSON object
a line:

* ``{"kind": "header", "format": "yeswidget-run-log", "version": 2, "run": {…}}``: the run
  as :meth:`Run.to_dict` gives it when the log starts (config, certification, YES-0, layer errors);
* ``{"kind": "update", "fields": {…}}``: run fields that changed (config, timings, warnings, marks,
  …); line 2 is one holding every such field, so a damaged header loses nothing;
* ``{"kind": "steps", "first": i, "positions": […], "losses": […]}``: a batch of minibatch losses;
* ``{"kind": "pending", "record": {"epoch", "loss", "lr", "batch_size", "step", "wall_time"}}``:
  an epoch ended, its bounds are being computed;
* ``{"kind": "epoch", "record": {…}}``: the epoch's :class:`EpochRecord` with its bounds and zone;
* ``{"kind": "status", "status": …, "message": …, "traceback": …}``: how the run ended.

Durability. The log is not a subscriber: the run store hands it every change inline, on the
thread that made it (:meth:`RunStore.add_sink`), so no display can hold it up. Every line
is in the operating system (it survives the process being killed) before the call that made
it returns: an epoch's ``pending`` line before ``epoch_end()`` returns, its ``epoch`` line
when the bounds worker finishes it, steps at each flush of the step buffer (every 0.25 s),
the status when the run ends. Each line is fsynced (it survives a power cut) within
:data:`SYNC_SECONDS` by a small sync thread, and at once for the status and at ``close()``.
A write never raises into training: a failure (a full disk, a file-size limit, the file
deleted) becomes a :class:`RuntimeWarning`, a note in the run, and at ``close()`` one message
saying what was not saved. Non-finite floats are written as ``{"$float": "nan"}``.
"""
from __future__ import annotations

import json
import os
import threading
import time
import warnings
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ..core.handle import Handle
from ..core.logread import load_run, load_runs
from ..core.persist import LOG_FORMAT, LOG_VERSION, RunLogWarning
from ..core.persist import encode as _encode
from ..core.run import EpochPending, EpochRecord, Run, StatusEvent, StepEvent
from ._base import Output

__all__ = ["RunLog", "RunLogHandle", "load_run", "load_runs", "enable_run_log", "DEFAULT_RUNS_DIR",
           "RUNS_DIR_ENV", "LOG_FORMAT", "LOG_VERSION", "SYNC_SECONDS", "RunLogWarning"]

#: where a Monitor writes its run log unless told otherwise
DEFAULT_RUNS_DIR = "yeswidget-runs"
#: environment variable overriding the default runs folder ("" / "none" / "off": no run log)
RUNS_DIR_ENV = "YESWIDGET_RUNS_DIR"
#: a written line is fsynced within about this many seconds (plus the fsync itself)
SYNC_SECONDS = 0.25
# run fields carried by "update" lines (the rest have lines of their own)
_OWN_LINES = {"epochs", "step_losses", "step_positions", "status", "message", "traceback"}
_UPDATED = tuple(f.name for f in fields(Run) if f.name not in _OWN_LINES)
_STEPS_A_LINE = 100_000  # ≈ 4 MB of JSON, well under MAX_LINE_BYTES
_PENDING_FIELDS = ("epoch", "loss", "lr", "batch_size", "step", "wall_time")


def _dumps(entry: dict[str, Any]) -> str:
    return json.dumps(_encode(entry), allow_nan=False, separators=(",", ":"), default=repr)


class RunLogHandle(Handle):
    """The handle :meth:`RunLog.attach` returns: ``remove()`` stops logging and closes the file;
    ``path`` is the log file."""

    def __init__(self, undo: Callable[[], None], path: Path) -> None:
        super().__init__(undo)
        self.path = path


class RunLog(Output):
    """Append a monitor's run to ``directory/<time>-<run id>.jsonl`` (created if missing).

        handle = RunLog("yeswidget-runs").attach(monitor)   # handle.path: the file
        ...
        run = load_run(handle.path)                         # equal to monitor.run

    ``problems``: what could not be written (empty when the log is complete).
    """

    def __init__(self, directory: str | os.PathLike[str] = DEFAULT_RUNS_DIR) -> None:
        super().__init__()
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a folder path (str or Path); got {type(directory).__name__}")
        self.directory = Path(directory)
        self.path: Path | None = None
        self.problems: list[str] = []
        self._fd: int | None = None
        self._closed = False
        self._lock = threading.RLock()
        self._written: dict[str, str] = {}
        self._note: Any = None  # the run store's note(), for failures (None: replaying a run)
        self._torn = False      # a write stopped mid-line: the next line starts on a new one
        self._gone = False      # the file was deleted under us
        self._lost: Counter[str] = Counter()
        self._lost_epochs: list[int] = []
        self._dirty = False
        self._syncer: threading.Thread | None = None
        self._wake = threading.Condition(self._lock)

    def attach(self, monitor: Any) -> RunLogHandle:
        """Write ``monitor.run``: as the run store's sink (inline, before any subscriber) when the
        monitor has a store, else as a subscriber."""
        store = getattr(monitor, "store", None)
        if store is None or not hasattr(store, "add_sink") or not isinstance(getattr(monitor, "run", None), Run):
            handle = super().attach(monitor)
            assert self.path is not None  # set by start()
            return RunLogHandle(handle.remove, self.path)
        self._begin(monitor.run)
        self._note = store.note
        sink = store.add_sink(self)

        def undo() -> None:
            sink.remove()
            self.close()

        assert self.path is not None
        return RunLogHandle(undo, self.path)

    def __call__(self, event: Any) -> None:
        if isinstance(event, EpochPending):
            self._write({"kind": "pending", "record": {k: event.record.get(k) for k in _PENDING_FIELDS}})
        else:
            super().__call__(event)

    # ---- writing ------------------------------------------------------------
    def start(self, run: Run) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # the start time to the millisecond first, so a folder's logs sort oldest first by name
        now = time.time()
        stamp = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}.{int(now % 1 * 1000):03d}"
        stem = f"{stamp}-{run.run_id or 'run'}"
        path, n = self.directory / f"{stem}.jsonl", 1
        while path.exists():
            n += 1
            path = self.directory / f"{stem}-{n}.jsonl"
        self.path = path
        self._open()  # an OSError here is the caller's (enable_run_log words it)
        self._written = self._snapshot(run)
        self._write({"kind": "header", "format": LOG_FORMAT, "version": LOG_VERSION, "run": run.to_dict()})
        # every updatable field again: a damaged header loses nothing
        self._write({"kind": "update", "fields": {name: getattr(run, name) for name in _UPDATED}}, sync=True)

    def on_steps(self, event: StepEvent) -> None:
        # in pieces, so no line nears the reader's line limit (a replayed run sends every step at once)
        for start in range(0, max(len(event.losses), 1), _STEPS_A_LINE):
            end = start + _STEPS_A_LINE
            self._write({"kind": "steps", "first": event.first_step + start,
                         "positions": list(event.positions[start:end]), "losses": list(event.losses[start:end])})

    def on_epoch(self, record: EpochRecord) -> None:
        self._write({"kind": "epoch", "record": asdict(record)})
        self._write_updates()

    def on_status(self, event: StatusEvent) -> None:
        self._write({"kind": "status", "status": event.status, "message": event.message,
                     "traceback": event.traceback})
        self._write_updates(sync=True)
        self._release()  # the run ended: hold no file open (a later line reopens it)
        self._end_syncer()

    def close(self) -> None:
        """The last changed fields and a final fsync; then one message for anything not saved. Never raises."""
        with self._lock:
            if self._closed or self.path is None:
                return
            try:
                self._write_updates(sync=True)
            finally:
                self._closed = True
                self._release()
        self._end_syncer()
        if self.problems:
            self._tell(self.summary(), RunLogWarning)

    def summary(self) -> str:
        """What this log could not save, in one line ('' when it is complete)."""
        if not self.problems:
            return ""
        lost = []
        if self._lost_epochs:
            first, last = min(self._lost_epochs), max(self._lost_epochs)
            lost.append(f"epoch {first}" if first == last else f"epochs {first}–{last}")
        lost.extend(f"{count} {kind} line{'s' * (count > 1)}" for kind, count in sorted(self._lost.items())
                    if kind not in ("epoch", "pending"))
        what = ", ".join(lost) if lost else "nothing lost yet"
        return (f"run log {self.path} is incomplete: not saved: {what} ({self.problems[0]}); the run in memory is "
                "complete: monitor.run.to_json('run.json') keeps it")

    # ---- the file -----------------------------------------------------------
    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        assert self.path is not None
        self._fd = os.open(self.path, flags, 0o600)
        # a log never closed (its monitor dropped without close()) gives its descriptor back when collected
        self._finalizer = weakref.finalize(self, os.close, self._fd)

    def _release(self) -> None:
        with self._lock:
            if self._fd is not None:
                self._fd = None
                self._finalizer()  # closes the descriptor once

    def _snapshot(self, run: Run) -> dict[str, str]:
        """The updatable fields as JSON text (retried: the monitor may be changing a dict meanwhile)."""
        for attempt in range(5):
            try:
                return {name: _dumps({"v": getattr(run, name)}) for name in _UPDATED}
            except RuntimeError:  # "dictionary changed size during iteration"
                if attempt == 4:
                    raise
                time.sleep(0.001)
        return {}  # pragma: no cover

    def _write_updates(self, sync: bool = False) -> None:
        if self._run is None:
            return
        with self._lock:
            try:
                now = self._snapshot(self.run)
            except RuntimeError:
                return  # the fields keep changing: the next epoch writes them
            changed = {name: json.loads(text)["v"] for name, text in now.items() if self._written.get(name) != text}
            if changed:
                self._write({"kind": "update", "fields": changed}, sync=sync)
                self._written = now
            elif sync:
                self._sync()

    def _write(self, entry: dict[str, Any], sync: bool = False) -> None:
        """Append one line; never raises (a failure is noted, warned and summed up at close())."""
        try:
            data = (_dumps(entry) + "\n").encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            return self._failed(entry, f"a {entry['kind']} line could not be encoded ({exc})")
        with self._lock:
            if self._closed or self.path is None:
                return None
            if self._gone:
                return self._failed(entry, "")
            try:
                if self._fd is None:
                    self._open()
                fd = self._fd
                assert fd is not None
                if self._torn:  # end the torn fragment: the lines after it stay whole
                    data = b"\n" + data
                while data:  # one write for a line in practice; a short write continues it
                    written = os.write(fd, data)
                    self._torn = True
                    data = data[written:]
                self._torn = False
                if os.fstat(fd).st_nlink == 0:  # the file (or its folder) was deleted
                    self._gone = True
                    return self._failed(entry, "the log file was deleted during the run (its folder removed?), so "
                                               "nothing of this run is on disk")
            except OSError as exc:
                return self._failed(entry, f"{type(exc).__name__}: {exc.strerror or exc}")
            self._dirty = True
            if sync:
                self._sync()
            else:
                self._schedule_sync()
        return None

    def _failed(self, entry: dict[str, Any], reason: str) -> None:
        kind = entry.get("kind", "?")
        self._lost[kind] += 1
        record = entry.get("record")
        if kind in ("epoch", "pending") and isinstance(record, dict) and isinstance(record.get("epoch"), int):
            if record["epoch"] not in self._lost_epochs:
                self._lost_epochs.append(record["epoch"])
        if not reason or (self.problems and reason == self.problems[-1]):
            return
        self.problems.append(reason)
        where = f"epoch {record['epoch']}" if isinstance(record, dict) and "epoch" in record else f"a {kind} line"
        self._tell(f"run log {self.path}: cannot save {where} and what follows: {reason}; training goes on, the "
                   "run in memory is complete (monitor.run.to_json('run.json') keeps it)", RuntimeWarning)

    def _tell(self, message: str, category: type[Warning]) -> None:
        warnings.warn(message, category, stacklevel=4)
        if self._note is not None:
            self._note(message)

    # ---- fsync --------------------------------------------------------------
    def _sync(self) -> None:
        with self._lock:
            self._dirty = False
            if self._fd is None:
                return
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._failed({"kind": "sync"}, f"fsync failed ({exc.strerror or exc})")

    def _schedule_sync(self) -> None:
        """An fsync within SYNC_SECONDS, on a small thread that ends when nothing is left to sync."""
        if self._syncer is None or not self._syncer.is_alive():
            self._syncer = threading.Thread(target=self._sync_soon, name="yeswidget-runlog-sync", daemon=True)
            self._syncer.start()

    def _sync_soon(self) -> None:
        with self._lock:
            while True:
                self._wake.wait(SYNC_SECONDS)  # woken early only to end
                dirty = self._dirty
                if dirty:
                    self._sync()
                if not dirty or self._fd is None or self._closed:
                    self._syncer = None
                    return

    def _end_syncer(self) -> None:
        """Sync what is left and end the sync thread now (the run ended: no thread stays behind)."""
        with self._lock:
            syncer = self._syncer
            self._wake.notify_all()
        if syncer is not None and syncer is not threading.current_thread():
            syncer.join(1.0)


def enable_run_log(monitor: Any, runs_dir: Any = "auto") -> RunLogHandle | None:
    """What ``Monitor(runs_dir=…)`` does: attach a :class:`RunLog`, or return None when turned off.

    ``"auto"``: ``$YESWIDGET_RUNS_DIR`` if set ("" / "none" / "off" turn it off), else
    ``./yeswidget-runs``; a folder that cannot be written is then a warning, not an error.
    A path: that folder (an error if it cannot be written). None: no run log.
    """
    if runs_dir is None:
        return None
    if not isinstance(runs_dir, (str, os.PathLike)):
        raise TypeError(f"runs_dir must be a folder path, 'auto' or None (no run log); got {type(runs_dir).__name__}")
    automatic = runs_dir == "auto"
    if automatic:
        runs_dir = os.environ.get(RUNS_DIR_ENV, DEFAULT_RUNS_DIR)
        if runs_dir.strip().lower() in ("", "none", "off", "0", "false"):
            return None
    try:
        return RunLog(runs_dir).attach(monitor)
    except OSError as exc:
        message = f"no run log: cannot write in {os.fspath(runs_dir)!r} ({exc}); pass runs_dir=<folder> or None"
        if not automatic:
            raise OSError(message) from exc
        warnings.warn(message, stacklevel=3)
        monitor.store.note(message)
        return None
