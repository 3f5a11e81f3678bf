"""Bounds at scale: time and peak memory of the in-memory and the streamed engine, N = 10⁴ … 10⁶.

Synthetic phase-retrieval data (X ~ N(0, 1), Y = |X A|) and the hidden outputs of a
fixed random ReLU MLP with L = 5 affine layers; one epoch's YES-k bounds
(``yes_k_bounds``, all 15 anchor sets) per measurement. Three ways:

* ``in-memory``: X, Y and the hidden outputs held as N-row tensors, the default engine;
* ``streamed``: the same held tensors, ``chunk_size=--chunk`` (float64 sums);
* ``streamed, generated``: nothing N-sized anywhere: a loader generates each chunk
  of (x, y) on the fly and the hidden outputs come from the model per chunk
  (``YesCloud(loader, None, 5).compute(hidden_of)``) -- this column includes the
  model's forward passes (one per trie level).

Peak memory is the engine's working set above what was held before the call: on
CPU the peak resident set size (sampled every 2 ms with psutil; tracemalloc does not
see torch's allocations), on CUDA ``torch.cuda.max_memory_allocated``. The in-memory
engine is skipped where its estimated working set exceeds ``--max-in-memory-gb``.

Usage::

    python benchmarks/bench_scale.py --threads 1                  # N = 1e4 … 1e6 (several minutes)
    python benchmarks/bench_scale.py --sizes 10000 30000 --threads 1
    python benchmarks/bench_scale.py --device cuda
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from yeswidget.engine import bounds  # noqa: E402
from yeswidget.engine.bounds import YesCloud, yes_k_bounds  # noqa: E402

DEPTH = 5


class Synthetic:
    """A re-iterable loader of (x, y) chunks, each generated from its own seed."""

    def __init__(self, N: int, n: int, m: int, chunk: int, device):
        self.N, self.n, self.chunk, self.device = N, n, chunk, device
        self.A = torch.randn(n, m, generator=torch.Generator().manual_seed(1)).to(device)

    def __iter__(self):
        for i, start in enumerate(range(0, self.N, self.chunk)):
            rows = min(self.chunk, self.N - start)
            x = torch.randn(rows, self.n, generator=torch.Generator().manual_seed(1000 + i)).to(self.device)
            yield x, (x @ self.A).abs()

    def whole(self) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = zip(*self)
        return torch.cat(xs), torch.cat(ys)


def make_model(n: int, width: int, m: int, device) -> torch.nn.Sequential:
    torch.manual_seed(0)
    layers, fan_in = [], n
    for _ in range(DEPTH - 1):
        layers += [torch.nn.Linear(fan_in, width), torch.nn.ReLU()]
        fan_in = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, m)).to(device)


def hidden_outputs(model: torch.nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    out, h = [], x
    with torch.no_grad():
        for module in model:
            h = module(h)
            if isinstance(module, torch.nn.ReLU):
                out.append(h)
    return out


# --------------------------------------------------------------------------- #
# peak memory
# --------------------------------------------------------------------------- #
def _rss() -> int:
    import psutil
    return psutil.Process().memory_info().rss


def _trim() -> None:
    """Give freed heap back to the OS, so the next RSS baseline is honest."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - not glibc
        pass


class PeakMemory:
    """Peak bytes above the level at entry: CUDA allocator counters, or sampled RSS."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        _trim()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        self.base = self.peak = _rss()
        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self.peak = max(self.peak, _rss())
                time.sleep(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self.base
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.bytes = self.peak - self.base


def measure(fn, device):
    with PeakMemory(device) as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    measure.cpu = cpu  # CPU seconds of the last call (steadier than wall time on a shared machine)
    return result, seconds, memory.bytes


def max_rel(a: dict, b: dict) -> float:
    return max(abs(a[s] - b[s]) / abs(b[s]) for s in b)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000, 1_000_000])
    parser.add_argument("--n", type=int, default=64, help="inputs")
    parser.add_argument("--width", type=int, default=64, help="hidden width (64-256)")
    parser.add_argument("--m", type=int, default=64, help="outputs")
    parser.add_argument("--chunk", type=int, default=8192, help="rows per streamed chunk")
    parser.add_argument("--max-in-memory-gb", type=float, default=5.0,
                        help="skip the in-memory engine above this estimated working set")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here")
        return 1
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"bench_scale on {where}; torch {torch.__version__}; L={DEPTH}, n={args.n}, hidden width {args.width}, "
          f"m={args.m}, chunk {args.chunk}; one epoch of YES-k (15 anchor sets)")
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    model = make_model(args.n, args.width, args.m, device)
    print(f"\n{'N':>9} | {'in-memory s':>11} {'peak MB':>9} | {'streamed s':>10} {'peak MB':>9} {'x time':>7} "
          f"{'x cpu':>6} {'max rel':>8} | {'generated s':>11} {'peak MB':>9}")
    for N in args.sizes:
        loader = Synthetic(N, args.n, args.m, args.chunk, device)
        estimate = bounds._in_memory_bytes(N, args.n, args.m, [args.width] * (DEPTH - 1), DEPTH)
        row = f"{N:>9,} | "
        memory_result = None
        X, Y = loader.whole()
        hidden = [torch.cat(parts) for parts in zip(*(hidden_outputs(model, x) for x, _ in loader))]
        if estimate <= args.max_in_memory_gb * 2 ** 30:
            memory_result, t_mem, m_mem = measure(lambda X=X, Y=Y, hidden=hidden: yes_k_bounds(X, Y, hidden), device)
            cpu_mem = measure.cpu
            row += f"{t_mem:>11.2f} {m_mem / 2 ** 20:>9.0f} | "
        else:
            t_mem = None
            row += f"{'(skipped: est. ' + format(estimate / 2 ** 30, '.0f') + ' GB)':>21} | "
        streamed, t_str, m_str = measure(
            lambda X=X, Y=Y, hidden=hidden: yes_k_bounds(X, Y, hidden, chunk_size=args.chunk), device)
        ratio = f"{t_str / t_mem:>6.2f}x {measure.cpu / cpu_mem:>5.2f}x" if t_mem else f"{'-':>7} {'-':>6}"
        rel = f"{max_rel(streamed, memory_result):>8.1e}" if memory_result else f"{'-':>8}"
        row += f"{t_str:>10.2f} {m_str / 2 ** 20:>9.0f} {ratio} {rel} | "
        X = Y = hidden = None  # free the held data before the generated run
        _trim()

        def generated(loader=loader, model=model):
            cloud = YesCloud(loader, None, DEPTH)
            return cloud.compute(lambda chunk: hidden_outputs(model, chunk.to(torch.float32)))

        gen, t_gen, m_gen = measure(generated, device)
        row += f"{t_gen:>11.2f} {m_gen / 2 ** 20:>9.0f}"
        assert max_rel(gen, streamed) < 1e-6, "generated data differs from the held data"
        print(row, flush=True)
    print("\n(peak MB: above the memory held before the call; x time / x cpu: streamed over in-memory, wall and "
          "CPU seconds; 'generated' also builds YES-0 (6 passes) and runs the model's forward once per trie level; "
          "max rel: streamed vs in-memory, all 15 anchor sets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
