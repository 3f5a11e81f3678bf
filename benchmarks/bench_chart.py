"""What does watching training cost? CloudChart streaming vs. redrawing matplotlib per epoch.

A synthetic run (default 1000 epochs × 100 steps = 100,000 logged steps) is
streamed through :class:`yeswidget.widgets.chart.CloudChart` the way a monitor
would (one ``StepEvent`` per step, one ``EpochEvent`` per epoch). Training time
is simulated: a clock advances ``1 / steps_per_second`` per step and the chart
is redrawn every 0.1 s of that simulated time (what the UI pump does at its
10 Hz, here asked for by ``flush`` on a pump that never fires by itself), so
the number of redraws is what a real run at that speed would get, while the
Python cost is measured for real (the redraws run on the pump thread;
``process_time`` counts every thread). Bytes are counted at the widgets'
``_send`` (the JSON text plus binary buffers each state update would put on
the wire).

The baseline is what livelossplot and the paper's scripts do: redraw a
matplotlib figure after every epoch and send it as a PNG (base64 inside the
display message). It draws the same picture (``yeswidget.view.render.draw_cloud``)
on the same data, in the same process. By default it is timed on an evenly
spaced sample of epochs (the cost grows with the data drawn, so the sample
mean estimates the mean over all epochs); ``--full-baseline`` redraws after
every epoch.

Usage::

    python benchmarks/bench_chart.py            # 100,000 steps, ~10-30 s
    python benchmarks/bench_chart.py --quick    # 10,000 steps, a few seconds
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import ipywidgets  # noqa: E402

from yeswidget.core.run import EpochEvent, EpochRecord, Run, StepEvent  # noqa: E402
from yeswidget.view.render import draw_cloud  # noqa: E402
from yeswidget.widgets.chart import CloudChart, state_nbytes  # noqa: E402
from yeswidget.widgets.pump import Pump  # noqa: E402


# --------------------------------------------------------------------------
# synthetic run
# --------------------------------------------------------------------------
def synthetic(epochs: int, steps: int, seed: int = 0):
    """Epoch records and per-step (position, loss) arrays of a plausible run."""
    rng = np.random.default_rng(seed)
    upper = 0.5
    records = []
    lower = upper
    t = np.arange(1, epochs + 1)
    base = 2.0 * np.exp(-t / (epochs / 6.0)) + 0.01
    for i, ep in enumerate(t):
        lower = min(lower, 0.05 + 0.4 * math.exp(-ep / (epochs / 12.0)))
        loss = float(base[i])
        zone = "red" if loss > upper else ("yellow" if loss > lower else "green")
        yes_k = [min(upper, lower * 1.3), lower * 1.15, lower * 1.05, lower]
        records.append(EpochRecord(int(ep), loss, upper, lower, zone, yes_k=yes_k,
                                   step=int(ep) * steps, wall_time=float(ep)))
    pos = (np.repeat(t - 1, steps) + np.tile(np.arange(1, steps + 1) / steps, epochs)).astype(float)
    step_loss = np.repeat(base, steps) * np.exp(rng.normal(0.0, 0.25, epochs * steps))
    return upper, records, pos, step_loss


class _Handle:
    def __init__(self, subs, cb):
        self.subs, self.cb = subs, cb

    def remove(self):
        if self.cb in self.subs:
            self.subs.remove(self.cb)


class SyntheticMonitor:
    def __init__(self, upper, epochs_total):
        self.run = Run(run_id="bench", config={"lr": 1e-3, "batch_size": 64, "optimizer": "adam"},
                       depth=5, upper=upper, layer_errors=[upper, 0.45, 0.44, 0.43, upper])
        self.epochs_total = epochs_total
        self.subs = []

    def subscribe(self, cb):
        self.subs.append(cb)
        return _Handle(self.subs, cb)


class SendCounter:
    """Counts what widgets would send: JSON text (UTF-8) plus binary buffers."""

    def __init__(self):
        self.bytes = 0
        self.messages = 0
        self._orig = None

    def __enter__(self):
        self._orig = ipywidgets.Widget._send
        counter = self

        def _send(widget, msg, buffers=None):
            counter.messages += 1
            counter.bytes += len(json.dumps(msg, default=str, ensure_ascii=False).encode("utf-8"))
            counter.bytes += sum(memoryview(b).nbytes for b in (buffers or ()))
            return counter._orig(widget, msg, buffers)

        ipywidgets.Widget._send = _send
        return self

    def __exit__(self, *exc):
        ipywidgets.Widget._send = self._orig


# --------------------------------------------------------------------------
# the two contenders
# --------------------------------------------------------------------------
def bench_chart(upper, records, pos, loss, steps, steps_per_second, step_batch, interval=0.1):
    epochs = len(records)
    monitor = SyntheticMonitor(upper, epochs)
    chart = CloudChart(pump=Pump(interval=3600.0))  # applies only when asked: in simulated time
    chart.watch(monitor)

    redraw_time = [0.0]

    redraws = [0]

    def redraw():
        redraws[0] += 1
        t0 = time.process_time()
        chart.flush()
        redraw_time[0] += time.process_time() - t0

    callback = monitor.subs[0]  # what the chart subscribed
    pos_list = pos.tolist()
    loss_list = loss.tolist()
    dt = step_batch / steps_per_second
    now, next_draw = 0.0, interval

    with SendCounter() as sent:
        t0 = time.perf_counter()
        c0 = time.process_time()
        for e in range(epochs):
            base = e * steps
            for k in range(0, steps, step_batch):
                i = base + k
                j = min(i + step_batch, base + steps)
                now += dt
                callback(StepEvent("bench", i, tuple(pos_list[i:j]), tuple(loss_list[i:j])))
                if now >= next_draw:
                    next_draw = now + interval
                    redraw()
            callback(EpochEvent("bench", records[e], epochs))
        redraw()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
    sim_seconds = epochs * steps / steps_per_second
    result = dict(
        wall=wall, cpu=cpu, redraws=redraws[0], redraw_time=redraw_time[0],
        bytes=sent.bytes, messages=sent.messages, sim_seconds=sim_seconds,
        initial_state=state_nbytes(chart), error=chart.last_error,
        step_points=int(chart.step_line.x.size),
    )
    chart.close()
    return result


def png_bytes_of(fig) -> int:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.tell()


def draw_minimal(run):
    """The cheapest per-epoch picture: epoch loss and the three bands, no steps, no legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    e = np.array([r.epoch for r in run.epochs], dtype=float)
    to_db = lambda v: 10 * np.log10(np.asarray(v, dtype=float))  # noqa: E731
    loss_db = to_db([r.loss for r in run.epochs])
    up = to_db([r.upper for r in run.epochs])
    lo = to_db([r.lower for r in run.epochs])
    top, bottom = max(loss_db.max(), up.max()) + 1, min(loss_db.min(), lo.min()) - 1
    ax.fill_between(e, up, top, color="#FFB6C1", alpha=0.4)
    ax.fill_between(e, lo, up, color="#FFD700", alpha=0.4)
    ax.fill_between(e, bottom, lo, color="#00FF7F", alpha=0.4)
    ax.plot(e, up, color="red")
    ax.plot(e, lo, "--", color="green")
    ax.plot(e, loss_db, color="black")
    ax.set_ylim(bottom, top)
    return fig


def bench_matplotlib(upper, records, pos, loss, steps, steps_per_second, samples, draw=None):
    """Redraw the whole figure after an epoch, as a PNG; timed at ``samples`` epochs."""
    epochs = len(records)
    if samples >= epochs:
        at = np.arange(1, epochs + 1)
    else:
        at = np.unique(np.linspace(1, epochs, samples).round().astype(int))
    pos_list = pos.tolist()
    loss_list = loss.tolist()
    times, cpu, sizes = [], [], []
    for t in at:
        run = Run(run_id="bench", config={"lr": 1e-3, "batch_size": 64}, upper=upper)
        run.epochs = records[:t]
        run.step_positions = pos_list[: t * steps]
        run.step_losses = loss_list[: t * steps]
        t0, c0 = time.perf_counter(), time.process_time()
        fig = draw(run) if draw is not None else draw_cloud(run, size=(8, 4.5), dpi=100)
        n = png_bytes_of(fig)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        sizes.append(4 * math.ceil(n / 3))  # base64 inside the display_data message
    per_epoch = float(np.mean(cpu))
    mean_png = float(np.mean(sizes))
    epochs_per_second = steps_per_second / steps
    return dict(per_epoch=per_epoch, per_epoch_wall=float(np.mean(times)), per_step=per_epoch / steps,
                png=mean_png,
                bytes_per_second=mean_png * epochs_per_second, samples=len(at),
                total_estimate=per_epoch * epochs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch")
    parser.add_argument("--quick", action="store_true", help="100 epochs × 100 steps, fewer samples")
    parser.add_argument("--steps-per-second", type=float, default=1000.0,
                        help="simulated training speed (sets redraws and bytes per second)")
    parser.add_argument("--step-batch", type=int, default=1,
                        help="steps per StepEvent (1 = one event per step, the worst case)")
    parser.add_argument("--baseline-samples", type=int, default=40,
                        help="epochs at which the matplotlib baseline is timed")
    parser.add_argument("--full-baseline", action="store_true", help="redraw matplotlib after every epoch")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = min(args.epochs, 100)
        args.baseline_samples = min(args.baseline_samples, 15)
    samples = args.epochs if args.full_baseline else args.baseline_samples

    upper, records, pos, loss = synthetic(args.epochs, args.steps)
    n_steps = args.epochs * args.steps
    print(f"synthetic run: {args.epochs} epochs × {args.steps} steps = {n_steps:,} steps; "
          f"simulated speed {args.steps_per_second:g} steps/s "
          f"({n_steps / args.steps_per_second:g} s of training); {args.step_batch} step(s) per StepEvent")

    c = bench_chart(upper, records, pos, loss, args.steps, args.steps_per_second, args.step_batch)
    if c["error"] is not None:
        print(f"  (chart reported a redraw error: {c['error']!r})")
    chart_step_us = 1e6 * c["cpu"] / n_steps
    chart_bps = c["bytes"] / c["sim_seconds"]
    print("\nCloudChart (bqplot, throttled to <= 10 redraws/s, min/max decimation)")
    print(f"  total Python time        {c['wall']:.2f} s wall, {c['cpu']:.2f} s CPU")
    print(f"  per logged step          {chart_step_us:.2f} µs CPU (callback + its share of redraws)")
    print(f"  redraws                  {c['redraws']} ({1e3 * c['redraw_time'] / max(c['redraws'], 1):.2f} ms CPU each, "
          f"{1e6 * c['redraw_time'] / n_steps:.2f} µs per step)")
    print(f"  callback alone           {1e6 * (c['cpu'] - c['redraw_time']) / n_steps:.2f} µs CPU per step")
    print(f"  sent                     {c['bytes'] / 1e6:.2f} MB in {c['messages']} messages, "
          f"{c['bytes'] / max(c['redraws'], 1) / 1e3:.1f} kB per redraw")
    print(f"  bytes per second         {chart_bps / 1e3:.1f} kB/s of training")
    print(f"  CPU load                 {1e3 * c['cpu'] / c['sim_seconds']:.1f} ms per second of training "
          f"({100 * c['cpu'] / c['sim_seconds']:.1f}% of one core)")
    print(f"  full state at the end    {c['initial_state'] / 1e3:.1f} kB (what a new view loads); "
          f"step line {c['step_points']} points")

    results = {}
    for name, draw, words in (
        ("same picture", None, "the same picture (render.draw_cloud: bands, steps, legend)"),
        ("minimal", draw_minimal, "a minimal picture (epoch loss + bands, no steps, no legend)"),
    ):
        m = bench_matplotlib(upper, records, pos, loss, args.steps, args.steps_per_second, samples, draw)
        results[name] = m
        print(f"\nmatplotlib baseline, {words}: redraw + PNG after every epoch "
              f"({m['samples']} epochs timed{'' if samples >= args.epochs else ', estimate for all'})")
        print(f"  per epoch                {1e3 * m['per_epoch']:.1f} ms CPU ({1e3 * m['per_epoch_wall']:.1f} ms wall; "
              f"≈ {m['total_estimate']:.1f} s CPU for the run)")
        print(f"  per logged step          {1e6 * m['per_step']:.2f} µs CPU")
        print(f"  PNG per epoch            {m['png'] / 1e3:.1f} kB (base64)")
        print(f"  bytes per second         {m['bytes_per_second'] / 1e3:.1f} kB/s of training")
        load = m["per_step"] * args.steps_per_second
        print(f"  CPU load                 {1e3 * load:.1f} ms per second of training ({100 * load:.1f}% of one core"
              f"{'; cannot keep up' if load > 1 else ''})")

    print("\nratio (matplotlib / CloudChart)")
    for name, m in results.items():
        print(f"  {name:<14} CPU per step {m['per_step'] / (c['cpu'] / n_steps):6.1f}×   "
              f"bytes per second {m['bytes_per_second'] / chart_bps:5.1f}×")
    return c, results


if __name__ == "__main__":
    main()
