"""A loop left by an exception is recorded as ``failed``, not ``stopped``.

``for epoch in monitor.epochs(n): …`` cannot see an exception raised in the loop body:
the generator is only closed. The monitor then records ``stopped`` and arms an
:class:`UncaughtWatch`; if the exception goes uncaught, the watch turns the run into
``failed`` with its traceback:

* in IPython/Jupyter, a ``post_run_cell`` callback reads ``result.error_in_exec``
  (registered while the watch is armed, unregistered after the cell);
* elsewhere, a chained ``sys.excepthook`` / ``threading.excepthook`` (a script, a
  background thread) does the same before the previous hook runs.

Only an exception whose traceback passes through the frame that ran the loop counts,
so a ``break`` followed by an unrelated error elsewhere is not blamed on the run.
"""
from __future__ import annotations

import sys
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["UncaughtWatch"]


class _Failing(Protocol):
    def fail(self, exc: BaseException) -> None: ...

    @property
    def run(self) -> Any: ...


_armed: weakref.WeakSet[UncaughtWatch] = weakref.WeakSet()
_lock = threading.Lock()
_previous_sys: Callable[..., Any] | None = None
_previous_threading: Callable[..., Any] | None = None


def _passes_through(tb: types.TracebackType | None, code: types.CodeType) -> bool:
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


def _offer(exc: BaseException | None) -> None:
    """Give an uncaught exception to every armed watch (each takes it if it left its loop)."""
    if exc is None:
        return
    with _lock:
        watches = list(_armed)
    for watch in watches:
        watch.offer(exc)


def _sys_hook(kind: type[BaseException], value: BaseException, tb: types.TracebackType | None) -> None:
    previous = _previous_sys or sys.__excepthook__  # read first: the last watch taking it uninstalls us
    try:
        _offer(value)
    finally:
        previous(kind, value, tb)


def _threading_hook(args: Any) -> None:
    previous = _previous_threading or threading.__excepthook__
    try:
        _offer(args.exc_value)
    finally:
        previous(args)


def _install() -> None:
    global _previous_sys, _previous_threading
    if sys.excepthook is not _sys_hook:
        _previous_sys, sys.excepthook = sys.excepthook, _sys_hook
    if threading.excepthook is not _threading_hook:
        _previous_threading, threading.excepthook = threading.excepthook, _threading_hook


def _uninstall() -> None:
    """Restore the previous hooks once no watch is armed (unless someone chained after us)."""
    global _previous_sys, _previous_threading
    if sys.excepthook is _sys_hook:
        sys.excepthook, _previous_sys = _previous_sys or sys.__excepthook__, None
    if threading.excepthook is _threading_hook:
        threading.excepthook, _previous_threading = _previous_threading or threading.__excepthook__, None


def _ipython() -> Any:
    module = sys.modules.get("IPython")
    if module is None:
        return None
    try:
        return module.get_ipython()
    except Exception:  # pragma: no cover - a broken IPython install
        return None


class UncaughtWatch:
    """Upgrades a monitor's provisional ``stopped`` to ``failed`` if the exception that left
    its loop goes uncaught. Holds the monitor weakly."""

    def __init__(self, monitor: _Failing) -> None:
        self._monitor = weakref.ref(monitor)
        self._code: types.CodeType | None = None
        self._shell: Any = None

    @property
    def armed(self) -> bool:
        return self._code is not None

    def arm(self, loop_code: types.CodeType) -> None:
        """The loop run by ``loop_code`` was left early: watch for an uncaught exception."""
        self.disarm()
        self._code = loop_code
        shell = _ipython()
        if shell is not None:
            shell.events.register("post_run_cell", self._after_cell)
            self._shell = shell
            return
        with _lock:
            _armed.add(self)
            _install()

    def disarm(self) -> None:
        self._code = None
        if self._shell is not None:
            try:
                self._shell.events.unregister("post_run_cell", self._after_cell)
            except ValueError:
                pass  # already unregistered
            self._shell = None
        with _lock:
            _armed.discard(self)
            if not _armed:
                _uninstall()

    def offer(self, exc: BaseException) -> bool:
        """Fail the run with ``exc`` if it left the watched loop; True if taken."""
        code, monitor = self._code, self._monitor()
        if code is None or monitor is None or not _passes_through(exc.__traceback__, code):
            return False
        self.disarm()
        if monitor.run.status == "stopped" and not isinstance(exc, KeyboardInterrupt):
            monitor.fail(exc)  # an interrupt stays "stopped"
        return True

    def _after_cell(self, result: Any) -> None:
        error = getattr(result, "error_in_exec", None)
        try:
            if error is not None:
                self.offer(error)
        finally:
            self.disarm()  # the cell is over: a later error is not this loop's
