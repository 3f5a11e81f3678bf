"""Tests for yeswidget.core.run: the run record, its JSON round trip, dB and margins."""
from __future__ import annotations

import dataclasses
import json
import math
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from yeswidget.core.run import RUN_STATUSES, EpochEvent, EpochRecord, Run, StatusEvent, StepEvent, to_db

NAN, INF = math.nan, math.inf


def same(a, b, path="run") -> None:
    """Exact equality, field by field: floats bit for bit (any NaN equals NaN), types kept."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
        return
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if isinstance(a, float):
        if math.isnan(a):
            assert math.isnan(b), path
        else:
            assert struct.pack("<d", a) == struct.pack("<d", b), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def record(epoch, loss, upper=1.0, lower=0.1, zone=None, **kw) -> EpochRecord:
    if zone is None:
        zone = "red" if not math.isfinite(loss) or loss > upper else ("green" if loss <= lower else "yellow")
    return EpochRecord(epoch=epoch, loss=loss, upper=upper, lower=lower, zone=zone, **kw)


def sample_run() -> Run:
    return Run(
        run_id="abc123",
        config={"lr": 1e-3, "batch_size": 50, "optimizer": "adam", "every": "auto", "widths": [100, 100],
                "nested": {"gamma": 0.9, "inf": INF, "none": None}, "epochs": 3},
        depth=3,
        upper=0.75,
        layer_errors=[0.9, 0.8, 0.75],
        certification={"source": "tensors", "n_samples": 800, "of": 800, "subset": False, "seed": None,
                       "text": "bounds and epoch loss on all 800 training samples"},
        epochs=[
            record(1, 2.5, yes_k=[0.7, 0.6], lr=1e-3, batch_size=50, step=16, wall_time=0.25),
            record(2, 0.3, yes_k=[0.65, 0.55], bounds_updated=False, lr=9e-4, batch_size=50, step=32,
                   wall_time=0.5),
            record(3, NAN, yes_k=[0.65, 0.55], lr=9e-4, batch_size=None, step=48, wall_time=0.75),
            record(4, INF, yes_k=[0.65, 0.55], step=64, wall_time=1.0),
        ],
        step_losses=[3.0, NAN, INF, -INF, 1e-300, -0.0, 0.1 + 0.2],
        step_positions=[0.0625, 0.125, 0.1875, 0.25, 1.0, 1.5, 2.0],
        marks=[{"position": 1.5, "kind": "batch_size", "value": 100}],
        timings={"yes0_seconds": 0.01, "bounds_seconds": 0.2, "certify_seconds": 0.03, "wall_seconds": 1.0},
        status="diverged",
        message="the epoch loss became nan at epoch 3",
        traceback="Traceback (most recent call last):\n  … ünïcode\n",
        warnings=["subscriber raised ValueError: boom"],
    )


# --------------------------------------------------------------------------- to_db
@pytest.mark.parametrize(
    "value, expected",
    [(100.0, 20.0), (1.0, 0.0), (0.1, -10.0), (1, 0.0), (np.float32(100.0), 20.0), (np.float64(1e-3), -30.0),
     (0.0, -INF), (INF, INF)],
)
def test_to_db_values(value, expected):
    result = to_db(value)
    assert type(result) is float
    if math.isfinite(expected):
        assert result == pytest.approx(expected, abs=1e-9)
    else:
        assert result == expected


@pytest.mark.parametrize("value", [NAN, -1.0, -INF, None, "1.0", torch.tensor([1.0, 2.0])])
def test_to_db_is_nan_for_what_has_no_decibels(value):
    assert math.isnan(to_db(value))


# --------------------------------------------------------------------------- EpochRecord
def test_margin_is_the_distance_in_db_to_the_next_better_zones_edge():
    red = record(1, 10.0, upper=1.0, lower=0.1)
    yellow = record(2, 1.0, upper=10.0, lower=0.1)
    green = record(3, 0.01, upper=1.0, lower=0.1)
    assert (red.zone, yellow.zone, green.zone) == ("red", "yellow", "green")
    assert red.margin == pytest.approx(10.0)  # 10 dB above YES-0
    assert yellow.margin == pytest.approx(10.0)  # 10 dB above the lower edge
    assert green.margin == pytest.approx(-10.0)  # below the lower edge: negative
    assert math.isnan(record(4, NAN).margin)


def test_epoch_record_defaults():
    r = EpochRecord(epoch=1, loss=1.0, upper=2.0, lower=0.5, zone="yellow")
    assert r.yes_k == [] and r.bounds_updated is True and r.lr is None and r.batch_size is None
    assert r.step == 0 and r.wall_time == 0.0


# --------------------------------------------------------------------------- Run readings
def test_label_from_config():
    assert Run(run_id="x", config={"lr": 1e-3, "batch_size": 50, "optimizer": "adam"}).label == \
        "lr 1e-03 · batch 50 · adam"
    assert Run(run_id="x", config={"lr": 0.01}).label == "lr 1e-02"
    assert Run(run_id="fallback").label == "fallback"


def test_label_skips_what_a_monitor_did_not_know():
    # a Monitor without an optimizer stores optimizer=None and no lr: not "None" in the label
    assert Run(run_id="r1", config={"optimizer": None, "lr": None, "batch_size": None}).label == "r1"
    assert Run(run_id="r1", config={"optimizer": "sgd", "lr": None}).label == "sgd"


def test_final_zone_and_epochs_to_green():
    run = Run(run_id="r")
    assert run.final is None and run.final_zone is None and run.epochs_to_green is None
    run.epochs = [record(1, 2.0), record(2, 0.5), record(3, 0.05), record(4, 0.5)]
    assert run.final is run.epochs[-1]
    assert run.final_zone == "yellow"
    assert run.epochs_to_green == 3


def test_statuses_and_events_are_plain_data():
    assert RUN_STATUSES == ("running", "finished", "stopped", "diverged", "failed")
    r = record(5, 0.5, yes_k=[0.4, 0.3], lr=1e-3, batch_size=50, wall_time=2.0)
    event = EpochEvent("id", r, 10)
    # the epoch event reads straight through to its record
    assert (event.epoch, event.loss, event.upper, event.lower, event.zone, event.yes_k, event.lr,
            event.batch_size, event.wall_time) == (5, 0.5, 1.0, 0.1, "yellow", [0.4, 0.3], 1e-3, 50, 2.0)
    with pytest.raises(AttributeError):
        event.no_such_field
    step = StepEvent("id", 0, (0.5, 1.0), (2.0, 1.5), 1e-3, 50)
    status = StatusEvent("id", "failed", "ValueError: x", "Traceback …")
    for frozen in (event, step, status):
        with pytest.raises(dataclasses.FrozenInstanceError):
            frozen.run_id = "other"


# --------------------------------------------------------------------------- JSON
def test_json_round_trip_is_exact_including_nan_and_inf(tmp_path):
    run = sample_run()
    path = tmp_path / "run.json"
    text = run.to_json(path)
    assert path.read_text(encoding="utf-8") == text
    back = Run.from_json(path)
    same(run, back)
    same(run, Run.from_json(str(path)))
    same(run, Run.from_json(text))  # the JSON text itself works too
    # and again: a second round trip writes the same text
    assert back.to_json() == text


def test_json_is_strict(tmp_path):
    text = sample_run().to_json()

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant} in the output")

    data = json.loads(text, parse_constant=refuse)
    assert data["run_id"] == "abc123"


def test_from_json_rejects_what_is_not_a_run(tmp_path):
    with pytest.raises(ValueError, match="invalid JSON"):
        Run.from_json("{not json")
    with pytest.raises(ValueError, match="unknown fields"):
        Run.from_json(json.dumps({"run_id": "x", "color": "red"}))
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        Run.from_json(bad)


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=60, deadline=None)
@given(
    losses=st.lists(finite_or_not, max_size=8),
    edges=st.lists(st.tuples(finite_or_not, finite_or_not), min_size=1, max_size=4),
    timing=finite_or_not,
    text=st.text(max_size=20),
)
def test_json_round_trip_property(losses, edges, timing, text):
    run = Run(
        run_id=text,
        config={"lr": timing, text: [timing, None, True, 3]},
        epochs=[record(i + 1, loss, upper, lower, zone="red", yes_k=[lower, upper])
                for i, ((upper, lower), loss) in enumerate(zip(edges, losses + [0.0] * len(edges)))],
        step_losses=losses,
        step_positions=[float(i) for i in range(len(losses))],
        timings={"wall_seconds": timing},
        message=text,
    )
    same(run, Run.from_json(run.to_json()))


# --------------------------------------------------------------------------- a monitor's run
def _tiny_run(lr: float) -> Run:
    from yeswidget.monitor import Monitor
    from yeswidget.training.tasks import mlp

    torch.manual_seed(0)
    X = torch.randn(64, 4)
    Y = X[:, :3].abs()
    model = mlp((4, 8, 8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    with Monitor(model, X, Y, optimizer=optimizer, every=1, labels={"batch_size": 16}) as monitor:
        for _ in monitor.epochs(4):
            for start in range(0, 64, 16):
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(X[start:start + 16]), Y[start:start + 16], reduction="sum")
                loss.backward()
                optimizer.step()
                monitor.log(loss)
    return monitor.run


@pytest.mark.parametrize("lr, status", [(1e-2, "finished"), (1e3, "diverged")])
def test_a_monitored_run_round_trips(tmp_path, lr, status):
    run = _tiny_run(lr)
    assert run.status == status and len(run.epochs) == 4
    if status == "diverged":
        assert any(not math.isfinite(r.loss) for r in run.epochs)
    path = tmp_path / "monitored.json"
    run.to_json(path)
    back = Run.from_json(path)
    same(run, back)
    assert back.label == f"lr {lr:.0e} · batch 16 · sgd"
