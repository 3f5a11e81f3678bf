"""What does the monitor cost a real training loop?

The paper's phase-retrieval training (``tasks.phase_retrieval()``: 800 samples,
5 Linear layers with ReLU, Adam lr 1e-3, StepLR(50, 0.9), batch 50,
``MSELoss(reduction="sum")``, a shuffled DataLoader) is run for 40 epochs

* without a monitor (the baseline),
* under ``Monitor(every="auto")`` (the default cadence: a period fixed from shapes, about 20%
  of the training work, plus an update at each epoch whose loss reaches the edge: green
  needs an edge computed at that epoch), and with ``confirm_green=False`` (the period alone),
* under ``Monitor(every=1)`` (the paper: YES-k after every epoch), for reference,

in the same process, from the same seed, with the variants interleaved
(``--repeats`` rounds, medians reported). The monitored time includes
everything a user pays for: building the monitor (YES-0 and the input checks),
every ``log()`` / ``epoch_end()``, and waiting for the last bound update in
``close()``.

Printed: the median wall times, the ratios to the baseline (goal for
``auto``: <= 1.25 on a 2-core CPU), how many bound updates each cadence did,
and where the monitor's time went (``Run.timings``), plus the CPU time of the
whole process (all threads), which other processes disturb less than the
wall time. The per-round figures show the spread.

On a machine whose cores are shared with other busy processes, torch's default
of one OpenMP thread per core makes *every* variant erratic: a spinning OpenMP
team whose threads do not all get a core stalls at each parallel region (the
baseline can take 10-50× longer than on an idle machine, and a run with an
extra thread alive, like the monitor's worker, can even come out faster because
the OpenMP runtime then stops spinning). Use ``--threads 1`` there: its figures
are the ones that mean something.

Usage::

    python benchmarks/bench_monitor.py              # 40 epochs, 3 rounds, torch's default threads
    python benchmarks/bench_monitor.py --threads 1 --repeats 5
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


def train(task, epochs: int, every=None, background: bool = True, confirm: bool = True):
    """One training run; ``every=None`` runs without a monitor.

    Returns (wall seconds, CPU seconds of the whole process, run or None).
    """
    torch.manual_seed(SEED)
    model = task.make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=50, gamma=0.9)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(task.X_train, task.Y_train),
        batch_size=50, shuffle=True, generator=torch.Generator().manual_seed(SEED),
    )
    loss_fn = nn.MSELoss(reduction="sum")

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
    with Monitor(model, task.X_train, task.Y_train, optimizer=optimizer, every=every,
                 background=background, confirm_green=confirm, runs_dir=None) as monitor:
        for _ in monitor.epochs(epochs):
            one_epoch(monitor)
    return time.perf_counter() - start, time.process_time() - cpu, monitor.run


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sync", action="store_true", help="compute bounds in the loop (background=False)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    task = phase_retrieval()
    print(f"phase retrieval: N={task.n_train}, {args.epochs} epochs, batch 50, Adam lr 1e-3, StepLR(50, 0.9); "
          f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, {os.cpu_count()} CPUs, "
          f"background={not args.sync}; load average {_load()}")
    # warm-up: first calls of the LAPACK routines and the allocator are not what we measure
    train(task, 2)
    train(task, 2, every=1, background=not args.sync)

    # "auto, no confirm": the shape-fixed cadence alone (confirm_green=False), for comparison with
    # the default, which also recomputes the edge at epochs whose loss reaches it (green needs it)
    variants = {"baseline": (None, True), "auto": ("auto", True), "auto, no confirm": ("auto", False),
                "every=1": (1, True)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    runs: dict[str, list] = {name: [] for name in variants}
    for round_ in range(args.repeats):
        for name, (every, confirm) in variants.items():
            seconds, cpu, run = train(task, args.epochs, every=every, background=not args.sync, confirm=confirm)
            times[name].append(seconds)
            cpus[name].append(cpu)
            runs[name].append(run)
        print(f"round {round_ + 1}: " + "  ".join(f"{n} {times[n][-1]:.3f} s" for n in variants))

    base = statistics.median(times["baseline"])
    base_cpu = statistics.median(cpus["baseline"])
    print(f"\nmedian wall time (and CPU time of all threads), {args.repeats} interleaved rounds:")
    print(f"  without monitor     {base:8.3f} s   (CPU {base_cpu:.3f} s)")
    for name in ("auto", "auto, no confirm", "every=1"):
        median = statistics.median(times[name])
        cpu = statistics.median(cpus[name])
        run = runs[name][times[name].index(sorted(times[name])[len(times[name]) // 2])]
        updates = sum(record.bounds_updated for record in run.epochs)
        print(f"  monitor {name:<16} {median:8.3f} s   ratio {median / base:5.2f}   "
              f"(CPU {cpu:.3f} s, ratio {cpu / base_cpu:.2f})   "
              f"bound updates {updates}/{len(run.epochs)}"
              + (f" (epochs {[r.epoch for r in run.epochs if r.bounds_updated]})" if updates <= 12 else ""))
        t = run.timings
        print(f"      where the monitor's time went: YES-0 {t['yes0_seconds']:.3f} s, "
              f"epoch-end forward passes {t['certify_seconds']:.3f} s, "
              f"YES-k updates {t['bounds_seconds']:.3f} s (worker time), status {run.status}")
    print(f"load average now {_load()} (other processes on these cores inflate every figure)")
    ratio = statistics.median(times["auto"]) / base
    print(f"\nauto-cadence ratio {ratio:.2f} (goal <= 1.25): {'OK' if ratio <= 1.25 else 'ABOVE GOAL'}")


if __name__ == "__main__":
    main()
