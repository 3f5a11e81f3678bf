"""Streamed YES bounds: every least-squares step from float64 sums over samples.

``fit(T, Z)`` (YES-BOUNDS.md) needs only ``G = [Z,1]ᵀ[Z,1]`` and ``C = [Z,1]ᵀT``:
with ``W`` the rank-truncated whitener of G (the one ``bounds`` uses), the fitted
map is ``M = W Wᵀ C`` and ``fit(T, Z) = [Z,1] M``. So the data is read chunk by
chunk, once per trie level: each pass recomputes a chunk's states from the
small per-layer maps already solved (or keeps them: ``keep_states``), adds the
chunk's G and C, and after the pass the next maps are solved. Peak memory is
O(chunk × widths × trie nodes + trie nodes × width²), independent of N.

Across ranks, the sums and the sample count are all-reduced (float64) before
every solve, so every rank gets the bounds of the union, identical on all ranks.

The last layer in the user's own loss (``last=``) is solved by :mod:`.summed_loss` from the
same chunks: one pass per Newton step.

Everything here is float64. Pure math room: imports torch, the stdlib and the engine only.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

import torch

from . import _linalg as _la
from .distributed import agree, reduce_parts
from .summed_loss import WarmStarts, solve_summed

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

    from .losses import LastLayerLoss

__all__ = ["ChunkSource", "HiddenSource", "stream_yes0", "stream_yes_k"]

SUM_DTYPE = torch.float64


# --------------------------------------------------------------------------- #
# the data, chunk by chunk
# --------------------------------------------------------------------------- #
def _is_ndarray(value: object) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _is_tensor(value: object) -> TypeGuard[_la.MatrixLike]:
    return isinstance(value, torch.Tensor) or _is_ndarray(value)


def _is_chunk_list(value: object) -> TypeGuard[Sequence[_la.MatrixLike]]:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_tensor(v) for v in value)


def _matrix(name: str, value: object, rows: int | None = None) -> torch.Tensor:
    if _is_ndarray(value):
        value = torch.from_numpy(value)
    if isinstance(value, torch.Tensor) and value.ndim > 2:
        value = value.flatten(1)
    return _la._as_matrix(name, value, rows=rows)


def _reiterable(name: str, value: _la.DataLike) -> Iterable[Any]:
    try:
        one_shot = iter(value) is value
    except TypeError:
        raise TypeError(f"{name} must be a tensor (N × features), a list of chunk tensors or a re-iterable "
                        f"loader of chunks; got {type(value).__name__}") from None
    if one_shot:
        raise TypeError(f"{name} is a one-shot iterator; the bounds read the data once per layer, so pass "
                        "a list of chunks or a re-iterable loader (e.g. a torch DataLoader with shuffle=False)")
    return value


def _check_chunk_size(chunk_size: object) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int (rows per chunk) or None; got {chunk_size!r}")
    return chunk_size


class _Rows:
    """A sequence of row chunks (or one tensor) addressed by sample rows: ``get(start, rows)``."""

    def __init__(self, name: str, value: _la.MatrixLike | Sequence[_la.MatrixLike]) -> None:
        self.name = name
        parts: list[object] = [value] if _is_tensor(value) else list(value)
        self.parts = [_matrix(f"{name} chunk {i}" if len(parts) > 1 else name, p) for i, p in enumerate(parts)]
        self.offsets = [0]
        for p in self.parts:
            self.offsets.append(self.offsets[-1] + p.shape[0])
        self.width = self.parts[0].shape[1]
        for i, p in enumerate(self.parts):
            if p.shape[1] != self.width:
                raise ValueError(f"{name} chunk {i} has {p.shape[1]} columns but chunk 0 has {self.width}")

    @property
    def rows(self) -> int:
        return self.offsets[-1]

    def get(self, start: int, rows: int) -> torch.Tensor:
        stop = start + rows
        if stop > self.rows:
            raise ValueError(f"{self.name} has {self.rows} samples but X has more; "
                             "every input must hold the same samples in the same order")
        pieces: list[torch.Tensor] = []
        for p, a, b in zip(self.parts, self.offsets, self.offsets[1:]):
            if b > start and a < stop:
                pieces.append(p[max(start, a) - a:min(stop, b) - a])
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


class ChunkSource:
    """X and Y as a re-readable sequence of row chunks (float64 on ``device``).

    ``X``, ``Y``: N × features tensors, lists of chunk tensors, or a re-iterable
    loader; ``Y=None`` with a loader of ``(x, y)`` batches. ``chunk_size`` splits
    every chunk further (and a whole tensor into chunks).
    """

    def __init__(self, X: _la.DataLike, Y: _la.DataLike | None, *, chunk_size: int | None = None,
                 device: torch.device | str | None = None) -> None:
        self.chunk_size = _check_chunk_size(chunk_size)
        self.device: torch.device | None = None if device is None else torch.device(device)
        self._loader: Iterable[Any] | None = None
        self._X: _Rows | None = None
        self._Y: _Rows | None = None
        if Y is None:
            if _is_tensor(X) or _is_chunk_list(X):
                raise TypeError("Y is None: pass the targets Y, or X as a loader of (x, y) batches")
            self._loader = _reiterable("X", X)
        elif _is_tensor(X) or _is_chunk_list(X):
            self._X = _Rows("X", X)
            self._Y = _Rows("Y", Y) if (_is_tensor(Y) or _is_chunk_list(Y)) else None
            if self._Y is None:
                raise TypeError(f"Y must be a tensor or a list of chunk tensors like X; got {type(Y).__name__}")
            if self._Y.rows != self._X.rows:
                raise ValueError(f"Y has {self._Y.rows} samples but X has {self._X.rows}; "
                                 "every tensor must hold the same samples in the same order")
        else:
            raise TypeError("X is a loader: pass Y=None and let it yield (x, y) batches, "
                            "or give X and Y as lists of chunk tensors")
        self.N: int | None = None  # local samples, known after the first pass
        self.n: int | None = None  # inputs and targets, known after the first chunk
        self.m: int | None = None
        self._checked = False

    def _raw(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._loader is None:
            assert self._X is not None and self._Y is not None, "without a loader, X and Y are row chunks"
            for part, a in zip(self._X.parts, self._X.offsets):
                yield part, self._Y.get(a, part.shape[0])
            return
        for i, batch in enumerate(self._loader):
            if not isinstance(batch, (list, tuple)) or len(batch) < 2:
                raise TypeError(f"with Y=None, X must yield (x, y) batches; batch {i} is a {type(batch).__name__}")
            x = _matrix(f"X batch {i}", batch[0])
            yield x, _matrix(f"Y batch {i}", batch[1], rows=x.shape[0])

    def chunks(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """(first row, X chunk, Y chunk), float64 on the device, at most ``chunk_size`` rows."""
        start = 0
        for i, (x, y) in enumerate(self._raw()):
            self._check_widths(i, x, y)
            if self.device is None:
                self.device = x.device
            if self.device.type == "meta" or x.device.type == "meta":
                raise ValueError("X is on the meta device, which holds no values; the bounds need real data")
            size = self.chunk_size or x.shape[0]
            for a in range(0, x.shape[0], size):  # cast chunk by chunk: nothing N-sized is copied
                xc = x[a:a + size].to(device=self.device, dtype=SUM_DTYPE)
                yc = y[a:a + size].to(device=self.device, dtype=SUM_DTYPE)
                if not self._checked:  # the first full pass checks; later passes re-read the same data
                    _la._check_finite([(f"X chunk {i}", xc), (f"Y chunk {i}", yc)])
                yield start + a, xc, yc
            start += x.shape[0]
        self._checked = True
        if self.N is None:
            self.N = start
        elif start != self.N:
            raise ValueError(f"the data changed between passes ({self.N} samples, then {start}); a loader "
                             "must yield the same samples in the same order every time (shuffle=False)")

    def on(self, device: torch.device | str) -> ChunkSource:
        """The same data, read onto ``device``."""
        clone = object.__new__(ChunkSource)
        clone.__dict__.update(self.__dict__)
        clone.device = torch.device(device)
        return clone

    def shape(self) -> tuple[int, int]:
        """(n, m) from the first chunk (reads one chunk of a loader); (0, 0) without samples."""
        if self.n is None:
            for _ in self.chunks():  # the first chunk sets n and m
                break
        if self.n is None or self.m is None:
            return 0, 0
        return self.n, self.m

    def _check_widths(self, i: int, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.n is None:
            self.n, self.m = x.shape[1], y.shape[1]
        elif (x.shape[1], y.shape[1]) != (self.n, self.m):
            raise ValueError(f"chunk {i} has {x.shape[1]} inputs and {y.shape[1]} targets; "
                             f"the first had {self.n} and {self.m}")


class HiddenSource:
    """The L-1 hidden outputs, chunk by chunk, aligned with a ChunkSource.

    ``hidden``: a list of N × h tensors, a list of per-layer chunk lists (any chunk
    boundaries), or a callable ``hidden(x_chunk) -> [h_0, …, h_{L-2}]`` (e.g. the
    model's hidden outputs, recomputed per chunk: nothing N-sized is kept).
    """

    def __init__(self, hidden: _la.HiddenLike, depth: int) -> None:
        self.depth = depth
        self.widths: list[int] | None = None
        self._call: Callable[[torch.Tensor], Sequence[_la.MatrixLike]] | None = (
            hidden if callable(hidden) and not isinstance(hidden, torch.Tensor) else None)
        self._rows: list[_Rows] | None = None
        self.checked = False  # set after a full pass over every layer
        if self._call is None:
            if _is_tensor(hidden) or not isinstance(hidden, (list, tuple)):
                raise TypeError(f"hidden must be a list of the network's {depth - 1} hidden-layer outputs "
                                "(tensors or lists of chunks) or a callable x_chunk -> outputs; "
                                f"got {type(hidden).__name__}")
            if len(hidden) != depth - 1:
                raise ValueError(f"hidden has {len(hidden)} entries but a depth-{depth} network has "
                                 f"{depth - 1} hidden layers (one output per layer except the last)")
            self._rows = [_Rows(f"hidden[{i}]", h) for i, h in enumerate(hidden)]
            self.widths = [r.width for r in self._rows]

    def check_rows(self, N: int) -> None:
        for r in self._rows or ():
            if r.rows != N:
                raise ValueError(f"{r.name} has {r.rows} samples but X has {N}; "
                                 "every tensor must hold the same samples in the same order")

    def for_chunk(self, start: int, x: torch.Tensor, layers: list[int] | None = None) -> list[torch.Tensor]:
        """The hidden outputs ``layers`` (default all) of the chunk starting at row ``start``
        (float64, on x's device); checked for finiteness on the first full pass."""
        raw = self._called(start, x) if self._call is not None else self._read(start, x.shape[0], layers)
        self._check_widths(start, raw)
        chosen = range(len(raw)) if layers is None else layers
        out = [_present(raw[i]).detach().to(device=x.device, dtype=SUM_DTYPE) for i in chosen]
        if not self.checked:
            _la._check_finite([(f"hidden[{i}] at row {start}", h) for i, h in zip(chosen, out)])
        return out

    def _called(self, start: int, x: torch.Tensor) -> list[torch.Tensor | None]:
        """Every hidden output of the chunk, from the callable."""
        assert self._call is not None
        with torch.no_grad():
            raw = self._call(x)
        if not isinstance(raw, (list, tuple)) or len(raw) != self.depth - 1:
            got = type(raw).__name__ + (f" of length {len(raw)}" if isinstance(raw, (list, tuple)) else "")
            raise ValueError(f"hidden(x) must return the {self.depth - 1} hidden-layer outputs of the chunk; "
                             f"got {got}")
        return [_matrix(f"hidden[{i}] at row {start}", h, rows=x.shape[0]) for i, h in enumerate(raw)]

    def _read(self, start: int, rows: int, layers: list[int] | None) -> list[torch.Tensor | None]:
        """The given outputs ``layers`` (default all) of the chunk; None for the other layers."""
        assert self._rows is not None
        return [r.get(start, rows) if layers is None or i in layers else None for i, r in enumerate(self._rows)]

    def _check_widths(self, start: int, raw: list[torch.Tensor | None]) -> None:
        widths = [None if h is None else h.shape[1] for h in raw]
        if self.widths is None:  # a callable's first chunk: it returns every layer
            self.widths = [_present(h).shape[1] for h in raw]
        elif any(w is not None and w != v for w, v in zip(widths, self.widths)):
            raise ValueError(f"hidden outputs at row {start} have widths {widths}, earlier ones {self.widths}")


def _present(output: torch.Tensor | None) -> torch.Tensor:
    """A hidden output this pass reads (a pass only asks for the layers it read)."""
    assert output is not None, "a hidden layer this pass did not read"
    return output


# --------------------------------------------------------------------------- #
# sums and solves
# --------------------------------------------------------------------------- #
def _whiten(gram: torch.Tensor, N: int) -> torch.Tensor:
    """The rank-truncated whitener of a Gram matrix, built exactly as ``bounds`` builds it."""
    rtol = torch.finfo(gram.dtype).eps * max(N, gram.shape[-1])
    diag = torch.diagonal(gram, dim1=-2, dim2=-1)
    scale = torch.where(diag > 0, diag.rsqrt(), torch.zeros_like(diag))
    gram_eq = gram * scale.unsqueeze(-1) * scale.unsqueeze(-2)
    return _la._exact_whitener(gram_eq, rtol) * scale.unsqueeze(-1)


def _solve(gram: torch.Tensor, cross: torch.Tensor, N: int) -> torch.Tensor:
    """The least-squares map M (d × k): [Z,1] M = fit(T, Z)."""
    W = _whiten(gram, N)
    return W @ (W.mT @ cross)


def _explained(gram: torch.Tensor, cross: torch.Tensor, N: int) -> torch.Tensor:
    """‖fit(T, Z)‖²_F = ‖Wᵀ C‖²_F."""
    return (_whiten(gram, N).mT @ cross).square().sum()


@dataclass
class _Sums:
    """Per group: G = AᵀA and C = AᵀT; scalars = [samples, ‖Y‖², extra…]."""

    grams: list[torch.Tensor]
    crosses: list[torch.Tensor]
    scalars: torch.Tensor

    def add(self, g: int, A: torch.Tensor, T: torch.Tensor) -> None:
        self.grams[g].addmm_(A.mT, A)
        self.crosses[g].addmm_(A.mT, T)

    def reduce(self, group: ProcessGroup | None) -> None:
        """All-reduce every sum in one float64 collective (every rank calls it)."""
        out = reduce_parts([*self.grams, *self.crosses, self.scalars], group)
        g = len(self.grams)
        self.grams, self.crosses, self.scalars = out[:g], out[g:2 * g], out[-1]


# --------------------------------------------------------------------------- #
# the trie, streamed
# --------------------------------------------------------------------------- #
@dataclass
class _Group:
    """The children of one parent state: their target columns and, once solved, one map."""

    parent: int
    children: list[int]
    columns: list[tuple[int, int]]  # per child, columns of [A_0, …, A_{L-2}, Y]
    linear: bool = False
    map: torch.Tensor | None = None  # (d_parent [+1]) × Σ child widths
    applied: torch.Tensor | None = None  # the map with a ones column after each child (bias)

    def solved_map(self) -> torch.Tensor:
        """The map, once this group's level is solved (a level is applied only after that)."""
        assert self.map is not None, "a group is applied only after its level is solved"
        return self.map


def _group_level(nodes: list[_la._Node], column: dict[int, tuple[int, int]]) -> list[_Group]:
    by_parent: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        by_parent.setdefault(node.parent, []).append(i)
    groups: list[_Group] = []
    for parent, kids in by_parent.items():
        kids = sorted(kids, key=lambda c: column[nodes[c].target][0])
        groups.append(_Group(parent, kids, [column[nodes[c].target] for c in kids]))
    return groups


def _slice_targets(targets: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
    if all(a[1] == b[0] for a, b in zip(spans, spans[1:])):
        return targets[:, spans[0][0]:spans[-1][1]]
    return torch.cat([targets[:, a:b] for a, b in spans], dim=1)


class _Stream:
    """Solved trie levels over a ChunkSource; ``pass_sums`` reads the data once.

    ``keep_states``: keep each chunk's newest states between passes (in-memory
    cost, one level recomputed per pass) rather than recomputing them from X
    through every solved level (memory independent of N).
    """

    def __init__(self, source: ChunkSource, hidden: HiddenSource | None, bias: bool, act: _la.Activation,
                 group: ProcessGroup | None, keep_states: bool) -> None:
        self.source, self.hidden, self.bias, self.act = source, hidden, bias, act
        self.group, self.keep_states = group, keep_states
        self.solved: list[list[_Group]] = []
        #: target index → its columns in the full block [A_0, …, A_{L-2}, Y]
        self.column: dict[int, tuple[int, int]] = {_la.Y_TARGET: (0, 0)}
        self._kept: dict[int, tuple[int, list[torch.Tensor]]] = {}
        self.N = 0  # samples over the union

    def states(self, start: int, x: torch.Tensor) -> list[torch.Tensor]:
        """[Z, 1] of every node of the newest solved level for this chunk ([X, 1] before any)."""
        level, states = self._kept.get(start, (0, None))
        if states is None:
            level, states = 0, [_la._with_bias(x, self.bias)]
        for groups in self.solved[level:]:
            states = self._apply(groups, states)
        if self.keep_states:
            self._kept[start] = (len(self.solved), states)
        return states

    def _apply(self, groups: list[_Group], parents: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each group's children in one GEMM; with a bias, the map also copies the parent's
        ones column after each child, so every child state [Z, 1] is a view (no copies)."""
        bias = int(self.bias)
        out: dict[int, torch.Tensor] = {}
        for g in groups:
            fitted = parents[g.parent] @ self._applied(g)
            offset = 0
            for child, (a, b) in zip(g.children, g.columns):
                state = fitted[:, offset:offset + b - a + bias]
                offset += b - a + bias
                if not g.linear:
                    z = state[:, :b - a]
                    if self.act is torch.relu:
                        z.clamp_(min=0)
                    else:
                        z.copy_(self.act(z))
                out[child] = state
        return [out[i] for i in range(len(out))]

    def _applied(self, g: _Group) -> torch.Tensor:
        if not self.bias:
            return g.solved_map()
        if g.applied is None:
            M, offset = g.solved_map(), 0
            pieces: list[torch.Tensor] = []
            ones = torch.zeros(M.shape[0], 1, dtype=M.dtype, device=M.device)
            ones[-1] = 1  # the parent's ones column is its last
            for a, b in g.columns:
                pieces += [M[:, offset:offset + b - a], ones]
                offset += b - a
            g.applied = torch.cat(pieces, dim=1)
        return g.applied

    def _layout(self, groups: list[_Group]) -> tuple[list[int], bool, list[list[tuple[int, int]]]]:
        """The hidden layers and whether Y this pass reads, and each group's columns in that
        narrower [A_i…, Y] block (``column``: target index → columns of the full block)."""
        used = {span for g in groups for span in g.columns}
        needed = [t for t in sorted(self.column, key=lambda t: self.column[t][0]) if self.column[t] in used]
        local: dict[tuple[int, int], tuple[int, int]] = {}
        offset = 0
        for t in needed:
            a, b = self.column[t]
            local[(a, b)] = (offset, offset + b - a)
            offset += b - a
        layers = [t for t in needed if t != _la.Y_TARGET]
        return layers, _la.Y_TARGET in needed, [[local[span] for span in g.columns] for g in groups]

    def pass_sums(self, groups: list[_Group], widths: list[int],
                  extra: Callable[[list[torch.Tensor], torch.Tensor], torch.Tensor] | None = None,
                  n_extra: int = 0) -> _Sums:
        """Sums of every group's parent state against its targets, over every chunk (and rank)."""
        device = self.source.device or torch.device("cpu")
        parent_width = self._parent_widths(widths)
        sums = _Sums([torch.zeros(parent_width[g.parent], parent_width[g.parent], dtype=SUM_DTYPE, device=device)
                      for g in groups],
                     [torch.zeros(parent_width[g.parent], sum(b - a for a, b in g.columns), dtype=SUM_DTYPE,
                                  device=device) for g in groups],
                     torch.zeros(2 + n_extra, dtype=SUM_DTYPE, device=device))
        layers, with_y, columns = self._layout(groups)
        every_layer = self.hidden is not None and len(layers) == self.hidden.depth - 1
        for start, x, y in self.source.chunks():
            states = self.states(start, x)
            parts = self.hidden.for_chunk(start, x, layers) if self.hidden is not None and layers else []
            block = [*parts, y] if with_y or not parts else parts
            targets = block[0] if len(block) == 1 else torch.cat(block, dim=1)
            for index, g in enumerate(groups):
                sums.add(index, states[g.parent], _slice_targets(targets, columns[index]))
            sums.scalars[0] += x.shape[0]
            sums.scalars[1] += y.square().sum()
            if extra is not None:
                sums.scalars[2:] += extra(states, y)
        if every_layer and self.hidden is not None:
            self.hidden.checked = True
        sums.reduce(self.group)
        self.N = int(sums.scalars[0].item())
        return sums

    def leaf_reader(self) -> Callable[[], Iterator[tuple[list[torch.Tensor], torch.Tensor]]]:
        """One pass per call: each chunk's states of the newest solved level, and its Y."""
        def read() -> Iterator[tuple[list[torch.Tensor], torch.Tensor]]:
            for start, x, y in self.source.chunks():
                yield self.states(start, x), y
        return read

    def _parent_widths(self, widths: list[int]) -> list[int]:
        """Width of each state ([Z, 1]) of the newest solved level; widths = [n, A_0…, m] columns."""
        bias = int(self.bias)
        if not self.solved:
            return [widths[0] + bias]
        out: dict[int, int] = {}
        for g in self.solved[-1]:
            for child, (a, b) in zip(g.children, g.columns):
                out[child] = b - a + bias
        return [out[i] for i in range(len(out))]


def _shapes(source: ChunkSource, hidden: HiddenSource | None, group: ProcessGroup | None,
            depth: int) -> tuple[int, int, list[int]]:
    """(n, m, hidden widths), checked to agree on every rank (one chunk read to learn them)."""
    n, m = source.shape()
    widths = [0] * (depth - 1)
    if hidden is not None and n:
        if hidden.widths is None:
            for start, x, _ in source.chunks():
                hidden.for_chunk(start, x)
                break
        assert hidden.widths is not None, "reading a chunk's hidden outputs sets their widths"
        widths = list(hidden.widths)
    agree([float(n > 0), n, m, *widths], "(has samples, inputs, targets, hidden widths)", group)
    if not n:
        raise ValueError("no samples: X is empty")
    return n, m, widths


def stream_yes_k(source: ChunkSource, hidden: _la.HiddenLike | HiddenSource, depth: int, *, bias: bool,
                 act: _la.Activation, group: ProcessGroup | None = None, keep_states: bool = False,
                 last: LastLayerLoss | None = None, warm: WarmStarts | None = None) -> dict[tuple[int, ...], float]:
    """e(S) for every non-empty anchor set, from sums read chunk by chunk.

    ``last``: the last layer is fitted in that loss (:mod:`.summed_loss`: one pass per Newton
    step), with warm starts kept in ``warm``."""
    if depth == 1:
        return {}
    hidden_source = hidden if isinstance(hidden, HiddenSource) else HiddenSource(hidden, depth)
    n, m, widths = _shapes(source, hidden_source, group, depth)
    offsets = [0]
    for w in [*widths, m]:
        offsets.append(offsets[-1] + w)
    column = {i: (offsets[i], offsets[i + 1]) for i in range(depth - 1)}
    column[_la.Y_TARGET] = (offsets[-2], offsets[-1])
    levels, leaves = _la._cached_plan(depth)
    stream = _Stream(source, hidden_source, bias, act, group, keep_states)
    stream.column = column
    for nodes in levels:
        groups = _group_level(nodes, column)
        sums = stream.pass_sums(groups, [n])
        if source.N is not None:
            hidden_source.check_rows(source.N)
        for g, G, C in zip(groups, sums.grams, sums.crosses):
            g.map = _solve(G, C, stream.N)
        _la._count(solves=len(nodes), bases=len(groups))
        stream.solved.append(groups)
    # the last layer, linear, fitted to Y from every leaf state
    leaf_groups = [_Group(i, [i], [column[_la.Y_TARGET]]) for i in range(len(levels[-1]))]
    sums = stream.pass_sums(leaf_groups, [n])
    if last is not None:  # the last layer in the user's loss
        values = solve_summed(last, stream.leaf_reader(), sums.grams, sums.crosses, stream.N, group, warm, "leaves")
        return {s: float(values[i]) for s, i in leaves.items()}
    _la._count(solves=len(leaf_groups), bases=len(leaf_groups))
    y_norm = sums.scalars[1]
    errors = torch.stack([(y_norm - _explained(G, C, stream.N)).clamp_min(0) / stream.N
                          for G, C in zip(sums.grams, sums.crosses)]).tolist()
    return {s: errors[i] for s, i in leaves.items()}


def stream_yes0(source: ChunkSource, depth: int, *, bias: bool, act: _la.Activation,
                group: ProcessGroup | None = None, keep_states: bool = False, last: LastLayerLoss | None = None,
                warm: WarmStarts | None = None) -> tuple[float, list[float], int]:
    """YES-0, the per-layer errors E(Z_l), l = 1 … L, and the sample count (over every
    rank), from sums read chunk by chunk; ``last``: the last layer in that loss (E(Z_L) is then
    its minimum; the hidden layers' errors stay E), warm starts kept in ``warm``."""
    n, m, _ = _shapes(source, None, group, depth)
    stream = _Stream(source, None, bias, act, group, keep_states)
    stream.column = {_la.Y_TARGET: (0, m)}

    def error(states: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """E(Z_l) of the newest states (Z_l has Y's width; the bias column follows), summed."""
        if not stream.solved:
            return torch.zeros(1, dtype=SUM_DTYPE, device=y.device)
        return (states[0][:, :m] - y).square().sum().reshape(1)

    layer_errors: list[float] = []
    for layer in range(depth + 1):
        groups = [_Group(0, [0], [(0, m)])] if layer < depth else []
        sums = stream.pass_sums(groups, [n], extra=error, n_extra=1)
        if layer:
            layer_errors.append(float(sums.scalars[2]) / stream.N)
        if last is not None and layer == depth - 1:  # the last layer in the user's loss
            reader = stream.leaf_reader()
            layer_errors.append(float(solve_summed(last, reader, sums.grams, sums.crosses, stream.N, group, warm,
                                                   "yes0")[0]))
            break
        if groups:
            groups[0].map = _solve(sums.grams[0], sums.crosses[0], stream.N)
            groups[0].linear = layer == depth - 1  # the last layer has no activation
            _la._count(solves=1, bases=1)
            stream.solved.append(groups)
    return layer_errors[-1], layer_errors, stream.N
