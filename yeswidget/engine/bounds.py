"""The YES training bounds (Yeganegi, Eamaz, Soltanalian 2024), computed with torch.

Pure math: imports neither ipywidgets nor bqplot, runs in a plain script, on the
inputs' device (CUDA when the tensors are there).

Every value is the metric ``E(Ŷ) = ‖Ŷ − Y‖_F² / N`` (squared error summed over
outputs, mean over samples). Tensors are samples-first: ``X`` is N × n, ``Y``
is N × m, each hidden output N × h_l.

How it is computed (see ``fit`` in YES-BOUNDS.md): a least-squares layer step
is the orthogonal projection of a target onto the column space of ``[Z, 1]``.
We build an orthonormal basis of that space once per distinct representation
``Z`` and project every target that shares it in one GEMM. The basis comes from
the Gram matrix of the column-equilibrated ``[Z, 1]`` with an eigen-decomposition
that drops null directions (dead ReLU units, duplicated columns); in float32
two re-orthonormalisation passes follow a shifted pre-pass (see
``_orthonormal_basis``). That is GEMM-bound, batched, free of host round-trips, and
accurate: float64 (the default, "exact") matches a float64 ``lstsq`` ground truth
to ~1e-10. float32 (``dtype=torch.float32``, for GPUs) is kept only where a
conditioning certificate holds (every state's equilibrated Gram matrix has its
eigenvalues within 1e-4 of the largest, dead units aside: float32 states carry
~6e-8 relative rounding that the next fits amplify by about the condition
number); elsewhere the call is computed again in float64 (``solve_counter``
counts these as ``float64_fallbacks``), so float32 mode is within ~1e-5 of
float64 everywhere. The paper's phase-retrieval states have condition numbers
~1e4, so there float32 mode always runs in float64.

Data larger than memory, or spread over torch.distributed ranks, goes through
``stream``: the same solves from float64 sums ``[Z,1]ᵀ[Z,1]`` and
``[Z,1]ᵀT`` read chunk by chunk (``chunk_size=``, chunk lists, loaders) and
all-reduced across ranks (``process_group=``). Wide layers (more columns than
samples) use the dual N × N form when it is cheaper.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeGuard

import torch

from ..core.zones import zone_of
from ._linalg import (
    Y_TARGET,
    Activation,
    ActivationLike,
    Basis,
    DataLike,
    HiddenLike,
    SolveCount,
    _as_matrix,
    _cached_plan,
    _certify_errors,
    _check_depth,
    _check_devices,
    _check_finite,
    _count,
    _metric,
    _Node,
    _orthonormal_basis,
    _project,
    _resolve_activation,
    _resolve_dtype,
    _trusted,
    _with_bias,
    anchor_sets,
    solve_counter,
)

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

    from .distributed import GroupLike
    from .losses import LastLayerLoss
    from .stream import ChunkSource

__all__ = ["yes0_bound", "yes_k_bounds", "YesCloud", "anchor_sets", "solve_counter", "SolveCount"]

def _propagate(
    X: torch.Tensor,
    Y: torch.Tensor,
    hidden: Sequence[torch.Tensor],
    levels: list[list[_Node]],
    bias: bool,
    act: Activation,
    last: LastLayerLoss | None = None,
) -> torch.Tensor:
    """Run the trie level by level; return E for every leaf (a 1-D tensor, on device).

    ``last``: the last layer is fitted in that loss instead (its minimum per leaf).

    States are kept with their bias column already appended, in one buffer per
    (level, width), so the batched Gram matrices need no stacking copies; the
    targets a parent's children share are a contiguous slice of one matrix
    ``[A_0, …, A_{L-2}, Y]``, so their projections need no concatenation.
    """
    all_targets = torch.cat([*hidden, Y], dim=1)
    offsets = [0]
    for t in [*hidden, Y]:
        offsets.append(offsets[-1] + t.shape[1])
    column = {i: (offsets[i], offsets[i + 1]) for i in range(len(hidden))}
    column[Y_TARGET] = (offsets[-2], offsets[-1])

    states: list[torch.Tensor] = [_with_bias(X, bias)]
    for nodes in levels:
        children_of: dict[int, list[int]] = {}
        for i, node in enumerate(nodes):
            children_of.setdefault(node.parent, []).append(i)
        buffers = _state_buffers(nodes, column, Y, bias)
        next_states: dict[int, torch.Tensor] = {}
        # one basis per parent state, shared by all its children
        bases = _bases([states[p] for p in children_of])
        for basis, children in zip(bases, children_of.values()):
            children = sorted(children, key=lambda c: column[nodes[c].target][0])
            spans = [column[nodes[c].target] for c in children]
            if all(a[1] == b[0] for a, b in zip(spans, spans[1:])):
                targets = all_targets[:, spans[0][0]:spans[-1][1]]
            else:  # not reached by the anchor-set plan, kept for safety
                targets = torch.cat([all_targets[:, a:b] for a, b in spans], dim=1)
            start = spans[0][0]
            if basis[1] is not None and basis[0].dtype == torch.float64 and bias:
                _fit_into(basis, targets, [(buffers[c], a - start, b - start) for c, (a, b) in zip(children, spans)],
                          act)
            else:
                fitted = _project(basis, targets)
                for c, (a, b) in zip(children, spans):
                    buffers[c][:, : b - a] = act(fitted[:, a - start:b - start])
            for c in children:
                next_states[c] = buffers[c]
            _count(solves=len(children))
        states = [next_states[i] for i in range(len(nodes))]  # every node is some parent's child
    if last is not None:  # the last layer fitted in the user's loss (engine.losses)
        return _loss_errors(states, Y, last, "leaves")
    # the last layer: linear, always fitted to Y
    errors = _final_errors(states, Y)
    _certify_errors(errors, Y, len(levels) + 1)  # float32: is every e(S) within 1e-5? (no sync)
    return errors


def _fit_into(basis: Basis, targets: torch.Tensor, outputs: list[tuple[torch.Tensor, int, int]],
              act: Activation) -> None:
    """float64 primal basis (Q = [Z, 1], its last column ones): write σ(fit) of each child's
    target columns [a, b) straight into its state buffer (N × (w + 1)): the coefficient map
    gets a unit column that copies Q's ones column, so one GEMM fills the state and its
    bias column with no intermediate; ReLU is applied in place."""
    Q, W = basis
    assert W is not None, "a primal basis carries its whitener"
    coefficients = W @ (W.mT @ (Q.mT @ targets))
    unit = torch.zeros(Q.shape[-1], 1, dtype=Q.dtype, device=Q.device)
    unit[-1] = 1
    for state, a, b in outputs:
        torch.mm(Q, torch.cat([coefficients[:, a:b], unit], dim=1), out=state)
        z = state[:, : b - a]
        if act is torch.relu:
            z.clamp_(min=0)
        else:
            z.copy_(act(z))


def _state_buffers(nodes: list[_Node], column: dict[int, tuple[int, int]], Y: torch.Tensor,
                   bias: bool) -> list[torch.Tensor]:
    """One (B, N, width [+1]) buffer per target width, bias column preset to 1; a view per node."""
    by_width: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        a, b = column[node.target]
        by_width.setdefault(b - a, []).append(i)
    views: dict[int, torch.Tensor] = {}
    for width, members in by_width.items():
        buffer = torch.empty(len(members), Y.shape[0], width + int(bias), dtype=Y.dtype, device=Y.device)
        if bias:
            buffer[:, :, width] = 1
        for j, i in enumerate(members):
            views[i] = buffer[j]
    return [views[i] for i in range(len(nodes))]


def _residual_error(basis: Basis, Y: torch.Tensor) -> torch.Tensor:
    """E of the last layer, fit(Y, Z), without forming the fit in float64:
    ‖Y − PY‖² = ‖Y‖² − ‖PY‖² (P an orthogonal projector) needs one GEMM, not two.
    The cancellation costs ~eps·‖Y‖²/E relative: negligible in float64, not in float32."""
    if Y.dtype != torch.float64:
        return _metric(_project(basis, Y), Y)
    Q, W = basis
    coefficients = Q.mT @ Y if W is None else W.mT @ (Q.mT @ Y)
    explained = coefficients.square().sum(dim=(-2, -1))
    return (Y.square().sum() - explained).clamp_min(0) / Y.shape[-2]


def _final_errors(states: list[torch.Tensor], Y: torch.Tensor) -> torch.Tensor:
    errors = [_residual_error(basis, Y).reshape(-1) for basis in _bases(states)]
    _count(solves=len(states))
    return torch.cat(errors)


def _loss_errors(states: list[torch.Tensor], Y: torch.Tensor, last: LastLayerLoss, key: str, *,
                 budgeted: bool = True) -> torch.Tensor:
    """The last layer's minimum in ``last``'s loss on each state (batched by width), as E is for MSE.
    ``budgeted=False``: a solve the cost budget does not count (YES-0), by the quickest route."""
    from .losses import SolveReport

    out: list[torch.Tensor | None] = [None] * len(states)
    by_width: dict[int, list[int]] = {}
    for i, A in enumerate(states):
        by_width.setdefault(A.shape[1], []).append(i)
    report = SolveReport()
    for width, indices in by_width.items():
        values = last.solve(_as_batch([states[i] for i in indices]), Y, key=(key, width, tuple(indices)),
                            budgeted=budgeted)
        report.merge(last.report)
        for i, value in zip(indices, values.unbind(0)):
            out[i] = value
    last.report = report
    _count(solves=len(states))
    return torch.stack([v for v in out if v is not None])


def _bases(states: list[torch.Tensor]) -> list[Basis]:
    """Orthonormal bases for several states ([Z, 1] or Z), batched where their widths agree.

    States that are views of one buffer (``_state_buffers``) are batched without a copy.
    """
    out: dict[int, Basis] = {}
    by_width: dict[int, list[int]] = {}
    for i, A in enumerate(states):
        by_width.setdefault(A.shape[1], []).append(i)
    for indices in by_width.values():
        batch = _as_batch([states[i] for i in indices])
        Qs, Ws = _orthonormal_basis(batch)
        for i, Q, W in zip(indices, Qs.unbind(0), [None] * len(indices) if Ws is None else Ws.unbind(0)):
            out[i] = (Q, W)
    _count(bases=len(states))
    return [out[i] for i in range(len(states))]


def _as_batch(mats: list[torch.Tensor]) -> torch.Tensor:
    """Stack same-shape matrices; when they are consecutive views of one buffer, return a view."""
    first = mats[0]
    base = first._base if first._base is not None else None
    if base is not None and base.dim() == 3 and all(m._base is base for m in mats):
        step = base.stride(0)
        offsets = [m.storage_offset() for m in mats]
        if all(b - a == step for a, b in zip(offsets, offsets[1:])) and first.stride() == base.stride()[1:]:
            return base.as_strided((len(mats), *first.shape), base.stride(), offsets[0])
    return torch.stack(mats)


def _yes0_states(X: torch.Tensor, Y: torch.Tensor, depth: int, bias: bool,
                 act: Activation, own: LastLayerLoss | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """YES-0 and the per-layer errors E(Z_l), l = 1 … L, as tensors (``own``: the last layer
    in that loss; E(Z_L) is then its minimum, the hidden layers' errors stay E)."""
    Z = X
    errors: list[torch.Tensor] = []
    for layer in range(depth):
        if own is not None and layer == depth - 1:
            errors.append(_loss_errors([_with_bias(Z, bias)], Y, own, "yes0", budgeted=False)[0])
            break
        (basis,) = _bases([_with_bias(Z, bias)])
        fitted = _project(basis, Y)
        _count(solves=1)
        last = layer == depth - 1
        Z = fitted if last else act(fitted)
        errors.append(_metric(Z, Y))
    _certify_errors(errors[-1].reshape(1), Y, depth)
    return errors[-1], torch.stack(errors)


# --------------------------------------------------------------------------- #
# public API
# --------------------------------------------------------------------------- #
def _prepare(X_in: object, Y_in: object, *, dtype: torch.dtype,
             device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    X = _as_matrix("X", X_in)
    Y = _as_matrix("Y", Y_in, rows=X.shape[0])
    if device is None:
        _check_devices([("X", X), ("Y", Y)])
        device = X.device
    for name, where in (("X", X.device), ("Y", Y.device), ("device", device)):
        if where.type == "meta":  # no values to copy or check: say so instead of failing inside .to()
            raise ValueError(f"{name} is on the meta device ({where}), which holds no values; "
                             "the bounds need real data on one device")
    X = X.to(device=device, dtype=dtype)
    Y = Y.to(device=device, dtype=dtype)
    _check_finite([("X", X), ("Y", Y)])
    return X, Y


def _prepare_hidden(hidden: object, depth: int, N: int, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    if isinstance(hidden, torch.Tensor) or not isinstance(hidden, (list, tuple)):
        raise TypeError(
            f"hidden must be a list of the network's {depth - 1} hidden-layer outputs (each N × h); "
            f"got {type(hidden).__name__}"
        )
    if len(hidden) != depth - 1:
        raise ValueError(
            f"hidden has {len(hidden)} tensors but a depth-{depth} network has {depth - 1} hidden layers "
            "(one output per layer except the last)"
        )
    checked = [_as_matrix(f"hidden[{i}]", h, rows=N) for i, h in enumerate(hidden)]
    for i, h in enumerate(checked):
        if h.device != device:
            raise ValueError(f"hidden[{i}] is on {h.device} but X is on {device}; move it with .to({str(device)!r})")
    checked = [h.detach().to(dtype=dtype) for h in checked]
    _check_finite([(f"hidden[{i}]", h) for i, h in enumerate(checked)])
    return checked


def yes0_bound(X: DataLike, Y: DataLike | None, depth: int, *, bias: bool = True,
               activation: ActivationLike = "relu", dtype: torch.dtype | str = torch.float64,
               chunk_size: int | None = None, process_group: GroupLike = None) -> float:
    """YES-0: the metric E reached by the greedy least-squares network of ``depth`` layers.

    ``X``: N × n inputs, ``Y``: N × m targets (any float dtype, one device); or both
    as lists of row chunks, or ``X`` a re-iterable loader of ``(x, y)`` batches and
    ``Y=None``. ``dtype``: float64 (exact, default) or float32 (fast on GPUs where
    its conditioning certificate holds, else computed in float64; streamed: float64).
    ``chunk_size``: stream over the samples this many rows at a time (float64 sums,
    memory independent of N); chosen automatically when the data would not fit.
    ``process_group``: under torch.distributed each rank passes its shard and gets
    YES-0 of the union (default: the default group when initialised; False: local).
    """
    depth = _check_depth(depth)
    act = _resolve_activation(activation)
    precision = _resolve_dtype(dtype)
    group = _group(process_group)
    if _streamed(X, Y, None, chunk_size, group):
        from .stream import stream_yes0
        source = _source(X, Y, chunk_size, None, depth)
        return stream_yes0(source, depth, bias=bias, act=act, group=group, keep_states=_keep(source, X))[0]
    X_mem, Y_mem = _prepare(X, Y, dtype=precision)
    return _trusted(lambda dt: _yes0_states(X_mem.to(dt), Y_mem.to(dt), depth, bias, act)[0], precision)[0]


def yes_k_bounds(X: DataLike, Y: DataLike | None, hidden: HiddenLike, *, bias: bool = True,
                 activation: ActivationLike = "relu", dtype: torch.dtype | str = torch.float64,
                 chunk_size: int | None = None, process_group: GroupLike = None) -> dict[tuple[int, ...], float]:
    """e(S) for every non-empty anchor set S of the network's hidden layers.

    ``hidden``: the L-1 hidden-layer outputs on X (post-activation, each N × h_l);
    streamed, also lists of chunks or a callable ``hidden(x_chunk) -> outputs``.
    Returns ``{S: E}`` with S a sorted tuple of 0-based hidden-layer indices.
    Each distinct prefix of layer targets is solved once. ``chunk_size`` and
    ``process_group`` as in :func:`yes0_bound`.
    """
    act = _resolve_activation(activation)
    precision = _resolve_dtype(dtype)
    group = _group(process_group)
    if not isinstance(hidden, (list, tuple)) and not (callable(hidden) and not isinstance(hidden, torch.Tensor)):
        raise TypeError(f"hidden must be a list of hidden-layer outputs (each N × h); got {type(hidden).__name__}")
    if _streamed(X, Y, hidden, chunk_size, group):
        from .stream import stream_yes_k
        if callable(hidden):
            raise TypeError("hidden as a callable needs the depth: use YesCloud(X, Y, depth).compute(hidden)")
        depth = len(hidden) + 1
        source = _source(X, Y, chunk_size, hidden, depth)
        return stream_yes_k(source, hidden, depth, bias=bias, act=act, group=group, keep_states=_keep(source, X))
    assert isinstance(hidden, (list, tuple))  # a callable is always streamed (_streamed)
    X_mem, Y_mem = _prepare(X, Y, dtype=precision)
    depth = len(hidden) + 1
    tensors = _prepare_hidden(hidden, depth, X_mem.shape[0], X_mem.device, precision)
    return _yes_k(X_mem, Y_mem, tensors, depth, bias, act)


# --------------------------------------------------------------------------- #
# in memory or streamed
# --------------------------------------------------------------------------- #
#: the in-memory path is used while its estimated working set stays below this
#: fraction of the free memory of the data's device
IN_MEMORY_FRACTION = 0.5
#: rows per chunk when streaming is chosen automatically: about this many bytes per chunk state set
AUTO_CHUNK_BYTES = 64 * 2 ** 20


def _group(process_group: GroupLike) -> ProcessGroup | None:
    from .distributed import resolve_group
    return resolve_group(process_group)


def _tensor_list(value: object) -> TypeGuard[Sequence[torch.Tensor]]:
    """A list or tuple of tensors only."""
    return isinstance(value, (list, tuple)) and all(isinstance(v, torch.Tensor) for v in value)


def _keep(source: ChunkSource, X: object) -> bool:
    """Keep the states between passes when the data is one whole tensor read as one chunk."""
    return source.chunk_size is None and isinstance(X, torch.Tensor)


def _chunked(value: object) -> bool:
    """A list of row chunks (tensors / arrays), or a re-iterable loader (not a tensor, list or array)."""
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(hasattr(v, "shape") and hasattr(v, "dtype") for v in value)
    return value is not None and not hasattr(value, "shape") and hasattr(value, "__iter__")


def _streamed(X: object, Y: object, hidden: object, chunk_size: int | None, group: ProcessGroup | None) -> bool:
    """Stream unless X, Y (and hidden) are whole tensors whose in-memory working set fits,
    with no ``chunk_size`` or process group given."""
    if chunk_size is not None or group is not None or _chunked(X) or _chunked(Y):
        return True
    if callable(hidden) and not isinstance(hidden, torch.Tensor):
        return True
    if isinstance(hidden, (list, tuple)) and any(_chunked(h) for h in hidden):
        return True
    if isinstance(X, torch.Tensor) and isinstance(Y, torch.Tensor):
        hidden_tensors = hidden if _tensor_list(hidden) else None
        if hidden is None or hidden_tensors is not None:
            return not _fits_in_memory(X, Y, hidden_tensors)
    return False


def _source(X: DataLike, Y: DataLike | None, chunk_size: int | None, hidden: HiddenLike | None, depth: int,
            device: torch.device | None = None) -> ChunkSource:
    from .stream import ChunkSource
    if chunk_size is None and isinstance(X, torch.Tensor) and isinstance(Y, torch.Tensor):
        # hidden here is None or a list (tuple) of per-layer outputs: sized only when all are tensors
        tensors = hidden if _tensor_list(hidden) else None
        chunk_size = None if _fits_in_memory(X, Y, tensors) else _auto_chunk_size(X, Y, tensors, depth)
    return ChunkSource(X, Y, chunk_size=chunk_size, device=device)


def _in_memory_bytes(N: int, n: int, m: int, widths: Sequence[int], depth: int, itemsize: int = 8) -> int:
    """Estimated working set of the in-memory engine: float copies of the data, the
    concatenated targets and the state buffers of two trie levels."""
    if depth <= 1 or not widths:
        return itemsize * N * 3 * (n + m + 1)
    levels, _ = _cached_plan(depth)
    widest = max(len(nodes) for nodes in levels)
    per_row = 2 * (n + m + sum(widths)) + 2 * widest * (max([*widths, m]) + 1)
    return itemsize * N * per_row


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover
        import os
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _widths_of(hidden: Sequence[torch.Tensor] | None) -> list[int]:
    return [h.shape[-1] for h in hidden] if hidden else []


def _fits_in_memory(X: torch.Tensor, Y: torch.Tensor, hidden: Sequence[torch.Tensor] | None) -> bool:
    if X.ndim != 2 or Y.ndim != 2 or X.device.type == "meta":
        return True  # let the in-memory path explain what is wrong
    widths = _widths_of(hidden)
    depth = len(widths) + 1 if hidden is not None else 1
    need = _in_memory_bytes(X.shape[0], X.shape[1], Y.shape[1], widths, depth)
    return need <= IN_MEMORY_FRACTION * _available_bytes(X.device)


def _auto_chunk_size(X: torch.Tensor, Y: torch.Tensor, hidden: Sequence[torch.Tensor] | None, depth: int) -> int:
    per_row = _in_memory_bytes(1, X.shape[1], Y.shape[1], _widths_of(hidden), depth)
    return max(256, AUTO_CHUNK_BYTES // max(per_row, 1))


def _yes_k(X: torch.Tensor, Y: torch.Tensor, hidden: Sequence[torch.Tensor], depth: int, bias: bool, act: Activation,
           dtype: torch.dtype | None = None, last: LastLayerLoss | None = None) -> dict[tuple[int, ...], float]:
    if depth == 1:
        return {}
    levels, leaves = _cached_plan(depth)
    if last is not None:  # the loss path solves in float64
        f64 = torch.float64
        values = _propagate(X.to(f64), Y.to(f64), [h.to(f64) for h in hidden], levels, bias, act, last).tolist()
        return {s: values[i] for s, i in leaves.items()}
    errors = _trusted(lambda dt: _propagate(X.to(dt), Y.to(dt), [h.to(dt) for h in hidden], levels, bias, act),
                      dtype or X.dtype)  # the one host transfer
    return {s: errors[i] for s, i in leaves.items()}


def _device_of(source: ChunkSource) -> torch.device:
    """The device a source's chunks are read onto (known once one chunk was read, or given)."""
    assert source.device is not None, "the source has read a chunk (or was given a device)"
    return source.device


class YesCloud:
    """The YES cloud of one network on one training set, epoch after epoch.

    ``X`` N × n, ``Y`` N × m; ``depth`` = number of affine layers L. ``upper`` is
    YES-0 (computed once). Each :meth:`update` with the network's L-1 hidden
    outputs records one epoch and returns the lower edge YES-(L-1)(t).
    ``device`` defaults to X's device; ``dtype`` float64 (exact) or float32 (fast).
    """

    def __init__(self, X: DataLike, Y: DataLike | None, depth: int, *, bias: bool = True,
                 activation: ActivationLike = "relu", device: torch.device | str | None = None,
                 dtype: torch.dtype | str = torch.float64, chunk_size: int | None = None,
                 process_group: GroupLike = None, loss: LastLayerLoss | None = None) -> None:
        self.depth = _check_depth(depth)
        #: the last layer's loss (engine.losses; None: squared error, the paper's construction)
        self.loss = loss
        self.bias = bool(bias)
        self.activation = activation
        self._act = _resolve_activation(activation)
        self.dtype = _resolve_dtype(dtype)
        self.chunk_size = chunk_size
        self._group = _group(process_group)
        #: True when the bounds are computed from float64 sums read chunk by chunk (and across ranks)
        self.streamed = _streamed(X, Y, None, chunk_size, self._group)
        if loss is not None and self.streamed and not loss.certifies_lower:
            raise ValueError(f"bounds in {loss.name} (a loss without an exact last-layer solve) are computed in "
                             "memory only: streamed or distributed data (chunk_size=, loaders, torch.distributed) "
                             "needs a convex loss module (e.g. nn.HuberLoss()); certify on a subset that fits "
                             "(max_samples=) or judge in squared error (loss=nn.MSELoss())")
        #: streamed in the user's loss: the last-layer solutions kept as warm starts between epochs
        self._warm: dict[object, torch.Tensor] = {}
        #: the data read chunk by chunk (streamed), else None and the data is ``X``, ``Y``
        self._source: ChunkSource | None = None
        self._keep = False
        self.X: torch.Tensor | None = None
        self.Y: torch.Tensor | None = None
        self.device: torch.device
        if self.streamed:
            from .stream import stream_yes0
            source = _source(X, Y, chunk_size, None, self.depth,
                             device=None if device is None else torch.device(device))
            self._source = source
            self._keep = _keep(source, X)
            upper, layer_errors, self._N = stream_yes0(source, self.depth, bias=self.bias, act=self._act,
                                                       group=self._group, keep_states=self._keep, last=loss,
                                                       warm=self._warm)
            self.device = _device_of(source)
            values = [upper, *layer_errors]
        else:
            self.X, self.Y = _prepare(X, Y, dtype=self.dtype, device=None if device is None else torch.device(device))
            self._N = self.X.shape[0]
            self.device = self.X.device
            values = (self._yes0_values(torch.float64).tolist() if loss is not None
                      else _trusted(self._yes0_values, self.dtype))
        self.upper: float = values[0]
        #: E(Z_l) of the YES-0 network after each layer l = 1 … L (the paper's depth plot)
        self.layer_errors: list[float] = values[1:]
        #: per recorded epoch: (epoch label, best e(S) over |S| = k for k = 1 … L-1)
        self._raw: list[list[float]] = []
        self._curves: list[list[float]] = [[] for _ in range(self.depth - 1)]
        self.epochs: list[int] = []
        self.last_bounds: dict[tuple[int, ...], float] = {}

    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """X and Y of a cloud computed in memory."""
        assert self.X is not None and self.Y is not None, "an in-memory cloud keeps X and Y"
        return self.X, self.Y

    def _yes0_values(self, dtype: torch.dtype) -> torch.Tensor:
        """YES-0 then E(Z_l) for l = 1 … L, computed in memory in ``dtype`` (a 1-D tensor)."""
        X, Y = self._tensors()
        return torch.cat([t.reshape(-1) for t in _yes0_states(X.to(dtype), Y.to(dtype), self.depth, self.bias,
                                                              self._act, self.loss)])

    @property
    def effective_dtype(self) -> torch.dtype:
        """The precision the next update computes in: float64 when streamed, in float64
        mode, or in float32 mode once a state failed float32's conditioning certificate."""
        if self.streamed or getattr(self, "_float64_from_now", False):
            return torch.float64
        return self.dtype

    @property
    def N(self) -> int:
        """Samples the bounds are computed on (over every rank under torch.distributed)."""
        return self._N

    def to(self, device: torch.device | str) -> YesCloud:
        """The same cloud (YES-0 and every recorded epoch) with its data on ``device``."""
        clone = object.__new__(YesCloud)
        clone.__dict__.update(self.__dict__)
        if self._source is not None:
            clone._source = self._source.on(device)
            clone.device = _device_of(clone._source)
        else:
            X, Y = self._tensors()
            clone.X, clone.Y = X.to(device), Y.to(device)
            clone.device = clone.X.device
        clone._curves = [list(c) for c in self._curves]
        clone._raw, clone.epochs = list(self._raw), list(self.epochs)
        return clone

    def fresh(self) -> YesCloud:
        """A cloud for a new run on the same data: YES-0 reused, no epochs recorded."""
        clone = object.__new__(YesCloud)
        clone.__dict__.update(self.__dict__)
        clone.layer_errors = list(self.layer_errors)
        clone._raw, clone.epochs, clone.last_bounds = [], [], {}
        clone._float64_from_now = False
        clone._curves = [[] for _ in range(self.depth - 1)]
        clone.loss = None if self.loss is None else self.loss.fresh()  # its own warm starts (runs in parallel)
        clone._warm = {}
        return clone

    def compute(self, hidden: HiddenLike) -> dict[tuple[int, ...], float]:
        """e(S) for every anchor set on these hidden outputs, without recording an epoch.

        ``hidden``: the L-1 hidden outputs on X (N × h_l tensors); streamed, also
        per-layer lists of chunks or a callable ``hidden(x_chunk) -> outputs``.
        """
        whole = _tensor_list(hidden)
        if self._source is None and (whole or not _streamed(self.X, self.Y, hidden, None, None)):
            X, Y = self._tensors()
            tensors = _prepare_hidden(hidden, self.depth, self.N, self.device, self.dtype)
            # float32 mode: once a state failed its certificate, this cloud goes straight to float64
            sticky = torch.float64 if self.effective_dtype == torch.float64 and self.dtype != torch.float64 else None
            with solve_counter() as count:
                bounds = _yes_k(X, Y, tensors, self.depth, self.bias, self._act, sticky, self.loss)
            self._float64_from_now = sticky is not None or count.float64_fallbacks > 0
            return bounds
        from .stream import stream_yes_k
        if self._source is None:  # an in-memory cloud given chunked or callable hidden outputs
            X, Y = self._tensors()
            chunk_size = self.chunk_size or _auto_chunk_size(X, Y, None, self.depth)
            source, keep = _source(X, Y, chunk_size, None, self.depth), False
        else:
            source, keep = self._source, self._keep
        return stream_yes_k(source, hidden, self.depth, bias=self.bias, act=self._act, group=self._group,
                            keep_states=keep, last=self.loss, warm=self._warm)

    def update(self, hidden: HiddenLike, *, epoch: int | None = None) -> float:
        """Record one epoch's hidden outputs; return the new lower edge YES-(L-1)(t)."""
        return self.record(self.compute(hidden), epoch=epoch)

    def record(self, bounds: dict[tuple[int, ...], float], *, epoch: int | None = None) -> float:
        """Record an epoch from precomputed ``compute()`` values (lets a worker thread compute)."""
        self.last_bounds = dict(bounds)
        best_by_order = [math.inf] * (self.depth - 1)
        for anchor_set, value in bounds.items():
            best_by_order[len(anchor_set) - 1] = min(best_by_order[len(anchor_set) - 1], value)
        running = self.upper
        for k in range(1, self.depth):
            # YES-k: min over |S| ≤ k, over all epochs so far, and YES-0
            running = min(running, best_by_order[k - 1])
            previous = self._curves[k - 1][-1] if self._curves[k - 1] else self.upper
            self._curves[k - 1].append(min(previous, running))
        self._raw.append(best_by_order)
        self.epochs.append(len(self.epochs) + 1 if epoch is None else int(epoch))
        return self.lower

    @property
    def lower(self) -> float:
        """The lower edge YES-(L-1)(t) now (YES-0 before any epoch, or for depth 1)."""
        if self.depth == 1 or not self._curves[-1]:
            return self.upper
        return self._curves[-1][-1]

    def yes_k(self) -> list[float]:
        """YES-1 … YES-(L-1) now (each YES-0 before the first update)."""
        return [curve[-1] if curve else self.upper for curve in self._curves]

    def curve(self, k: int) -> list[float]:
        """YES-k for each epoch recorded so far (k = 1 … L-1); k = 0 gives YES-0 repeated."""
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= self.depth - 1:
            raise ValueError(f"k must be an int in 0 … {self.depth - 1} for a depth-{self.depth} network; got {k!r}")
        if k == 0:
            return [self.upper] * len(self.epochs)
        return list(self._curves[k - 1])

    def zone(self, loss: float) -> str:
        """``"red"`` above YES-0, ``"yellow"`` inside the cloud, ``"green"`` at or below the lower edge.

        A NaN or infinite loss is red. Before the first :meth:`update` (depth > 1) a loss
        below YES-0 is yellow: green needs a computed lower edge.
        """
        # the one zone rule (yeswidget.core.zones); no YES-k computed yet: nothing certifies green
        return zone_of(loss, self.upper, self.lower, has_lower_edge=self.depth == 1 or bool(self.epochs))

    def __repr__(self) -> str:
        return (f"YesCloud(N={self.N}, depth={self.depth}, YES-0={self.upper:.4g}, "
                f"lower={self.lower:.4g}, epochs={len(self.epochs)})")
