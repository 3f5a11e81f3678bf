"""What fitting the last layer in the user's own loss costs (issue 19, acceptance 5).

At the paper's sizes (``--task denoising``: N = 800, four hidden layers of 20, 20 outputs;
``--task phase-retrieval``: four hidden layers of 100, 100 outputs; the cross-entropy case is a
10-class head on the same body), one YES-k update in squared error (the paper's least squares)
against the same update with the last layer solved in cross-entropy, BCE with logits, Huber and
Poisson NLL: cold (the first update of a run) and warm (the next epoch's, started from the
previous solution, which is what a training run pays). Timed side by side in one process, best
of ``--repeats``; printed as the ratio to the squared-error update and the share the solves add.

Usage::

    python benchmarks/bench_losses.py --threads 1 --task denoising
    python benchmarks/bench_losses.py --threads 1 --task phase-retrieval   # minutes on one core
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from yeswidget.engine.bounds import YesCloud  # noqa: E402  (the checkout first on the path)
from yeswidget.engine.losses import last_layer_loss  # noqa: E402


def states(N: int, widths: list[int], seed: int, drift: float = 0.0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hidden = [torch.relu(torch.randn(N, w, generator=g, dtype=torch.float64)) for w in widths]
    if drift:  # the next epoch: the same features, moved a little
        g2 = torch.Generator().manual_seed(seed + 1)
        hidden = [h + drift * torch.relu(torch.randn(h.shape, generator=g2, dtype=torch.float64)) for h in hidden]
    return hidden


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def case(label: str, loss: object, Y: torch.Tensor, targets: torch.Tensor, X: torch.Tensor, widths: list[int],
         repeats: int) -> None:
    depth = len(widths) + 1
    h0, h1 = states(X.shape[0], widths, 0), states(X.shape[0], widths, 0, drift=0.05)
    plain = YesCloud(X, targets, depth)
    t_mse = best(lambda: plain.compute(h0), repeats)
    own = last_layer_loss(loss, Y)
    cloud = YesCloud(X, targets, depth, loss=own)

    def cold() -> None:
        cloud.loss = own.fresh()
        cloud.compute(h0)

    t_cold = best(cold, repeats)

    def warm() -> None:
        cloud.loss = own.fresh()
        cloud.compute(h0)  # the previous epoch (not timed below)

    warm()
    warmed = cloud.loss
    t_warm = best(lambda: (cloud.compute(h1), setattr(cloud, "loss", warmed)), repeats)
    print(f"{label:<28} {t_mse * 1e3:9.1f} {t_cold * 1e3:9.1f} {t_warm * 1e3:9.1f} {t_cold / t_mse:7.2f}× "
          f"{t_warm / t_mse:7.2f}×  (+{100 * (t_warm / t_mse - 1):.0f}% warm; Newton steps "
          f"{warmed.report.iterations})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--task", choices=("denoising", "phase-retrieval"), default="denoising")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width = 20 if args.task == "denoising" else 100
    N, widths = 800, [width] * 4
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, 20, generator=g, dtype=torch.float64)
    Y = torch.randn(N, width, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 10, (N,), generator=g)
    counts = torch.poisson(torch.full((N, width), 2.0), generator=g)
    print(f"one YES-k update (15 anchor sets), N={N}, widths {widths}, torch threads {args.threads}")
    print(f"{'loss':<28} {'MSE ms':>9} {'cold ms':>9} {'warm ms':>9} {'cold':>8} {'warm':>8}")
    case("cross-entropy, 10 classes", nn.CrossEntropyLoss(), labels, nn.functional.one_hot(labels).double(), X,
         widths, args.repeats)
    binary = (Y > 0).double()
    case(f"BCE with logits, {width} labels", nn.BCEWithLogitsLoss(), binary, binary, X, widths, args.repeats)
    case(f"Huber, {width} outputs", nn.HuberLoss(), Y, Y, X, widths, args.repeats)
    case(f"Poisson NLL, {width} outputs", nn.PoissonNLLLoss(), counts, counts, X, widths, args.repeats)


if __name__ == "__main__":
    main()
