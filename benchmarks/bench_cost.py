"""Does the cost estimate (yeswidget.engine.cost) predict what the bounds really cost?

For several shapes (N samples, n inputs, hidden widths, m outputs), compare the
estimate made from the shapes alone with a measurement of the same computation:

* time: ``YesCloud(X, Y, depth)`` (YES-0) and one ``cloud.compute(hidden)``
  (a YES-k update, hidden outputs given in float32 as a model captures them),
  wall-clock, best of ``--repeats``;
* memory: the peak resident memory that one update adds, on CPU measured in a
  fresh child process per shape (the kernel's high-water mark, reset just
  before the update; malloc's mmap threshold is pinned so freed blocks are not
  silently reused); on CUDA ``torch.cuda.max_memory_allocated``.

Printed: estimate, measurement and their ratio (estimate / measured) per shape.
The aim is a ratio within 3× (0.33 … 3) for time and memory.

Usage::

    python benchmarks/bench_cost.py --threads 1      # the reference setting
    python benchmarks/bench_cost.py --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from yeswidget.engine import cost  # noqa: E402  (the checkout first on the path)
from yeswidget.engine.bounds import YesCloud  # noqa: E402

# (label, N, n, hidden widths, m)
SHAPES = [
    ("paper phase retrieval", 800, 20, [100, 100, 100, 100], 100),
    ("MNIST-size MLP", 2000, 784, [256, 128], 10),
    ("wide MLP", 1500, 64, [1024, 512], 10),
    ("conv-sized tap", 600, 256, [2048, 64], 10),
    ("deep narrow", 3000, 32, [64, 64, 64, 64, 64, 64], 8),
]


def _data(N, n, widths, m, device):
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(N, n, generator=generator, dtype=torch.float64)
    Y = torch.randn(N, m, generator=generator, dtype=torch.float64)
    hidden = [torch.relu(torch.randn(N, w, generator=generator)) for w in widths]  # float32, as captured
    return X.to(device), Y.to(device), [h.to(device) for h in hidden]


def _best(fn, repeats, sync):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best, result


def _time_bounds(X, Y, hidden, repeats, sync) -> tuple[float, float]:
    """Best wall-clock seconds of YES-0 (building the cloud) and of one YES-k update."""
    yes0, cloud = _best(lambda: YesCloud(X, Y, len(hidden) + 1), repeats, sync)
    cloud.compute(hidden)  # warm-up
    update, _ = _best(lambda: cloud.compute(hidden), repeats, sync)
    return yes0, update


def _status(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def measure_memory_cpu(N, n, widths, m) -> float:
    """Child process: bytes of resident memory one update adds at its peak."""
    X, Y, hidden = _data(N, n, widths, m, "cpu")
    cloud = YesCloud(X, Y, len(widths) + 1)
    cloud.compute(hidden)  # warm-up: lazily loaded libraries, plan cache
    baseline = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the high-water mark to the current RSS
    cloud.compute(hidden)
    return _status("VmHWM") - baseline


def measure_memory_cuda(N, n, widths, m, device) -> float:
    X, Y, hidden = _data(N, n, widths, m, device)
    cloud = YesCloud(X, Y, len(widths) + 1)
    cloud.compute(hidden)
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    cloud.compute(hidden)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def _memory_in_child(shape, threads) -> float:
    _, N, n, widths, m = shape
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MALLOC_MMAP_THRESHOLD_="65536",
               MALLOC_TRIM_THRESHOLD_="0", PYTHONPATH=os.path.dirname(HERE))
    code = (f"import json, torch, sys; sys.path.insert(0, {HERE!r}); torch.set_num_threads({threads}); "
            "from bench_cost import measure_memory_cpu; "
            f"print(json.dumps(measure_memory_cpu({N}, {n}, {widths!r}, {m})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a loaded machine)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    r = cost.rates(device)
    calibration = time.perf_counter() - start
    print(f"device {device}, {torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.2f}")
    print(f"rates measured in {calibration * 1000:.0f} ms: GEMM {r.gemm / 1e9:.1f} Gflop/s (half speed when a side "
          f"is {r.gemm_half:.0f}), "
          f"eigh {r.eigh3 * 1e9:.2f} ns·d³ + {r.eigh2 * 1e9:.0f} ns·d², copy {r.stream / 1e9:.1f} GB/s")
    header = (f"{'shape':<24}{'N':>6}{'layers':>26} | {'YES-0 est':>9}{'meas':>9}{'ratio':>7} | "
              f"{'update est':>10}{'meas':>9}{'ratio':>7} | {'mem est':>9}{'meas':>9}{'ratio':>7}")
    print(header)
    print("-" * len(header))
    for shape in SHAPES:
        label, N, n, widths, m = shape
        estimate = cost.estimate(N, n, widths, m, device=device)
        X, Y, hidden = _data(N, n, widths, m, device)
        yes0, update = _time_bounds(X, Y, hidden, args.repeats, sync)
        if device.type == "cuda":
            memory = measure_memory_cuda(N, n, widths, m, device)
        else:
            memory = _memory_in_child(shape, torch.get_num_threads())
        layers = "→".join(map(str, [n, *widths, m]))
        print(f"{label:<24}{N:>6}{layers:>26} | {estimate.yes0_seconds:>8.3f}s{yes0:>8.3f}s"
              f"{estimate.yes0_seconds / yes0:>7.2f} | {estimate.update_seconds:>9.3f}s{update:>8.3f}s"
              f"{estimate.update_seconds / update:>7.2f} | {estimate.update_bytes / 1e6:>7.1f}MB"
              f"{memory / 1e6:>7.1f}MB{estimate.update_bytes / max(memory, 1):>7.2f}")


if __name__ == "__main__":
    main()
