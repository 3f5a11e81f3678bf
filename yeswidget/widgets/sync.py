"""Small helpers for writing widget state as diffs, and for measuring it.

``set_arrays`` / ``set_traits`` write a trait only when its value changed (NaN-aware
for arrays), so nothing identical is resent; ``set_line`` does so for a ``Lines`` mark's data,
cut to what bqplot can draw. ``iter_widgets`` walks every widget
model reachable from a root; ``state_nbytes`` measures what a new view loads.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets
import numpy as np

__all__ = ["f32", "drawable", "set_arrays", "set_line", "set_traits", "iter_widgets", "state_nbytes", "close_all"]


def f32(values: Any) -> np.ndarray:
    """A contiguous float32 copy (what bqplot sends as a binary buffer)."""
    return np.ascontiguousarray(values, dtype=np.float32)


def drawable(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a bqplot ``Lines`` as float32, cut after the last point where every curve is finite.

    bqplot lays out each curve's label (hidden, but still placed) at the curve's last point, and writes
    the path of a curve with no finite point as ``d="null"``: a non-finite last point is a console error
    in the browser (``translate(x,undefined)``). Non-finite points before it stay: a gap in the line.
    """
    x, y = f32(x), f32(y)
    n = min(x.shape[-1], y.shape[-1]) if x.ndim and y.ndim else 0
    if n == 0:
        return x, y
    finite = np.isfinite(x[..., :n]).reshape(-1, n).all(axis=0) & np.isfinite(y[..., :n]).reshape(-1, n).all(axis=0)
    kept = np.flatnonzero(finite)
    end = int(kept[-1]) + 1 if kept.size else 0
    if end == 0:
        return np.empty(0, np.float32), np.empty(0, np.float32)
    return x[..., :end], y[..., :end]


def _same(old: Any, new: np.ndarray) -> bool:
    if not isinstance(old, np.ndarray) or old.shape != new.shape or old.dtype != new.dtype:
        return False
    if new.dtype.kind == "f":
        return bool(np.array_equal(old, new, equal_nan=True))
    return bool(np.array_equal(old, new))


def set_arrays(mark: widgets.Widget, **arrays: np.ndarray) -> None:
    """Assign array traits only when they changed (NaN-aware)."""
    for name, value in arrays.items():
        if not _same(getattr(mark, name), value):
            setattr(mark, name, value)


def set_line(mark: widgets.Widget, x: Any, y: Any) -> None:
    """Assign a ``Lines`` mark's ``x`` and ``y`` (cut by :func:`drawable`) when they changed."""
    x, y = drawable(x, y)
    set_arrays(mark, x=x, y=y)


def set_traits(widget: widgets.Widget, **values: Any) -> None:
    """Assign plain traits (numbers, strings, lists, dicts) only when they changed."""
    for name, value in values.items():
        old = getattr(widget, name)
        if isinstance(old, (list, tuple)) and isinstance(value, (list, tuple)):
            if list(old) == list(value):
                continue
        elif old == value and type(old) is type(value):
            continue
        setattr(widget, name, value)


def _widget_items(value: Any) -> Iterator[widgets.Widget]:
    if isinstance(value, widgets.Widget):
        yield value
    elif isinstance(value, (list, tuple)):
        yield from (v for v in value if isinstance(v, widgets.Widget))
    elif isinstance(value, dict):
        yield from (v for v in value.values() if isinstance(v, widgets.Widget))


def iter_widgets(root: widgets.Widget) -> Iterator[widgets.Widget]:
    """Every widget reachable from ``root`` through its traits (children, marks, scales, layout, …)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        yield w
        for name in w.trait_names():
            try:
                value = getattr(w, name)
            except Exception:  # pragma: no cover - exotic traits
                continue
            stack.extend(item for item in _widget_items(value) if id(item) not in seen)


def close_all(*roots: widgets.Widget) -> None:
    """Close every widget model reachable from ``roots`` (each once)."""
    found: dict[int, widgets.Widget] = {}
    for root in roots:
        for w in iter_widgets(root):
            found.setdefault(id(w), w)
    for w in found.values():
        widgets.Widget.close(w)


def state_nbytes(root: widgets.Widget, *, only_synced: bool = True) -> int:
    """Bytes of the full widget state under ``root``: JSON text plus binary buffers.

    What a front end receives when it first renders ``root`` (each widget's
    ``get_state()``, numpy arrays counted by their buffer size).
    """
    from ipywidgets.widgets.widget import _remove_buffers

    total = 0
    for w in iter_widgets(root):
        if only_synced and getattr(w, "comm", None) is None:  # closed: nothing to send
            continue
        state, _paths, buffers = _remove_buffers(w.get_state())
        total += len(json.dumps(state, default=str, ensure_ascii=False).encode("utf-8"))
        total += sum(memoryview(b).nbytes for b in buffers)
    return total
