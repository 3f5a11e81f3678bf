"""The run log: a real monitored run is appended line by line and reads back equal to the monitor's Run."""
from __future__ import annotations

import json
import math

import pytest
from output_helpers import Monitor, data, model, monitored_run

from yeswidget.core.run import Run
from yeswidget.integrations import RunLog, load_run, load_runs
from yeswidget.integrations.runlog import RunLogWarning


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


# --------------------------------------------------------------------------- #
# nothing lost: kills, full disks, a deleted folder, damaged files (issue 21)
# --------------------------------------------------------------------------- #
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import yeswidget  # noqa: E402
from yeswidget.core.logread import PENDING_REASON  # noqa: E402

ROOT = Path(yeswidget.__file__).resolve().parent.parent  # the package under test, also in subprocesses

ZYGOTE = r'''
import os, signal, sys, threading, time, torch
from torch import nn
from yeswidget.monitor import Monitor
torch.set_num_threads(1)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed trainers are reaped by themselves


def train(trial, mode, runs):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g); Y = torch.relu(X @ torch.randn(4, 3, generator=g))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    m = Monitor(net, X, Y, optimizer=opt, every=1, runs_dir=runs, loss_reduction="mean")
    if mode == "slow-subscriber":
        m.subscribe(lambda event: time.sleep(0.2))
    elif mode == "hung-subscriber":
        m.subscribe(lambda event: threading.Event().wait())
    elif mode == "slow-bounds":  # the bounds take longer than an epoch
        compute = m.cloud.compute
        m.cloud.compute = lambda hidden: (time.sleep(0.15), compute(hidden))[1]
    os.write(1, f"log {trial} {m.run_log.path}\n".encode())
    for epoch in range(100000):
        for start in range(0, 64, 16):
            loss = nn.functional.mse_loss(net(X[start:start + 16]), Y[start:start + 16])
            opt.zero_grad(); loss.backward(); opt.step(); m.log(loss)
        time.sleep(0.02)
        m.epoch_end()
        os.write(1, f"ended {trial} {m.epoch} {time.time()!r}\n".encode())


os.write(1, b"ready\n")
for line in sys.stdin:
    trial, mode, runs = line.split()
    pid = os.fork()  # after the imports, so a trial starts in moments
    if pid == 0:
        try:
            train(trial, mode, runs)
        finally:
            os._exit(0)
    os.write(1, f"pid {trial} {pid}\n".encode())
'''


class Lines:
    # the zygote's output, read without blocking
    def __init__(self, process):
        self.fd = process.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = ""

    def poll(self):
        try:
            self.buffer += os.read(self.fd, 65536).decode()
        except BlockingIOError:
            pass
        *lines, self.buffer = self.buffer.split("\n")
        return [line.split() for line in lines]


def test_sigkill_at_random_moments_loses_no_ended_epoch(tmp_path):
    # 10 trainers (a slow subscriber, a hung one, bounds slower than an epoch), forked 5 at a time
    # from one process that imported torch once, each SIGKILLed at a random moment: every epoch
    # whose epoch_end() returned at least 1 s before the kill is read back with its loss
    rng = random.Random(21)
    script = tmp_path / "zygote.py"
    script.write_text(ZYGOTE)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
    zygote = subprocess.Popen([sys.executable, str(script)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    lines = Lines(zygote)
    modes = ["slow-subscriber", "hung-subscriber", "slow-bounds", "slow-subscriber", "slow-bounds"] * 2
    checked = 0
    try:
        deadline = time.monotonic() + 60
        while not any(words == ["ready"] for words in lines.poll()):
            assert time.monotonic() < deadline and zygote.poll() is None
            time.sleep(0.05)
        for wave in (range(0, 5), range(5, 10)):
            trials = {str(i): {"mode": modes[i], "after": rng.uniform(1.0, 3.0), "ended": {}} for i in wave}
            for name, trial in trials.items():
                zygote.stdin.write(f"{name} {trial['mode']} {tmp_path / ('runs-' + name)}\n".encode())
            zygote.stdin.flush()
            deadline = time.monotonic() + 60
            while any("killed" not in t for t in trials.values()):
                assert time.monotonic() < deadline
                for words in lines.poll():
                    trial = trials.get(words[1]) if len(words) > 1 else None
                    if trial is None:
                        continue
                    if words[0] == "pid":
                        trial["pid"] = int(words[2])
                    elif words[0] == "log":
                        trial["path"] = Path(words[2])
                    elif words[0] == "ended":
                        trial["ended"][int(words[2])] = float(words[3])
                        trial.setdefault("first", time.time())
                for trial in trials.values():
                    if "killed" not in trial and "first" in trial and time.time() - trial["first"] >= trial["after"]:
                        os.kill(trial["pid"], signal.SIGKILL)
                        trial["killed"] = time.time()
                time.sleep(0.01)
            time.sleep(0.2)  # the kills land
            for trial in trials.values():
                run = load_run(trial["path"])  # a torn last line, if any, is skipped
                losses = {r.epoch: r.loss for r in run.epochs}
                due = [e for e, t in trial["ended"].items() if t <= trial["killed"] - 1.0]
                missing = [e for e in due if e not in losses or not math.isfinite(losses[e])]
                assert missing == [], (trial["mode"], missing, sorted(losses))
                assert all(r.zone in ("red", "yellow", "green") or r.reason == PENDING_REASON for r in run.epochs)
                checked += len(due)
    finally:
        zygote.kill()
        zygote.wait()
    assert checked >= 10


DISK_FULL = r'''
import resource, signal, sys, warnings, torch
from torch import nn
from yeswidget.monitor import Monitor
torch.set_num_threads(1)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
warnings.simplefilter("always")
g = torch.Generator().manual_seed(0)
X = torch.randn(64, 4, generator=g); Y = torch.relu(X @ torch.randn(4, 3, generator=g))
net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
m = Monitor(net, X, Y, optimizer=opt, every=1, runs_dir=sys.argv[1], loss_reduction="mean")
for epoch in m.epochs(30):
    for start in range(0, 64, 16):
        loss = nn.functional.mse_loss(net(X[start:start + 16]), Y[start:start + 16])
        opt.zero_grad(); loss.backward(); opt.step(); m.log(loss)
m.close()  # must not raise
print("PATH", m.run_log.path)
print("STATUS", m.run.status, len(m.run.epochs))
for note in m.run.warnings:
    print("NOTE", note)
'''


def test_a_full_disk_keeps_training_warns_notes_and_close_does_not_raise(tmp_path):
    script = tmp_path / "full.py"
    script.write_text(DISK_FULL)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "runs"), "12000"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout.splitlines()
    assert "STATUS finished 30" in out  # training completed
    assert "RuntimeWarning: run log" in done.stderr and "File too large" in done.stderr  # a visible warning
    notes = [line for line in out if line.startswith("NOTE")]
    assert any("is incomplete: not saved: epochs" in note for note in notes)  # what was not saved
    path = Path(next(line.split(" ", 1)[1] for line in out if line.startswith("PATH")))
    assert path.stat().st_size <= 12000
    with pytest.warns(RunLogWarning):  # the torn line at the limit
        partial = load_run(path)
    assert 0 < len(partial.epochs) < 30 and partial.status == "running"


def test_a_deleted_runs_folder_keeps_training_warns_and_notes(tmp_path):
    import shutil

    X, Y = data()
    m = Monitor(model(), X, Y, runs_dir=tmp_path / "runs", every=1, background=False)
    with pytest.warns((RuntimeWarning, RunLogWarning)) as seen:  # the failure, then close()'s summary
        for epoch in m.epochs(4):
            m.log(0.5)
            if epoch == 1:
                shutil.rmtree(tmp_path / "runs")
        m.close()  # does not raise
    assert m.run.status == "finished" and len(m.run.epochs) == 4
    assert any(w.category is RuntimeWarning and "deleted during the run" in str(w.message) for w in seen)
    assert any("is incomplete: not saved: epochs" in str(w.message) for w in seen)
    assert any("deleted during the run" in note for note in m.run.warnings)
    assert any("not saved" in note for note in m.run.warnings)


def damaged_log(tmp_path, epochs=6):
    monitor = monitored_run(epochs, runs_dir=tmp_path)
    return monitor, monitor.run_log.path


@pytest.mark.parametrize("damage", ["torn middle line", "garbage appended", "NUL bytes", "truncated header",
                                    "over-long line"])
def test_a_damaged_log_loads_every_undamaged_epoch_with_a_warning(tmp_path, damage, monkeypatch):
    monitor, path = damaged_log(tmp_path)
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    epoch_lines = [i for i, line in enumerate(lines) if b'"kind":"epoch"' in line]
    expected = monitor.run.epochs
    if damage == "torn middle line":
        lines[epoch_lines[2]] = lines[epoch_lines[2]][:40]
        expected = [r for r in expected if r.epoch != 3]  # epoch 3 comes back from its pending line, no verdict
    elif damage == "garbage appended":
        lines.append(b"\x89PNG garbage \xff\xfe{{{")
    elif damage == "NUL bytes":
        lines.insert(epoch_lines[3], b"\x00" * 4096)
        lines[epoch_lines[1]] = b"\x00" * 64 + lines[epoch_lines[1]]
    elif damage == "truncated header":
        lines[0] = lines[0][: len(lines[0]) // 2]
    elif damage == "over-long line":
        import yeswidget.core.logread as logread

        monkeypatch.setattr(logread, "MAX_LINE_BYTES", 4096)
        lines.insert(epoch_lines[1], b'{"kind":"update","fields":{"message":"' + b"x" * 10_000 + b'"}}')
    path.write_bytes(b"\n".join(lines))
    with pytest.warns(RunLogWarning, match="damaged line"):
        run = load_run(path)
    got = {r.epoch: r for r in run.epochs}
    assert [r.epoch for r in run.epochs] == [1, 2, 3, 4, 5, 6]
    for record in expected:
        assert got[record.epoch] == record
    if damage == "torn middle line":
        assert got[3].zone == "none" and got[3].loss == monitor.run.epochs[2].loss
    assert run.run_id == monitor.run.run_id and run.config == monitor.run.config and run.status == "finished"
    assert any("damaged line" in note for note in run.warnings)


def test_version_1_logs_are_still_read():
    here = Path(__file__).parent / "data"
    assert load_run(here / "run-log-v1.jsonl") == Run.from_json(here / "run-log-v1.expected.json")


def test_log_files_are_private_to_their_owner(tmp_path):
    monitor = monitored_run(1, runs_dir=tmp_path)
    assert monitor.run_log.path.stat().st_mode & 0o777 == 0o600  # they hold tracebacks


def test_a_long_log_loads_and_show_draws_it(tmp_path, capsys):
    """20,000 epochs: loading stays linear (see benchmarks/bench_runlog.py) and show decimates to draw."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_runlog import synthetic_log
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    path = synthetic_log(tmp_path / "long.jsonl", 20_000)
    started = time.perf_counter()
    run = load_run(path)
    assert len(run.epochs) == 20_000
    from yeswidget.cli import main

    assert main(["show", str(path), "--out", str(tmp_path / "long.png")]) == 0
    assert (tmp_path / "long.png").stat().st_size > 0
    assert time.perf_counter() - started < 120  # a guard against a hang, not a speed test
