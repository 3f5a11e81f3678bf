"""The last layer in the user's loss, streamed vs in memory: time of one cloud's YES-0 and two epochs' bounds.

Synthetic data (X ~ N(0, 1), labels from noisy linear scores, or Huber targets with outliers) and
the hidden outputs of fixed random ReLU MLPs (L = 4 affine layers, 7 anchor sets). Each round runs
the in-memory cloud and the streamed one (``chunk_size=``) side by side in this process, in
alternating order; the figure is the ratio streamed / in memory (median and range over rounds).
The streamed values are checked against the in-memory ones (relative difference printed).

Usage::

    python benchmarks/bench_stream_loss.py --threads 1
    python benchmarks/bench_stream_loss.py --samples 50000 --chunk 8192 --rounds 5
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from yeswidget.engine.bounds import YesCloud  # noqa: E402
from yeswidget.engine.losses import last_layer_loss  # noqa: E402


def task(kind: str, N: int, n: int = 16, m: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, object]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    scores = X @ torch.randn(n, m, generator=g, dtype=torch.float64)
    if kind == "cross_entropy":
        labels = (scores + 2 * torch.randn(N, m, generator=g, dtype=torch.float64)).argmax(1)
        return X, nn.functional.one_hot(labels, m).double(), labels, None
    Y = scores + torch.randn(N, m, generator=g, dtype=torch.float64)
    Y[::10] += 8.0
    return X, Y, Y, nn.HuberLoss(delta=1.0)


def hidden(X: torch.Tensor, seed: int, widths: tuple[int, ...] = (32, 32, 32)) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out, H = [], X
    for w in widths:
        H = torch.relu(H @ torch.randn(H.shape[1], w, generator=g, dtype=torch.float64) / math.sqrt(H.shape[1]))
        out.append(H)
    return out


def run(X: torch.Tensor, Y: torch.Tensor, given: torch.Tensor, loss: object, epochs: list[list[torch.Tensor]],
        **kwargs: object) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    cloud = YesCloud(X, Y, 4, loss=last_layer_loss(loss, given), **kwargs)  # type: ignore[arg-type]
    values = [cloud.upper]
    for h in epochs:
        values += list(cloud.compute(h).values())  # every anchor set's minimum
    return time.perf_counter() - t0, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for kind in ("cross_entropy", "huber"):
        X, Y, given, loss = task(kind, args.samples)
        epochs = [hidden(X, s) for s in (1, 2)]
        ratios, worst = [], 0.0
        for r in range(args.rounds):
            order = [("memory", {}), ("streamed", {"chunk_size": args.chunk})]
            timed = {name: run(X, Y, given, loss, epochs, **kw) for name, kw in (order if r % 2 else order[::-1])}
            ratios.append(timed["streamed"][0] / timed["memory"][0])
            worst = max(worst, max(abs(a - b) / abs(b) for a, b in zip(timed["streamed"][1], timed["memory"][1])))
        print(f"{kind:14s} N={args.samples} chunk={args.chunk}: streamed / in memory = "
              f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}), "
              f"largest relative difference {worst:.1e}")


if __name__ == "__main__":
    main()
