"""The run log: a real monitored run is appended line by line and reads back equal to the monitor's Run."""
from __future__ import annotations

import json
import math

import pytest
from output_helpers import Monitor, data, model, monitored_run

from yeswidget.core.run import Run
from yeswidget.outputs import RunLog, load_run, load_runs
from yeswidget.outputs.runlog import RunLogWarning


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_monitor_writes_its_run_log_and_it_reads_back_equal(tmp_path):
    monitor = monitored_run(4, runs_dir=tmp_path)
    path = monitor.run_log.path
    assert path.parent == tmp_path and path.suffix == ".jsonl" and monitor.run.run_id in path.name
    run = load_run(path)
    assert run == monitor.run
    assert [r.epoch for r in run.epochs] == [1, 2, 3, 4] and run.status == "finished"
    assert len(run.step_losses) == 16 and run.config["epochs"] == 4  # set by epochs(n) after the header
    kinds = [entry["kind"] for entry in lines(path)]
    assert kinds[0] == "header" and kinds.count("epoch") == 4 and kinds.count("status") == 1
    assert "steps" in kinds


def test_the_worker_thread_run_reads_back_equal_too(tmp_path):
    monitor = monitored_run(3, runs_dir=tmp_path, background=True)
    assert load_run(monitor.run_log.path) == monitor.run


def test_the_header_holds_config_certification_yes0_and_layer_errors(tmp_path):
    monitor = monitored_run(1, runs_dir=tmp_path)
    header = lines(monitor.run_log.path)[0]
    assert header["format"] == "yeswidget-run-log" and header["version"] == 2
    written = header["run"]
    assert written["run_id"] == monitor.run.run_id
    assert written["upper"] == monitor.run.upper and written["layer_errors"] == monitor.run.layer_errors
    assert written["certification"]["n_samples"] == 64 and written["config"]["depth"] == 3


def test_non_finite_losses_survive_the_round_trip(tmp_path):
    monitor = monitored_run(3, lr=1e6, runs_dir=tmp_path)  # diverges
    run = load_run(monitor.run_log.path)
    assert run.status == "diverged" and not math.isfinite(run.epochs[-1].loss)
    assert run.to_json() == monitor.run.to_json()


def test_a_torn_last_line_and_a_damaged_middle_line_are_skipped_with_a_warning(tmp_path):
    monitor = monitored_run(3, runs_dir=tmp_path)
    path = monitor.run_log.path
    with open(path, "ab") as handle:
        handle.write(b'{"kind": "epoch", "record": {"epoch": 4, "lo')  # a crash mid-write
    with pytest.warns(RunLogWarning, match=r"line \d+: cut short"):
        run = load_run(path)
    assert run.epochs == monitor.run.epochs and run.status == "finished"
    text = path.read_text().splitlines()
    epoch_line = next(i for i, line in enumerate(text) if '"kind":"epoch"' in line)
    text[epoch_line] = text[epoch_line][:25]
    path.write_text("\n".join(text) + "\n")
    with pytest.warns(RunLogWarning, match=f"line {epoch_line + 1}: not JSON"):
        run = load_run(path)
    # the damaged epoch line's epoch is still there, from its pending line: its loss, no verdict
    damaged = run.epochs[0]
    assert damaged.loss == monitor.run.epochs[0].loss and damaged.zone == "none"
    assert run.epochs[1:] == monitor.run.epochs[1:]
    assert any("damaged line" in w for w in run.warnings)


def test_run_log_attached_by_hand_gives_a_removable_handle(tmp_path):
    assert monitored_run(1, runs_dir=None).run_log is None  # the monitor writes nothing by itself
    log = RunLog(tmp_path / "logs")
    monitor = monitored_run(2, attach=[log])
    assert load_run(log.path) == monitor.run
    assert [p.parent.name for p in tmp_path.rglob("*.jsonl")] == ["logs"]

    X, Y = data()
    early = Monitor(model(), X, Y, every=1, background=False, runs_dir=None)
    with RunLog(tmp_path / "ctx").attach(early) as handle:  # a context manager
        assert handle.path.exists()
    handle.remove()  # safe twice
    early.log(0.5)
    early.epoch_end()
    early.close()
    assert load_run(handle.path).epochs == []  # nothing after the removal


def test_the_default_folder_comes_from_the_environment_and_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("YESWIDGET_RUNS_DIR", str(tmp_path / "env-runs"))
    monitor = monitored_run(1, runs_dir="auto")
    assert monitor.run_log.path.parent == tmp_path / "env-runs"
    monkeypatch.setenv("YESWIDGET_RUNS_DIR", "off")
    assert monitored_run(1, runs_dir="auto").run_log is None


def test_an_unwritable_runs_folder_is_a_clear_error_or_a_warning(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    X, Y = data()
    net = model()
    with pytest.raises(OSError, match="runs_dir=<folder> or None"):
        Monitor(net, X, Y, runs_dir=blocked)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())  # nothing left behind
    monkeypatch.setenv("YESWIDGET_RUNS_DIR", str(blocked))
    with pytest.warns(UserWarning, match="no run log"):
        monitor = monitored_run(1, runs_dir="auto")
    assert monitor.run_log is None and any("no run log" in w for w in monitor.run.warnings)
    with pytest.raises(TypeError, match="runs_dir must be a folder path"):
        monitored_run(1, runs_dir=3)


def test_load_run_reads_to_json_files_and_load_runs_reads_a_folder(tmp_path):
    first = monitored_run(2, runs_dir=tmp_path / "runs")
    second = monitored_run(3, runs_dir=tmp_path / "runs", lr=3e-3)
    first.run.to_json(tmp_path / "run.json")
    assert load_run(tmp_path / "run.json") == first.run
    assert load_runs(tmp_path / "runs") == [first.run, second.run] or \
        load_runs(tmp_path / "runs") == [second.run, first.run]
    with pytest.raises(ValueError, match="is a folder"):
        load_run(tmp_path / "runs")
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path / "missing.jsonl")
    (tmp_path / "other.jsonl").write_text('{"kind": "header", "format": "something else"}\n')
    with pytest.raises(ValueError, match="not a yeswidget run log"):
        load_run(tmp_path / "other.jsonl")


def test_replay_writes_a_saved_run_as_a_log(tmp_path):
    monitor = monitored_run(3)
    log = RunLog(tmp_path)
    log.replay(monitor.run)
    assert load_run(log.path) == monitor.run
    assert isinstance(load_run(log.path), Run)


def test_run_from_json_and_the_top_level_load_run_read_a_run_log(tmp_path):
    import yeswidget
    from yeswidget.core.run import Run

    monitor = monitored_run(3, runs_dir=tmp_path)
    path = monitor.run_log.path
    assert yeswidget.load_run(path) == monitor.run
    assert Run.from_json(path) == monitor.run
