"""What does the monitor cost a real training loop?

Six loops of different shapes (see ``loops()``): the paper's phase retrieval and signal
denoising (``MSELoss(reduction="sum")``), the digits task as a CrossEntropy classifier on
labels, a BCE classifier, a wide 64→1024→512→10 MLP and a conv-head classifier (two convs
then three Linear layers), each trained with Adam lr 1e-3, StepLR(50, 0.9) and a shuffled
DataLoader,

* without a monitor (the baseline),
* under ``Monitor(every="auto")`` (the default cadence),
* under ``Monitor(every=1)`` (the paper: YES-k after every epoch; ``--no-every1`` skips it),
* with ``--both``, the default cadence also with the worker forced inline and forced into the background
  (``background=False`` / ``True``; the default ``"auto"`` decides from the training step's FLOPs),

in the same process, from the same seed, with the variants interleaved (``--repeats`` rounds,
medians reported). The monitored time includes everything a user pays for: building the
monitor, every ``log()`` / ``epoch_end()`` and waiting for the last bound update. Printed per
loop: the baseline time, the ratios, the bound updates and where the monitor's time went
(``Run.timings``); then the median and worst ratio over the loops at the default settings
(goal: median <= 1.25, worst <= 2 on a 2-core CPU).

On a machine whose cores are shared with other busy processes, torch's default of one OpenMP
thread per core makes every variant erratic; use ``--threads 1`` there.

Usage::

    python benchmarks/bench_monitor.py --threads 1              # 30 epochs, 3 rounds, all six loops
    python benchmarks/bench_monitor.py --threads 1 --both --only wide
    python benchmarks/bench_monitor.py --sync       # bounds computed in the loop (background=False)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from yeswidget.monitor import Monitor  # noqa: E402
from yeswidget.training.tasks import phase_retrieval  # noqa: E402

SEED = 0


class Loop:
    """One training loop: data, a model factory, the loss it logs and its optimizer settings."""

    def __init__(self, name, make_model, X, Y, *, loss_fn, targets=None, monitor_loss=None,
                 batch=50, lr=1e-3, optimizer="adam"):
        self.name, self.make_model, self.X, self.Y = name, make_model, X, Y
        self.loss_fn, self.monitor_loss = loss_fn, monitor_loss
        self.targets = Y if targets is None else targets  # what the loss compares with (labels for CE)
        self.batch, self.lr, self.optimizer = batch, lr, optimizer


class ConvHead(nn.Module):
    """Two small conv layers, then a 3-Linear head (the monitor's taps: the head's activations)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(16 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                  nn.Linear(64, 10))

    def forward(self, x):
        return self.head(self.features(x))


def loops() -> list[Loop]:
    """The six loops of different shapes (paper tasks, CE and BCE classifiers, a wide MLP, a conv head)."""
    from yeswidget.training.tasks import digits, mlp, signal_denoising

    out = []
    task = phase_retrieval()
    out.append(Loop("phase retrieval", task.make_model, task.X_train, task.Y_train,
                    loss_fn=nn.MSELoss(reduction="sum")))
    task = signal_denoising()
    out.append(Loop("denoising", task.make_model, task.X_train, task.Y_train,
                    loss_fn=nn.MSELoss(reduction="sum")))
    task = digits()
    labels = task.extras["labels_train"]
    out.append(Loop("digits CE", task.make_model, task.X_train, task.Y_train, targets=labels,
                    loss_fn=nn.CrossEntropyLoss(), monitor_loss=nn.CrossEntropyLoss(), batch=100))
    g = torch.Generator().manual_seed(1)
    X = torch.randn(1000, 30, generator=g)
    y = (X[:, :5].sum(1, keepdim=True) + 0.3 * torch.randn(1000, 1, generator=g) > 0).float()
    out.append(Loop("BCE classifier", lambda: mlp([30, 64, 64, 1]), X, y,
                    loss_fn=nn.BCEWithLogitsLoss(), monitor_loss=nn.BCEWithLogitsLoss()))
    X = torch.randn(1500, 64, generator=g)
    W = torch.randn(64, 10, generator=g) / 8
    out.append(Loop("wide MLP", lambda: mlp([64, 1024, 512, 10]), X, torch.tanh(X @ W) + X[:, :10] ** 2 / 4,
                    loss_fn=nn.MSELoss(), batch=100))
    images = digits().X_train.reshape(-1, 1, 8, 8)
    out.append(Loop("conv head", ConvHead, images, task.Y_train, targets=labels,
                    loss_fn=nn.CrossEntropyLoss(), monitor_loss=nn.CrossEntropyLoss(), batch=100))
    return out


def train(loop: Loop, epochs: int, every=None, background="auto", confirm=True):
    """One training run; ``every=None`` runs without a monitor.

    Returns (wall seconds, CPU seconds of the whole process, run or None).
    """
    torch.manual_seed(SEED)
    model = loop.make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=loop.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=50, gamma=0.9)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(loop.X, loop.targets),
        batch_size=loop.batch, shuffle=True, generator=torch.Generator().manual_seed(SEED),
    )
    loss_fn = loop.loss_fn

    def one_epoch(monitor=None):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            if monitor is not None:
                monitor.log(loss)
        scheduler.step()

    start, cpu = time.perf_counter(), time.process_time()
    if every is None:
        for _ in range(epochs):
            one_epoch()
        return time.perf_counter() - start, time.process_time() - cpu, None
    kwargs = {} if loop.monitor_loss is None else {"loss": loop.monitor_loss}
    with Monitor(model, loop.X, loop.Y, optimizer=optimizer, every=every, background=background,
                 confirm_green=confirm, runs_dir=None, **kwargs) as monitor:
        for _ in monitor.epochs(epochs):
            one_epoch(monitor)
    return time.perf_counter() - start, time.process_time() - cpu, monitor.run


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def measure(loop: Loop, args) -> dict[str, float]:
    """Median wall-time ratios (monitored / baseline) of one loop, variants interleaved."""
    background = False if args.sync else "auto"
    train(loop, 2)
    train(loop, 2, every=1, background=background)
    # name: (every, background)
    variants = {"baseline": (None, background), "auto": ("auto", background), "every=1": (1, background)}
    if args.no_every1:
        del variants["every=1"]
    if args.both:
        variants["auto inline"] = ("auto", False)
        variants["auto background"] = ("auto", True)
    times: dict[str, list[float]] = {name: [] for name in variants}
    runs: dict[str, list] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, (every, bg) in variants.items():
            seconds, _cpu, run = train(loop, args.epochs, every=every, background=bg)
            times[name].append(seconds)
            runs[name].append(run)
    base = statistics.median(times["baseline"])
    ratios = {"baseline s": base}
    for name in variants:
        if name == "baseline":
            continue
        ratios[name] = statistics.median(times[name]) / base
        run = runs[name][-1]
        ratios[name + " updates"] = sum(record.bounds_updated for record in run.epochs)
        if name == "auto":
            t = run.timings
            ratios["timings"] = (f"YES-0 {t['yes0_seconds']:.3f} s, certify {t['certify_seconds']:.3f} s, "
                                 f"YES-k {t['bounds_seconds']:.3f} s")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sync", action="store_true", help="compute bounds in the loop (background=False; "
                        "the default is the Monitor's, background='auto')")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice, one per core)")
    parser.add_argument("--only", default=None, help="run only the loops whose name contains this")
    parser.add_argument("--both", action="store_true",
                        help="also run the default cadence with background=False and background=True")
    parser.add_argument("--no-every1", action="store_true", help="skip the every=1 variant")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{args.epochs} epochs, {args.repeats} interleaved rounds; torch {torch.__version__}, "
          f"{torch.get_num_threads()} intra-op threads, {os.cpu_count()} CPUs; load average {_load()}")
    auto = []
    for loop in loops():
        if args.only and args.only not in loop.name:
            continue
        r = measure(loop, args)
        auto.append(r["auto"])
        other = next((n for n in r if n in ("auto inline", "auto background")), None)
        every1 = f"   {other} {r[other]:5.2f}×" if other else ""
        every1 += f"   every=1 {r['every=1']:5.2f}× ({r['every=1 updates']} updates)" if "every=1" in r else ""
        print(f"  {loop.name:<16} baseline {r['baseline s']:6.3f} s   auto {r['auto']:5.2f}× "
              f"({r['auto updates']} updates){every1}   [{r['timings']}]", flush=True)
    median, worst = statistics.median(auto), max(auto)
    print(f"load average now {_load()}")
    print(f"default settings: median {median:.2f}× (goal <= 1.25), worst {worst:.2f}× (goal <= 2)")

if __name__ == "__main__":
    main()
