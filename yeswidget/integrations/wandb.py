"""Weights & Biases output: the YES metrics, the verdict in the run summary, alerts when training goes wrong.

    from yeswidget.integrations import WandbOutput
    WandbOutput(project="mlp").attach(monitor)      # or inside wandb.init(): logs into wandb.run

Works offline (``WANDB_MODE=offline`` or ``mode="offline"``: no account, no network; the run
is kept under ``dir`` for ``wandb sync``). History: the metrics of
:mod:`yeswidget.integrations.metrics` against ``yes/epoch``. Summary: ``yes/verdict``,
``yes/status``, ``yes/epochs_to_green``, ``yes/margin_db``. Alerts (``wandb.alert``, WARN):
the loss went back into red after having been yellow or green, and a yellow plateau.
Needs ``pip install "yeswidget[wandb]"``.
"""
from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ..core.plateau import plateau_starts
from ..core.run import EpochRecord, Run, StatusEvent
from ._base import Output
from .metrics import epoch_metrics, verdict_of

__all__ = ["WandbOutput"]


def _wandb() -> ModuleType:
    try:
        import wandb
    except ImportError as exc:
        raise ImportError('WandbOutput needs Weights & Biases: pip install "yeswidget[wandb]"') from exc
    return wandb


def back_in_red(records: Sequence[EpochRecord]) -> bool:
    """The last record is red, the one before was not, and some earlier one was yellow or green."""
    if len(records) < 2 or records[-1].zone != "red" or records[-2].zone == "red":
        return False
    return any(r.zone in ("yellow", "green") for r in records[:-1])


class WandbOutput(Output):
    """Log a run to W&B.

    ``wandb_run``: a run from ``wandb.init`` to log into; None: ``wandb.run`` if one is active,
    else a new run (``project``, ``dir``, ``mode``, named after the run's label, its settings
    as config, finished when the run ends). ``alerts``: call ``wandb.alert`` (kept locally
    in offline mode; a failing alert never stops training). ``alerts_sent`` lists their titles.
    """

    def __init__(self, wandb_run: Any = None, *, project: str = "yeswidget", dir: Any = None,
                 mode: str | None = None, alerts: bool = True) -> None:
        super().__init__()
        if mode not in (None, "online", "offline", "disabled"):
            raise ValueError(f"mode must be None (W&B's default), 'online', 'offline' or 'disabled'; got {mode!r}")
        self.wandb = _wandb()
        self.wandb_run = wandb_run if wandb_run is not None else self.wandb.run
        self.owns_run = self.wandb_run is None
        self.project, self.dir, self.mode = project, dir, mode
        self.alerts = bool(alerts)
        self.alerts_sent: list[str] = []

    def start(self, run: Run) -> None:
        if self.owns_run:
            self.wandb_run = self.wandb.init(project=self.project, dir=None if self.dir is None else str(self.dir),
                                             mode=self.mode, name=run.label or run.run_id, config=dict(run.config))
        self.wandb_run.define_metric("yes/epoch")
        self.wandb_run.define_metric("yes/*", step_metric="yes/epoch")
        self.wandb_run.summary["yes/run_id"] = run.run_id
        self.wandb_run.summary["yes/yes0"] = run.upper

    def on_epoch(self, record: EpochRecord) -> None:
        self.wandb_run.log({"yes/epoch": record.epoch, **epoch_metrics(record)})
        self.wandb_run.summary["yes/verdict"] = record.zone
        if not self.alerts:
            return
        if back_in_red(self.records):
            self._alert("YES: back in red",
                        f"epoch {record.epoch}: the loss went back above YES-0 after having been below it "
                        "(training has become ineffective: too large a learning rate?)")
        plateau = plateau_starts(self.records)
        if plateau is not None:
            self._alert("YES: yellow plateau", plateau.text)

    def _alert(self, title: str, text: str) -> None:
        try:
            self.wandb_run.alert(title=title, text=text, level=self.wandb.AlertLevel.WARN)
        except Exception as exc:  # an alert must never stop training (e.g. no alert support offline)
            self.run.warnings.append(f"W&B alert {title!r} not sent: {type(exc).__name__}: {exc}")
        else:
            self.alerts_sent.append(title)

    def on_status(self, event: StatusEvent) -> None:
        summary = self.wandb_run.summary
        summary["yes/verdict"] = verdict_of(self.run)
        summary["yes/status"] = event.status
        green = self.run.epochs_to_green
        summary["yes/epochs_to_green"] = -1 if green is None else green
        if self.run.final is not None:
            summary["yes/margin_db"] = self.run.final.margin

    def close(self) -> None:
        if self.owns_run and self.wandb_run is not None:
            run, self.wandb_run = self.wandb_run, None
            run.finish(exit_code=0 if self._run is None or self._run.status == "finished" else 1)
