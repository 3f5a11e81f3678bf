"""The linear algebra the in-memory bounds (:mod:`.bounds`) and the streamed ones (:mod:`.stream`)
share: input checks, activations, the solve counters and conditioning certificates, orthonormal
bases (Gram / Cholesky / eigen, primal or dual) and projections, and the anchor-set plan.

Private to the engine room; torch only.
"""
from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import torch

if TYPE_CHECKING:
    import numpy as np


#: an element-wise activation σ (a tensor in, a tensor of the same shape out)
Activation = Callable[[torch.Tensor], torch.Tensor]
#: ``activation=``: a name from ``_ACTIVATIONS``, an element-wise callable, or None (identity)
ActivationLike = str | Activation | None
#: one matrix, samples first (N × features): a tensor or a numpy array
MatrixLike: TypeAlias = "torch.Tensor | np.ndarray[Any, Any]"
#: ``X``/``Y``: one matrix, a list of row chunks, or a re-iterable loader (of ``(x, y)`` batches when Y is None)
DataLike: TypeAlias = "MatrixLike | Sequence[MatrixLike] | Iterable[Any]"
#: ``hidden``: one matrix (or list of row chunks) per hidden layer, or a callable x_chunk -> per-layer outputs
HiddenLike: TypeAlias = "Sequence[MatrixLike | Sequence[MatrixLike]] | Callable[[torch.Tensor], Sequence[MatrixLike]]"

_ACTIVATIONS: dict[str, Activation] = {
    "relu": torch.relu,
    "leaky_relu": torch.nn.functional.leaky_relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": torch.nn.functional.gelu,
    "elu": torch.nn.functional.elu,
    "identity": lambda t: t,
    "linear": lambda t: t,
}

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "double": torch.float64, "float": torch.float32}


# --------------------------------------------------------------------------- #
# counting solves (tests check that each distinct prefix is solved once)
# --------------------------------------------------------------------------- #
@dataclass
class SolveCount:
    """How much least-squares work was done: ``solves`` (target, representation)
    pairs projected, ``bases`` orthonormal bases built (one per distinct Z)."""

    solves: int = 0
    bases: int = 0
    #: float32 computations redone in float64 because a state was too ill-conditioned for float32
    float64_fallbacks: int = 0


_counters = threading.local()


@contextlib.contextmanager
def solve_counter() -> Iterator[SolveCount]:
    """Count the least-squares work done in this thread inside the ``with`` block."""
    count = SolveCount()
    stack = getattr(_counters, "stack", None)
    if stack is None:
        stack = _counters.stack = []
    stack.append(count)
    try:
        yield count
    finally:
        stack.remove(count)


def _count(solves: int = 0, bases: int = 0, fallbacks: int = 0) -> None:
    for count in getattr(_counters, "stack", ()):
        count.solves += solves
        count.bases += bases
        count.float64_fallbacks += fallbacks


# --------------------------------------------------------------------------- #
# float32 that can be trusted: a conditioning certificate, else float64
# --------------------------------------------------------------------------- #
#: float32 results are kept only when every state's equilibrated Gram matrix has no
#: eigenvalue below this fraction of its largest (other than dead units): float32
#: states carry ~eps32 relative rounding, which the next fits amplify by about the
#: condition number.
FLOAT32_MIN_EIGENVALUE = 1e-4
#: ... and when the estimated relative error of every e(S), eps32 · L · κ_max · ‖Y‖ / ‖Y − Ŷ‖
#: (κ_max: the largest condition number of any state, L the depth; a rounding error of
#: relative size eps32·κ in a fit moves E = ‖Y − Ŷ‖²/N by about 2‖r‖‖δŶ‖/N), stays below
#: this. The estimate overstates the error measured against float64 by 150-1000× on random
#: and trained states (tests/test_bounds.py), so a kept float32 result is within 1e-5.
FLOAT32_ERROR_ESTIMATE = 1e-4

_certificates = threading.local()


@dataclass
class _Certificate:
    """What a float32 attempt gathers: pass/fail flags and the condition numbers seen (tensors)."""

    flags: list[torch.Tensor]
    conditions: list[torch.Tensor]


@contextlib.contextmanager
def _collect_certificates() -> Iterator[list[torch.Tensor]]:
    previous = getattr(_certificates, "current", None)
    certificate = _Certificate([], [])
    _certificates.current = certificate
    try:
        yield certificate.flags
    finally:
        _certificates.current = previous


def _collecting() -> bool:
    return getattr(_certificates, "current", None) is not None


@contextlib.contextmanager
def _counts_into(pending: SolveCount) -> Iterator[None]:
    """Send _count to ``pending`` only (an attempt's work is counted once it is kept)."""
    stack = getattr(_counters, "stack", None)
    _counters.stack = [pending]
    try:
        yield
    finally:
        _counters.stack = stack if stack is not None else []


def _trusted(compute: Callable[[torch.dtype], torch.Tensor], dtype: torch.dtype) -> list[float]:
    """``compute(dtype)`` (a 1-D tensor) as floats, in one host transfer.

    float32: every basis adds a conditioning certificate and every set of final errors an
    error estimate (:func:`_certify_errors`), read in the same transfer as the results; if
    one fails, everything is computed again in float64.
    """
    if dtype == torch.float64:
        return compute(dtype).reshape(-1).tolist()
    pending = SolveCount()
    with _collect_certificates() as flags, _counts_into(pending):
        values = compute(dtype).reshape(-1)
    ok = torch.stack([f.all() for f in flags]).all().reshape(1) if flags else torch.ones(1, dtype=torch.bool)
    out = torch.cat([values.to(torch.float64), ok.to(device=values.device, dtype=torch.float64)]).tolist()
    if out.pop() == 1.0:
        _count(solves=pending.solves, bases=pending.bases)
        return out
    _count(fallbacks=1)
    return compute(torch.float64).reshape(-1).tolist()


def _certify(gram_eq: torch.Tensor, lam: torch.Tensor) -> None:
    """Record whether float32 can be trusted on these (…, d, d) states (see FLOAT32_MIN_EIGENVALUE)
    and their condition numbers (for :func:`_certify_errors`)."""
    certificate: _Certificate | None = getattr(_certificates, "current", None)
    if certificate is None:
        return
    dead = (torch.diagonal(gram_eq, dim1=-2, dim2=-1) == 0).sum(-1)
    weak = (lam < FLOAT32_MIN_EIGENVALUE * lam[..., -1:]).sum(-1)
    certificate.flags.append(weak <= dead)
    # the smallest eigenvalue that is not a dead unit's (ascending: dead ones come first)
    smallest = lam.gather(-1, dead.clamp_max(lam.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
    ratio = lam[..., -1] / smallest.clamp_min(torch.finfo(lam.dtype).tiny)
    certificate.conditions.append(ratio.clamp_min(1).sqrt().reshape(-1).max().to(torch.float64))


def _certify_errors(errors: torch.Tensor, Y: torch.Tensor, depth: int) -> None:
    """float32: add the flag "every e(S) in ``errors`` (1-D) is within FLOAT32_ERROR_ESTIMATE",
    estimated as eps32 · depth · κ_max · ‖Y‖ / ‖Y − Ŷ‖ (no host sync)."""
    certificate: _Certificate | None = getattr(_certificates, "current", None)
    if certificate is None:
        return
    kappa = torch.stack(certificate.conditions).max() if certificate.conditions else torch.ones((), dtype=torch.float64)
    scale = Y.to(torch.float64).square().sum() / Y.shape[-2]
    leverage = (scale / errors.to(torch.float64).clamp_min(0)).sqrt().max()  # inf when some E is 0
    estimate = torch.finfo(torch.float32).eps * depth * kappa.to(leverage.device) * leverage
    certificate.flags.append((estimate <= FLOAT32_ERROR_ESTIMATE).reshape(1))


# --------------------------------------------------------------------------- #
# input checks
# --------------------------------------------------------------------------- #
def _resolve_activation(activation: ActivationLike) -> Activation:
    if activation is None:
        return _ACTIVATIONS["identity"]
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation.lower() in _ACTIVATIONS:
        return _ACTIVATIONS[activation.lower()]
    raise ValueError(
        f"activation={activation!r} is not supported; use one of {sorted(_ACTIVATIONS)} "
        "or pass an element-wise callable"
    )


def _resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype={dtype!r} is not supported; use 'float64' (exact) or 'float32' (fast)")
        return _DTYPES[dtype]
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype={dtype} is not supported; use torch.float64 (exact) or torch.float32 (fast)")
    return dtype


def _tensor_from(name: str, value: object) -> torch.Tensor:
    """``value`` if a tensor, a numpy array shared as a tensor, else a clear error naming ``name``."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    else:
        if isinstance(value, np.ndarray):
            return torch.from_numpy(value)
    raise TypeError(f"{name} must be a torch.Tensor (N × features); got {type(value).__name__}")


def _as_matrix(name: str, value: object, *, rows: int | None = None, check_finite: bool = True) -> torch.Tensor:
    """A 2-D floating tensor, or a clear error naming ``name``."""
    value = _tensor_from(name, value)
    if value.ndim != 2:
        hint = " (use .reshape(-1, 1) for a single feature)" if value.ndim == 1 else ""
        hint = hint or (" (flatten the features: .flatten(1))" if value.ndim > 2 else "")
        raise ValueError(f"{name} must be 2-D (samples × features); got shape {tuple(value.shape)}{hint}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype; got {value.dtype} (convert with .float())")
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(value.shape)}")
    if rows is not None and value.shape[0] != rows:
        raise ValueError(
            f"{name} has {value.shape[0]} samples (shape {tuple(value.shape)}) but X has {rows}; "
            "every tensor must hold the same samples in the same order"
        )
    return value


def _check_finite(named: Sequence[tuple[str, torch.Tensor]]) -> None:
    """One device sync for all tensors: raise naming the first non-finite one."""
    if not named:
        return
    flags = torch.stack([torch.isfinite(t).all() for _, t in named]).tolist()
    for (name, tensor), ok in zip(named, flags):
        if not ok:
            bad = int((~torch.isfinite(tensor)).sum())
            kind = "NaN" if bool(torch.isnan(tensor).any()) else "inf"
            raise ValueError(f"{name} contains {bad} non-finite value(s) ({kind} among them); "
                             "the bounds need finite data")


def _check_devices(named: Sequence[tuple[str, torch.Tensor]]) -> torch.device:
    device = named[0][1].device
    for name, tensor in named[1:]:
        if tensor.device != device:
            raise ValueError(
                f"{name} is on {tensor.device} but {named[0][0]} is on {device}; "
                "move all tensors to one device (e.g. .to(X.device))"
            )
    return device


def _check_depth(depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(f"depth must be an int (number of affine layers L ≥ 1); got {depth!r}")
    if depth < 1:
        raise ValueError(f"depth must be ≥ 1 (number of affine layers L); got {depth}")
    return depth


# --------------------------------------------------------------------------- #
# the least-squares step
# --------------------------------------------------------------------------- #
def _with_bias(Z: torch.Tensor, bias: bool) -> torch.Tensor:
    if not bias:
        return Z
    ones = torch.ones(*Z.shape[:-1], 1, dtype=Z.dtype, device=Z.device)
    return torch.cat([Z, ones], dim=-1)


Basis = tuple[torch.Tensor, "torch.Tensor | None"]  # (Q, W): col(A) = col(Q W), (Q W) orthonormal; W None: Q is


def _equilibrate(A: torch.Tensor) -> torch.Tensor:
    """Unit-norm columns (dead units stay exactly zero): thresholds become
    relative to the data's own scale and the Gram matrix is well scaled."""
    norms = torch.linalg.vector_norm(A, dim=-2, keepdim=True)
    return A * torch.where(norms > 0, norms.reciprocal(), torch.zeros_like(norms))


def _eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending, (…, d)) and eigenvectors ((…, d, d)) of symmetric matrices (…, d, d)."""
    lam, vecs = torch.linalg.eigh(matrix)
    return lam, vecs


def _whitener(gram: torch.Tensor, rtol: float, *, shift: bool,
              on_spectrum: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
    """W with Wᵀ G W ≈ I on the numerically non-null eigen-directions of G.

    ``shift=False`` zeroes the columns of null directions (rank truncation);
    ``shift=True`` keeps every direction, damping the weak ones (a pre-pass).
    """
    lam, vecs = _eigh(gram)
    if on_spectrum is not None:
        on_spectrum(lam)
    lam_max = lam[..., -1:].clamp_min(torch.finfo(gram.dtype).tiny)
    if shift:
        # floored at `tiny`: for an all-zero Gram (every unit dead, no bias) the
        # shift underflows to 0 in float32 and rsqrt(0) = inf would make 0·inf = NaN
        shift_value = (1e-3 * rtol * lam_max).clamp_min(torch.finfo(gram.dtype).tiny)
        scale = (lam.clamp_min(0) + shift_value).rsqrt()
    else:
        keep = lam > 10 * rtol * lam_max
        scale = torch.where(keep, lam.clamp_min(torch.finfo(gram.dtype).tiny).rsqrt(), torch.zeros_like(lam))
    return vecs * scale.unsqueeze(-2)


#: which form builds float64 bases: "auto" (the cheaper), "primal" (d × d Gram) or "dual" (N × N kernel)
BASIS_FORM = "auto"


def _dual_is_cheaper(N: int, d: int) -> bool:
    """Primal: Gram 2Nd² + eigh ~9d³; dual: kernel 2N²d + eigh ~9N³ (projections 4Nd·k vs 4N²·k)."""
    if BASIS_FORM != "auto":
        return BASIS_FORM == "dual"
    return 2 * N * N * d + 9 * N ** 3 < 2 * N * d * d + 9 * d ** 3


def _orthonormal_basis(A: torch.Tensor) -> Basis:
    """A basis of col(A) for A (…, N, d): (Q, W) with Q W orthonormal, (…, N, d) and (…, d, d);
    W is None when Q itself is orthonormal (the dual form).

    Null directions (dead ReLU units, duplicated columns) get zero columns, so
    the projector ``Q W Wᵀ Qᵀ`` is right whatever the rank. Works batched.

    float64 ("exact"): one eigen-decomposition of the equilibrated Gram matrix
    [Z,1]ᵀ[Z,1] (primal, d × d), or, for wide layers (d > N) when cheaper, of the
    kernel [Z,1][Z,1]ᵀ (dual, N × N): the same non-zero eigenvalues, so the same
    rank decision, and the same projector. Error ~eps·cond², GEMM-bound.
    float32 ("fast"): a Gram matrix squares the condition number, which float32
    cannot afford, so: a shifted pre-pass (weak directions are damped, not
    dropped), then two re-orthonormalisations with rank truncation (shifted
    CholeskyQR3, with eigen-decompositions in place of Cholesky).
    """
    rtol = torch.finfo(A.dtype).eps * max(A.shape[-2], A.shape[-1])
    if A.dtype == torch.float64:
        if _dual_is_cheaper(A.shape[-2], A.shape[-1]):
            return _dual_basis(A, rtol), None
        # equilibrate through the Gram matrix (no pass over A): Ge = S G S, W = S We
        gram = A.mT @ A
        diag = torch.diagonal(gram, dim1=-2, dim2=-1)
        scale = torch.where(diag > 0, diag.rsqrt(), torch.zeros_like(diag))
        gram_eq = gram * scale.unsqueeze(-1) * scale.unsqueeze(-2)
        return A, _exact_whitener(gram_eq, rtol) * scale.unsqueeze(-1)
    A = _equilibrate(A)
    gram = A.mT @ A
    certify = (lambda lam: _certify(gram, lam)) if _collecting() else None
    Q = A @ _whitener(gram, rtol, shift=True, on_spectrum=certify)
    Q = Q @ _whitener(Q.mT @ Q, rtol, shift=False)
    return Q, _whitener(Q.mT @ Q, rtol, shift=False)


#: on CPU, float64 whiteners come from Cholesky where a certificate allows (reading it
#: is free there); on other devices always from eigh, which needs no host round trip
CPU_CHOLESKY = True
#: Cholesky is used only where λ_min(G_eq) is certified this far above eigh's rank cut-off
CHOLESKY_MARGIN = 1e3


def _exact_whitener(gram_eq: torch.Tensor, rtol: float) -> torch.Tensor:
    """The float64 rank-truncated whitener of an equilibrated Gram matrix (…, d, d).

    eigh (~9d³) decides the rank. On CPU, matrices whose smallest eigenvalue is
    certified well above the cut-off take W = L⁻ᵀ from Cholesky instead (~d³): eigh
    would keep every direction there, and both give the same projector."""
    if not (CPU_CHOLESKY and gram_eq.device.type == "cpu"):
        return _whitener(gram_eq, rtol, shift=False)
    W, ok = _cholesky_whitener(gram_eq, rtol)
    flat_ok = ok.reshape(-1).tolist()  # a CPU read, not a device round trip
    if all(flat_ok):
        return W
    d = gram_eq.shape[-1]
    W, grams = W.reshape(-1, d, d).clone(), gram_eq.reshape(-1, d, d)
    redo = [i for i, good in enumerate(flat_ok) if not good]
    W[redo] = _whitener(grams[redo], rtol, shift=False)
    return W.reshape(gram_eq.shape)


def _cholesky_whitener(gram_eq: torch.Tensor, rtol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """W = L⁻ᵀ (Wᵀ G_eq W = I) from the Cholesky factor of an equilibrated Gram matrix
    (unit diagonal; a dead column gets a decoupled 1, its W row is zeroed by the caller's
    scale), and per matrix a certificate: λ_min(G_eq) ≥ 1/‖L⁻¹‖²_F is at least
    CHOLESKY_MARGIN × eigh's cut-off 10·rtol·λ_max (λ_max ≤ trace = d)."""
    d = gram_eq.shape[-1]
    dead = torch.diagonal(gram_eq, dim1=-2, dim2=-1) == 0
    L, info = torch.linalg.cholesky_ex(gram_eq + torch.diag_embed(dead.to(gram_eq.dtype)))
    eye = torch.eye(d, dtype=gram_eq.dtype, device=gram_eq.device).expand_as(L)
    L_inv = torch.linalg.solve_triangular(L, eye, upper=False)
    squared = L_inv.square().sum(dim=(-2, -1))
    ok = (info == 0) & torch.isfinite(squared) & (squared * (CHOLESKY_MARGIN * 10 * rtol * d) < 1)
    return L_inv.mT, ok


def _dual_basis(A: torch.Tensor, rtol: float) -> torch.Tensor:
    """Orthonormal eigenvectors of the equilibrated kernel (A S)(A S)ᵀ spanning col(A), (…, N, N);
    null directions get zero columns."""
    Ae = _equilibrate(A)
    lam, vecs = _eigh(Ae @ Ae.mT)
    lam_max = lam[..., -1:].clamp_min(torch.finfo(A.dtype).tiny)
    return vecs * (lam > 10 * rtol * lam_max).to(A.dtype).unsqueeze(-2)


def _project(basis: Basis, T: torch.Tensor) -> torch.Tensor:
    """``fit``: the orthogonal projection of T (…, N, k) onto the basis' span."""
    Q, W = basis
    if W is None:
        return Q @ (Q.mT @ T)
    return Q @ (W @ (W.mT @ (Q.mT @ T)))


def _metric(prediction: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """E = ‖Ŷ − Y‖² / N along the last two dims (a tensor, no host sync)."""
    residual: torch.Tensor = prediction - Y
    return residual.square().sum(dim=(-2, -1)) / Y.shape[-2]


# --------------------------------------------------------------------------- #
# the plan: which targets each layer is fitted to, shared prefixes once
# --------------------------------------------------------------------------- #
Y_TARGET = -1  # target index meaning "the data targets Y"


def anchor_sets(depth: int) -> list[tuple[int, ...]]:
    """Every non-empty anchor set S ⊆ {0 … L-2}, as sorted tuples (2^(L-1) − 1 of them)."""
    hidden = range(_check_depth(depth) - 1)
    return [s for r in range(1, depth) for s in itertools.combinations(hidden, r)]


def _targets(anchor_set: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """target(l) for l = 0 … L-2: the first anchor at or after l, else Y."""
    return tuple(next((s for s in anchor_set if s >= layer), Y_TARGET) for layer in range(depth - 1))


@dataclass
class _Node:
    prefix: tuple[int, ...]
    parent: int  # index into the previous level
    target: int  # hidden index, or Y_TARGET


def _plan(depth: int) -> Plan:
    """Levels of the prefix trie and, per anchor set, its leaf index in the last level."""
    sets = anchor_sets(depth)
    sequences = {s: _targets(s, depth) for s in sets}
    levels: list[list[_Node]] = []
    index_of: list[dict[tuple[int, ...], int]] = []
    for level in range(depth - 1):
        nodes: list[_Node] = []
        seen: dict[tuple[int, ...], int] = {}
        for seq in sequences.values():
            prefix = seq[: level + 1]
            if prefix not in seen:
                parent = index_of[level - 1][prefix[:-1]] if level else 0
                seen[prefix] = len(nodes)
                nodes.append(_Node(prefix, parent, prefix[-1]))
        levels.append(nodes)
        index_of.append(seen)
    leaves = {s: index_of[-1][seq] for s, seq in sequences.items()} if levels else {}
    return levels, leaves


#: the trie levels and, per anchor set, its leaf index in the last level
Plan = tuple[list[list[_Node]], dict[tuple[int, ...], int]]

_plan_cache: dict[int, Plan] = {}


def _cached_plan(depth: int) -> Plan:
    if depth not in _plan_cache:
        _plan_cache[depth] = _plan(depth)
    return _plan_cache[depth]
