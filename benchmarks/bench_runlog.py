"""What does the run log cost a training loop?

A small MLP (4-64-64-3, 256 samples, batch 16: 16 steps an epoch) trains for
``--epochs`` epochs under ``Monitor(every=10, background=False)`` twice per round,
interleaved, from the same seed: with the run log off (``runs_dir=None``, the
baseline) and on (a temporary folder). Printed: median wall times, their ratio,
the log's size, and the time to read it back with ``load_run``.

    python benchmarks/bench_runlog.py --epochs 200 --repeats 3
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
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
