"""What the YES bounds will cost, from shapes alone, before training starts.

Imports only torch and the standard library. The model follows the engine in
:mod:`yeswidget.engine.bounds` step by step:

* a least-squares basis of a state ``[Z, 1]`` (N × d): the Gram matrix
  (2·N·d² flop), its eigen-decomposition (timed ∝ d³), a few d × d temporaries;
* projecting k target columns on it: 4·N·d·k + 4·d²·k flop;
* YES-0: one basis per layer (d = n+1 for layer 1, m+1 after);
* one YES-k update: one basis per node of the prefix trie of anchor sets (each
  parent state's basis is shared by its children), plus a basis per leaf for
  the last layer, whose projection of Y is reduced to its norm.

Time = flop / (float64 GEMM rate) + Σ eigen-decompositions + memory traffic,
with the rates measured once per process and device (about 50 ms).
Memory = the update's working set: the hidden outputs (as captured and as
float64 copies), the target matrix, two levels of states, the batched d × d
matrices of one level, one projection.
"""
from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ._linalg import Y_TARGET, _cached_plan

__all__ = ["CostError", "CostEstimate", "Rates", "check", "estimate", "estimate_for_plan", "free_memory", "rates"]

#: seconds of Python and kernel-launch overhead per least-squares basis (a dozen small ops)
_BASIS_OVERHEAD_S = 5e-4
#: d × d float matrices alive per basis while it is built (Gram, its equilibrated copy,
#: eigenvectors, the whitener, the LAPACK workspace ≈ 2 d²)
_SQUARES_PER_BASIS = 7


class CostError(RuntimeError):
    """One bounds update would take too long or need too much memory; the message
    quotes the estimate and the ways out."""


# --------------------------------------------------------------------------- #
# rates, measured once
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Rates:
    """Measured speeds on one device.

    ``gemm``: flop/s of a large square matmul; a matmul whose smallest dimension
    is s runs at ``gemm``·s/(s + ``gemm_half``). A symmetric eigen-decomposition
    with vectors of size d takes ``eigh3``·d³ + ``eigh2``·d² seconds. ``stream``:
    bytes/s read + written by a large copy.
    """

    gemm: float
    gemm_half: float
    eigh3: float
    eigh2: float
    stream: float
    device: str
    dtype: str

    def gemm_seconds(self, flops: float, smallest: int) -> float:
        return flops * (smallest + self.gemm_half) / (smallest * self.gemm)


_rates_cache: dict[tuple[str, torch.dtype, int], Rates] = {}
_rates_lock = threading.Lock()


def _typical_time(fn: Callable[[], object], repeats: int, sync: Callable[[], object]) -> float:
    """Median seconds of ``fn`` after a warm-up: on a busy machine (a training loop
    running beside the bounds) the median, not the best, is what the bounds will see."""
    fn()
    sync()  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return max(sorted(times)[len(times) // 2], 1e-7)


def rates(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64) -> Rates:
    """The GEMM, eigen-decomposition and copy speeds of ``device``, measured once per process
    and thread count (~50-100 ms on a CPU)."""
    device = torch.device(device)
    key = (str(device), dtype, torch.get_num_threads())
    with _rates_lock:
        if key not in _rates_cache:
            _rates_cache[key] = _measure(device, dtype)
        return _rates_cache[key]


def _measure(device: torch.device, dtype: torch.dtype) -> Rates:
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    cpu = device.type == "cpu"
    size = 384 if cpu else 4096
    a = _matrix(size, size, dtype, device)
    gemm = 2 * size ** 3 / _typical_time(lambda: a @ a, 3, sync)
    thin, long = (64, 4096) if cpu else (64, 65536)  # the shape of a Gram matrix [Z, 1]ᵀ[Z, 1]
    z = _matrix(long, thin, dtype, device)
    skinny = 2 * long * thin ** 2 / _typical_time(lambda: z.mT @ z, 3, sync)
    gemm_half = thin * max(gemm / skinny - 1, 0.0)
    # LAPACK-style eigh: ~11 GEMM-flop per d³ at large d on CPUs, dominated by d² work when d is small
    small = _eigh_time(64, dtype, device, sync)
    if cpu:
        eigh3 = 11.0 / gemm
    else:  # GPU solvers differ too much: fit a second size
        large = _eigh_time(1024, dtype, device, sync)
        eigh3 = max((large - 256 * small) / (1024 ** 3 - 256 * 64 ** 3), 11.0 / gemm)
    eigh2 = max((small - eigh3 * 64 ** 3) / 64 ** 2, 0.0)
    src = torch.ones(1 << 21, dtype=dtype, device=device)  # 16 MB in float64: beyond most caches
    dst = torch.empty_like(src)
    stream = 2 * src.numel() * src.element_size() / _typical_time(lambda: dst.copy_(src), 2, sync)
    return Rates(gemm=gemm, gemm_half=gemm_half, eigh3=eigh3, eigh2=eigh2, stream=stream, device=str(device),
                 dtype=str(dtype).replace("torch.", ""))


def _matrix(rows: int, cols: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A random test matrix made on ``device`` by a private generator (the global RNG state is untouched)."""
    generator = torch.Generator(device=device).manual_seed(0)
    return torch.randn(rows, cols, dtype=dtype, device=device, generator=generator)


def _eigh_time(d: int, dtype: torch.dtype, device: torch.device, sync: Callable[[], object]) -> float:
    m = _matrix(d, d, dtype, device)
    spd = m @ m.mT + d * torch.eye(d, dtype=dtype, device=device)
    return _typical_time(lambda: torch.linalg.eigh(spd), 3, sync)


# --------------------------------------------------------------------------- #
# the work of one computation
# --------------------------------------------------------------------------- #
@dataclass
class _Work:
    gemm: dict[int, float] = field(default_factory=lambda: defaultdict(float))  # smallest dim → flop
    eigh_d3: float = 0.0  # Σ d³ over eigen-decompositions
    eigh_d2: float = 0.0  # Σ d²
    traffic: float = 0.0  # bytes read + written by copies and element-wise steps
    bases: int = 0
    peak: float = 0.0  # bytes

    @property
    def flops(self) -> float:
        return sum(self.gemm.values())

    def basis(self, N: int, d: int, size: int) -> None:
        """The orthonormal basis of an N × d state: Gram matrix, eigh, d × d scalings."""
        self.gemm[min(N, d)] += 2 * N * d * d
        self.eigh_d3 += d ** 3
        self.eigh_d2 += d ** 2
        self.traffic += 10 * d * d * size
        self.bases += 1

    def project(self, N: int, d: int, k: int, size: int) -> None:
        """Fit k target columns on an N × d basis, apply the activation, store the states."""
        self.gemm[min(N, d, k)] += 4 * N * d * k
        self.gemm[min(d, k)] += 4 * d * d * k
        # the target slice made contiguous, the fit written, the activation read and
        # written, the result copied into the state buffer
        self.traffic += 8 * N * k * size

    def seconds(self, r: Rates) -> float:
        gemm = sum(r.gemm_seconds(flops, smallest) for smallest, flops in self.gemm.items())
        return (gemm + self.eigh_d3 * r.eigh3 + self.eigh_d2 * r.eigh2 + self.traffic / r.stream
                + self.bases * _BASIS_OVERHEAD_S)


def _yes0_work(N: int, n: int, m: int, depth: int, bias: bool, size: int) -> _Work:
    work = _Work()
    b = int(bias)
    for layer in range(depth):
        d = (n if layer == 0 else m) + b
        work.basis(N, d, size)
        work.project(N, d, m, size)
        work.traffic += N * d * size  # [Z, 1] copied
        work.peak = max(work.peak, size * (N * d + _SQUARES_PER_BASIS * d * d + 2 * N * m))
    return work


def _update_work(N: int, n: int, widths: Sequence[int], m: int, bias: bool, size: int,
                 captured_size: int) -> _Work:
    """One YES-k update (``YesCloud.compute``) on hidden outputs of ``widths``."""
    depth = len(widths) + 1
    work = _Work()
    if depth == 1:
        return work
    b = int(bias)
    width = {t: w for t, w in enumerate(widths)}
    width[Y_TARGET] = m
    held = N * sum(widths) * (captured_size + size) + N * (sum(widths) + m) * size  # hidden, copies, targets
    levels, _ = _cached_plan(depth)
    states = [n + b]  # the root [X, 1]
    work.traffic += N * (n + b) * size
    peak = held + N * (n + b) * size
    for nodes in levels:
        children: dict[int, int] = defaultdict(int)
        for node in nodes:
            children[node.parent] += width[node.target]
        by_width: dict[int, int] = defaultdict(int)
        for parent, k in children.items():
            work.basis(N, states[parent], size)
            work.project(N, states[parent], k, size)
            by_width[states[parent]] += 1
        squares = max(count * _SQUARES_PER_BASIS * d * d for d, count in by_width.items())
        fitted = max(children.values())
        new_states = [width[node.target] + b for node in nodes]
        level_bytes = N * (sum(states) + sum(new_states) + 2 * fitted) * size + squares * size
        peak = max(peak, held + level_bytes)
        states = new_states
    leaf_widths: dict[int, int] = defaultdict(int)
    for d in states:  # the last layer: a basis per leaf, Y's projection reduced to its norm
        work.basis(N, d, size)
        work.gemm[min(N, d, m)] += 2 * N * d * m + 2 * d * d * m
        leaf_widths[d] += 1
    squares = max(count * _SQUARES_PER_BASIS * d * d for d, count in leaf_widths.items())
    work.peak = max(peak, held + (N * sum(states) + squares) * size)
    return work


# --------------------------------------------------------------------------- #
# the estimate
# --------------------------------------------------------------------------- #
@dataclass
class CostEstimate:
    """Time (seconds) and peak memory (bytes) of YES-0 and of one YES-k update,
    for ``n_samples`` samples of ``input_features`` inputs, hidden widths and outputs."""

    n_samples: int
    input_features: int
    hidden_widths: list[int]
    output_features: int
    bias: bool
    device: str
    dtype: str
    yes0_seconds: float
    yes0_bytes: float
    update_seconds: float
    update_bytes: float
    update_flops: float
    bases_per_update: int
    notes: list[str] = field(default_factory=list)
    #: of update_flops, the estimated last-layer solves in the user's own loss (0 in squared error)
    solve_flops: float = 0.0
    #: the same solves cold (the run's first update starts from no earlier solution)
    first_solve_flops: float = 0.0

    @property
    def first_update_flops(self) -> float:
        """FLOPs of the run's first YES-k update: its own-loss solves cold."""
        return self.update_flops - self.solve_flops + self.first_solve_flops

    def describe(self) -> str:
        """One or more lines: the estimate, then any notes."""
        shape = " → ".join(map(str, [self.input_features, *self.hidden_widths, self.output_features]))
        line = (f"cost estimate on {self.n_samples} samples, layers {shape} ({self.dtype}, {self.device}): "
                f"YES-0 {_seconds(self.yes0_seconds)} and {_bytes(self.yes0_bytes)}; one YES-k update "
                f"{_seconds(self.update_seconds)} and {_bytes(self.update_bytes)} "
                f"({self.bases_per_update} least-squares bases, {self.update_flops / 1e9:.3g} Gflop)")
        return "\n".join([line, *(f"note: {note}" for note in self.notes)])

    def __str__(self) -> str:
        return self.describe()


def _seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 120:
        return f"{value / 60:.1f} min"
    if value >= 1:
        return f"{value:.1f} s"
    return f"{value * 1000:.0f} ms"


def _bytes(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int ≥ {low}; got {value!r}")
    return value


def estimate(n_samples: int, input_features: int, hidden_widths: Sequence[int], output_features: int, *,
             bias: bool = True, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64,
             captured_dtype: torch.dtype = torch.float32) -> CostEstimate:
    """Estimate YES-0 and one YES-k update on ``device`` from the shapes alone.

    ``n_samples`` N, ``input_features`` n, ``hidden_widths`` h_1 … h_{L-1}, ``output_features`` m;
    ``dtype``: the bounds' precision; ``captured_dtype``: the model's (hidden outputs as captured).
    """
    N = _check_int("n_samples", n_samples, 1)
    n = _check_int("input_features", input_features, 1)
    m = _check_int("output_features", output_features, 1)
    widths = [_check_int("hidden width", int(w), 1) for w in hidden_widths]
    size = torch.empty((), dtype=dtype).element_size()
    captured = torch.empty((), dtype=captured_dtype).element_size()
    measured = rates(device, dtype)
    yes0 = _yes0_work(N, n, m, len(widths) + 1, bias, size)
    update = _update_work(N, n, widths, m, bias, size, captured)
    return CostEstimate(
        n_samples=N, input_features=n, hidden_widths=widths, output_features=m, bias=bool(bias),
        device=measured.device, dtype=measured.dtype,
        yes0_seconds=yes0.seconds(measured), yes0_bytes=yes0.peak,
        update_seconds=update.seconds(measured), update_bytes=update.peak, update_flops=update.flops,
        bases_per_update=update.bases, notes=_degenerate_notes(N, n, widths, bias),
    )


def estimate_for_plan(plan: Any, n_samples: int, **kwargs: Any) -> CostEstimate:
    """:func:`estimate` for a :class:`yeswidget.engine.capture.CapturePlan` on ``n_samples`` samples."""
    kwargs.setdefault("bias", plan.bias)
    return estimate(n_samples, plan.input_features, plan.hidden_widths, plan.output_features, **kwargs)


def _degenerate_notes(N: int, n: int, widths: Sequence[int], bias: bool) -> list[str]:
    """A layer whose input [Z, 1] has at least N columns reproduces any target exactly."""
    notes = []
    b = int(bias)
    if n + b >= N:
        notes.append(f"the input has {n} features for {N} certification samples: the first least-squares layer "
                     f"interpolates its targets, so the bounds are degenerate (YES-0 is near 0); use more "
                     f"samples (max_samples > {n + b}) or a smaller input")
    wide = [(i + 1, w) for i, w in enumerate(widths) if w + b >= N]
    if wide:
        listed = ", ".join(f"hidden layer {i} (width {w})" for i, w in wide)
        notes.append(f"{listed}: width ≥ the {N} certification samples, so the next least-squares layer "
                     f"interpolates its targets and the bounds are degenerate; certify on more samples "
                     f"(max_samples > {max(w for _, w in wide) + b}) or tap narrower layers")
    return notes


# --------------------------------------------------------------------------- #
# the limit
# --------------------------------------------------------------------------- #
def free_memory(device: torch.device | str = "cpu") -> int:
    """Bytes free on ``device`` now (CUDA: the driver's count; CPU: MemAvailable)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux nor macOS
        return 1 << 40


def check(cost: CostEstimate, *, max_seconds: float = 60.0, max_bytes: float | None = None,
          allow_expensive: bool = False) -> CostEstimate:
    """Return ``cost`` if one update fits in ``max_seconds`` and ``max_bytes`` (default:
    half the free memory of the device); else raise :class:`CostError` quoting the
    estimate and the ways out. ``allow_expensive=True`` skips the limit."""
    if allow_expensive:
        return cost
    if max_bytes is None:
        max_bytes = free_memory(cost.device) / 2
    too_slow = max(cost.update_seconds, cost.yes0_seconds) > max_seconds
    too_big = max(cost.update_bytes, cost.yes0_bytes) > max_bytes
    if not (too_slow or too_big):
        return cost
    over = []
    if too_slow:
        worst = max(cost.update_seconds, cost.yes0_seconds)
        over.append(f"take about {_seconds(worst)} (limit {_seconds(max_seconds)})")
    if too_big:
        worst = max(cost.update_bytes, cost.yes0_bytes)
        over.append(f"need about {_bytes(worst)} of memory (limit {_bytes(max_bytes)}, half the free memory)")
    which = "one YES-k update" if max(cost.update_seconds, cost.update_bytes / max_bytes * max_seconds) >= \
        max(cost.yes0_seconds, cost.yes0_bytes / max_bytes * max_seconds) else "YES-0"
    raise CostError(f"refusing to start: {which} would {' and '.join(over)}.\n{cost.describe()}\n"
                    + "Ways out:\n" + "\n".join(f"  - {way}" for way in _ways_out(cost, max_seconds, max_bytes)))


def _ways_out(cost: CostEstimate, max_seconds: float, max_bytes: float) -> list[str]:
    ways = []
    fits = _largest_fitting_n(cost, max_seconds, max_bytes)
    if fits is not None and fits >= 2:
        ways.append(f"max_samples={fits} (certify on a fixed subset; estimated to fit the limits)")
    else:
        ways.append("max_samples cannot help alone: the cost is dominated by the layer widths, not by N")
    widest = max([cost.input_features, *cost.hidden_widths])
    where = "the input" if widest == cost.input_features else \
        f"hidden layer {cost.hidden_widths.index(widest) + 1}"
    ways.append(f"narrower taps: {where} has {widest} features; tap fewer or narrower layers (the default "
                "taps only the Linear layers: do not pass include_conv=True; or choose taps=…)")
    ways.append(f"every=k: recompute YES-k every k epochs (each update still costs {_seconds(cost.update_seconds)}, "
                "the total k times less)")
    ways.append("allow_expensive=True: start anyway")
    return ways


def _largest_fitting_n(cost: CostEstimate, max_seconds: float, max_bytes: float) -> int | None:
    def fits(N: int) -> bool:
        smaller = estimate(N, cost.input_features, cost.hidden_widths, cost.output_features, bias=cost.bias,
                           device=cost.device, dtype=getattr(torch, cost.dtype))
        return max(smaller.update_seconds, smaller.yes0_seconds) <= max_seconds and \
            max(smaller.update_bytes, smaller.yes0_bytes) <= max_bytes
    if not fits(2):
        return None
    low, high = 2, cost.n_samples
    while high - low > max(1, low // 50):
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low
