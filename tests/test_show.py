"""`yeswidget show` reopens run logs, also the log of a training process killed mid-run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
import matplotlib.image as mpimg  # noqa: E402
from output_helpers import monitored_run  # noqa: E402

import yeswidget  # noqa: E402
from yeswidget.cli import main  # noqa: E402
from yeswidget.core.zones import ZONE_COLORS  # noqa: E402
from yeswidget.integrations import load_run  # noqa: E402

TRAINING_SCRIPT = textwrap.dedent("""
    import sys, time
    import torch
    from torch import nn
    from yeswidget.monitor import Monitor

    torch.manual_seed(0)
    X = torch.randn(64, 4)
    Y = torch.relu(X @ torch.randn(4, 3))
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    monitor = Monitor(net, X, Y, optimizer=optimizer, every=1, background=False, runs_dir=sys.argv[1])
    print("log", monitor.run_log.path, flush=True)
    for epoch in monitor.epochs(10_000):
        monitor.wait()  # the log is written on the monitor's dispatcher thread, moments after the epoch
        for record in monitor.run.epochs[-1:]:
            print("epoch", record.epoch, repr(record.loss), flush=True)  # this epoch is in the log now
        for start in range(0, 64, 16):
            loss = nn.functional.mse_loss(net(X[start:start + 16]), Y[start:start + 16])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            monitor.log(loss)
        time.sleep(0.2)
""")


def band_share(path) -> dict[str, float]:
    """Share of the picture's pixels in each zone's band colour (40% over white)."""
    image = mpimg.imread(str(path))[..., :3]
    shares = {}
    for zone in ("red", "yellow", "green"):
        rgb = np.array([int(ZONE_COLORS[zone][i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
        blended = 1.0 - 0.4 * (1.0 - rgb)
        shares[zone] = float((np.abs(image - blended).max(axis=-1) < 0.03).mean())
    return shares


def kill_after_epochs(tmp_path: Path, epochs: int) -> tuple[Path, dict[int, float]]:
    """Run the training script, SIGKILL it once ``epochs`` epochs are logged; the log path and the losses it printed."""
    script = tmp_path / "train.py"
    script.write_text(TRAINING_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(Path(yeswidget.__file__).parents[1]), OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, text=True)
    printed: dict[int, float] = {}
    log = None
    try:
        for line in process.stdout:
            words = line.split()
            if words[0] == "log":
                log = Path(words[1])
            elif words[0] == "epoch":
                printed[int(words[1])] = float(words[2])
                if len(printed) >= epochs:
                    break
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert log is not None and len(printed) >= epochs, process.stderr.read()
    assert process.returncode == -signal.SIGKILL
    return log, printed


def test_a_killed_training_process_leaves_a_log_with_every_finished_epoch(tmp_path):
    log, printed = kill_after_epochs(tmp_path, 3)
    run = load_run(log)
    assert run.status == "running"  # no end was recorded
    assert len(run.epochs) >= 3
    for record in run.epochs:
        if record.epoch in printed:
            assert record.loss == printed[record.epoch]
    assert [r.epoch for r in run.epochs] == list(range(1, len(run.epochs) + 1))
    assert len(run.step_losses) >= 4 * 3

    out = tmp_path / "killed.png"
    assert main(["show", str(log), "--out", str(out)]) == 0
    shares = band_share(out)
    assert all(share > 0.01 for share in shares.values()), shares


def test_show_overlays_several_runs_and_prints_the_table(tmp_path, capsys):
    first = monitored_run(24, runs_dir=tmp_path / "runs")       # red → yellow → green
    second = monitored_run(6, runs_dir=tmp_path / "runs", lr=2e-3)
    out = tmp_path / "both.png"
    assert main(["show", str(first.run_log.path), str(second.run_log.path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    table = text.splitlines()
    assert table[0].split()[:2] == ["run", "settings"]
    assert table[1].startswith(first.run.run_id) and "green" in table[1] and "finished" in table[1]
    assert table[2].startswith(second.run.run_id) and " 6 " in table[2]
    assert f"wrote {out}" in text
    shares = band_share(out)
    assert all(share > 0.01 for share in shares.values()), shares

    # a folder stands for every log in it; the default picture goes next to it
    assert main(["show", str(tmp_path / "runs")]) == 0
    assert (tmp_path / "runs" / "runs.png").exists()


def test_show_says_what_is_wrong_with_a_bad_path(tmp_path, capsys):
    assert main(["show", str(tmp_path / "missing.jsonl")]) == 2
    assert "no run log at" in capsys.readouterr().err
    (tmp_path / "junk.jsonl").write_text("not json\nat all\n")
    assert main(["show", str(tmp_path / "junk.jsonl")]) == 2
    run = monitored_run(1, runs_dir=tmp_path)
    assert main(["show", str(run.run_log.path), "--out", str(tmp_path / "x.txt")]) == 2
    assert "--out must end in .png" in capsys.readouterr().err
