"""The run log: every run appended to a JSON-lines file as it happens, so a crash loses nothing finished.

One file per run, ``<runs folder>/<YYYYmmdd-HHMMSS.mmm>-<run id>.jsonl``. Lines, each one
``os.write`` to a file opened for appending (a killed process leaves whole lines,
at worst a torn last one, which :func:`load_run` skips):

* ``{"kind": "header", "format": "yeswidget-run-log", "version": 1, "run": {…}}``: the run
  as :meth:`Run.to_dict` gives it when the log starts (config, certification, YES-0, layer errors);
* ``{"kind": "steps", "first": i, "positions": […], "losses": […]}``: a batch of minibatch losses;
* ``{"kind": "epoch", "record": {…}}``: one :class:`EpochRecord`;
* ``{"kind": "update", "fields": {…}}``: run fields that changed (config, timings, warnings, marks, …);
* ``{"kind": "status", "status": …, "message": …, "traceback": …}``: how the run ended.

Lines reach the operating system at once (they survive the process being killed);
they are synced to disk at most once a second and when the run ends.
Non-finite floats are written as ``{"$float": "nan"}`` like :meth:`Run.to_json`.
"""
from __future__ import annotations

import json
import os
import threading
import time
import warnings
import weakref
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ..core.handle import Handle
from ..core.persist import LOG_FORMAT, LOG_VERSION
from ..core.persist import decode as _decode
from ..core.persist import encode as _encode
from ..core.run import EpochRecord, Run, StatusEvent, StepEvent
from ._base import Output

__all__ = ["RunLog", "RunLogHandle", "load_run", "load_runs", "enable_run_log", "DEFAULT_RUNS_DIR",
           "RUNS_DIR_ENV", "LOG_FORMAT"]

#: where a Monitor writes its run log unless told otherwise
DEFAULT_RUNS_DIR = "yeswidget-runs"
#: environment variable overriding the default runs folder ("" / "none" / "off": no run log)
RUNS_DIR_ENV = "YESWIDGET_RUNS_DIR"
_SYNC_SECONDS = 1.0
# run fields carried by "update" lines (the rest have lines of their own)
_OWN_LINES = {"epochs", "step_losses", "step_positions", "status", "message", "traceback"}
_UPDATED = tuple(f.name for f in fields(Run) if f.name not in _OWN_LINES)


def _dumps(entry: dict) -> str:
    return json.dumps(_encode(entry), allow_nan=False, separators=(",", ":"), default=repr)


class RunLogHandle(Handle):
    """The handle :meth:`RunLog.attach` returns: ``remove()`` stops logging and closes the file;
    ``path`` is the log file."""

    def __init__(self, undo, path: Path) -> None:
        super().__init__(undo)
        self.path = path


class RunLog(Output):
    """Append a monitor's run to ``directory/<time>-<run id>.jsonl`` (created if missing).

        handle = RunLog("yeswidget-runs").attach(monitor)   # handle.path: the file
        ...
        run = load_run(handle.path)                         # equal to monitor.run
    """

    def __init__(self, directory: str | os.PathLike = DEFAULT_RUNS_DIR) -> None:
        super().__init__()
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a folder path (str or Path); got {type(directory).__name__}")
        self.directory = Path(directory)
        self.path: Path | None = None
        self._fd: int | None = None
        self._closed = False
        self._lock = threading.RLock()
        self._written: dict[str, str] = {}
        self._last_sync = 0.0

    def attach(self, monitor: Any) -> RunLogHandle:
        handle = super().attach(monitor)
        assert self.path is not None  # set by start()
        return RunLogHandle(handle.remove, self.path)

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
        self._open()
        self._written = self._snapshot(run)
        self._write({"kind": "header", "format": LOG_FORMAT, "version": LOG_VERSION, "run": run.to_dict()}, sync=True)

    def on_steps(self, event: StepEvent) -> None:
        self._write({"kind": "steps", "first": event.first_step, "positions": list(event.positions),
                     "losses": list(event.losses)})

    def on_epoch(self, record: EpochRecord) -> None:
        self._write({"kind": "epoch", "record": asdict(record)})
        self._write_updates()

    def on_status(self, event: StatusEvent) -> None:
        self._write({"kind": "status", "status": event.status, "message": event.message,
                     "traceback": event.traceback})
        self._write_updates(sync=True)
        self._release()  # the run ended: hold no file open (a later line reopens it)

    def close(self) -> None:
        with self._lock:
            if self._closed or self.path is None:
                return
            try:
                self._write_updates(sync=True)
            finally:
                self._closed = True
                self._release()

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        assert self.path is not None
        self._fd = os.open(self.path, flags, 0o644)
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
            now = self._snapshot(self.run)
            changed = {name: json.loads(text)["v"] for name, text in now.items() if self._written.get(name) != text}
            if changed:
                self._write({"kind": "update", "fields": changed}, sync=sync)
                self._written = now
            elif sync:
                self._sync()

    def _write(self, entry: dict, sync: bool = False) -> None:
        data = (_dumps(entry) + "\n").encode("utf-8")
        with self._lock:
            if self._closed or self.path is None:
                return
            if self._fd is None:
                self._open()
            fd = self._fd
            assert fd is not None
            while data:  # one write for a line in practice; a short write continues it
                data = data[os.write(fd, data):]
            if sync or time.monotonic() - self._last_sync > _SYNC_SECONDS:
                self._sync()

    def _sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()


# --------------------------------------------------------------------------- #
# reading
# --------------------------------------------------------------------------- #
def _entries(path: Path) -> Iterable[tuple[int, dict]]:
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    last = len(lines) - 1
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if number - 1 == last:  # no newline after it: torn by a crash mid-write
                return
            raise ValueError(f"{path}: line {number} is not JSON ({exc}); the log is damaged there") from None
        if not isinstance(entry, dict) or "kind" not in entry:
            raise ValueError(f"{path}: line {number} is not a run-log entry (expected an object with 'kind')")
        yield number, _decode(entry)


def _apply(run: Run, entry: dict) -> None:
    kind = entry["kind"]
    if kind == "steps":
        first = int(entry["first"])
        del run.step_losses[first:], run.step_positions[first:]
        run.step_losses.extend(entry["losses"])
        run.step_positions.extend(entry["positions"])
    elif kind == "epoch":
        record = EpochRecord(**entry["record"])
        run.epochs = [r for r in run.epochs if r.epoch < record.epoch] + [record]
    elif kind == "update":
        fresh = Run.from_dict(entry["fields"])  # checks the field names
        for name in entry["fields"]:
            setattr(run, name, getattr(fresh, name))
    elif kind == "status":
        run.status, run.message, run.traceback = entry["status"], entry.get("message", ""), entry.get("traceback", "")
    else:
        raise ValueError(f"unknown entry kind {kind!r}")


def load_run(path: str | os.PathLike) -> Run:
    """Read a run back: a run log (``.jsonl``, also one cut short by a crash) or a ``Run.to_json`` file.

    A log whose process was killed reads back with every epoch that was written; its
    ``status`` stays ``running`` (no end was recorded).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give one run's .jsonl file, or use load_runs({str(path)!r})")
    if not path.exists():
        raise FileNotFoundError(f"no run log at {path}")
    with open(path, "rb") as handle:
        start = handle.read(64).lstrip()
    if start.startswith(b"{") and not start.startswith(b'{"kind"'):
        return Run.from_json(path)  # a whole run written by Run.to_json
    run: Run | None = None
    for number, entry in _entries(path):
        try:
            if run is None:
                if entry.get("kind") != "header" or entry.get("format") != LOG_FORMAT:
                    raise ValueError("the first line is not a yeswidget run-log header")
                if entry.get("version", 0) > LOG_VERSION:
                    raise ValueError(f"written by a newer yeswidget (log version {entry['version']}); "
                                     "upgrade yeswidget")
                run = Run.from_dict(entry["run"])
            else:
                _apply(run, entry)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: line {number}: not a yeswidget run log ({type(exc).__name__}: {exc})") from None
    if run is None:
        raise ValueError(f"{path} is empty: the run log has no header line")
    return run


def load_runs(paths: Iterable[str | os.PathLike] | str | os.PathLike) -> list[Run]:
    """Read several runs; a folder stands for every ``*.jsonl`` log in it (oldest first)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    runs: list[Run] = []
    for path in map(Path, paths):
        if path.is_dir():
            logs = sorted(path.glob("*.jsonl"))
            if not logs:
                raise ValueError(f"{path} holds no run logs (*.jsonl)")
            runs.extend(load_run(log) for log in logs)
        else:
            runs.append(load_run(path))
    return runs


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
