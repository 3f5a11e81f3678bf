"""What does the run log cost a training loop, and how does reading one scale?

Part 1. A small MLP (4-64-64-3, 256 samples, batch 16: 16 steps an epoch) trains for
``--epochs`` epochs under ``Monitor(every=10, background=False)`` twice per round,
interleaved, from the same seed: with the run log off (``runs_dir=None``, the
baseline) and on (a temporary folder). Printed: median wall times, their ratio,
the log's size, and the time to read it back with ``load_run``.

Part 2 (``--scale``). Synthetic run logs of 10,000 and 100,000 epochs written as a monitor
writes them (16 steps, a pending, an epoch and an update line an epoch) are read with
``load_run``, alternating, ``--repeats`` times each: the median times and their ratio (linear: ≈ 10,
the issue asks ≤ 12); then ``yeswidget show`` draws the 100k one (the drawing decimates).

    python benchmarks/bench_runlog.py --epochs 200 --repeats 3
    python benchmarks/bench_runlog.py --scale --repeats 3
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from yeswidget.integrations import load_run
from yeswidget.monitor import Monitor


def train(epochs: int, runs_dir) -> tuple[float, Monitor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 4, generator=g)
    Y = torch.relu(X @ torch.randn(4, 3, generator=g))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    started = time.perf_counter()
    monitor = Monitor(net, X, Y, optimizer=optimizer, every=10, background=False, runs_dir=runs_dir)
    for _ in monitor.epochs(epochs):
        for start in range(0, 256, 16):
            loss = nn.functional.mse_loss(net(X[start:start + 16]), Y[start:start + 16])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            monitor.log(loss)
    monitor.close()
    return time.perf_counter() - started, monitor


def synthetic_log(path: Path, epochs: int, steps: int = 16) -> Path:
    """A run log of ``epochs`` epochs in the format a monitor writes (version 2), quickly."""
    from yeswidget.core.run import EpochRecord, Run
    from yeswidget.integrations.runlog import LOG_FORMAT, LOG_VERSION, _dumps

    run = Run(run_id="long", config={"lr": 1e-3, "optimizer": "adam", "depth": 3}, depth=3, upper=0.2,
              layer_errors=[0.5, 0.3, 0.2], timings={"yes0_seconds": 0.1})
    with open(path, "w", encoding="utf-8") as handle:
        header = {"kind": "header", "format": LOG_FORMAT, "version": LOG_VERSION, "run": run.to_dict()}
        handle.write(_dumps(header) + "\n")
        for epoch in range(1, epochs + 1):
            loss = 0.3 * math.exp(-epoch / epochs) + 0.01
            first = (epoch - 1) * steps
            handle.write(_dumps({"kind": "steps", "first": first,
                                 "positions": [epoch - 1 + (k + 1) / steps for k in range(steps)],
                                 "losses": [loss * (1 + 0.01 * k) for k in range(steps)]}) + "\n")
            info = {"epoch": epoch, "loss": loss, "lr": 1e-3, "batch_size": 16, "step": epoch * steps,
                    "wall_time": 0.01 * epoch}
            handle.write(_dumps({"kind": "pending", "record": info}) + "\n")
            record = EpochRecord(upper=0.2, lower=min(0.15, loss), zone="red" if loss > 0.2 else "yellow",
                                 yes_k=[0.18, min(0.15, loss)], **info)
            handle.write(json.dumps({"kind": "epoch", "record": record.__dict__}, separators=(",", ":")) + "\n")
            handle.write(_dumps({"kind": "update", "fields": {"timings": {"yes0_seconds": 0.1,
                                                                        "wall_seconds": 0.01 * epoch}}}) + "\n")
        handle.write(_dumps({"kind": "status", "status": "finished", "message": "", "traceback": ""}) + "\n")
    return path


def scale(repeats: int) -> None:
    import contextlib
    import io

    from yeswidget.cli import main as cli

    with tempfile.TemporaryDirectory() as folder:
        small = synthetic_log(Path(folder) / "10k.jsonl", 10_000)
        large = synthetic_log(Path(folder) / "100k.jsonl", 100_000)
        times: dict[Path, list[float]] = {small: [], large: []}
        for _ in range(repeats):
            for path in (small, large):
                started = time.perf_counter()
                run = load_run(path)
                times[path].append(time.perf_counter() - started)
                assert len(run.epochs) == (10_000 if path is small else 100_000)
        a, b = statistics.median(times[small]), statistics.median(times[large])
        print(f"load_run: 10k epochs {a:.2f} s ({small.stat().st_size / 2**20:.1f} MiB), 100k epochs {b:.2f} s "
              f"({large.stat().st_size / 2**20:.1f} MiB); ratio {b / a:.1f} (linear: 10)")
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(["show", str(large), "--out", str(Path(folder) / "100k.png")])
        print(f"yeswidget show on 100k epochs: exit {code}, {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", action="store_true", help="time reading 10k and 100k-epoch logs instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.scale:
        scale(args.repeats)
        return
    off, on = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            off.append(train(args.epochs, None)[0])
            seconds, monitor = train(args.epochs, Path(folder))
            on.append(seconds)
        path = monitor.run_log.path
        started = time.perf_counter()
        run = load_run(path)
        read = time.perf_counter() - started
        assert run == monitor.run
        size = path.stat().st_size
    print(f"{args.epochs} epochs × 16 steps, {args.repeats} rounds (medians)")
    print(f"run log off: {statistics.median(off):.2f} s   on: {statistics.median(on):.2f} s   "
          f"ratio {statistics.median(on) / statistics.median(off):.3f}")
    print(f"log: {size / 1024:.0f} KiB ({size / args.epochs:.0f} bytes an epoch), load_run {read * 1000:.0f} ms")


if __name__ == "__main__":
    main()
