"""Old import path of :mod:`yeswidget.view.render` (kept so existing imports keep working)."""
from .view.render import *  # noqa: F401,F403
from .view.render import __all__  # noqa: F401
