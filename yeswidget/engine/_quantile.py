"""The last layer in the quantile (pinball) loss and in L1: an exact LP solve with a certificate.

Pure math, no UI. For one output column the problem is the linear program

    min_w  Σ_i ρ_τ(t_i − z_i·w),   ρ_τ(r) = max(τ r, (τ − 1) r)

(L1 is τ = ½, times 2), written as ``Z w + u − v = t``, ``u, v ≥ 0``, objective
``τ·Σu + (1 − τ)·Σv``. Its dual is ``max tᵀy`` over ``Zᵀy = 0``, ``τ − 1 ≤ y ≤ τ``: for every
such y and every w, ``Σ ρ_τ(t − Z w) ≥ (t − Z w)ᵀ y = tᵀ y``, so tᵀy is a certified lower bound
on the minimum. The solver is a primal–dual interior point method (Frisch–Newton, with
Mehrotra's predictor–corrector), batched over B problems and m columns at once; every
iteration projects its dual iterate onto ``Zᵀy = 0`` and shrinks it into the box, and a column
is converged only when that dual value proves its loss within ``rtol`` of the minimum.

Shapes: ``Z`` is B × N × d (the bias column in, columns equilibrated), ``T`` is N × m.
"""
from __future__ import annotations

import torch
from torch import nn

from ._linalg import Basis, _orthonormal_basis, _project

__all__ = ["QuantileLoss", "pinball", "solve_quantile", "QUANTILE_KINDS", "IPM_STEPS"]

#: the LastLayerLoss kinds this module solves
QUANTILE_KINDS = ("l1", "quantile")
#: interior point iterations at most (Mehrotra's method typically needs 15–40)
MAX_IPM = 100
#: interior point iterations of a typical solve (for the cost estimate)
IPM_STEPS = 25
#: how far towards the boundary of u, v ≥ 0 (and of the dual box) one step may go
STEP_FRACTION = 0.99995
#: a gap this small relative to the targets' spread is round-off: converged even where the loss is ~0
GAP_FLOOR = 1e-12


def pinball(residual: torch.Tensor, quantile: float) -> torch.Tensor:
    """ρ_τ(r) element by element, r = target − prediction: τ·r above, (τ − 1)·r below."""
    return torch.maximum(quantile * residual, (quantile - 1) * residual)


class QuantileLoss(nn.Module):
    """The quantile (pinball) loss: mean over all elements of ρ_τ(target − input).

    Trained with it, a model predicts the ``quantile`` of the target given the input (0.5: the
    median; then the loss is half the mean absolute error). ``yeswidget`` judges it exactly:
    the YES network's last layer is the quantile regression fit of the constructed features.
    """

    def __init__(self, quantile: float = 0.5) -> None:
        super().__init__()
        if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0 < quantile < 1:
            raise ValueError(f"quantile must be a number strictly between 0 and 1 (0.5: the median); "
                             f"got {quantile!r}")
        self.quantile = float(quantile)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.shape != target.shape:
            raise ValueError(f"QuantileLoss needs input and target of one shape; got {tuple(input.shape)} "
                             f"and {tuple(target.shape)}")
        return pinball(target - input, self.quantile).mean()

    def extra_repr(self) -> str:
        return f"quantile={self.quantile:g}"


def _to_boundary(x: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Per column (B, m): the largest α ≤ 1 (times STEP_FRACTION) keeping x + α dx > 0, x (B, N, m)."""
    ratio = torch.where(dx < 0, -x / dx.clamp(max=-1e-300), torch.full_like(x, torch.inf))
    return (STEP_FRACTION * ratio.amin(dim=-2)).clamp(max=1.0)


def _normal_factors(Z: torch.Tensor, D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LU factors of Zᵀ diag(D_j) Z per column (B, m, d, d), with a sliver of ridge for null directions."""
    B, N, d = Z.shape
    m = D.shape[-1]
    normal = torch.empty(B, m, d, d, dtype=Z.dtype, device=Z.device)
    chunk = max(1, 2 ** 23 // max(1, B * N * d))  # weighted copies of Z stay within ~8M elements
    for a in range(0, m, chunk):
        b = min(m, a + chunk)
        weighted = Z.unsqueeze(1) * D[..., a:b].mT.unsqueeze(-1)  # (B, c, N, d)
        normal[:, a:b] = weighted.mT @ Z.unsqueeze(1)
    diagonal = torch.diagonal(normal, dim1=-2, dim2=-1)
    ridge = 1e-13 * diagonal.amax(dim=-1, keepdim=True) + 1e-300
    diagonal += ridge
    LU, pivots = torch.linalg.lu_factor(normal)
    return LU, pivots


def _newton(Z: torch.Tensor, factors: tuple[torch.Tensor, torch.Tensor], D: torch.Tensor, h: torch.Tensor,
            dual_residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dw, dy) from the reduced system: Zᵀ D Z dw = Zᵀ D h − r_d, dy = D (h − Z dw)."""
    rhs = Z.mT @ (D * h) - dual_residual  # (B, d, m)
    dw = torch.linalg.lu_solve(*factors, rhs.mT.unsqueeze(-1)).squeeze(-1).mT
    return dw, D * (h - Z @ dw)


def _certificate(Z: torch.Tensor, T: torch.Tensor, W: torch.Tensor, y: torch.Tensor, quantile: float,
                 basis: Basis) -> tuple[torch.Tensor, torch.Tensor]:
    """(primal, lower) per column (B, m): Σ ρ_τ of the iterate W, and tᵀy of y made dual feasible."""
    primal = pinball(T - Z @ W, quantile).sum(dim=-2)
    feasible = y - _project(basis, y)  # Zᵀy = 0
    # shrink towards 0 (inside the box) until τ − 1 ≤ y ≤ τ: still Zᵀy = 0
    over = torch.where(feasible > quantile, quantile / feasible, torch.ones_like(feasible))
    under = torch.where(feasible < quantile - 1, (quantile - 1) / feasible, torch.ones_like(feasible))
    shrink = torch.minimum(over, under).amin(dim=-2, keepdim=True)
    lower = (T * feasible * shrink).sum(dim=-2)
    return primal, lower


def _start(Z: torch.Tensor, T: torch.Tensor, W: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(u, v, p, q): the residuals of W split in positive and negative parts, a little inside, and
    the dual slacks p = τ − y, q = 1 − τ + y centred (½ each)."""
    r = T - Z @ W
    margin = 0.1 * r.abs().mean(dim=-2, keepdim=True) + 1e-8 * (T.abs().mean(dim=-2, keepdim=True) + 1.0)
    u, v = r.clamp(min=0) + margin, (-r).clamp(min=0) + margin
    half = torch.full_like(r, 0.5)
    return u, v, half, half.clone()


def solve_quantile(Z: torch.Tensor, T: torch.Tensor, W: torch.Tensor, quantile: float, rtol: float
                   ) -> tuple[torch.Tensor, bool, int]:
    """The last layer minimising Σ ρ_τ(T − Z W) per problem and column, from W (B, d, m).

    Returns (W, converged, iterations): converged means every column's loss is certified within
    ``rtol`` of its minimum (or within round-off of the targets' spread) by a feasible dual point.
    The dual slacks p = τ − y and q = 1 − τ + y are kept as variables of their own: near the
    optimum they are far smaller than y, and τ − y would lose them to round-off.
    """
    # iterate in an orthonormal basis of col(Z) (null directions as zero columns): the same
    # minimum, and normal equations that near-collinear features (ReLU layers) cannot spoil
    features, to_weights = _basis_of(Z)
    Z, W = features, features.mT @ (Z @ W)
    basis: Basis = (Z, None)
    u, v, p, q = _start(Z, T, W)
    spread = (T - T.mean(dim=0)).abs().sum(dim=0)  # (m,)
    done = torch.zeros(Z.shape[0], T.shape[1], dtype=torch.bool, device=Z.device)
    stalled = torch.zeros_like(done)  # a step went non-finite: that column stops where it was
    iterations = 0
    while iterations < MAX_IPM:
        primal, lower = _certificate(Z, T, W, quantile - p, quantile, basis)
        done = done | (primal - lower <= rtol * primal.abs() + GAP_FLOOR * spread)
        if bool((done | stalled).all()):
            break
        iterations += 1
        dw, du, dv, dy, step_p, step_d = _iteration(Z, T, W, u, v, p, q, quantile)
        moved = (W + step_p * dw, u + step_p * du, v + step_p * dv, p - step_d * dy, q + step_d * dy)
        finite = torch.stack([x.isfinite().all(dim=-2) for x in moved]).all(dim=0)
        stalled = stalled | (~finite & ~done)
        keep = (done | stalled).unsqueeze(-2)
        W, u, v, p, q = (torch.where(keep, old, new) for old, new in zip((W, u, v, p, q), moved, strict=True))
    return to_weights @ W, bool(done.all()), iterations


def _basis_of(Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q, M): Q (B, N, r) orthonormal with col(Q) = col(Z) (zero columns for null directions), and
    M (B, d, r) with Z M = Q, which takes weights on Q back to weights on Z."""
    Q, whitener = _orthonormal_basis(Z)
    if whitener is not None:  # primal form: Q is Z itself, Z W orthonormal
        return Z @ whitener, whitener
    return Q, torch.linalg.pinv(Z) @ Q  # dual form (wide Z): Q is an orthonormal basis already


def _iteration(Z: torch.Tensor, T: torch.Tensor, W: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
               p: torch.Tensor, q: torch.Tensor, quantile: float) -> tuple[torch.Tensor, ...]:
    """One Mehrotra predictor–corrector step: (dw, du, dv, dy, primal step, dual step), the steps (B, 1, m)."""
    N = Z.shape[-2]
    primal_residual, dual_residual = T - Z @ W - u + v, -(Z.mT @ (quantile - p))
    D = 1 / (u / p + v / q)
    factors = _normal_factors(Z, D)
    # predictor (affine scaling): complementarity u p = v q = 0
    cu, cv = -u * p, -v * q
    dw, dy = _newton(Z, factors, D, primal_residual - cu / p + cv / q, dual_residual)
    du, dv = (cu + u * dy) / p, (cv - v * dy) / q
    step_p = torch.minimum(_to_boundary(u, du), _to_boundary(v, dv)).unsqueeze(-2)
    step_d = torch.minimum(_to_boundary(p, -dy), _to_boundary(q, dy)).unsqueeze(-2)
    mu = ((u * p).sum(-2) + (v * q).sum(-2)) / (2 * N)
    mu_affine = (((u + step_p * du) * (p - step_d * dy)).sum(-2)
                 + ((v + step_p * dv) * (q + step_d * dy)).sum(-2)) / (2 * N)
    target = ((mu_affine / mu).clamp(max=1.0) ** 3 * mu).unsqueeze(-2)
    # corrector: aim at the centre σμ and cancel the predictor's second-order term
    cu, cv = target - u * p + du * dy, target - v * q - dv * dy
    dw, dy = _newton(Z, factors, D, primal_residual - cu / p + cv / q, dual_residual)
    du, dv = (cu + u * dy) / p, (cv - v * dy) / q
    step_p = torch.minimum(_to_boundary(u, du), _to_boundary(v, dv)).unsqueeze(-2)
    step_d = torch.minimum(_to_boundary(p, -dy), _to_boundary(q, dy)).unsqueeze(-2)
    return dw, du, dv, dy, step_p, step_d
