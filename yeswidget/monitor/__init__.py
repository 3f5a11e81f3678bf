"""The monitor room: attaches to the user's model and loop through public hooks (no UI).

``Monitor`` composes a :class:`MonitorConfig`, layer discovery, the certification pass,
the cadence and the bounds worker; the run it produces lives in :mod:`yeswidget.core`.
"""
from ..core.zones import ZONE_WORDS
from .config import MonitorConfig
from .data import certification_set, describe_certification
from .discovery import UnsupportedModelError
from .monitor import Monitor
from .printer import TextPrinter

__all__ = ["Monitor", "MonitorConfig", "TextPrinter", "UnsupportedModelError",
           "certification_set", "describe_certification", "ZONE_WORDS"]
