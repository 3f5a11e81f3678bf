"""Compatibility path: the run record lives in :mod:`yeswidget.core.run`."""
from .core.run import *  # noqa: F401,F403
from .core.run import __all__  # noqa: F401
