"""Old import path of :mod:`yeswidget.widgets.chart` (kept so existing imports keep working)."""
from .widgets.chart import *  # noqa: F401,F403
from .widgets.chart import __all__  # noqa: F401
