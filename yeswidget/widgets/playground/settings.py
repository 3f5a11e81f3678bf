"""A Playground setup as one copyable line, and back.

    task=phase-retrieval&lr=0.001&batch_size=50&epochs=50&optimizer=adam&schedule=step&seed=0&depth=5&width=100&every=auto

Query-string syntax (``urllib.parse``), so it also fits after ``?`` in a link.
"""
from __future__ import annotations

import urllib.parse
from typing import Any

__all__ = ["SETTINGS_KEYS", "format_settings", "parse_settings"]

#: the keys of a settings string, in order, with how each value is read back
SETTINGS_KEYS: dict[str, Any] = {
    "task": str, "lr": float, "batch_size": int, "epochs": int, "optimizer": str, "schedule": str,
    "seed": int, "depth": int, "width": int, "every": str,
}


def format_settings(values: dict[str, Any]) -> str:
    """``values`` (keys of :data:`SETTINGS_KEYS`) as one line; floats exactly (``repr``)."""
    return urllib.parse.urlencode([(k, repr(values[k]) if isinstance(values[k], float) else str(values[k]))
                                   for k in SETTINGS_KEYS if k in values])


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
