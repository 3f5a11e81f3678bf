"""A Playground setup as one copyable line, and back.

    task=phase-retrieval&lr=0.001&batch_size=50&epochs=50&optimizer=adam&schedule=step&seed=0&depth=5&width=100&every=auto

Query-string syntax (``urllib.parse``), so it also fits after ``?`` in a link.
"""
from __future__ import annotations

import dataclasses
import urllib.parse
from typing import TYPE_CHECKING, Any

from ...core.formats import lr_text
from ...training.recipe import SETTINGS_KEYS as RECIPE_SETTINGS_KEYS
from ...training.recipe import Settings
from ...training.tasks import get_task

if TYPE_CHECKING:
    from .app import Playground

__all__ = ["SETTINGS_KEYS", "format_settings", "parse_settings", "from_settings"]

_RECIPE_TYPES = {f.name: type(f.default) for f in dataclasses.fields(Settings)}
#: the keys of a settings string, in order, with how each value is read back: the task, the
#: recipe's settings (yeswidget.training.recipe.SETTINGS_KEYS), the architecture, the cadence
SETTINGS_KEYS: dict[str, Any] = {
    "task": str, **{key: _RECIPE_TYPES[key] for key in RECIPE_SETTINGS_KEYS}, "depth": int, "width": int,
    "every": str,
}


def format_settings(values: dict[str, Any]) -> str:
    """``values`` (keys of :data:`SETTINGS_KEYS`) as one line: the learning rate rounded as people
    read it (:func:`~yeswidget.core.formats.lr_text`, ``lr=1.26e-04``), other floats exactly."""
    def text(key: str, value: Any) -> str:
        if key == "lr":
            return lr_text(value)
        return repr(value) if isinstance(value, float) else str(value)
    return urllib.parse.urlencode([(k, text(k, values[k])) for k in SETTINGS_KEYS if k in values])


def parse_settings(text: str) -> dict[str, Any]:
    """The values of a settings string (a clear ``ValueError`` on a key or value it cannot read)."""
    if not isinstance(text, str) or "=" not in text:
        raise ValueError(f"a settings string looks like 'task=digits&lr=0.001&…' (from pg.settings_string()); "
                         f"got {text!r}")
    values: dict[str, Any] = {}
    for key, raw in urllib.parse.parse_qsl(text.strip().lstrip("?"), keep_blank_values=True, strict_parsing=True):
        if key not in SETTINGS_KEYS:
            raise ValueError(f"unknown key {key!r} in the settings string; known keys: {', '.join(SETTINGS_KEYS)}")
        try:
            values[key] = SETTINGS_KEYS[key](raw)
        except ValueError:
            raise ValueError(f"{key}={raw!r} in the settings string is not a valid "
                             f"{SETTINGS_KEYS[key].__name__}") from None
    if values.get("every", "auto") != "auto":
        try:
            values["every"] = int(values["every"])
        except ValueError:
            raise ValueError(f"every={values['every']!r}: 'auto' or a whole number of epochs") from None
    return values


def from_settings(cls: type[Playground], task: Any, text: str, **kwargs: Any) -> Playground:
    """A Playground set up as ``text`` says (see :meth:`Playground.from_settings`)."""
    values = parse_settings(text)
    if task is None:
        if "task" not in values:
            raise ValueError("the settings string names no task: pass the Task as the first argument")
        task = get_task(values["task"])
    elif values.get("task", task.name) != task.name:
        raise ValueError(f"these settings are for the task {values['task']!r}, not {task.name!r}: "
                         f"pass that task, or None to build the built-in one")
    given = {k: values[k] for k in ("lr", "batch_size", "epochs", "optimizer", "schedule") if k in values}
    pg = cls(task, seed=values.get("seed", 0), every=values.get("every", "auto"), **given, **kwargs)
    arch = {k: values[k] for k in ("depth", "width") if k in values}
    if arch:
        try:
            pg.set_controls(**arch)
        except Exception:
            pg.close()
            raise
    return pg
