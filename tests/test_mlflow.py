"""MLflow output: metrics, verdict tag and artifacts read back with MlflowClient from a local store."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("mlflow")
import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from output_helpers import monitored_run  # noqa: E402

from yeswidget.core.zones import ZONE_CODES  # noqa: E402
from yeswidget.integrations import MlflowOutput, load_run  # noqa: E402


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A local MLflow store under tmp_path (MLflow 3 wants the opt-in for a plain-folder store)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return (tmp_path / "mlruns").as_uri()


def history(client, run_id, key) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def test_metrics_verdict_and_artifacts_read_back_from_a_local_store(store, tmp_path):
    output = MlflowOutput(tracking_uri=store, experiment="tiny-mlp")
    monitor = monitored_run(13, attach=[output])
    run = monitor.run
    client = MlflowClient(tracking_uri=store)
    logged = client.get_run(output.mlflow_run_id)
    assert logged.info.status == "FINISHED"
    assert logged.info.experiment_id == client.get_experiment_by_name("tiny-mlp").experiment_id
    assert logged.data.tags["yes.verdict"] == "yellow" and logged.data.tags["yes.status"] == "finished"
    assert logged.data.tags["yes.run_id"] == run.run_id
    assert logged.data.params["yes.epochs"] == "13" and float(logged.data.params["yes.yes0"]) == run.upper
    assert history(client, output.mlflow_run_id, "yes/loss") == {r.epoch: r.loss for r in run.epochs}
    assert history(client, output.mlflow_run_id, "yes/yes0") == {r.epoch: r.upper for r in run.epochs}
    assert history(client, output.mlflow_run_id, "yes/lower") == {r.epoch: r.lower for r in run.epochs}
    assert history(client, output.mlflow_run_id, "yes/yes_k/2") == {r.epoch: r.yes_k[1] for r in run.epochs}
    assert history(client, output.mlflow_run_id, "yes/zone") == {r.epoch: ZONE_CODES[r.zone] for r in run.epochs}

    files = {a.path for a in client.list_artifacts(output.mlflow_run_id, "yeswidget")}
    assert files == {"yeswidget/run.json", "yeswidget/report.png", "yeswidget/report.html"}
    folder = mlflow.artifacts.download_artifacts(run_id=output.mlflow_run_id, artifact_path="yeswidget",
                                                 dst_path=str(tmp_path / "got"), tracking_uri=store)
    assert load_run(f"{folder}/run.json") == run
    with open(f"{folder}/report.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_logs_into_the_active_mlflow_run_and_leaves_it_open(store):
    mlflow.set_tracking_uri(store)
    try:
        with mlflow.start_run() as active:
            output = MlflowOutput(artifacts=False)
            monitor = monitored_run(22, lr_from={13: 0.0}, attach=[output])  # a yellow plateau from epoch 12
            assert output.mlflow_run_id == active.info.run_id
            assert MlflowClient(store).get_run(active.info.run_id).info.status == "RUNNING"
    finally:
        mlflow.set_tracking_uri(None)
    logged = MlflowClient(store).get_run(active.info.run_id)
    assert "stayed in yellow for 10 epochs (12–21)" in logged.data.tags["yes.plateau"]
    assert len(MlflowClient(store).get_metric_history(active.info.run_id, "yes/loss")) == len(monitor.run.epochs)
    assert MlflowClient(store).list_artifacts(active.info.run_id) == []


def test_a_diverged_run_is_failed_in_mlflow_with_a_red_verdict(store):
    output = MlflowOutput(tracking_uri=store)
    monitor = monitored_run(3, lr=1e6, attach=[output])
    assert monitor.run.status == "diverged"
    logged = MlflowClient(store).get_run(output.mlflow_run_id)
    assert logged.info.status == "FAILED" and logged.data.tags["yes.verdict"] == "red"
    # a NaN loss is left out, the zone is still logged
    losses = MlflowClient(store).get_metric_history(output.mlflow_run_id, "yes/loss")
    assert len(losses) < len(monitor.run.epochs)
    assert len(MlflowClient(store).get_metric_history(output.mlflow_run_id, "yes/zone")) == 3
    run_json = json.loads(open(mlflow.artifacts.download_artifacts(
        run_id=output.mlflow_run_id, artifact_path="yeswidget/run.json", tracking_uri=store)).read())
    assert run_json["status"] == "diverged"


def test_client_and_tracking_uri_together_is_an_error(store):
    with pytest.raises(ValueError, match="not both"):
        MlflowOutput(client=MlflowClient(store), tracking_uri=store)
