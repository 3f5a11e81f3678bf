"""How fast and how accurate is one epoch of YES-k bounds?

``yeswidget.engine.bounds.yes_k_bounds`` (prefix-shared orthonormal bases, batched
GEMMs, one host transfer) against a plain re-implementation of the published
per-epoch procedure, in the same process on the same data:

    for every anchor set S, for every layer l:
        A = [Z, 1] (float32);  W = torch.linalg.pinv(A) @ target(l);  Zhat = A @ W
        Z = relu(Zhat)                       (the last layer stays linear)
    err = 0; for i in range(N): err += ((Zhat[i] - Y[i]) ** 2).sum().item()
    e(S) = err / N

Data: phase retrieval (Y = |X A|) and the hidden outputs (post-ReLU) of a
randomly initialised torch MLP of the given shape (``torch.manual_seed(0)``).
Sizes: the paper's (N=800, n=20, m=100, L=5, widths 100) and a larger one
(N=4000, n=64, m=128, L=6, widths 128).

Also printed: the FLOPs our method does (counted from the shapes it actually
processes, with the formulas in ``flops_of_run``), the achieved GFLOP/s next
to a large GEMM's GFLOP/s measured in the same run, and, on the paper's size,
the largest relative deviation of each method from a float64 ``numpy.linalg.lstsq``
reference (the spec's ground truth).

Usage::

    python benchmarks/bench_bounds.py                 # both sizes, CPU (~1-2 min on 2 cores)
    python benchmarks/bench_bounds.py --quick         # paper's size only, fewer repeats
    python benchmarks/bench_bounds.py --device cuda   # the same on the GPU (naive on the GPU too)
    python benchmarks/bench_bounds.py --threads 1     # pin torch's CPU threads (a loaded machine)

Timings are wall-clock, best of ``--repeats`` (median in brackets; the naive
epoch at the large size is timed once by default): on a shared machine they are
noisy, and multi-threaded BLAS on an oversubscribed machine can be many times
slower than one thread, so the header prints the load average.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from yeswidget.engine import bounds  # noqa: E402
from yeswidget.engine.bounds import anchor_sets, solve_counter, yes_k_bounds  # noqa: E402

SIZES = {
    "paper": dict(N=800, n=20, m=100, depth=5, width=100),
    "large": dict(N=4000, n=64, m=128, depth=6, width=128),
}


# --------------------------------------------------------------------------- #
# data
# --------------------------------------------------------------------------- #
def make_data(N, n, m, depth, width, device):
    """Phase-retrieval data and the L-1 hidden outputs of a random-init MLP (float32)."""
    torch.manual_seed(0)
    X = torch.randn(N, n)
    Y = (X @ torch.randn(n, m)).abs()
    layers, fan_in = [], n
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(fan_in, width), torch.nn.ReLU()]
        fan_in = width
    net = torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, m))
    hidden, H = [], X
    with torch.no_grad():
        for module in net:
            H = module(H)
            if isinstance(module, torch.nn.ReLU):
                hidden.append(H.clone())
    return X.to(device), Y.to(device), [h.to(device) for h in hidden]


# --------------------------------------------------------------------------- #
# the published procedure, re-implemented plainly
# --------------------------------------------------------------------------- #
def first_anchor_at_or_after(anchor_set, layer):
    later = [s for s in anchor_set if s >= layer]
    return later[0] if later else None


def naive_epoch(X, Y, hidden):
    depth = len(hidden) + 1
    N = X.shape[0]
    out = {}
    for S in anchor_sets(depth):
        Z = X.float()
        for layer in range(depth):
            anchor = None if layer == depth - 1 else first_anchor_at_or_after(S, layer)
            T = (Y if anchor is None else hidden[anchor]).float()
            A = torch.cat([Z, torch.ones(N, 1, device=Z.device)], dim=1)
            W = torch.linalg.pinv(A) @ T
            Zhat = A @ W
            Z = Zhat if layer == depth - 1 else torch.relu(Zhat)
        err = 0.0
        for i in range(N):
            err += ((Zhat[i] - Y[i]) ** 2).sum().item()
        out[S] = err / N
    return out


# --------------------------------------------------------------------------- #
# the float64 ground truth (numpy lstsq, each set on its own)
# --------------------------------------------------------------------------- #
def reference_epoch(X, Y, hidden):
    Xn = X.double().cpu().numpy()
    Yn = Y.double().cpu().numpy()
    Hn = [h.double().cpu().numpy() for h in hidden]
    depth = len(hidden) + 1
    out = {}
    for S in anchor_sets(depth):
        Z = Xn
        for layer in range(depth):
            anchor = None if layer == depth - 1 else first_anchor_at_or_after(S, layer)
            T = Yn if anchor is None else Hn[anchor]
            A = np.hstack([Z, np.ones((Z.shape[0], 1))])
            W, *_ = np.linalg.lstsq(A, T, rcond=None)
            Z = A @ W if layer == depth - 1 else np.maximum(A @ W, 0.0)
        out[S] = float(((Z - Yn) ** 2).sum() / Yn.shape[0])
    return out


def max_rel_dev(values, reference):
    return max(abs(values[S] - reference[S]) / reference[S] for S in reference)


# --------------------------------------------------------------------------- #
# FLOPs: the shapes our method processes, counted with analytic formulas
# --------------------------------------------------------------------------- #
def basis_flops(batch, N, d, dtype):
    """``_orthonormal_basis`` on (batch, N, d): equilibration (norms + scaling, ~3Nd),
    then per pass a Gram matrix AᵀA (2Nd²) and an eigen-decomposition (~9d³), plus
    the GEMM applying the whitener (2Nd²) between passes.
    float64: one pass.  float32: three passes (shifted pre-pass + two re-orthonormalisations)."""
    if dtype == torch.float64:
        per = 3 * N * d + 2 * N * d * d + 9 * d ** 3
    else:
        per = 3 * N * d + 3 * (2 * N * d * d + 9 * d ** 3) + 2 * (2 * N * d * d)
    return batch * per


def project_flops(N, d, k):
    """``_project``: Q (W (Wᵀ (Qᵀ T))) with Q N×d, W d×d, T N×k: 2Ndk + 2d²k + 2d²k + 2Ndk."""
    return 4 * N * d * k + 4 * d * d * k


def flops_of_run(X, Y, hidden, dtype):
    """Run ``yes_k_bounds`` once with the two kernels wrapped to record their shapes.

    Returns the FLOPs of the bases and of the projections, and the engine's own
    count of bases and solves (``solve_counter``)."""
    counted = {"basis": 0, "project": 0, "floor": 0}
    original_basis, original_project = bounds._orthonormal_basis, bounds._project
    original_residual = bounds._residual_error
    original_fit_into = getattr(bounds, "_fit_into", None)

    def basis(A):
        batch, N, d = math.prod(A.shape[:-2]), A.shape[-2], A.shape[-1]
        counted["basis"] += basis_flops(batch, N, d, A.dtype)
        counted["floor"] += batch * 2 * N * d * d
        return original_basis(A)

    def project(basis_, T):
        Q, _ = basis_
        counted["project"] += project_flops(Q.shape[-2], Q.shape[-1], T.shape[-1])
        counted["floor"] += 4 * Q.shape[-2] * Q.shape[-1] * T.shape[-1]
        return original_project(basis_, T)

    def fit_into(basis_, T, outputs, act):  # the projection written straight into the state buffers
        Q, _ = basis_
        counted["project"] += project_flops(Q.shape[-2], Q.shape[-1], T.shape[-1])
        counted["floor"] += 4 * Q.shape[-2] * Q.shape[-1] * T.shape[-1]
        return original_fit_into(basis_, T, outputs, act)

    def residual(basis_, Y_):
        Q, _ = basis_
        counted["floor"] += 4 * Q.shape[-2] * Q.shape[-1] * Y_.shape[-1]
        return original_residual(basis_, Y_)

    bounds._orthonormal_basis, bounds._project, bounds._residual_error = basis, project, residual
    if original_fit_into is not None:
        bounds._fit_into = fit_into
    try:
        with solve_counter() as count:
            yes_k_bounds(X, Y, hidden, dtype=dtype)
    finally:
        bounds._orthonormal_basis, bounds._project = original_basis, original_project
        bounds._residual_error = original_residual
        if original_fit_into is not None:
            bounds._fit_into = original_fit_into
    counted.update(bases=count.bases, solves=count.solves)
    return counted


# --------------------------------------------------------------------------- #
# timing
# --------------------------------------------------------------------------- #
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, repeats, device, warmup=True):
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def gemm_gflops(device, dtype, size=2048, repeats=3):
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best, _ = timed(lambda: a @ b, repeats, device)
    return 2 * size ** 3 / best / 1e9


# --------------------------------------------------------------------------- #
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the paper's size only, fewer repeats")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeats", type=int, default=None, help="timings per measurement (default 3, quick 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch.cuda.is_available() is False here; nothing to run on the GPU.")
        return 1
    repeats = args.repeats or (2 if args.quick else 3)
    sizes = ["paper"] if args.quick else ["paper", "large"]

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"yeswidget.engine.bounds benchmark on {where}; torch {torch.__version__}; best of {repeats} (median)")
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a loaded machine inflates "
              "multi-threaded timings; try --threads 1)")
    peak = {dt: gemm_gflops(device, dt) for dt in (torch.float64, torch.float32)}
    print(f"large GEMM (2048²): float64 {peak[torch.float64]:.1f} GFLOP/s, float32 {peak[torch.float32]:.1f} GFLOP/s\n")

    rows = []
    accuracy = None
    for name in sizes:
        shape = SIZES[name]
        X, Y, hidden = make_data(**shape, device=device)
        sets = len(anchor_sets(shape["depth"]))
        label = (f"{name}: N={shape['N']} n={shape['n']} m={shape['m']} L={shape['depth']} "
                 f"w={shape['width']} ({sets} sets)")
        print(f"timing {label} ...", flush=True)
        # the naive epoch at the large size takes seconds: time it once unless --repeats says otherwise
        naive_repeats = 1 if name == "large" and args.repeats is None else repeats
        naive = timed(lambda: naive_epoch(X, Y, hidden), naive_repeats, device, warmup=device.type == "cuda")
        ours64 = timed(lambda: yes_k_bounds(X, Y, hidden), repeats, device)
        ours32 = timed(lambda: yes_k_bounds(X, Y, hidden, dtype=torch.float32), repeats, device)
        f64 = flops_of_run(X, Y, hidden, torch.float64)
        f32 = flops_of_run(X, Y, hidden, torch.float32)
        rows.append((label, naive, ours64, ours32, f64, f32))
        if name == "paper":
            reference = reference_epoch(X, Y, hidden)
            accuracy = {
                "ours, float64 (default)": max_rel_dev(yes_k_bounds(X, Y, hidden), reference),
                "ours, float32 mode": max_rel_dev(yes_k_bounds(X, Y, hidden, dtype=torch.float32), reference),
                "naive float32 pinv": max_rel_dev(naive_epoch(X, Y, hidden), reference),
            }

    print()
    print(f"{'size':<52} {'naive s':>16} {'ours f64 s':>18} {'speedup':>8} {'ours f32 s':>18} {'speedup':>8}")
    for label, naive, o64, o32, *_ in rows:
        print(f"{label:<52} {naive[0]:>7.3f} ({naive[1]:>6.3f}) {o64[0]:>8.4f} ({o64[1]:>7.4f}) "
              f"{naive[0] / o64[0]:>7.1f}x {o32[0]:>8.4f} ({o32[1]:>7.4f}) {naive[0] / o32[0]:>7.1f}x")

    print()
    print(f"{'size':<52} {'mode':<8} {'bases':>6} {'solves':>6} {'GFLOP':>8} {'GFLOP/s':>8} {'GEMM GFLOP/s':>12} {'ratio':>6}")
    for label, _, o64, o32, f64, f32 in rows:
        for mode, (best, _), counted, dt in (("float64", o64, f64, torch.float64), ("float32", o32, f32, torch.float32)):
            total = counted["basis"] + counted["project"]
            rate = total / best / 1e9
            print(f"{label:<52} {mode:<8} {counted['bases']:>6} {counted['solves']:>6} {total / 1e9:>8.3f} "
                  f"{rate:>8.2f} {peak[dt]:>12.1f} {rate / peak[dt]:>6.1%}")
    print("  (bases/solves: solve_counter. FLOPs: per basis Gram 2Nd² + eigh 9d³ [float32: three passes plus two"
          " whitener GEMMs 2Nd²]; per projection GEMM chain 4Ndk + 4d²k, k = the width of the targets sharing it)")

    print()
    print("float64 time against the GEMM floor of the minimal prefix-shared work "
          "(2·N·d² per basis + 4·N·d·m per child projection, incl. the last layer's, at the float64 GEMM rate above):")
    print(f"{'size':<52} {'floor GFLOP':>11} {'floor s':>9} {'ours f64 s':>10} {'x floor':>8}")
    for label, _, o64, _o32, f64, _f32 in rows:
        floor_s = f64["floor"] / (peak[torch.float64] * 1e9)
        print(f"{label:<52} {f64['floor'] / 1e9:>11.3f} {floor_s:>9.4f} {o64[0]:>10.4f} {o64[0] / floor_s:>7.2f}x")

    if accuracy:
        print("\nmax relative deviation from a float64 numpy lstsq reference, paper's size, all sets:")
        for what, dev in accuracy.items():
            print(f"  {what:<26} {dev:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
