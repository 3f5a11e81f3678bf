"""One watcher per model: re-running a notebook cell that builds a second monitor on the
same model closes the first, so one set of hooks stays and the first one's tensors are freed."""
from __future__ import annotations

import threading
import warnings
import weakref
from typing import Any, Protocol

from torch import nn

__all__ = ["claim", "release"]


class _Closable(Protocol):
    def close(self) -> None: ...


_owners: weakref.WeakKeyDictionary[nn.Module, weakref.ref[Any]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def claim(model: nn.Module, owner: _Closable, *, replaces: object | None = None) -> None:
    """Make ``owner`` the one watcher of ``model``; close a previous one (with one warning),
    unless it is ``replaces`` (the same watcher handing over, e.g. a monitor to its widget)."""
    with _lock:
        previous_ref = _owners.get(model)
        _owners[model] = weakref.ref(owner)
    previous = previous_ref() if previous_ref is not None else None
    if previous is None or previous is owner or previous is replaces or getattr(previous, "closed", False):
        return
    warnings.warn(
        f"{type(owner).__name__}: this model was already watched by a {type(previous).__name__} (a cell run "
        "twice?); the earlier one is closed so only one set of hooks stays",
        stacklevel=3,
    )
    try:  # the closed one says why when it is used again
        previous.closed_reason = f"another {type(owner).__name__} now watches this model"
    except AttributeError:  # pragma: no cover - an owner with slots
        pass
    previous.close()


def release(model: nn.Module, owner: object) -> None:
    """Forget ``owner`` as the watcher of ``model`` (it closed)."""
    with _lock:
        current = _owners.get(model)
        if current is not None and current() is owner:
            del _owners[model]
