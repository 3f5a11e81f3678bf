"""Truncated Newton-CG for the last layer fitted in the user's loss (engine.losses).

Pure math, no UI. B problems share targets ``T`` (N × m); problem b has equilibrated data
``Zs[b]`` (N × d, bias column in) and weights ``W[b]`` (d × m). A *group* is what one
convergence test and one line search cover: an output column of an element-wise loss (columns
separate), or a whole problem for cross-entropy (classes coupled); group tensors are (B, m) or (B,).

Newton directions come from preconditioned conjugate gradients on the exact Hessian, applied as
two batched GEMMs (``Zᵀ (h ⊙ (Z V))``) and never formed (forming costs m·N·d² per step). The
preconditioner is the Gram ``G = ZᵀZ / N`` scaled per group plus the ridge, ``M = (c / k) G + λI``
(c the group's mean curvature): one eigendecomposition ``G = QΛQᵀ`` per problem, shared by its
columns, applies ``M⁻¹`` for any c, so the preconditioner follows the curvature step by step and
keeps the ridge at its true weight (a saturated classifier's Hessian is mostly λI). The curvatures
give ``H ⪰ ρ M`` with a computable ρ, so the
CG residual ``r = g − H x`` bounds the Newton decrement from above (``x ⟂ r`` in exact arithmetic;
``|xᵀr|`` is kept for round-off):

    ½ gᵀH⁻¹g = ½ (gᵀx + xᵀr + rᵀH⁻¹r) ≤ ½ (gᵀx + |xᵀr| + rᵀM⁻¹r / ρ).

A group is converged when that bound is at most the tolerance: never less strict than the exact
decrement test.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

#: CG stops once rᵀM⁻¹r is this fraction of gᵀM⁻¹g: the Newton direction is then exact for the
#: purposes of the next step (the decrement test has its own, certified, stopping rule)
CG_RTOL = 1e-14
#: CG iterations per Newton step at most (exact arithmetic needs at most d, or d·m coupled)
MAX_CG = 200
#: Armijo halvings per line search
MAX_HALVINGS = 40
#: at most this many unknowns per group (d·m coupled, d per column): where time counts, not FLOPs, the
#: Hessian is formed and factorised (N·d²·m² FLOPs, a few ops) instead of CG's dozens of small iterations,
#: whose Python overhead is most of a small solve's time (a YES-0 solve in cross-entropy: 11 columns, 10 classes)
DIRECT_UNKNOWNS = 128
#: ... and while the products it forms (N × d·m per problem) hold at most this many elements (128 MB in
#: float64): a certification set of millions of samples keeps CG's N × m working set
DIRECT_ELEMENTS = 2 ** 24
#: preconditioner scale floor (a column whose curvature vanishes, e.g. Huber all outside delta)
CURVATURE_FLOOR = 1e-7

Elementwise = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class NewtonCG:
    """Damped Newton-CG with an Armijo line search, batched over problems and groups.

    ``elementwise``: ``(U, T) -> (ℓ, ∂ℓ/∂u, ∂²ℓ/∂u²)`` of an element-wise mean loss; None: softmax
    cross-entropy (mean over samples). ``ridge``: ½·ridge·‖W‖² is added to every group's objective.
    """

    def __init__(self, Zs: torch.Tensor, T: torch.Tensor, ridge: float, elementwise: Elementwise | None) -> None:
        self.Zs, self.T, self.ridge, self.elementwise = Zs, T, float(ridge), elementwise
        self.coupled = elementwise is None
        B, N, d = Zs.shape
        self.N, self.m = N, T.shape[1]
        self._pass = 2.0 * B * N * d * self.m  # FLOPs of one pass Z·V or Zᵀ·R over the batch
        #: FLOPs spent so far (GEMM passes, the Gram and its eigendecomposition): what the solve cost
        self.k = 1.0 if self.coupled else float(self.m)  # H ⪰ (low / k) G + ridge·I
        #: groups with at most this many unknowns get their Newton direction by a factorised Hessian: fewer
        #: seconds, more FLOPs than CG (0: always CG; a solve charged to the FLOPs budget keeps CG)
        self.direct_unknowns = 0
        #: more features than samples: G has rank ≤ N, and its eigenpairs come from the thin SVD of Zs
        #: (N²·d FLOPs, not d³: seconds saved on a wide input certified on a few hundred samples)
        self.thin = d > N
        if self.thin:
            _, singular, vh = torch.linalg.svd(Zs, full_matrices=False)
            self.basis, eigenvalues = vh.mT, singular.square() / N  # (B, d, N), (B, N); 0 off their span
            self.flops = 4.0 * B * N * N * d + 10.0 * B * N ** 3
        else:
            eigenvalues, self.basis = torch.linalg.eigh(Zs.mT @ Zs / N)
            self.flops = 2.0 * B * N * d * d + 10.0 * B * d ** 3
        self.spectrum = eigenvalues.clamp_min(0)  # G is PSD (round-off can dip below 0)
        self.top = self.spectrum.amax(-1)  # λ_max(G) per problem

    def with_ridge(self, ridge: float) -> NewtonCG:
        """The same problems with another ridge (the Gram's eigendecomposition is shared, not redone)."""
        other = object.__new__(NewtonCG)
        other.__dict__.update(self.__dict__)
        other.ridge, other.flops = float(ridge), 0.0
        return other

    # ------------------------------------------------------------ group helpers
    def dot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(dim=(-2, -1)) if self.coupled else (a * b).sum(-2)

    def spread(self, v: torch.Tensor) -> torch.Tensor:
        """A group tensor broadcast over W (B, d, m)."""
        return v[:, None, None] if self.coupled else v[:, None, :]

    def least_squares(self, targets: torch.Tensor) -> torch.Tensor:
        """argmin ‖Zs W − targets‖² + ridge·N·‖W‖² (targets … × N × m): W (B, d, m)."""
        W = self._solve(self.Zs.mT @ targets / self.N, 1.0, self.ridge)
        return W - W.mean(-1, keepdim=True) if self.coupled else W  # softmax: the sum-zero rows

    def _solve(self, R: torch.Tensor, scale: torch.Tensor | float, shift: float) -> torch.Tensor:
        """(scale·G + shift·I)⁻¹ R per problem, from G = QΛQᵀ (``scale`` broadcast over R's columns)."""
        projected = self.basis.mT @ R
        solved: torch.Tensor = self.basis @ (projected / (scale * self.spectrum[:, :, None] + shift))
        if self.thin and shift > 0:  # off the span of Q, G is 0: (scale·0 + shift)⁻¹
            solved = solved + (R - self.basis @ projected) / shift
        return solved

    # ------------------------------------------------------------ the objective
    def pieces(self, U: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """What the objective and the derivatives need of predictions U (B, N, m), computed once per
        point (the transcendentals are most of a step's time at small d): log-softmax for
        cross-entropy, else (ℓ, ∂ℓ/∂u, ∂²ℓ/∂u²) element by element."""
        if self.elementwise is None:
            return (torch.log_softmax(U, dim=-1),)
        return self.elementwise(U, self.T)

    def value(self, pieces: tuple[torch.Tensor, ...], W: torch.Tensor) -> torch.Tensor:
        """Mean loss plus the ridge, per group, from :meth:`pieces` at W's predictions."""
        penalty = 0.5 * self.ridge * W.square().sum(-2)
        if self.elementwise is None:
            return -(self.T * pieces[0]).sum(-1).mean(-1) + penalty.sum(-1)
        return pieces[0].mean(-2) / self.m + penalty

    def derivatives(self, pieces: tuple[torch.Tensor, ...], W: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(gradient (B, d, m), curvature weights (B, N, m), preconditioner scale c and bound ρ per group)."""
        self.flops += self._pass
        if self.elementwise is None:
            curv = pieces[0].exp()  # the softmax
            grad = self.Zs.mT @ (curv - self.T) / self.N + self.ridge * W
            grad = grad - grad.mean(-1, keepdim=True)  # zero in theory: the loss ignores a shift of all logits
            c = (curv * (1 - curv)).mean(dim=(-2, -1))
            # on sum-zero directions Var_p(s) ≥ min_k p_k · ‖s‖²: H ⪰ min p · G ⊗ I + ridge·I
            low = curv.amin(dim=(-2, -1))
        else:
            _, first, curv = pieces
            grad = self.Zs.mT @ first / (self.N * self.m) + self.ridge * W
            c, low = curv.mean(-2), curv.amin(-2)
        c = c + CURVATURE_FLOOR
        return grad, curv, c, self._rho(c, low)

    def _rho(self, c: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        """ρ with H ⪰ ρ M, M = (c/k) G + λI: from the least curvature (H ⪰ (low/k) G + λI), or from
        the ridge alone (H ⪰ λI and M ⪯ ((c/k) λ_max(G) + λ) I)."""
        top = self.top if self.coupled else self.top[:, None]
        by_curvature = (low.clamp_min(0) / c).clamp(max=1.0)
        by_ridge = self.ridge / ((c / self.k) * top + self.ridge)
        return torch.maximum(by_curvature, by_ridge)

    def hessian_times(self, curv: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        self.flops += 2 * self._pass
        S = self.Zs @ V
        if self.coupled:
            PS = curv * S
            return self.Zs.mT @ (PS - curv * PS.sum(-1, keepdim=True)) / self.N + self.ridge * V
        return self.Zs.mT @ (curv * S) / (self.N * self.m) + self.ridge * V

    def precondition(self, c: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        scale = c[:, None, None] if self.coupled else c[:, None, :]  # (B, 1, 1) or (B, 1, m)
        return self._solve(R, scale / self.k, self.ridge)

    # ------------------------------------------------------------ Newton-CG
    def direction(self, grad: torch.Tensor, curv: torch.Tensor, c: torch.Tensor, rho: torch.Tensor,
                  target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """PCG on H x = g per group: x, and the certified upper bound on ½ gᵀH⁻¹g (groups).
        A group stops once its bound is at most ``target`` or its residual is negligible."""
        small = self.unknowns <= self.direct_unknowns and self.Zs.shape[0] * self.N * self.unknowns <= DIRECT_ELEMENTS
        direct = self._direct(grad, curv) if small else None
        if direct is not None:  # exact up to round-off; its residual certifies the bound as CG's does
            r = grad - self.hessian_times(curv, direct)
            rz = self.dot(r, self.precondition(c, r))
            return direct, 0.5 * (self.dot(grad, direct) + self.dot(direct, r).abs() + rz.clamp_min(0) / rho)
        x = torch.zeros_like(grad)
        r = grad.clone()
        z = self.precondition(c, r)
        p = z
        rz = self.dot(r, z)
        gz = rz.clone()
        bound = 0.5 * rz / rho
        active = bound > target
        # inexact Newton (forcing term η² = min(¼, √(gᵀM⁻¹g))): far from the minimum a rough direction
        # serves as well as an exact one; near it η → 0 and the certified bound decides when CG stops
        forcing = torch.clamp(gz.clamp_min(0).sqrt(), max=0.25).clamp_min(CG_RTOL)
        for _ in range(MAX_CG):
            if not bool(active.any()):
                break
            Hp = self.hessian_times(curv, p)
            pHp = self.dot(p, Hp)
            usable = active & (pHp > 0)
            alpha = torch.where(usable, rz / torch.where(usable, pHp, torch.ones_like(pHp)), torch.zeros_like(rz))
            x = x + self.spread(alpha) * p
            r = r - self.spread(alpha) * Hp
            z = self.precondition(c, r)
            rz_new = self.dot(r, z)
            certified = 0.5 * (self.dot(grad, x) + self.dot(x, r).abs() + rz_new.clamp_min(0) / rho)
            bound = torch.where(usable, certified, bound)
            active = usable & (bound > target) & (rz_new > forcing * gz)
            beta = torch.where(active, rz_new / torch.where(active, rz, torch.ones_like(rz)), torch.zeros_like(rz))
            p = z + self.spread(beta) * p
            rz = torch.where(active, rz_new, rz)
        return x, bound

    @property
    def unknowns(self) -> int:
        d = self.Zs.shape[-1]
        return d * self.m if self.coupled else d

    def _direct(self, grad: torch.Tensor, curv: torch.Tensor) -> torch.Tensor | None:
        """H⁻¹ g with the Hessian formed (B, d, m); None where its Cholesky factorisation fails."""
        Z = self.Zs
        B, N, d = Z.shape
        m = self.m
        if self.coupled:  # H = Σₙ zₙzₙᵀ ⊗ (diag pₙ − pₙpₙᵀ) / N + λI, unknowns ordered as W (d, m) flattened
            Zp = (Z[..., :, None] * curv[..., None, :]).reshape(B, N, d * m)
            diagonal = torch.einsum("bni,bna,bnj->biaj", Z, curv, Z)
            eye = torch.eye(m, dtype=Z.dtype, device=Z.device)
            H = (diagonal[..., None] * eye[:, None, :]).reshape(B, d * m, d * m) - Zp.mT @ Zp
            H = H / N + self.ridge * torch.eye(d * m, dtype=Z.dtype, device=Z.device)
            self.flops += 2.0 * B * N * (d * m) ** 2 + B * (d * m) ** 3 / 3
            factor, info = torch.linalg.cholesky_ex(H)
            if bool(info.any()):
                return None
            return torch.cholesky_solve(grad.reshape(B, d * m, 1), factor).reshape(B, d, m)
        # separate columns: H_a = Zᵀ diag(h_a) Z / (N m) + λI, one d × d system per (problem, column)
        H = torch.einsum("bni,bna,bnj->baij", Z, curv, Z) / (N * m)
        H = H + self.ridge * torch.eye(d, dtype=Z.dtype, device=Z.device)
        self.flops += 2.0 * B * N * d * d * m + B * m * d ** 3 / 3
        factor, info = torch.linalg.cholesky_ex(H)
        if bool(info.any()):
            return None
        return torch.cholesky_solve(grad.mT[..., None], factor)[..., 0].mT

    def line_search(self, W: torch.Tensor, U: torch.Tensor, pieces: tuple[torch.Tensor, ...], current: torch.Tensor,
                    step: torch.Tensor, slope: torch.Tensor, moving: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
        """Backtracking (Armijo) along −step for the ``moving`` groups: (W, U, pieces, objective, accepted)."""
        S = self.Zs @ step
        self.flops += self._pass
        alpha = torch.ones_like(current)
        accepted = ~moving
        for _ in range(MAX_HALVINGS):
            factor = self.spread(alpha)
            trial_W, trial_U = W - factor * step, U - factor * S
            trial = self.pieces(trial_U)
            value = self.value(trial, trial_W)
            newly = (value <= current - 0.25 * alpha * slope) & ~accepted
            take = self.spread(newly.to(W.dtype)) > 0
            W, U = torch.where(take, trial_W, W), torch.where(take, trial_U, U)
            pieces = tuple(torch.where(take, new, old) for new, old in zip(trial, pieces))  # kept in step with U
            current = torch.where(newly, value, current)
            accepted = accepted | newly
            if bool(accepted.all()):
                break
            alpha = torch.where(accepted, alpha, alpha * 0.5)
        return W, U, pieces, current, accepted

    def minimise(self, W: torch.Tensor, rtol: float, max_newton: int,
                 until: Callable[[torch.Tensor], bool] | None = None) -> tuple[torch.Tensor, bool, int, torch.Tensor]:
        """From W: (W, every group converged?, Newton steps, final objective per group). Converged:
        the certified decrement bound is at most ``rtol`` × |objective at the start|. ``until(U)``:
        checked on the predictions after each step; True stops there (unconverged)."""
        U = self.Zs @ W
        self.flops += self._pass
        pieces = self.pieces(U)
        current = self.value(pieces, W)
        target = rtol * current.detach().abs().clamp_min(1e-300)
        stuck = torch.zeros_like(current, dtype=torch.bool)
        done = stuck
        iterations = 0
        while iterations < max_newton:
            iterations += 1
            grad, curv, c, rho = self.derivatives(pieces, W)
            step, bound = self.direction(grad, curv, c, rho, target)
            done = (bound <= target) | stuck
            if bool(done.all()):
                break
            W, U, pieces, current, accepted = self.line_search(W, U, pieces, current, step, self.dot(grad, step),
                                                               ~done)
            stuck = stuck | ~accepted  # no descent possible at round-off: as converged as it gets
            done = done | stuck
            if until is not None and not bool(done.all()) and until(U):
                break
        return W, bool(done.all()), iterations, current
