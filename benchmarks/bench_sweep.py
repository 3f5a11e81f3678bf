"""Wall time of a 12-run sweep: 1 vs 2 worker processes, and pruning on vs off (ratios, same process).

Phase retrieval (800 samples), 6 learning rates (three of them diverge: lr ≥ 0.3) × 2 batch
sizes, EPOCHS epochs each. Run: ``python benchmarks/bench_sweep.py``.
"""
from __future__ import annotations

import os
import tempfile
import time

import yeswidget

EPOCHS = int(os.environ.get("BENCH_EPOCHS", "12"))
GRID = dict(lr=(1e-3, 3e-3, 1e-2, 0.3, 0.5, 1.0), batch_size=(50, 100), epochs=EPOCHS)


def timed(**kwargs) -> tuple[float, int]:
    t0 = time.perf_counter()
    result = yeswidget.sweep("phase-retrieval", **GRID, **kwargs, folder=tempfile.mkdtemp())
    return time.perf_counter() - t0, sum(1 for r in result.results if r["pruned"])


if __name__ == "__main__":  # worker processes re-import this file
    timed(workers=2, prune=None)  # warm-up: the forkserver and the imports
    one, _ = timed(workers=1, prune=None)
    two, _ = timed(workers=2, prune=None)
    pruned, count = timed(workers=2, prune="red")
    print(f"12 runs × {EPOCHS} epochs: 1 worker {one:.1f} s, 2 workers {two:.1f} s "
          f"(ratio 1/2 workers {one / two:.2f}×); 2 workers pruning on {pruned:.1f} s, {count} runs pruned "
          f"(off/on ratio {two / pruned:.2f}×)")
