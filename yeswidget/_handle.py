"""Compatibility path: the handle lives in :mod:`yeswidget.core.handle`."""
from .core.handle import Handle  # noqa: F401
