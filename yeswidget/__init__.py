"""yeswidget: see, while a network trains, whether the training is any good.

The YES training bounds (Yeganegi, Eamaz, Soltanalian, 2024) drawn live as a
red / yellow / green cloud behind the loss curve, in Jupyter.
"""
from .bounds import YesCloud
from .monitor import Monitor, TextPrinter
from .run import Run

__version__ = "0.1.0"

__all__ = ["YesCloud", "Monitor", "TextPrinter", "Run", "CloudChart", "LiveCloud", "Playground", "tasks",
           "__version__"]


def __getattr__(name):
    # the widgets import ipywidgets/bqplot: load them only when asked for, so the
    # engine and the monitor stay usable from a plain script
    if name == "CloudChart":
        from .widgets.chart import CloudChart
        return CloudChart
    if name == "LiveCloud":
        from .live import LiveCloud
        return LiveCloud
    if name == "Playground":
        from .playground import Playground
        return Playground
    if name == "tasks":
        import importlib
        return importlib.import_module(".tasks", __name__)
    raise AttributeError(f"module 'yeswidget' has no attribute {name!r}")
