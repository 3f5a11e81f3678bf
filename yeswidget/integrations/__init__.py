"""Where a run goes besides the widget: a crash-safe run log and the trackers people already use.

* :class:`RunLog` / :func:`load_run` / :func:`load_runs`: the JSON-lines run log (``runlog``);
* :class:`~yeswidget.outputs.tensorboard.TensorBoardOutput` (``pip install "yeswidget[tensorboard]"``),
  :class:`~yeswidget.outputs.mlflow.MlflowOutput` (``[mlflow]``),
  :class:`~yeswidget.outputs.wandb.WandbOutput` (``[wandb]``): imported only when asked for;
* :func:`find_plateau` / :func:`plateau_note`: the yellow-plateau rule every output shares;
* :func:`epoch_metrics`: the ``yes/…`` metrics every tracker logs.

Each output is a monitor subscriber: ``handle = Output(...).attach(monitor)``; ``handle.remove()``
stops it (safe twice; the handle is a context manager). ``output.replay(run)`` writes a saved run.
"""
from __future__ import annotations

from .metrics import epoch_metrics, verdict_summary
from .plateau import Plateau, find_plateau, plateau_note, plateau_starts
from .reopen import SavedRun, reopen
from .runlog import RunLog, enable_run_log, load_run, load_runs

__all__ = [
    "RunLog", "load_run", "load_runs", "enable_run_log", "reopen", "SavedRun",
    "Plateau", "find_plateau", "plateau_starts", "plateau_note",
    "epoch_metrics", "verdict_summary",
    "TensorBoardOutput", "MlflowOutput", "WandbOutput",
]

_LAZY = {
    "TensorBoardOutput": ".tensorboard",
    "MlflowOutput": ".mlflow",
    "WandbOutput": ".wandb",
}


def __getattr__(name):
    # each tracker library is imported only when its output is asked for
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'yeswidget.outputs' has no attribute {name!r}")
