"""MLflow output: the YES metrics per epoch, the verdict as a tag, the run and its report as artifacts.

    from yeswidget.integrations import MlflowOutput
    with mlflow.start_run():
        MlflowOutput().attach(monitor)          # logs into the active MLflow run
    MlflowOutput(tracking_uri="sqlite:///mlflow.db", experiment="mlp").attach(monitor)  # a new run

Metrics: those of :mod:`yeswidget.integrations.metrics` at step = epoch. Tags: ``yes.verdict``
(the zone, kept current), ``yes.status``, ``yes.plateau`` (the last plateau note).
Params: the run's settings as ``yes.<name>`` (logged with the first epoch). Artifacts,
when the run ends, under ``yeswidget/``: ``run.json``, ``report.png``, ``report.html``.
Needs ``pip install "yeswidget[mlflow]"`` (mlflow-skinny is enough). MLflow 3 refuses a
plain-folder (``file:``) store unless ``MLFLOW_ALLOW_FILE_STORE=true`` is set.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from ..core.plateau import plateau_starts
from ..core.run import EpochRecord, Run, StatusEvent
from ._base import Output
from .metrics import epoch_metrics, verdict_of

__all__ = ["MlflowOutput"]

# how a yeswidget run ended → MLflow's run status
_MLFLOW_STATUS = {"finished": "FINISHED", "stopped": "KILLED", "diverged": "FAILED", "failed": "FAILED"}


def _mlflow() -> tuple[ModuleType, Any]:
    try:
        import mlflow
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ImportError('MlflowOutput needs MLflow: pip install "yeswidget[mlflow]"') from exc
    return mlflow, MlflowClient


class MlflowOutput(Output):
    """Log a run to MLflow.

    ``run_id``: an existing MLflow run to log into; None: the active run (``mlflow.start_run``)
    when no ``client``/``tracking_uri`` is given, else a new run in ``experiment`` named
    ``run_name`` (default: the run's label), ended with the run. ``client``: an
    ``MlflowClient``; ``tracking_uri``: where a new client logs. ``artifacts``: write
    ``run.json`` and the report picture/page at the end.
    """

    def __init__(self, run_id: str | None = None, *, client: Any = None, tracking_uri: str | None = None,
                 experiment: str = "yeswidget", run_name: str | None = None, artifacts: bool = True) -> None:
        super().__init__()
        if client is not None and tracking_uri is not None:
            raise ValueError("give either client (an MlflowClient) or tracking_uri (a new client uses it), not both")
        mlflow, client_class = _mlflow()
        self.client = client if client is not None else client_class(tracking_uri=tracking_uri)
        self.mlflow_run_id = run_id
        if run_id is None and client is None and tracking_uri is None and mlflow.active_run() is not None:
            self.mlflow_run_id = mlflow.active_run().info.run_id
        self.owns_run = self.mlflow_run_id is None
        self.experiment = experiment
        self.run_name = run_name
        self.artifacts = bool(artifacts)
        self._verdict: str | None = None
        self._params_logged = False

    def start(self, run: Run) -> None:
        if self.owns_run:
            found = self.client.get_experiment_by_name(self.experiment)
            experiment_id = found.experiment_id if found is not None else self.client.create_experiment(self.experiment)
            created = self.client.create_run(experiment_id, run_name=self.run_name or run.label or run.run_id)
            self.mlflow_run_id = created.info.run_id
        self.client.set_tag(self.mlflow_run_id, "yes.run_id", run.run_id)

    def _log_params(self) -> None:
        # after the first epoch: the loop has given its settings (epochs(n) sets the planned epochs)
        from mlflow.entities import Param

        self._params_logged = True
        params = [Param(f"yes.{key}", str(value)[:500]) for key, value in sorted(self.run.config.items())
                  if value is not None]
        params.append(Param("yes.yes0", repr(float(self.run.upper))))
        self.client.log_batch(self.mlflow_run_id, params=params)

    def _set_verdict(self, verdict: str) -> None:
        if verdict != self._verdict:
            self.client.set_tag(self.mlflow_run_id, "yes.verdict", verdict)
            self._verdict = verdict

    def on_epoch(self, record: EpochRecord) -> None:
        from mlflow.entities import Metric

        if not self._params_logged:
            self._log_params()
        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, int(record.epoch)) for name, value in epoch_metrics(record).items()]
        self.client.log_batch(self.mlflow_run_id, metrics=metrics)
        self._set_verdict(record.zone)
        plateau = plateau_starts(self.records)
        if plateau is not None:
            self.client.set_tag(self.mlflow_run_id, "yes.plateau", plateau.text)

    def on_status(self, event: StatusEvent) -> None:
        if not self._params_logged:
            self._log_params()
        self._set_verdict(verdict_of(self.run))
        self.client.set_tag(self.mlflow_run_id, "yes.status", event.status)
        if self.artifacts:
            self._log_artifacts()
        if self.owns_run:
            self.client.set_terminated(self.mlflow_run_id, _MLFLOW_STATUS.get(event.status, "FINISHED"))

    def _log_artifacts(self) -> None:
        from ..report.verdict import write_report_html
        from ..view.render import save_cloud

        with tempfile.TemporaryDirectory(prefix="yeswidget-mlflow-") as name:
            folder = Path(name)
            self.run.to_json(folder / "run.json")
            if self.run.epochs:
                save_cloud(self.run, folder / "report.png")
                write_report_html(self.run, folder / "report.png", folder / "report.html")
            self.client.log_artifacts(self.mlflow_run_id, str(folder), artifact_path="yeswidget")
