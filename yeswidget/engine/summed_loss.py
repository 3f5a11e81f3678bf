"""The last layer in the user's own loss from sums over samples: streamed data and torch.distributed.

The in-memory solve (:mod:`.losses`) holds every sample's features at once. Here the loss, its
gradient and its Hessian are sums over samples, so each damped-Newton step is one pass over the
chunks (a chunk's last-layer states ``[Z, 1]`` are recomputed from the solved hidden maps, or
kept) and one float64 all-reduce of the sums (each rank its shard): every rank takes the same
steps and gets the minimum over the union. The method is the in-memory one: columns equilibrated
by their root mean square, the same start (zero logits, else least squares), ridge, damping,
Armijo line search, stopping rule (Newton decrement ≤ ``DECREMENT_RTOL`` of the loss: a solve that
stops short is reported unconverged) and fallback for separable classes; so the minima equal the
in-memory ones to the solves' tolerance.

A line-search pass evaluates the loss at the step lengths 1, 1/2, …, 2^-(LADDER-1) and the
derivatives at the full step, which Newton takes near the minimum: then a step costs one pass.

Shapes: per chunk, ``states`` is one rows × d tensor per problem (the bias column in) and ``T``
rows × m (one-hot rows for class labels). Pure math room: torch and the engine only.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from . import _linalg as _la
from .distributed import reduce_parts
from .losses import (
    DECREMENT_RTOL,
    MAX_NEWTON,
    RIDGE,
    RIDGE_SHARE,
    SEPARABLE_RIDGE,
    SEPARATION_CHECK,
    LastLayerLoss,
    SolveReport,
)

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = ["Reader", "solve_summed", "intercept_loss"]

#: the per-column Hessians of a pass are formed this many elements of weighted Z at a time (memory bound)
CHUNK_ELEMENTS = 2 ** 23
#: the coupled cross-entropy Hessian (d·m)² is formed up to this d·m; beyond, per-class blocks
FULL_HESSIAN_MAX = 2048

#: one pass over the data: per chunk, (the states of every problem, the targets)
Reader = Callable[[], Iterable[tuple[Sequence[torch.Tensor], torch.Tensor]]]
#: step lengths a line-search pass evaluates (halvings)
LADDER = 8
#: halvings before a problem counts as "no descent at round-off" (as in memory)
HALVINGS = 40
#: kept warm starts: (key, width, problem indices) → the last solution (equilibrated)
WarmStarts = dict[Any, torch.Tensor]


@dataclass
class _Want:
    """What a pass computes for one batch: losses at ``base − α step`` for each α in ``alphas``
    (the ladder), and the loss, gradient and Hessian sums at ``point``."""

    base: torch.Tensor | None = None
    step: torch.Tensor | None = None
    alphas: torch.Tensor | None = None
    point: torch.Tensor | None = None


class _Batch:
    """The B problems of one state width: their sums, iterate and Newton bookkeeping."""

    def __init__(self, own: LastLayerLoss, indices: list[int], gram: torch.Tensor, cross: torch.Tensor,
                 N: int, warm: torch.Tensor | None) -> None:
        self.own, self.indices, self.N, self.m = own, indices, N, cross.shape[-1]
        self.ce = own.kind == "cross_entropy"
        norms = (torch.diagonal(gram, dim1=-2, dim2=-1) / N).clamp_min(0).sqrt()
        self.scale = torch.where(norms > 0, norms, torch.ones_like(norms))  # (B, d), as in memory
        self.gram = gram / (self.scale.unsqueeze(-1) * self.scale.unsqueeze(-2))  # Σ ZsᵀZs
        self.ridge = RIDGE
        B, d = self.scale.shape
        self.eye = torch.eye(d, dtype=gram.dtype, device=gram.device)
        if warm is not None and warm.shape == (B, d, self.m):
            self.W = warm.to(gram.device).clone()
        elif own.kind in ("cross_entropy", "bce", "poisson"):
            self.W = gram.new_zeros(B, d, self.m)  # logits 0 (log-rate 0)
        else:  # least squares
            self.W = torch.linalg.solve(self.gram + self.ridge * N * self.eye, cross / self.scale.unsqueeze(-1))
        self.sums: dict[str, torch.Tensor] = {}
        self.data = torch.zeros(0)  # loss sums at W: (B,) cross-entropy, (B, m) element-wise
        self.current = self.data  # the objective at W (loss mean + ridge penalty)
        self.step = self.decrement = self.done = self.accepted = self.current
        self.tolerance = self.current
        self.iterations, self.converged, self.ridge_limited = 0, False, False
        self.full_steps = True  # this line search took only full steps (its pass's derivatives hold)

    @property
    def full(self) -> bool:
        """Cross-entropy with its coupled (d·m)² Hessian (else per-class blocks)."""
        return self.ce and self.W.shape[1] * self.m <= FULL_HESSIAN_MAX

    @property
    def rows_per_block(self) -> int:
        """Rows a pass handles at once, so its widest temporary (the ladder's predictions, or the
        rows × d·m Kronecker factor of cross-entropy) stays within about CHUNK_ELEMENTS."""
        B, d, m = self.W.shape
        return max(256, CHUNK_ELEMENTS // (B * max(LADDER * m, d * m, d)))

    # ------------------------------------------------------------ per chunk
    def chunk_sums(self, Z: torch.Tensor, T: torch.Tensor, want: _Want) -> dict[str, torch.Tensor]:
        """This chunk's contribution to what ``want`` asks for (Z: B × rows × d)."""
        Zs = Z / self.scale.unsqueeze(-2)
        out: dict[str, torch.Tensor] = {}
        if want.alphas is not None and want.base is not None and want.step is not None:
            U = (Zs @ want.base).unsqueeze(0) - want.alphas[:, None, None, None] * (Zs @ want.step).unsqueeze(0)
            out["ladder"] = self._loss_sums(U, T)
        if want.point is not None:
            out.update(self._ce_sums(Zs, T, want.point) if self.ce else self._column_sums(Zs, T, want.point))
        return out

    def _loss_sums(self, U: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        """Loss summed over the rows of U (… × rows × m): … for cross-entropy, … × m element-wise."""
        if self.ce:
            return -(T * torch.log_softmax(U, dim=-1)).sum(dim=(-2, -1))
        return self.own._elementwise(U, T)[0].sum(-2)

    def _ce_sums(self, Zs: torch.Tensor, T: torch.Tensor, W: torch.Tensor) -> dict[str, torch.Tensor]:
        log_p = torch.log_softmax(Zs @ W, dim=-1)
        P = log_p.exp()
        out = {"loss": -(T * log_p).sum(dim=(-2, -1)), "grad": Zs.mT @ (P - T)}
        if self.full:
            B, rows, d = Zs.shape
            out["blocks"] = torch.einsum("bnd,bnk,bne->bkde", Zs, P, Zs)  # Zᵀ diag(p_k) Z
            A = (P.unsqueeze(-2) * Zs.unsqueeze(-1)).reshape(B, rows, d * self.m)  # z ⊗ p, (d, m) order
            out["outer"] = A.mT @ A
        else:
            out["blocks"] = torch.einsum("bnd,bnk,bne->bkde", Zs, P * (1 - P), Zs)
        return out

    def _column_sums(self, Zs: torch.Tensor, T: torch.Tensor, W: torch.Tensor) -> dict[str, torch.Tensor]:
        value, g, h = self.own._elementwise(Zs @ W, T)
        B, rows, d = Zs.shape
        hess = Zs.new_empty(B, self.m, d, d)
        chunk = max(1, CHUNK_ELEMENTS // max(1, B * rows * d))  # weighted copies within ~CHUNK elements
        for a in range(0, self.m, chunk):
            b = min(self.m, a + chunk)
            weighted = Zs.unsqueeze(1) * h[..., a:b].mT.unsqueeze(-1)  # (B, c, rows, d)
            hess[:, a:b] = weighted.mT @ Zs.unsqueeze(1)
        return {"loss": value.sum(-2), "grad": Zs.mT @ g, "hess": hess}

    # ------------------------------------------------------------ Newton
    def objective(self, data: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """Mean loss plus ridge penalty from loss sums ``data`` at ``W`` (… × B × d × m)."""
        penalty = 0.5 * self.ridge * W.square().sum(-2)
        if self.ce:
            return data / self.N + penalty.sum(-1)
        return data / (self.N * self.m) + penalty

    def begin(self, sums: dict[str, torch.Tensor]) -> None:
        """Start (or restart, after a ridge change) Newton at W from the derivative sums there."""
        self.sums = sums
        self.data = sums["loss"]
        self.restart()

    def restart(self) -> None:
        self.current = self.objective(self.data, self.W)
        self.tolerance = DECREMENT_RTOL * self.current.abs().clamp_min(1e-300)
        self.done = torch.zeros_like(self.current, dtype=torch.bool)
        self.iterations = 0

    def next_direction(self) -> bool:
        """One Newton direction; False when this batch is finished (converged or out of steps)."""
        if self.iterations >= MAX_NEWTON:
            return self._finish()
        if self.iterations == SEPARATION_CHECK and self.ridge == RIDGE and self._ridge_matters():
            return self._finish()  # as in memory: the weights grow without bound, refit with SEPARABLE_RIDGE
        self.iterations += 1
        step, decrement = self._ce_direction() if self.ce else self._column_direction()
        self.done = decrement <= self.tolerance  # as in memory: judged afresh at every step
        if bool(self.done.all()):
            return self._finish()
        self.step, self.decrement = step, decrement  # a done problem takes its (tiny) full step unchecked
        self.accepted = torch.zeros_like(self.done)
        self.full_steps = True
        return True

    def _ce_direction(self) -> tuple[torch.Tensor, torch.Tensor]:
        s, N, W = self.sums, self.N, self.W
        B, d, m = W.shape
        grad = s["grad"] / N + self.ridge * W
        damp = self.ridge * self.eye + 1e-7 * self.gram / N
        if self.full:
            hess = -(s["outer"] / N).reshape(B, d, m, d, m)
            for k in range(m):  # block k on the diagonal: index (a, k) = a·m + k
                hess[:, :, k, :, k] += s["blocks"][:, k] / N + damp
            step = torch.linalg.solve(hess.reshape(B, d * m, d * m), grad.reshape(B, d * m, 1)).reshape(B, d, m)
        else:  # per class: a descent direction the line search completes
            step = torch.linalg.solve(s["blocks"] / N + damp.unsqueeze(1), grad.mT.unsqueeze(-1)).squeeze(-1).mT
        return step, 0.5 * (step * grad).sum(dim=(-2, -1))

    def _column_direction(self) -> tuple[torch.Tensor, torch.Tensor]:
        s, scale, W = self.sums, self.N * self.m, self.W
        grad = s["grad"] / scale + self.ridge * W
        # a sliver of the Gram keeps flat pieces (Huber outside delta) finite; the line search keeps descent
        hess = s["hess"] / scale + (self.ridge * self.eye + 1e-7 * self.gram / scale).unsqueeze(1)
        step = torch.linalg.solve(hess, grad.mT.unsqueeze(-1)).squeeze(-1).mT
        return step, 0.5 * (step * grad).sum(-2)

    def search(self, alphas: torch.Tensor, sums: dict[str, torch.Tensor]) -> None:
        """Take, per problem not yet accepted, the longest step in ``alphas`` that passes Armijo."""
        trials = self.W.unsqueeze(0) - alphas[:, None, None, None] * self.step.unsqueeze(0)
        values = self.objective(sums["ladder"], trials)  # (K, B) or (K, B, m)
        spread = alphas.reshape(-1, *[1] * self.current.ndim)
        ok = ((values <= self.current - 0.25 * spread * 2 * self.decrement) | self.done) & ~self.accepted
        first = ok.to(torch.int8).argmax(0)  # the first (longest) passing step
        newly = ok.any(0)
        pick = first.unsqueeze(0)
        alpha = alphas[first]
        moved = self.W - self._spread_values(alpha) * self.step
        self.W = torch.where(self._spread(newly), moved, self.W)
        self.current = torch.where(newly, values.gather(0, pick).squeeze(0), self.current)
        self.data = torch.where(newly, sums["ladder"].gather(0, pick).squeeze(0), self.data)
        self.accepted = self.accepted | newly
        self.full_steps = self.full_steps and bool((~newly | (alpha == 1)).all())
        if "loss" in sums:
            self.sums = sums  # the derivatives at the full step: right wherever it was taken

    def end_search(self) -> bool:
        """After the line search: True when the derivatives at the new W still need a pass (a
        shorter step, or none: the pass's derivatives at the full step do not hold there)."""
        self.full_steps = self.full_steps and bool(self.accepted.all())
        self.done = self.done | ~self.accepted  # no descent possible at round-off: as converged as it gets
        return not self.full_steps

    def _ridge_matters(self) -> bool:
        penalty = 0.5 * self.ridge * self.W.square().sum(-2).sum(-1)
        loss = self.current if self.ce else self.current.sum(-1)
        return bool((penalty > RIDGE_SHARE * loss.abs()).any())

    def _finish(self) -> bool:
        self.converged = bool(self.done.all())
        self.ridge_limited = self.ridge_limited or self._ridge_matters()
        return False

    def _spread(self, mask: torch.Tensor) -> torch.Tensor:
        """A per-problem (B,) or per-column (B, m) mask broadcast over W (B, d, m)."""
        return mask[:, None, None] if mask.ndim == 1 else mask[:, None, :]

    def _spread_values(self, values: torch.Tensor) -> torch.Tensor:
        return values[:, None, None] if values.ndim == 1 else values[:, None, :]

    def values(self) -> torch.Tensor:
        """The unpenalised mean loss at W per problem (B,)."""
        return self.data / self.N if self.ce else self.data.sum(-1) / (self.N * self.m)


# --------------------------------------------------------------------------- #
# passes and the solve
# --------------------------------------------------------------------------- #
def _pass(batches: list[_Batch], wants: list[_Want], read: Reader,
          group: ProcessGroup | None) -> list[dict[str, torch.Tensor]]:
    """One read of the data: each batch's sums for its ``want``, over every chunk and rank."""
    totals: list[dict[str, torch.Tensor]] = [{} for _ in batches]
    for states, T in read():
        for b, want, total in zip(batches, wants, totals):
            block = b.rows_per_block
            for a in range(0, T.shape[0], block):  # a whole in-memory shard is one chunk: bound the temporaries
                Z = torch.stack([states[i][a:a + block] for i in b.indices])
                for name, value in b.chunk_sums(Z, T[a:a + block], want).items():
                    if name in total:
                        total[name] += value
                    else:
                        total[name] = value
    keys = [(i, name) for i, total in enumerate(totals) for name in sorted(total)]
    reduced = reduce_parts([totals[i][name] for i, name in keys], group)
    out: list[dict[str, torch.Tensor]] = [{} for _ in batches]
    for (i, name), value in zip(keys, reduced):
        out[i][name] = value
    return out


def _line_search(active: list[_Batch], read: Reader, group: ProcessGroup | None) -> None:
    """Armijo backtracking for every active batch: LADDER step lengths per pass, up to HALVINGS;
    the first pass also takes the derivatives at the full step."""
    searching = active
    for start in range(0, HALVINGS, LADDER):
        alphas = 0.5 ** torch.arange(start, start + LADDER, dtype=torch.float64, device=active[0].W.device)
        wants = [_Want(b.W, b.step, alphas, b.W - b.step if start == 0 else None) for b in searching]
        for b, sums in zip(searching, _pass(searching, wants, read, group)):
            b.search(alphas, sums)
        searching = [b for b in searching if not bool(b.accepted.all())]
        if not searching:
            return


def _newton(batches: list[_Batch], read: Reader, group: ProcessGroup | None) -> None:
    """Damped Newton for every batch at once (one pass serves them all) until each is finished."""
    active = [b for b in batches if b.next_direction()]
    while active:
        _line_search(active, read, group)
        stale = [b for b in active if b.end_search()]
        if stale:  # a shorter step was taken: the derivatives at the new W
            for b, sums in zip(stale, _pass(stale, [_Want(point=b.W) for b in stale], read, group)):
                b.sums = sums
        active = [b for b in active if b.next_direction()]


def solve_summed(own: LastLayerLoss, read: Reader, grams: Sequence[torch.Tensor], crosses: Sequence[torch.Tensor],
                 N: int, group: ProcessGroup | None, warm: WarmStarts | None = None, key: Any = None) -> torch.Tensor:
    """The minimum mean loss over the last layer on each of the states ``read`` yields, as a float64
    tensor (one value per state); ``own.report`` says how the solves went.

    ``grams``, ``crosses``: per state ``Σ AᵀA`` and ``Σ AᵀT`` over every sample (and rank), ``N``
    the samples; ``read()`` one pass over the chunks; ``group`` the ranks the sums are reduced over.
    ``warm``: the last solutions by ``key`` (same key and shapes: start from there).
    """
    if not own.certifies_lower:
        raise ValueError(f"bounds in {own.name} (a loss without an exact last-layer solve) are computed in memory "
                         "only; certify on a subset that fits (max_samples=) or pass the loss as a loss module")
    by_width: dict[int, list[int]] = {}
    for i, G in enumerate(grams):
        by_width.setdefault(G.shape[-1], []).append(i)
    names = [(key, width, tuple(indices)) for width, indices in by_width.items()]
    batches = [_Batch(own, indices, torch.stack([grams[i] for i in indices]),
                      torch.stack([crosses[i] for i in indices]), N, None if warm is None else warm.get(name))
               for name, indices in zip(names, by_width.values())]
    for b, sums in zip(batches, _pass(batches, [_Want(point=b.W) for b in batches], read, group)):
        b.begin(sums)
    _newton(batches, read, group)
    separable = [b for b in batches if b.ridge_limited and not b.converged]
    for b in separable:  # no minimiser (separable classes): the fixed larger ridge, from here
        b.ridge = SEPARABLE_RIDGE
        b.restart()
    if separable:
        _newton(separable, read, group)
    report = SolveReport()
    out = torch.empty(len(grams), dtype=torch.float64, device=grams[0].device)
    for name, b in zip(names, batches):
        report.merge(SolveReport(converged=b.converged, ridge_limited=b.ridge_limited, iterations=b.iterations))
        out[b.indices] = b.values()
        if warm is not None:
            warm[name] = b.W
    own.report = report
    _la._count(solves=len(grams))
    return out


def intercept_loss(own: LastLayerLoss, targets: torch.Tensor, group: ProcessGroup | None) -> float:
    """The loss of the best constant prediction (an intercept-only last layer) over every rank's
    ``targets`` (N × m): what a bound of "0" is measured against. ``own`` is left as it was."""
    T = targets.detach().to(torch.float64)
    ones = torch.ones(T.shape[0], 1, dtype=torch.float64, device=T.device)
    gram, cross = reduce_parts([ones.mT @ ones, ones.mT @ T], group)
    value = solve_summed(own.fresh(), lambda: [([ones], T)], [gram], [cross], round(float(gram.item())), group)
    return abs(float(value[0]))
