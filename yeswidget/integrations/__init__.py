"""Where a run goes besides the widget: a crash-safe run log and the trackers people already use.

* :class:`RunLog` / :func:`load_run` / :func:`load_runs`: the JSON-lines run log (``runlog``);
* :class:`~yeswidget.integrations.tensorboard.TensorBoardOutput` (``pip install "yeswidget[tensorboard]"``),
  :class:`~yeswidget.integrations.mlflow.MlflowOutput` (``[mlflow]``),
  :class:`~yeswidget.integrations.wandb.WandbOutput` (``[wandb]``),
  :class:`~yeswidget.integrations.lightning.YesCallback` (``[lightning]``): imported only when asked for;
* :func:`epoch_metrics`: the ``yes/…`` metrics every tracker logs.

Each output is a monitor subscriber: ``handle = Output(...).attach(monitor)``; ``handle.remove()``
stops it (safe twice; the handle is a context manager). ``output.replay(run)`` writes a saved run.
"""
from __future__ import annotations

import importlib
from typing import Any

from .metrics import epoch_metrics, verdict_summary
from .runlog import RunLog, enable_run_log, load_run, load_runs

__all__ = [
    "RunLog", "load_run", "load_runs", "enable_run_log", "epoch_metrics", "verdict_summary",
    "TensorBoardOutput", "MlflowOutput", "WandbOutput", "YesCallback",
]

_LAZY = {
    "TensorBoardOutput": ".tensorboard",
    "MlflowOutput": ".mlflow",
    "WandbOutput": ".wandb",
    "YesCallback": ".lightning",
}


def __getattr__(name: str) -> Any:
    # each tracker library is imported only when its output is asked for
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
