"""W&B output in offline mode (no account, no network): the run's own record file holds
the history, the summary with the verdict, and the alerts."""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

pytest.importorskip("wandb")
from google.protobuf.message import DecodeError  # noqa: E402
from output_helpers import monitored_run  # noqa: E402
from wandb.proto import wandb_internal_pb2  # noqa: E402

from yeswidget.core.zones import ZONE_CODES  # noqa: E402
from yeswidget.integrations import WandbOutput  # noqa: E402


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    yield
    import wandb

    wandb.teardown()  # W&B keeps its settings (WANDB_DIR too) in a process-wide singleton


def records(path: Path):
    """The protobuf records of an offline run file (LevelDB log framing: 32 KiB blocks,
    7-byte chunk headers: crc32, length, type 1 full / 2 first / 3 middle / 4 last)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending, block = 7, b"", 32768
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:
            position += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position:position + 7])
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 2):
            pending = chunk
        elif kind in (3, 4):
            pending += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def finished_records(folder: Path, timeout: float = 60.0) -> list:
    """The records of the one offline run under ``folder``, once its exit record is written
    (W&B's service writes the file on its own after ``finish()`` returns)."""
    deadline = time.monotonic() + timeout
    while True:
        found = list(folder.glob("wandb/offline-run-*/run-*.wandb"))
        assert len(found) <= 1, found
        try:
            written = list(records(found[0])) if found else []
        except DecodeError:  # caught mid-write: the service is still appending the last record
            written = []
        if any(r.WhichOneof("record_type") == "exit" for r in written) or time.monotonic() > deadline:
            return written
        time.sleep(0.1)


def key(item) -> str:
    return item.key or "/".join(item.nested_key)  # W&B writes either form


def read_offline_run(folder: Path):
    """History rows, the final summary and the alerts of the one offline run under ``folder``."""
    history, summary, alerts = [], {}, []
    for record in finished_records(folder):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            summary.update({key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "alert":
            alerts.append((record.alert.title, record.alert.text))
    return history, summary, alerts


def test_offline_history_and_summary_hold_the_run_and_its_verdict(tmp_path):
    output = WandbOutput(project="tiny", dir=tmp_path)
    monitor = monitored_run(13, attach=[output])
    run = monitor.run
    history, summary, alerts = read_offline_run(tmp_path)
    rows = [row for row in history if "yes/epoch" in row]
    assert [row["yes/epoch"] for row in rows] == [r.epoch for r in run.epochs]
    assert [row["yes/loss"] for row in rows] == [r.loss for r in run.epochs]
    assert [row["yes/yes0"] for row in rows] == [r.upper for r in run.epochs]
    assert [row["yes/lower"] for row in rows] == [r.lower for r in run.epochs]
    assert [row["yes/yes_k/1"] for row in rows] == [r.yes_k[0] for r in run.epochs]
    assert [row["yes/zone"] for row in rows] == [ZONE_CODES[r.zone] for r in run.epochs]
    assert summary["yes/verdict"] == "yellow" and summary["yes/status"] == "finished"
    assert summary["yes/run_id"] == run.run_id and summary["yes/epochs_to_green"] == -1
    assert alerts == [] and output.alerts_sent == []


def test_an_alert_when_the_loss_goes_back_into_red(tmp_path):
    # yellow at epoch 12, a too-large learning rate throws it back into red at 13
    output = WandbOutput(project="tiny", dir=tmp_path)
    monitored_run(14, lr_from={13: 0.3}, attach=[output])
    _, summary, alerts = read_offline_run(tmp_path)
    assert [title for title, _ in alerts] == ["YES: back in red"] and "epoch 13" in alerts[0][1]
    assert summary["yes/verdict"] == "red"


def test_a_plateau_alert_inside_the_users_own_wandb_run(tmp_path):
    import wandb

    with wandb.init(project="mine", dir=tmp_path, config={"user": 1}) as user_run:
        output = WandbOutput()
        monitored_run(22, lr_from={13: 0.0}, attach=[output])  # yellow from 12, no learning after
        assert output.wandb_run is user_run and not output.owns_run
        user_run.log({"user/metric": 1.0})  # the user's run is still open
    history, summary, alerts = read_offline_run(tmp_path)
    assert [title for title, _ in alerts] == ["YES: yellow plateau"]
    assert "stayed in yellow for 10 epochs (12–21)" in alerts[0][1]
    assert summary["yes/verdict"] == "yellow" and any("user/metric" in row for row in history)


def test_a_bad_mode_is_refused():
    with pytest.raises(ValueError, match="'offline'"):
        WandbOutput(mode="local")
