"""One daemon thread that handles queued items one at a time, in order.

Started by the first :meth:`SerialThread.put`, ended by :meth:`SerialThread.stop` (after
what is queued), started again by a later put: an idle owner leaves no thread. The event
bus and the bounds worker are both built on it. Every wait is a loop of short waits, so
one Ctrl-C in the caller gets through at once.
"""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["SerialThread", "wait_for"]

Item = TypeVar("Item")
_POLL = 0.05  # seconds between checks in every wait


def wait_for(condition: threading.Condition, predicate: Callable[[], bool], timeout: float | None) -> bool:
    """``condition.wait_for`` in short slices, so a KeyboardInterrupt gets through at once.

    Call with ``condition`` held. Returns the predicate's last value.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while not predicate():
        remaining = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
        if remaining <= 0:
            return predicate()
        condition.wait(remaining)
    return True


class SerialThread(Generic[Item]):
    """Call ``handle(item)`` for each :meth:`put` item, in order, on one daemon thread named ``name``.

    ``cond``: the owner's condition (a re-entrant lock), so the owner's own counters change
    under the same lock; it is notified after every item.
    """

    def __init__(self, handle: Callable[[Item], None], *, name: str,
                 cond: threading.Condition | None = None) -> None:
        self._handle = handle
        self.name = name
        self.cond = cond if cond is not None else threading.Condition()
        self.items: collections.deque[Item] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def on_thread(self) -> bool:
        """Whether the calling code runs on this thread (inside ``handle``)."""
        return self._thread is threading.current_thread()

    def put(self, item: Item) -> None:
        """Queue ``item`` and make sure the thread runs; never calls ``handle`` itself."""
        with self.cond:
            self.items.append(item)
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self.cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.items and not self._stopping:
                    self.cond.wait()
                if not self.items:  # stopping, nothing left
                    if self._thread is threading.current_thread():
                        self._thread = None
                    self.cond.notify_all()
                    return
                item = self.items.popleft()
            self._handle(item)

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Handle what is queued, then end the thread; True once it has ended (at once on the thread itself)."""
        with self.cond:
            thread = self._thread
            if thread is None:
                return True
            self._stopping = True
            self.cond.notify_all()
            if thread is threading.current_thread():
                return True  # stopped from inside ``handle``: the thread ends after it returns
            ended = wait_for(self.cond, lambda: self._thread is not thread, timeout)
        thread.join(0.5 if ended else 0)  # it has left its loop: let it finish returning
        return ended and not thread.is_alive()
