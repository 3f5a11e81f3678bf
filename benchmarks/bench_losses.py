"""What fitting the last layer in the user's own loss costs (issue 19, acceptance 5).

At the paper's sizes (``--task denoising``: N = 800, four hidden layers of 20, 20 outputs;
``--task phase-retrieval``: four hidden layers of 100, 100 outputs; the cross-entropy case is a
10-class head on the same body), one YES-k update in squared error (the paper's least squares)
against the same update with the last layer solved in cross-entropy, BCE with logits, Huber and
Poisson NLL: cold (the first update of a run) and warm (the next epoch's, started from the
previous solution, which is what a training run pays). Timed interleaved in one process (squared
error, cold, warm, ``--repeats`` rounds); printed as best-of times, their ratios to the squared-error
update, and the range of the paired warm / squared-error ratios.

Usage::

    python benchmarks/bench_losses.py --threads 1 --task denoising
    python benchmarks/bench_losses.py --threads 1 --task phase-retrieval --repeats 2   # ~4 min
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

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


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def case(label: str, loss: object, Y: torch.Tensor, targets: torch.Tensor, X: torch.Tensor, widths: list[int],
         repeats: int) -> None:
    """One row: squared error, cold and warm own-loss updates interleaved, ``repeats`` rounds."""
    depth = len(widths) + 1
    h0, h1 = states(X.shape[0], widths, 0), states(X.shape[0], widths, 0, drift=0.05)
    plain = YesCloud(X, targets, depth)
    own = last_layer_loss(loss, Y)
    assert own is not None
    cloud = YesCloud(X, targets, depth, loss=own)
    mse, cold, warm, steps = [], [], [], []
    for _ in range(repeats):
        mse.append(timed(lambda: plain.compute(h0)))
        cloud.loss = own.fresh()
        cold.append(timed(lambda: cloud.compute(h0)))  # the first update of a run
        converged = cloud.loss.report.converged
        warm.append(timed(lambda: cloud.compute(h1)))  # the next epoch's, from the previous solution
        converged = converged and cloud.loss.report.converged
        steps.append(cloud.loss.report.iterations)
        if not converged:
            raise SystemExit(f"{label}: a solve did not converge")
    t_mse, t_cold, t_warm = min(mse), min(cold), min(warm)
    ratios = sorted(w / m for w, m in zip(warm, mse))
    print(f"{label:<28} {t_mse * 1e3:9.1f} {t_cold * 1e3:9.1f} {t_warm * 1e3:9.1f} {t_cold / t_mse:7.2f}× "
          f"{t_warm / t_mse:7.2f}×  (paired warm/MSE {ratios[0]:.2f}–{ratios[-1]:.2f}×; Newton steps "
          f"{max(steps)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
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
