"""One table of bad inputs (issue 21 and earlier ones): each gets a clear error saying what was wrong
and how to fix it. Cases that have a correct behaviour rather than an error follow the table."""
from __future__ import annotations

import json
import threading
import time
import warnings

import pytest
import torch
from output_helpers import Monitor, data, model, monitored_run
from torch import nn

from yeswidget import tasks
from yeswidget.cli import main
from yeswidget.core.run import EpochRecord, Run
from yeswidget.integrations import RunLog, load_run
from yeswidget.monitor import MonitorConfig


def a_run() -> Run:
    records = [EpochRecord(epoch=e, loss=0.9 / e, upper=0.5, lower=0.3, zone="red" if e == 1 else "yellow",
                           yes_k=[0.4, 0.3]) for e in (1, 2)]
    return Run(run_id="r1", depth=3, upper=0.5, epochs=records, step_losses=[1.0, 0.5], step_positions=[0.5, 1.0],
               status="finished")


def run_json(tmp_path, **changes):
    data_ = a_run().to_dict()
    for path, value in changes.items():
        target = data_
        *parents, last = path.split(".")
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data_))
    return path


def run_log(tmp_path, kind: str, edit) -> object:
    """A real run log of a_run() whose first line of ``kind`` is replaced by ``edit(text)``."""
    log = RunLog(tmp_path / "runs")
    log.replay(a_run())
    lines = log.path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == kind)
    lines[index] = edit(lines[index])
    log.path.write_text("\n".join(lines) + "\n")
    return log.path


def record_field(field: str, raw: str):
    """Edit an epoch line's record field to the raw JSON text ``raw``."""
    def edit(line: str) -> str:
        entry = json.loads(line)
        entry["record"][field] = "__RAW__"
        return json.dumps(entry).replace('"__RAW__"', raw)
    return edit


def monitor(**options):
    X, Y = data()
    return Monitor(model(), X, Y, **{"runs_dir": None, "background": False, "every": 1, **options})


def small_task():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 4, generator=g)
    return tasks.Task.from_tensors(lambda: tasks.mlp([4, 8, 3]), X, torch.relu(X @ torch.randn(4, 3, generator=g)))


def playground_from(text: str):
    from yeswidget.widgets.playground import Playground

    return Playground.from_settings(small_task(), text)


def two_optimizers():
    net = model()
    params = list(net.parameters())
    m = Monitor(net, *data(), optimizer=torch.optim.SGD(params[:2], lr=0.1), runs_dir=None)
    try:
        m.attach_optimizer(torch.optim.SGD(params[2:], lr=0.1))
    finally:
        m.close()


def lightning_state(state):
    from yeswidget.integrations.lightning import YesCallback

    YesCallback(*data()).load_state_dict(state)


def nan_validation():
    X, Y = data()
    Xv = X.clone()
    Xv[3, 1] = float("nan")
    monitor(validation=(Xv, Y))


def logged(**kwargs):
    m = monitor()
    try:
        m.log(**kwargs)
    finally:
        m.close()


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BAD_INPUTS = [
    # ---- loaded runs (run.json): a wrong value names its field, nothing is coerced
    pytest.param(lambda t: Run.from_json(run_json(t, status={"a": 1})), ValueError, r"'status' must be one of",
                 id="run.json status is an object"),
    pytest.param(lambda t: Run.from_json(run_json(t, step_losses="abc")), ValueError,
                 r"'step_losses' must be a list of numbers", id="run.json step losses a string"),
    pytest.param(lambda t: Run.from_json(run_json(t, **{"epochs.0.zone": "<img src=x onerror=alert(1)>"})), ValueError,
                 r"'epochs\[0\].zone' must be one of", id="run.json hostile zone"),
    pytest.param(lambda t: Run.from_json(run_json(t, **{"epochs.1.loss": "0.3"})), ValueError,
                 r"'epochs\[1\].loss' must be a number", id="run.json loss a string"),
    pytest.param(lambda t: Run.from_json(run_json(t, **{"epochs.0.batch_size": 2.7})), ValueError,
                 r"'epochs\[0\].batch_size' must be a whole number", id="run.json batch size 2.7"),
    pytest.param(lambda t: Run.from_json(run_json(t, **{"epochs.0.epoch": True})), ValueError,
                 r"'epochs\[0\].epoch' must be a whole number", id="run.json epoch a bool"),
    pytest.param(lambda t: Run.from_json(run_json(t, config=json.loads(deep(60)))), ValueError,
                 r"nests deeper than 32", id="run.json config nested 60 levels"),
    pytest.param(lambda t: Run.from_json(run_json(t, upper={"$float": "abc"})), ValueError,
                 r"\$float.*'nan', 'inf' or '-inf'", id="run.json bad $float"),
    pytest.param(lambda t: Run.from_json('{"run_id": "x", "depth": ' + "9" * 5000 + "}"), ValueError,
                 r"not a yeswidget run record: .*digits", id="run.json 5000-digit integer"),
    pytest.param(lambda t: Run.from_json("{\"config\": " + deep(100_000) + "}"), ValueError,
                 r"nests too deeply", id="run.json 100k nesting"),
    pytest.param(lambda t: Run.from_json('{"bogus": 1}'), ValueError, r"unknown fields \['bogus'\]",
                 id="run.json unknown field"),
    # ---- run logs: a wrong value names the line and the field
    pytest.param(lambda t: load_run(run_log(t, "epoch", record_field("loss", '"abc"'))), ValueError,
                 r"line \d+ \('epoch' entry\): field 'record.loss' must be a number", id="log loss a string"),
    pytest.param(lambda t: load_run(run_log(t, "epoch", record_field("epoch", "9" * 5000))), ValueError,
                 r"line \d+: .*digits", id="log 5000-digit integer"),
    pytest.param(lambda t: load_run(run_log(t, "epoch", lambda line: line[:-1] + ',"x":' + deep(100_000) + "}")),
                 ValueError, r"line \d+: nests too deeply", id="log 100k nesting"),
    pytest.param(lambda t: load_run(run_log(t, "status", lambda line: '{"kind":"status","status":{"a":1}}')),
                 ValueError, r"line \d+ \('status' entry\): field 'status' must be one of", id="log status an object"),
    pytest.param(lambda t: load_run(run_log(t, "steps", lambda line: '{"kind":"steps","first":0,"positions":"ab",'
                                                                        '"losses":"ab"}')),
                 ValueError, r"field 'losses' must be a list of numbers", id="log step losses a string"),
    pytest.param(lambda t: load_run(run_log(t, "header", lambda line: line.replace('"version":2', '"version":99'))),
                 ValueError, r"newer yeswidget \(log version 99", id="log from a newer version"),
    pytest.param(lambda t: load_run(run_log(t, "header", lambda line: line.replace('"yeswidget-run-log"', '"x"'))),
                 ValueError, r"not a yeswidget run log", id="log of another format"),
    # ---- the monitor's data and settings
    pytest.param(lambda t: Monitor(model(), data()[0].to_sparse(), data()[1]), TypeError,
                 r"X is a sparse tensor .*X.to_dense\(\)", id="sparse X"),
    pytest.param(lambda t: Monitor(model(), data()[0], data()[1].to_sparse()), TypeError,
                 r"Y is a sparse tensor .*Y.to_dense\(\)", id="sparse Y"),
    pytest.param(lambda t: MonitorConfig(dtype=torch.int64), ValueError, r"dtype must be a floating-point torch dtype",
                 id="dtype int64"),
    pytest.param(lambda t: MonitorConfig(dtype="bogus"), ValueError, r"dtype must be a floating-point",
                 id="dtype bogus"),
    pytest.param(lambda t: MonitorConfig(run_id="a/b"), ValueError, r"run_id .*no '/'", id="run_id with a slash"),
    pytest.param(lambda t: MonitorConfig(run_id=""), ValueError, r"run_id must be a name", id="run_id empty"),
    pytest.param(lambda t: Monitor(nn.Sequential(nn.Linear(0, 4), nn.ReLU(), nn.Linear(4, 3)), torch.zeros(10, 0),
                                   torch.zeros(10, 3)), ValueError, r"each sample has no input values",
                 id="zero input features"),
    pytest.param(lambda t: nan_validation(), ValueError, r"validation inputs contain 1 non-finite",
                 id="NaN in validation X"),
    pytest.param(lambda t: two_optimizers(), ValueError, r"already counts steps with a SGD", id="two optimizers"),
    pytest.param(lambda t: Monitor(model(), *data(), optimizer=torch.optim.SGD(model(1).parameters(), lr=0.5)),
                 ValueError, r"updates none of this model's parameters", id="another model's optimizer"),
    pytest.param(lambda t: logged(loss=[1, 2]), TypeError, r"log\(loss\) expects one scalar loss", id="log a list"),
    pytest.param(lambda t: logged(loss=0.5, lr="fast"), TypeError, r"log\(lr=…\) must be the learning rate",
                 id="log lr fast"),
    pytest.param(lambda t: logged(loss=0.5, batch_size=2.7), TypeError, r"batch_size=…\) must be a whole number",
                 id="log batch size 2.7"),
    pytest.param(lambda t: logged(loss=torch.ones(2)), ValueError, r"expects a scalar loss", id="log a 2-vector"),
    pytest.param(lambda t: lightning_state("junk"), TypeError, r"YesCallback state must be a dict",
                 id="Lightning state not a dict"),
    pytest.param(lambda t: lightning_state({"run": {"status": {"a": 1}}}), ValueError,
                 r"YesCallback state is not a yeswidget run .*'status'", id="Lightning state crafted"),
    pytest.param(lambda t: lightning_state({"run": {"epochs": [{"epoch": 1}]}}), ValueError,
                 r"YesCallback state is not a yeswidget run .*lacks", id="Lightning state missing fields"),
    pytest.param(lambda t: playground_from("epochs=" + "1" + "0" * 30), ValueError, r"epochs must be at most 100000",
                 id="Playground epochs 1e30"),
    pytest.param(lambda t: playground_from("depth=1000000"), ValueError, r"depth must be an int from 2 to 12",
                 id="Playground depth 1e6"),
    # ---- earlier cases, kept in the same table
    pytest.param(lambda t: MonitorConfig(every="bogus"), ValueError, r"every must be", id="every bogus"),
    pytest.param(lambda t: MonitorConfig(max_samples=1), ValueError, r"max_samples must be", id="max_samples 1"),
    pytest.param(lambda t: Monitor(model(), torch.randn(10), torch.randn(10, 3)), ValueError, r"N samples first",
                 id="X one-dimensional"),
    pytest.param(lambda t: Monitor("model", *data()), TypeError, r"model must be a torch.nn.Module", id="not a model"),
    pytest.param(lambda t: list(monitor().epochs(-1)), ValueError, r"epochs\(n\) needs an int", id="epochs(-1)"),
    pytest.param(lambda t: load_run(t), ValueError, r"is a folder", id="load_run on a folder"),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD_INPUTS)
def test_a_bad_input_gets_a_clear_error(tmp_path, make, error, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes about the tiny test models
        with pytest.raises(error, match=match):
            make(tmp_path)


@pytest.mark.parametrize("content", [
    pytest.param(lambda t: run_json(t, status={"a": 1}), id="status an object"),
    pytest.param(lambda t: run_json(t, step_losses="abc"), id="step losses a string"),
    pytest.param(lambda t: run_log(t, "epoch", record_field("epoch", "9" * 5000)), id="5000-digit integer"),
    pytest.param(lambda t: run_log(t, "epoch", lambda line: line[:-1] + ',"x":' + deep(100_000) + "}"),
                 id="100k nesting"),
])
@pytest.mark.parametrize("command", ["certify", "show"])
def test_certify_and_show_print_one_line_for_a_bad_file(tmp_path, capsys, content, command):
    path = content(tmp_path)
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and str(path.name) in err


# --------------------------------------------------------------------------- #
# cases with a correct behaviour rather than an error
# --------------------------------------------------------------------------- #
def test_x_that_requires_grad_is_certified_like_any_x():
    X, Y = data()
    plain = monitored_run(3, every=1)
    m = Monitor(model(), X.clone().requires_grad_(True), Y, runs_dir=None, every=1, background=False)
    net = m.model
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    m.attach_optimizer(optimizer)
    for _ in m.epochs(3):
        for start in range(0, 64, 16):
            loss = nn.functional.mse_loss(net(X[start:start + 16]), Y[start:start + 16])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            m.log(loss)
    m.close()
    assert [r.epoch for r in m.run.epochs] == [1, 2, 3]
    assert [r.zone for r in m.run.epochs] == [r.zone for r in plain.run.epochs]


def test_an_exception_in_the_bounds_worker_keeps_the_epoch_without_a_verdict(tmp_path):
    X, Y = data()
    m = Monitor(model(), X, Y, runs_dir=tmp_path, every=1)  # the worker thread

    def broken(hidden):
        raise RuntimeError("the bounds broke")

    m.cloud.compute = broken
    for _ in m.epochs(3):
        m.log(0.5)
    m.close()
    assert [r.epoch for r in m.run.epochs] == [1, 2, 3]
    assert all(r.zone == "none" and "the bounds broke" in r.reason and r.loss > 0 for r in m.run.epochs)
    assert load_run(m.run_log.path) == m.run


def test_two_monitors_on_one_model_from_two_threads():
    X, Y = data()
    net = model()
    made, errors = [], []

    def build():
        try:
            made.append(Monitor(net, X, Y, runs_dir=None))
        except BaseException as exc:  # the bug: AttributeError: 'Monitor' object has no attribute 'worker'
            errors.append(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        threads = [threading.Thread(target=build) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == [] and len(made) == 2
    open_ = [m for m in made if not m.closed]
    closed = [m for m in made if m.closed]
    assert len(open_) == 1 and len(closed) == 1
    with pytest.raises(RuntimeError, match="another Monitor now watches this model"):
        closed[0].log(0.5)
    open_[0].log(0.5)
    open_[0].close()


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit, ValueError])
def test_the_dispatcher_survives_any_subscriber(tmp_path, raised):
    m = monitor(runs_dir=tmp_path)
    seen = []

    def subscriber(event):
        seen.append(event)
        if len(seen) == 2:
            raise raised("from a subscriber")

    m.subscribe(subscriber)
    started = time.perf_counter()
    try:
        for _ in m.epochs(6):
            m.log(0.5)
            time.sleep(0.05)  # the dispatcher delivers meanwhile
    except KeyboardInterrupt:
        assert raised is KeyboardInterrupt  # raised again in the training thread, not swallowed
    m.close()
    assert time.perf_counter() - started < 5  # no 30 s waits on a dead dispatcher
    assert any(f"raised {raised.__name__}" in w for w in m.run.warnings)
    if raised is KeyboardInterrupt:
        assert m.run.status == "stopped" and m.epoch < 6
    else:
        assert m.run.status == "finished" and m.epoch == 6 and len(seen) > 6  # delivery went on
    assert load_run(m.run_log.path) == m.run


def test_a_subscriber_that_closes_the_monitor_ends_the_run_and_the_log_says_so(tmp_path):
    m = monitor(runs_dir=tmp_path)

    def closer(event):
        if getattr(event, "epoch", None) == 2:
            m.close()

    m.subscribe(closer)
    for _ in m.epochs(4):
        m.log(0.5)
        time.sleep(0.05)
    assert m.closed and m.run.status == "stopped" and 2 <= m.epoch <= 4
    assert load_run(m.run_log.path) == m.run


def test_a_hung_subscriber_delays_neither_the_log_nor_close(tmp_path, monkeypatch):
    import yeswidget.monitor.lifecycle as lifecycle  # how a run ends: it waits SUBSCRIBER_TIMEOUT for subscribers

    monkeypatch.setattr(lifecycle, "SUBSCRIBER_TIMEOUT", 0.5)
    release = threading.Event()
    m = monitor(runs_dir=tmp_path)
    m.subscribe(lambda event: release.wait(30))  # hangs
    started = time.perf_counter()
    for _ in m.epochs(3):
        m.log(0.5)
    m.close()
    assert time.perf_counter() - started < 4
    run = load_run(m.run_log.path)
    assert [r.epoch for r in run.epochs] == [1, 2, 3] and run.status == "finished"
    assert any("still busy" in w for w in m.run.warnings)
    release.set()
