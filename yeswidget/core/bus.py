"""The event bus: publishers post, one dispatcher thread delivers.

A training loop or a bounds worker never runs a subscriber inline: :meth:`EventBus.publish`
only appends to a queue, and a single daemon thread calls every subscriber in publish
order. A slow display therefore never holds up training, and every subscriber sees the
events of a run in order, always from the same thread.

The dispatcher starts on the first publish and ends on :meth:`EventBus.stop` (it starts
again if more events come), so an idle or closed monitor leaves no thread.
"""
from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from .handle import Handle

__all__ = ["EventBus", "wait_for"]

Callback = Callable[[Any], None]
_POLL = 0.05  # seconds between checks in every wait: keeps waits interruptible by Ctrl-C


def wait_for(condition: threading.Condition, predicate: Callable[[], bool], timeout: float | None) -> bool:
    """``condition.wait_for`` in short slices, so a KeyboardInterrupt gets through at once.

    Call with ``condition`` held. Returns the predicate's last value.
    """
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    while not predicate():
        remaining = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
        if remaining <= 0:
            return predicate()
        condition.wait(remaining)
    return True


class EventBus:
    """Deliver published events to subscribers on one dispatcher thread.

    ``on_error(callback, exc)`` is told when a subscriber raises (it never stops delivery).
    """

    def __init__(self, name: str = "yeswidget-events",
                 on_error: Callable[[Callback, BaseException], None] | None = None) -> None:
        self.name = name
        self._on_error = on_error
        self._subscribers: list[Callback] = []
        self._queue: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._published = 0
        self._delivered = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: a muted bus drops what is published (under torch.distributed: every rank but rank zero)
        self.muted = False

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
            self._queue.append(event)
            self._published += 1
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._dispatch, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:  # stopping, nothing left to deliver
                    if self._thread is threading.current_thread():
                        self._thread = None
                    self._cond.notify_all()
                    return
                event = self._queue.popleft()
                subscribers = list(self._subscribers)
            for callback in subscribers:
                try:
                    callback(event)
                except Exception as exc:  # a broken display must not stop delivery
                    if self._on_error is not None:
                        self._on_error(callback, exc)
            with self._cond:
                self._delivered += 1
                self._cond.notify_all()

    # ---------------------------------------------------------------- waiting
    @property
    def on_dispatcher(self) -> bool:
        """Whether the calling code runs on this bus's dispatcher thread (inside a subscriber)."""
        return self._thread is threading.current_thread()

    def drain(self, timeout: float | None = None) -> bool:
        """Block until every event published so far was delivered; False on timeout.

        Inside a subscriber it returns at once (what is queued is delivered after it).
        """
        if self.on_dispatcher:
            return not self._queue
        with self._cond:
            target = self._published
            return wait_for(self._cond, lambda: self._delivered >= target, timeout)

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Deliver what is queued, then end the dispatcher thread (a later publish restarts it)."""
        with self._cond:
            thread = self._thread
            if thread is None:
                return True
            self._stopping = True
            self._cond.notify_all()
        if thread is threading.current_thread():
            return True  # a subscriber stopped the bus: the thread ends after this callback
        with self._cond:
            ended = wait_for(self._cond, lambda: self._thread is not thread, timeout)
        thread.join(0.5 if ended else 0)  # it has left its loop: let it finish returning
        return ended and not thread.is_alive()

    def clear(self) -> None:
        """Forget every subscriber."""
        with self._cond:
            self._subscribers.clear()
