"""yeswidget: see, while a network trains, whether the training is any good.

The YES training bounds (Yeganegi, Eamaz, Soltanalian, 2024) drawn live as a
red / yellow / green cloud behind the loss curve, in Jupyter.

``import yeswidget`` loads torch but no widget library: the widgets
(``CloudChart``, ``LiveCloud``, ``Playground``) and ``tasks`` load on first use.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.logread import load_run
from .core.persist import register_log_reader
from .core.run import Run
from .engine.bounds import YesCloud
from .engine.losses import QuantileLoss
from .integrations.runlog import enable_run_log
from .monitor import Monitor, MonitorConfig, TextPrinter
from .monitor.outputs import add_default_output

# the wiring (this is the only module that sees every room): the run record reads a run log through
# persist (the reader builds Runs, so Run cannot import it), and the monitor imports no output, so the
# run log's reader and the monitor's default run log are plugged in here
register_log_reader(load_run)
add_default_output("run_log", lambda monitor: enable_run_log(monitor, monitor.config.runs_dir))

if TYPE_CHECKING:  # the lazily loaded names, for type checkers and IDEs
    from .training import tasks
    from .training.lr_find import lr_find
    from .training.slimtrain import SlimTrain
    from .tuning.sweep import Sweep, sweep
    from .widgets.chart import CloudChart
    from .widgets.live import LiveCloud
    from .widgets.playground import Playground
    from .widgets.reopen import reopen

__version__ = "0.1.0"

__all__ = ["YesCloud", "QuantileLoss", "Monitor", "MonitorConfig", "TextPrinter", "Run", "load_run", "CloudChart",
           "LiveCloud",
           "Playground", "reopen", "tasks", "SlimTrain", "sweep", "Sweep", "lr_find",
           "__version__"]

#: lazily loaded name -> module that defines it (they import ipywidgets / bqplot / scikit-learn)
_LAZY = {"CloudChart": ".widgets.chart", "LiveCloud": ".widgets.live", "Playground": ".widgets.playground",
         "tasks": ".training.tasks", "reopen": ".widgets.reopen", "SlimTrain": ".training.slimtrain",
         "sweep": ".tuning.sweep", "Sweep": ".tuning.sweep", "lr_find": ".training.lr_find"}


def __getattr__(name: str) -> Any:
    # the widgets import ipywidgets/bqplot: load them only when asked for, so the
    # engine and the monitor stay usable from a plain script
    if name not in _LAZY:
        raise AttributeError(f"module 'yeswidget' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = module if name == "tasks" else getattr(module, name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    """The public names, including the lazily loaded ones."""
    return sorted(__all__)
