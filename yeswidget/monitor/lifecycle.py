"""The loop's lifecycle: ``epochs(n)``, and how a run ends (stop, interrupt, fail, finish, close).

Functions of the :class:`~yeswidget.monitor.Monitor` they are given (its façade calls them).
One Ctrl-C stops at once; a loop left early is "stopped" (and "failed" when the exception
that left it goes uncaught, see :mod:`.uncaught`); every finished epoch is kept.
"""
from __future__ import annotations

import sys
import time
import traceback as traceback_module
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..core.bus import SUBSCRIBER_TIMEOUT
from . import hooks
from .registry import release

if TYPE_CHECKING:
    from .monitor import Monitor

__all__ = ["epochs", "stop", "interrupt", "relay_interrupt", "stop_bus", "fail", "finish", "close"]


def epochs(m: Monitor, n: int) -> Iterator[int]:
    """``for epoch in monitor.epochs(n):`` calls :meth:`epoch_end` after each body, then :meth:`finish`.

    Stops early (status ``stopped``) when :meth:`stop` was called; one Ctrl-C stops at once.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"epochs(n) needs an int n ≥ 0; got {n!r}")
    m._check_open()
    reopen(m, n)
    m.epochs_total = n
    m.store.update_config(epochs=n)
    if m._t_start is None:
        m._t_start = time.perf_counter()
    completed = False
    caller = sys._getframe(1)  # the frame running the loop: its code is in the traceback of a failure
    loop_code = caller.f_code
    del caller
    m._uncaught.disarm()
    try:
        for epoch in range(m.epoch, n):
            if m.stop_requested or m._closed:
                break
            yield epoch
            if m._closed:  # closed meanwhile (by a subscriber, another thread): the run has ended
                break
            if m._discard_epoch:
                m._discard_epoch = False  # left mid-epoch: no record of a partial epoch
                m.steps.flush()
                break
            m.epoch_end()
        completed = not m.stop_requested
    except GeneratorExit:
        # the loop was left early: a break or return, or an exception in the loop body, which
        # never enters this generator. "stopped" for now; an exception that goes uncaught
        # (the cell or the script fails with it) turns the run into "failed" (see .uncaught)
        if m.run.status == "running" and m.epoch < n:
            m.finish("stopped")
            m.store.note(f"the training loop was left after epoch {m.epoch} of {n}")
            m._uncaught.arm(loop_code)
        raise
    except KeyboardInterrupt:
        m.interrupt()
        raise
    except BaseException as exc:
        m.fail(exc)
        raise
    finally:
        if m.run.status == "running":
            m.finish("finished" if completed else "stopped")


def reopen(m: Monitor, n: int) -> None:
    status = m.run.status
    if status == "running":
        return
    if status == "finished" and n > m.epoch:
        m.stop_requested = False
        m.store.set_status("running", f"continued to {n} epochs")
        return
    raise RuntimeError(
        f"this run is {status} after {m.epoch} epochs, so epochs({n}) has nothing to do"
        + ("; ask for more epochs than that to continue it" if status == "finished" else
           "; create a new Monitor for a new run"))


def stop(m: Monitor, *, discard_epoch: bool = False) -> None:
    """Ask a loop driven by :meth:`epochs` to stop after the current epoch.

    ``discard_epoch=True``: the current epoch was cut short, so it is not certified
    (its step losses are kept).
    """
    m.stop_requested = True
    m._discard_epoch = bool(discard_epoch)


def interrupt(m: Monitor) -> None:
    """Stop at once (Ctrl-C): drop pending bound updates, keep every finished epoch, end threads."""
    m.stop_requested = True
    m.worker.cancel()
    m.steps.flush()
    m.worker.stop(timeout=1.5)  # records the epochs left in the queue, without updates
    if m.run.status == "running":
        m.store.set_status("stopped", f"interrupted after epoch {m.epoch}")
    m.bus.stop(timeout=0.5)


def relay_interrupt(m: Monitor) -> None:
    """A KeyboardInterrupt raised in a subscriber is raised here, in the training thread, once."""
    if m.bus.interrupted is not None and not m.bus.on_dispatcher and not m.worker.on_worker:
        exc = m.bus.take_interrupt()
        raise KeyboardInterrupt(f"a subscriber raised KeyboardInterrupt ({exc}); the run stops here") from exc


def stop_bus(m: Monitor) -> None:
    """End the dispatcher, waiting at most SUBSCRIBER_TIMEOUT for subscribers (once per run)."""
    if m._subscribers_late:
        m.bus.stop(timeout=0)
    elif not m.bus.stop(timeout=SUBSCRIBER_TIMEOUT):
        m._subscribers_late = True
        m.store.note(f"a subscriber was still busy {SUBSCRIBER_TIMEOUT:.0f} s after the run ended: the rest of "
                     "its events is delivered in the background (the run log does not wait for it)")


def fail(m: Monitor, exc: BaseException) -> None:
    """Mark the run failed with the exception and its last frames (the record is kept)."""
    frames = traceback_module.format_exception(type(exc), exc, exc.__traceback__)
    m.worker.wait()
    m.store.set_status("failed", f"{type(exc).__name__}: {exc}", "".join(frames[-6:]))
    if m._closed:  # failed after close (an uncaught exception seen later): deliver, end the thread
        stop_bus(m)


def finish(m: Monitor, status: str = "finished") -> None:
    """End the run: wait for the bounds, then set ``status`` (unless it already diverged or failed)."""
    m.steps.flush()
    m.worker.wait()
    if m.run.status == "running":
        m.store.set_status(status, "")
    # idle threads would keep this monitor (and its data) alive; they restart if needed
    m.worker.stop()
    stop_bus(m)


def close(m: Monitor) -> None:
    """Remove every hook, stop the threads, drop activations (safe to call twice)."""
    if m._closed:
        return
    try:
        m.steps.flush()  # keep the last step losses, also after a failure
        if m.run.status == "running":
            done = m.epochs_total in (None, m.epoch) and m.epoch > 0
            m.finish("finished" if done else "stopped")
    finally:
        m._closed = True
        hooks.remove(m)
        release(m.model, m)
        m.worker.stop()
        stop_bus(m)
        m._Y_metric = None
        m._shadow = None  # the model's copy: its memory goes with the monitor
        for handle in getattr(m, "outputs", {}).values():  # the run log: the last fields and the final sync
            handle.remove()
