"""A removable handle, like ``torch.utils.hooks.RemovableHandle``: ``remove()``
is safe to call twice and the handle works as a context manager."""
from __future__ import annotations

import threading
from collections.abc import Callable


class Handle:
    """Undo a registration with :meth:`remove` (idempotent, thread-safe)."""

    def __init__(self, undo: Callable[[], None]) -> None:
        self._undo: Callable[[], None] | None = undo
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._undo is not None

    def remove(self) -> None:
        with self._lock:
            undo, self._undo = self._undo, None
        if undo is not None:
            undo()

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()
