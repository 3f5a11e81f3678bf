"""The UI pump: one thread that is the only code writing widget state.

Widgets :meth:`Pump.register` an ``apply`` callback and get a
:class:`Registration`. Producers on any thread (training loop, bounds worker,
event dispatcher, slider handlers) only call :meth:`Registration.mark` (cheap,
thread-safe); the pump thread coalesces marks to at most one ``apply`` per
widget per ``interval`` (0.1 s: about 10 Hz) and runs it. :meth:`Registration.flush`
asks for an ``apply`` now and waits for it, so even a flush writes on the pump
thread. An exception in ``apply`` is caught and recorded on the registration
and the pump (``errors``); it never stops the pump.

The thread is a daemon, started by the first registration and ended when the
last one closes: a closed widget leaves no thread behind. No timers.
"""
from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable

__all__ = ["Pump", "Registration", "default_pump", "register"]

log = logging.getLogger(__name__)


class Registration:
    """One widget's place in the pump: :meth:`mark` dirty, :meth:`flush`, :meth:`close`.

    ``last_error``: the exception of the latest failed apply (None after a good one);
    ``applies``: how many times ``apply`` ran.
    """

    def __init__(self, pump: Pump, apply: Callable[[], None], name: str) -> None:
        self.pump = pump
        self.name = name
        self.applies = 0
        self.last_error: BaseException | None = None
        self._apply = apply
        self._dirty = False
        self._closed = False
        self._running = threading.RLock()  # held while apply runs; close() waits on it

    @property
    def closed(self) -> bool:
        return self._closed

    def mark(self) -> None:
        """Ask for an apply soon (coalesced). Any thread; never blocks on an apply."""
        if self._dirty or self._closed:  # fast path: already queued
            return
        self.pump._mark(self)

    def flush(self, timeout: float = 10.0) -> bool:
        """Apply now on the pump thread and wait for it; False if apply failed or ``timeout`` ran out."""
        if self._closed:
            return False
        if self.pump.on_pump_thread():
            return self._run()
        return self.pump._flush(self, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Leave the pump: no apply starts after this returns (one in progress is waited for)."""
        self.pump._unregister(self, timeout)

    def _run(self) -> bool:
        with self._running:
            if self._closed:
                return False
            self.applies += 1
            try:
                self._apply()
            except BaseException as exc:  # noqa: BLE001 - a broken widget must not stop the pump
                self.last_error = exc
                self.pump._record(self, exc)
                return False
            self.last_error = None
            return True


class Pump:
    """A process-wide writer thread for widget state (see the module doc).

    ``interval``: seconds between two applies of the same marked widget.
    ``errors``: the latest ``(name, exception)`` pairs from failed applies.
    """

    def __init__(self, interval: float = 0.1, *, name: str = "yeswidget-ui-pump") -> None:
        if not interval >= 0:
            raise ValueError(f"interval must be ≥ 0 seconds; got {interval!r}")
        self.interval = float(interval)
        self.name = name
        self.errors: collections.deque = collections.deque(maxlen=20)
        self._cond = threading.Condition()
        self._clients: dict[int, Registration] = {}
        self._dirty: dict[int, Registration] = {}
        self._flushes: list[tuple[Registration, threading.Event, list]] = []
        self._thread: threading.Thread | None = None
        self._last_logged: tuple | None = None

    # ------------------------------------------------------------------ public
    def register(self, apply: Callable[[], None], *, name: str = "") -> Registration:
        """Add a widget's ``apply()``; starts the pump thread if it is not running."""
        if not callable(apply):
            raise TypeError(f"apply must be callable; got {type(apply).__name__}")
        reg = Registration(self, apply, name or getattr(apply, "__qualname__", "widget"))
        with self._cond:
            self._clients[id(reg)] = reg
            self._ensure_thread()
        return reg

    @property
    def thread(self) -> threading.Thread | None:
        """The pump thread while it runs, else None."""
        return self._thread

    def on_pump_thread(self) -> bool:
        return self._thread is threading.current_thread()

    @property
    def registered(self) -> int:
        """How many widgets are registered."""
        return len(self._clients)

    # ------------------------------------------------------------------ producers
    def _mark(self, reg: Registration) -> None:
        with self._cond:
            if reg._closed or reg._dirty:
                return
            reg._dirty = True
            self._dirty[id(reg)] = reg
            self._cond.notify()

    def _flush(self, reg: Registration, timeout: float) -> bool:
        done, result = threading.Event(), [False]
        with self._cond:
            if reg._closed:
                return False
            self._flushes.append((reg, done, result))
            self._ensure_thread()
            self._cond.notify()
        if not done.wait(timeout):
            log.warning("%s: flush of %s timed out after %.1f s", self.name, reg.name, timeout)
            return False
        return result[0]

    def _unregister(self, reg: Registration, timeout: float) -> None:
        with self._cond:
            reg._closed = True
            self._clients.pop(id(reg), None)
            self._dirty.pop(id(reg), None)
            thread = self._thread if not self._clients else None
            self._cond.notify_all()
        with reg._running:  # an apply in progress finishes first (re-entrant on the pump thread)
            pass
        if thread is None or thread is threading.current_thread():
            return
        deadline = time.monotonic() + timeout
        while thread.is_alive() and not self._clients and time.monotonic() < deadline:
            thread.join(0.05)  # a new registration meanwhile keeps the thread: stop waiting

    def _record(self, reg: Registration, exc: BaseException) -> None:
        self.errors.append((reg.name, exc))
        key = (reg.name, type(exc).__name__, str(exc))
        if key != self._last_logged:
            self._last_logged = key
            log.error("%s: apply of %s failed: %s", self.name, reg.name, exc, exc_info=exc)

    # ------------------------------------------------------------------ the thread
    def _ensure_thread(self) -> None:  # under self._cond
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        last = -math.inf
        flushes: list = []
        try:
            while True:
                batch = self._next_batch(last)
                if batch is None:
                    return
                due, flushes = batch
                last = time.monotonic()
                ok = {id(reg): reg._run() for reg in due}
                for reg, done, result in flushes:
                    result[0] = ok.get(id(reg), False)
                    done.set()
                flushes = []
        finally:
            for _reg, done, _result in flushes + self._take_flushes():
                done.set()

    def _next_batch(self, last: float) -> tuple[list, list] | None:
        """Wait until something is due; None when no widget is registered (the thread ends)."""
        me = threading.current_thread()
        with self._cond:
            while True:
                if not self._clients:
                    if self._thread is me:
                        self._thread = None
                    return None
                if self._flushes:
                    break
                wait = last + self.interval - time.monotonic() if self._dirty else None
                if wait is not None and wait <= 0:
                    break
                self._cond.wait(wait)
            flushes, self._flushes = self._flushes, []
            due = dict(self._dirty)
            self._dirty.clear()
            for reg, _done, _result in flushes:
                due.setdefault(id(reg), reg)
            for reg in due.values():
                reg._dirty = False
            return list(due.values()), flushes

    def _take_flushes(self) -> list:
        with self._cond:
            flushes, self._flushes = self._flushes, []
            return flushes


_DEFAULT: Pump | None = None
_DEFAULT_LOCK = threading.Lock()


def default_pump() -> Pump:
    """The process-wide pump every yeswidget widget registers with (created on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Pump()
        return _DEFAULT


def register(apply: Callable[[], None], *, name: str = "") -> Registration:
    """Register ``apply`` with :func:`default_pump`."""
    return default_pump().register(apply, name=name)
