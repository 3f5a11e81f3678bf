"""slimTrain vs Adam on yeswidget's tasks, over learning rates (the paper's kind of comparison).

For each task (phase retrieval, signal denoising: ``yeswidget.tasks``), optimizer (``adam``:
Adam on every weight; ``slimtrain``: Adam on the feature extractor, the last layer solved in
closed form with sampled GCV, ``yeswidget.training.slimtrain``) and learning rate, one training run
with the task's recipe otherwise (batch size, schedule, seed 0), under a Monitor, side by side in
this process. Printed per run: the final epoch loss (metric E on the training split, dB), the
final zone, the first green epoch ("never" within the run), the last λ (slimtrain) and seconds
per epoch; per task and optimizer: the spread of the final loss across the learning rates
(max − min, dB: smaller = less sensitive to the learning rate) and the time ratio
slimtrain / adam. Nothing here asserts who wins.

Usage::

    python benchmarks/bench_slimtrain.py                      # 15 epochs, 4 lrs: ~2-3 min on 2 cores
    python benchmarks/bench_slimtrain.py --epochs 200 --lrs 1e-4 3e-4 1e-3 3e-3 1e-2 3e-2 1e-1
    python benchmarks/bench_slimtrain.py --tasks phase-retrieval --threads 1
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from torch import nn  # noqa: E402

from yeswidget.core.zones import to_db  # noqa: E402
from yeswidget.engine.bounds import YesCloud  # noqa: E402  (the checkout first on the path)
from yeswidget.integrations.runlog import RUNS_DIR_ENV  # noqa: E402
from yeswidget.training import Settings, Trainer  # noqa: E402
from yeswidget.training.slimtrain import SlimTrainConfig  # noqa: E402
from yeswidget.training.tasks import get_task  # noqa: E402


def run_one(task: Any, cloud: YesCloud, optimizer: str, lr: float, epochs: int, every: int) -> dict[str, Any]:
    d = task.defaults
    settings = Settings(lr=lr, batch_size=d["batch_size"], epochs=epochs, optimizer=optimizer,
                        schedule=d["schedule"], step_size=d["step_size"], gamma=d["gamma"], seed=0, every=every)
    t0 = time.perf_counter()
    trainer = Trainer(task, settings, cloud=cloud).start(background=False)
    seconds = time.perf_counter() - t0
    run = trainer.run
    final = run.final
    return {
        "task": task.name, "optimizer": optimizer, "lr": lr, "status": run.status,
        "epochs": len(run.epochs), "final_db": to_db(final.loss) if final is not None else math.nan,
        "zone": final.zone if final is not None else "-", "green": run.epochs_to_green,
        "lam": final.extra.get("regularization") if final is not None else None,
        "s_per_epoch": seconds / max(len(run.epochs), 1),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'task':<17} {'optimizer':<10} {'lr':>7} {'status':<9} {'final E dB':>10} {'zone':<7} "
             f"{'green at':>8} {'last λ':>9} {'s/epoch':>8}"]
    for r in rows:
        green = "never" if r["green"] is None else str(r["green"])
        lam = "" if r["lam"] is None else f"{r['lam']:.1e}"
        lines.append(f"{r['task']:<17} {r['optimizer']:<10} {r['lr']:>7.0e} {r['status']:<9} {r['final_db']:>10.2f} "
                     f"{r['zone']:<7} {green:>8} {lam:>9} {r['s_per_epoch']:>8.3f}")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'task':<17} {'optimizer':<10} {'best final dB':>13} {'spread dB':>9} {'green runs':>10} "
             f"{'time ratio':>10}"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    for name in tasks:
        seconds: dict[str, float] = {}
        for opt in ("adam", "slimtrain"):
            mine = [r for r in rows if r["task"] == name and r["optimizer"] == opt]
            finite = [r["final_db"] for r in mine if math.isfinite(r["final_db"]) and r["status"] != "diverged"]
            seconds[opt] = sum(r["s_per_epoch"] for r in mine) / max(len(mine), 1)
            spread = max(finite) - min(finite) if finite else math.nan
            best = min(finite) if finite else math.nan
            greens = sum(r["green"] is not None for r in mine)
            ratio = seconds[opt] / seconds["adam"] if seconds.get("adam") else math.nan
            lines.append(f"{name:<17} {opt:<10} {best:>13.2f} {spread:>9.2f} {greens:>6}/{len(mine):<3} "
                         f"{ratio:>10.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["phase-retrieval", "signal-denoising"])
    parser.add_argument("--lrs", nargs="+", type=float, default=[1e-4, 1e-3, 1e-2, 1e-1])
    parser.add_argument("--epochs", type=int, default=15,
                        help="epochs per run (default 15: a quick look; the paper runs 800-1800)")
    parser.add_argument("--every", type=int, default=5, help="YES-k bounds every k epochs (green is confirmed)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ[RUNS_DIR_ENV] = "off"  # no run logs from a benchmark
    rows = []
    for name in args.tasks:
        task = get_task(name)
        depth = sum(isinstance(m, nn.Linear) for m in task.model(0).modules())  # the tasks are MLPs
        cloud = YesCloud(task.X_train, task.Y_train, depth, bias=True)  # YES-0 once per task
        for lr in args.lrs:
            for opt in ("adam", "slimtrain"):
                rows.append(run_one(task, cloud, opt, lr, args.epochs, args.every))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(f"\nslimTrain vs Adam: {args.epochs} epochs per run, bounds every {args.every}, slimTrain memory "
          f"{SlimTrainConfig().memory} minibatches, λ by sampled GCV; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    print(table(rows))
    print("\nspread: max − min of the final loss across the learning rates (dB); time ratio: s/epoch vs adam\n")
    print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
