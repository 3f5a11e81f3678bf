"""What every monitor attaches besides the ``outputs=[...]`` it is given: the default outputs.

The monitor imports no output; the package registers its defaults here (``yeswidget/__init__.py``
plugs in the crash-safe run log). A factory takes the monitor and returns a handle (``remove()``)
or None (turned off, e.g. ``runs_dir=None``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["add_default_output", "default_outputs", "attach_outputs"]

OutputFactory = Callable[[Any], Any]

_DEFAULTS: dict[str, OutputFactory] = {}


def add_default_output(name: str, factory: OutputFactory) -> None:
    """Attach ``factory(monitor)`` to every new monitor (on the main process), as ``monitor.outputs[name]``."""
    _DEFAULTS[name] = factory


def default_outputs() -> dict[str, OutputFactory]:
    """The registered default outputs, by name."""
    return dict(_DEFAULTS)


def attach_outputs(monitor: Any, outputs: Any, *, defaults: bool) -> dict[str, Any]:
    """Attach the default outputs (when ``defaults``) and each of ``outputs`` (objects with
    ``attach(monitor) -> handle``); the handles by name (a given output by its position)."""
    if outputs is None:
        outputs = ()
    if not isinstance(outputs, (list, tuple)) or not all(callable(getattr(o, "attach", None)) for o in outputs):
        raise TypeError("outputs must be a list of outputs, each with attach(monitor), e.g. "
                        f"outputs=[TensorBoardOutput('tb')]; got {outputs!r:.200}")
    handles: dict[str, Any] = {}
    if defaults:
        for name, factory in _DEFAULTS.items():
            handle = factory(monitor)
            if handle is not None:
                handles[name] = handle
    for index, output in enumerate(outputs):
        handles[f"output {index}"] = output.attach(monitor)
    return handles
