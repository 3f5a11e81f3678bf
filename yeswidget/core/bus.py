"""The event bus: publishers post, one dispatcher thread delivers.

A training loop or a bounds worker never runs a subscriber inline: :meth:`EventBus.publish`
only appends to a queue, and a single daemon thread calls every subscriber in publish
order. A slow display therefore never holds up training, and every subscriber sees the
events of a run in order, always from the same thread.

The dispatcher starts on the first publish and ends on :meth:`EventBus.stop` (it starts
again if more events come), so an idle or closed monitor leaves no thread.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .handle import Handle
from .serial import SerialThread, wait_for

__all__ = ["EventBus", "wait_for", "SUBSCRIBER_TIMEOUT"]

#: how long the end of a run (``finish()``, ``close()``) waits for subscribers to catch up, in
#: seconds; a slower or hung subscriber gets the rest in the background (the run log never waits)
SUBSCRIBER_TIMEOUT = 5.0

Callback = Callable[[Any], None]


class EventBus:
    """Deliver published events to subscribers on one dispatcher thread.

    ``on_error(callback, exc)`` is told when a subscriber raises anything, ``BaseException``
    included (it never stops delivery). A ``KeyboardInterrupt`` raised by a subscriber is also
    kept in :attr:`interrupted`, for the training thread to raise again (:meth:`take_interrupt`).
    """

    def __init__(self, name: str = "yeswidget-events",
                 on_error: Callable[[Callback, BaseException], None] | None = None) -> None:
        self.name = name
        self._on_error = on_error
        self._subscribers: list[Callback] = []
        self._cond = threading.Condition()
        self._dispatcher: SerialThread[Any] = SerialThread(self._deliver, name=name, cond=self._cond)
        self._published = 0
        self._delivered = 0
        #: a muted bus drops what is published (under torch.distributed: every rank but rank zero)
        self.muted = False
        #: a KeyboardInterrupt a subscriber raised, not yet raised again where training runs
        self.interrupted: KeyboardInterrupt | None = None

    # ------------------------------------------------------------ subscribers
    def subscribe(self, callback: Callback) -> Handle:
        """Call ``callback(event)`` for every later event, on the dispatcher thread."""
        if not callable(callback):
            raise TypeError(f"callback must be callable; got {type(callback).__name__}")
        with self._cond:
            self._subscribers.append(callback)

        def undo() -> None:
            with self._cond:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return Handle(undo)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    # ------------------------------------------------------------- publishing
    def publish(self, event: Any) -> None:
        """Queue ``event`` for delivery; never blocks and never calls a subscriber."""
        if self.muted:
            return
        with self._cond:
            self._published += 1
            if not self._subscribers and self._delivered == self._published - 1:
                # nobody listens and nothing is queued: delivering it would call no one, so it is
                # delivered now, without waking (or starting) the dispatcher thread; a training loop
                # with no display pays no thread switch per event
                self._delivered += 1
                self._cond.notify_all()
                return
            self._dispatcher.put(event)

    def _deliver(self, event: Any) -> None:
        with self._cond:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except BaseException as exc:  # a broken display (even one calling sys.exit) must not stop delivery
                if isinstance(exc, KeyboardInterrupt):
                    self.interrupted = exc
                if self._on_error is not None:
                    try:
                        self._on_error(callback, exc)
                    except Exception:  # pragma: no cover - the error handler itself failed
                        pass
        with self._cond:
            self._delivered += 1
            self._cond.notify_all()

    def take_interrupt(self) -> KeyboardInterrupt | None:
        """The KeyboardInterrupt a subscriber raised (once), or None."""
        exc, self.interrupted = self.interrupted, None
        return exc

    # ---------------------------------------------------------------- waiting
    @property
    def on_dispatcher(self) -> bool:
        """Whether the calling code runs on this bus's dispatcher thread (inside a subscriber)."""
        return self._dispatcher.on_thread

    def drain(self, timeout: float | None = None) -> bool:
        """Block until every event published so far was delivered; False on timeout.

        Inside a subscriber it returns at once (what is queued is delivered after it).
        """
        if self.on_dispatcher:
            return not self._dispatcher.items
        with self._cond:
            target = self._published
            return wait_for(self._cond, lambda: self._delivered >= target, timeout)

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Deliver what is queued, then end the dispatcher thread (a later publish restarts it)."""
        return self._dispatcher.stop(timeout)

    def clear(self) -> None:
        """Forget every subscriber."""
        with self._cond:
            self._subscribers.clear()
