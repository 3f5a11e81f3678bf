"""The last layer fitted in the user's own loss (YES-BOUNDS.md, "Beyond squared error").

Pure math, no UI. Hidden layers stay the paper's least-squares fits; the last layer is
``W* = argmin_W mean ℓ([Z, 1] W, T)`` for the loss ``ℓ`` the user trains with, and every
YES value is that minimum: a loss a network of the user's architecture reaches.

Shapes: ``Z`` is B × N × d (B problems: one per anchor set, the bias column already in),
``T`` is N × m (one-hot rows for class labels, the 0/1 label matrix for BCE, Y otherwise).
Values are means exactly as torch's ``reduction="mean"`` computes them (cross-entropy: over
samples; element-wise losses: over all N·m elements).

Convex losses are solved by truncated Newton-CG (``engine._newton``: Hessian-vector products as
two GEMMs, the Gram as preconditioner) from a warm start (the previous solve's predictions refitted
to the new features, else least squares / zero logits), to a certified bound on the Newton decrement
≤ ``DECREMENT_RTOL`` of the loss: a solve that stops short is reported unconverged and certifies no
green. A tiny fixed
ridge (``RIDGE`` on equilibrated columns) keeps separable classes finite; the *unpenalised*
loss is reported, and a fit whose penalty matters is flagged ``ridge_limited``. Any other
loss (a custom callable) gets an achieved value by descent from least squares: a valid
top edge, never a certified lower one. L1 and the quantile loss are linear programs, solved
exactly by an interior point method with a duality-gap certificate (:mod:`._quantile`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._newton import DIRECT_UNKNOWNS, NewtonCG
from ._quantile import IPM_STEPS, QUANTILE_KINDS, QuantileLoss, pinball, solve_quantile

__all__ = ["LastLayerLoss", "LossQuestion", "SolveReport", "last_layer_loss", "solve_flops", "binary_targets",
           "LOSS_KINDS", "QuantileLoss"]

#: ridge on the equilibrated last layer (mean-loss units): negligible where a minimiser exists
RIDGE = 1e-9
#: where none exists (separable classes: the loss tends to 0 and is never reached), the fixed
#: ridge the last layer is fitted with instead; its unpenalised loss is reported
SEPARABLE_RIDGE = 1e-5
#: converged: the Newton decrement (≈ loss − minimum) is at most this fraction of the loss's scale
DECREMENT_RTOL = 1e-9
#: the ridge "matters" (green then means "as good as the ridge-fitted layer") above this share
RIDGE_SHARE = 1e-6
MAX_NEWTON = 60
#: Newton steps after which a solve whose ridge already matters (the weights grow without bound:
#: separable classes) stops chasing the unreachable infimum and is refitted with SEPARABLE_RIDGE
SEPARATION_CHECK = 8

#: what each kind is, for describe() and the run record
LOSS_KINDS = {
    "cross_entropy": "cross-entropy over softmax (convex; Newton)",
    "bce": "binary cross-entropy on logits (convex; Newton)",
    "huber": "Huber (convex; Newton)",
    "smooth_l1": "smooth L1 (convex; Newton)",
    "poisson": "Poisson NLL with log link (convex; Newton)",
    "l1": "L1, mean absolute error (a linear program; interior point, certified by its duality gap)",
    "quantile": "quantile (pinball) loss (a linear program; interior point, certified by its duality gap)",
    "custom": "a loss without an exact solver: achieved values only (no certified lower edge)",
}


class LossQuestion(ValueError):
    """The targets could be judged in more than one loss: the user must say which."""


@dataclass
class SolveReport:
    """The last solve of a batch: every problem converged? the ridge mattered? Newton steps, and the
    FLOPs it took (counted from the work done, so the same data costs the same on any machine; 0:
    not counted)."""

    converged: bool = True
    ridge_limited: bool = False
    iterations: int = 0
    flops: float = 0.0

    def merge(self, other: SolveReport) -> None:
        self.converged = self.converged and other.converged
        self.ridge_limited = self.ridge_limited or other.ridge_limited
        self.iterations = max(self.iterations, other.iterations)
        self.flops += other.flops


def _huber(r: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    inside = r.abs() <= delta
    value = torch.where(inside, 0.5 * r.square(), delta * (r.abs() - 0.5 * delta))
    return value, r.clamp(-delta, delta), inside.to(r.dtype)


class LastLayerLoss:
    """One per-sample loss ℓ(ŷ, t): its value, and the last layer's minimiser over batches of Z.

    ``kind``: a key of :data:`LOSS_KINDS`. ``name``: the loss as the user named it.
    ``certifies_lower``: an exact convex solve exists (green is possible). ``signed``: the loss
    can be negative (no dB axis). ``fn``: for ``custom``, ``fn(prediction, T) -> 0-d mean``.
    ``quantile``: τ of the quantile loss.
    """

    def __init__(self, kind: str, name: str, *, delta: float = 1.0,
                 fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 quantile: float = 0.5) -> None:
        if kind not in LOSS_KINDS:
            raise ValueError(f"loss kind must be one of {sorted(LOSS_KINDS)}; got {kind!r}")
        self.kind, self.name, self.delta, self.fn = kind, name, float(delta), fn
        self.quantile = float(quantile)
        self.certifies_lower = kind != "custom"
        self.signed = kind in ("poisson", "custom")
        self.report = SolveReport()
        self._ridge = RIDGE
        self._warm: dict[Any, torch.Tensor] = {}

    def fresh(self) -> LastLayerLoss:
        """The same loss with no warm starts (for another run computed alongside)."""
        return LastLayerLoss(self.kind, self.name, delta=self.delta, fn=self.fn, quantile=self.quantile)

    # ----------------------------------------------------------------- values
    def value(self, U: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        """Mean loss of predictions ``U`` (… × N × m) against ``T`` (N × m): a tensor of shape …."""
        if self.kind == "custom":
            assert self.fn is not None
            flat = U.reshape(-1, *U.shape[-2:])
            values = torch.stack([self.fn(u, T).to(torch.float64).reshape(()) for u in flat])
            return values.reshape(U.shape[:-2])
        if self.kind == "cross_entropy":
            return -(T * torch.log_softmax(U, dim=-1)).sum(-1).mean(-1)
        if self.kind in QUANTILE_KINDS:  # L1 is twice the pinball loss at ½
            return (2.0 if self.kind == "l1" else 1.0) * pinball(T - U, self.quantile).mean(dim=(-2, -1))
        return self._elementwise(U, T)[0].mean(dim=(-2, -1))

    def _elementwise(self, U: torch.Tensor, T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ℓ, ∂ℓ/∂u, ∂²ℓ/∂u²) element by element."""
        if self.kind == "bce":
            s = torch.sigmoid(U)
            return nn.functional.softplus(U) - T * U, s - T, s * (1 - s)
        if self.kind == "poisson":
            e = torch.exp(U)
            return e - T * U, e - T, e
        if self.kind == "huber":
            return _huber(U - T, self.delta)
        # smooth L1 with beta = delta: Huber / beta
        value, grad, curv = _huber(U - T, self.delta)
        return value / self.delta, grad / self.delta, curv / self.delta

    # ----------------------------------------------------------------- solves
    def solve(self, Z: torch.Tensor, T: torch.Tensor, key: Any = None, *, budgeted: bool = True) -> torch.Tensor:
        """The minimum mean loss over the last layer for each of B problems ``Z`` (B × N × d),
        as a float64 tensor (B,); ``self.report`` says how the solve went. ``key`` names the
        problems for warm starts across calls (same key, same shapes: start from the last solution's
        predictions, refitted to the new ``Z``). ``budgeted``: the solve draws on the FLOPs budget, so
        Newton takes the fewest FLOPs (CG); False (YES-0, before training): the least time (a small
        Hessian formed and factorised)."""
        Z = Z.to(torch.float64)
        T = T.to(torch.float64)
        norms = Z.square().mean(dim=-2, keepdim=True).sqrt()
        scale = torch.where(norms > 0, norms, torch.ones_like(norms))
        Zs = Z / scale  # equilibrated: the ridge means the same on every column
        if self.kind == "custom":
            W, report = self._descend(Zs, T, self._custom_start(Zs, T, key))
        elif self.kind in QUANTILE_KINDS:
            W, converged, steps = solve_quantile(Zs, T, self._start(Zs, T, key, None), self.quantile,
                                                 DECREMENT_RTOL)
            B, N, d = Zs.shape  # each interior-point step forms m weighted Grams
            report = SolveReport(converged=converged, iterations=steps, flops=2.0 * steps * B * T.shape[1] * N * d * d)
        else:
            newton = self._newton(Zs, T, RIDGE)
            newton.direct_unknowns = 0 if budgeted else DIRECT_UNKNOWNS
            start = self._start(Zs, T, key, newton)
            separates = self._separates(T)
            if separates is not None and separates(newton.Zs @ start):
                W, report = start, SolveReport(converged=False, ridge_limited=True)
            else:
                W, report = self._minimise(newton, start, SEPARATION_CHECK, until=separates)
            if not report.converged and not report.ridge_limited:  # a minimum within reach: Newton goes on
                W, later = self._minimise(newton, W, MAX_NEWTON - SEPARATION_CHECK)
                later.iterations += report.iterations
                report = later
            spent = newton.flops
            if report.ridge_limited and not report.converged:  # separable: fit with the fixed larger ridge
                separable = newton.with_ridge(SEPARABLE_RIDGE)
                W, report = self._minimise(separable, W)
                report.ridge_limited = True
                spent += separable.flops
            report.flops = spent
        U = Zs @ W
        if key is not None:
            self._warm[key] = U.detach()
        self.report = report
        return self.value(U, T)

    def _separates(self, T: torch.Tensor) -> Callable[[torch.Tensor], bool] | None:
        """A test on predictions U (B × N × m): does U classify every sample of some problem correctly
        (cross-entropy: the arg-max class; BCE with 0/1 labels: the sign, in some label column)? Then
        scaling those weights up drives the loss to 0: no minimiser exists, and further Newton steps at
        the tiny ridge would only chase it. None: the loss has no such test."""
        if self.kind == "cross_entropy":
            labels = T.argmax(-1)
            return lambda U: bool((U.argmax(-1) == labels).all(-1).any())
        if self.kind == "bce" and bool(((T == 0) | (T == 1)).all()):
            positive = T > 0.5
            return lambda U: bool(((U > 0) == positive).all(-2).any())  # one separable label column suffices
        return None

    def _newton(self, Zs: torch.Tensor, T: torch.Tensor, ridge: float) -> NewtonCG:
        return NewtonCG(Zs, T, ridge, None if self.kind == "cross_entropy" else self._elementwise)

    def _start(self, Zs: torch.Tensor, T: torch.Tensor, key: Any, newton: NewtonCG | None) -> torch.Tensor:
        """The last solve's predictions refitted to ``Zs`` (least squares), else a cold start."""
        warm = self._warm.get(key)
        B, N, d = Zs.shape
        if newton is not None and warm is not None and warm.shape == (B, N, T.shape[1]):
            return newton.least_squares(warm)
        if self.kind in ("cross_entropy", "bce", "poisson"):
            return Zs.new_zeros(B, d, T.shape[1])  # logits 0 (log-rate 0): a safe start for Newton
        if newton is not None:
            return newton.least_squares(T)
        gram = Zs.mT @ Zs + RIDGE * N * torch.eye(d, dtype=Zs.dtype, device=Zs.device)
        start: torch.Tensor = torch.linalg.solve(gram, Zs.mT @ T)  # least squares
        return start

    def _custom_start(self, Zs: torch.Tensor, T: torch.Tensor, key: Any) -> torch.Tensor:
        """Least squares or zero outputs, whichever the loss prefers per problem (a log-link loss such
        as Poisson NLL as a plain function is far from its minimum at the least-squares fit)."""
        start = self._start(Zs, T, key, None)
        zero = torch.zeros_like(start)
        with torch.no_grad():
            better = self.value(Zs @ zero, T) < self.value(Zs @ start, T)
        return torch.where(better[:, None, None], zero, start)

    @staticmethod
    def _minimise(newton: NewtonCG, W: torch.Tensor, steps: int = MAX_NEWTON,
                  until: Callable[[torch.Tensor], bool] | None = None) -> tuple[torch.Tensor, SolveReport]:
        """Newton-CG to a certified decrement of DECREMENT_RTOL; is the ridge's share above RIDGE_SHARE
        (or did ``until`` find the classes separated)?"""
        W, converged, iterations, objective = newton.minimise(W, DECREMENT_RTOL, steps, until=until)
        penalty = 0.5 * newton.ridge * W.square().sum(dim=-2)
        loss = objective.sum(-1) if objective.ndim == 2 else objective
        separated = not converged and until is not None and iterations < steps
        ridge_limited = separated or bool((penalty.sum(-1) > RIDGE_SHARE * loss.abs()).any())
        return W, SolveReport(converged=converged, ridge_limited=ridge_limited, iterations=iterations)

    def _descend(self, Zs: torch.Tensor, T: torch.Tensor, W: torch.Tensor) -> tuple[torch.Tensor, SolveReport]:
        """A custom loss: L-BFGS from least squares on the sum of the (independent) problems."""
        assert self.fn is not None
        fn = self.fn
        start = W.detach().clone()
        W = start.clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS([W], max_iter=50, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            total = sum(fn(Zs[b] @ W[b], T).to(torch.float64) for b in range(Zs.shape[0]))
            assert isinstance(total, torch.Tensor)
            total.backward()  # type: ignore[no-untyped-call]  # (torch's own annotation gap)
            return total

        try:
            optimizer.step(closure)  # type: ignore[no-untyped-call]
            W = W.detach()
        except Exception:  # the loss is not differentiable here: least squares is still achieved
            W = start
        before, after = self.value(Zs @ start, T), self.value(Zs @ W, T)
        W = torch.where((after <= before)[:, None, None], W, start)  # per problem: never worse than the start
        return W, SolveReport(converged=False)


#: Newton steps a warm-started solve takes in a training run, and CG iterations per step (for the cost estimate)
WARM_STEPS = 3
CG_STEPS = 10
#: the same for a cold solve (the first update of a run: no warm start). Measured on the digits classifier's
#: first update in cross-entropy (separable: SEPARATION_CHECK steps, then the ridge refit): 25 steps, 36 each
COLD_STEPS = 25
COLD_CG = 36


def solve_flops(own: LastLayerLoss, n_samples: int, state_width: int, outputs: int, problems: int, *,
                cold: bool = False) -> float:
    """FLOPs of ``problems`` last-layer solves (N samples, ``state_width`` columns with the bias,
    ``outputs`` m) at :data:`WARM_STEPS` Newton steps (``cold``: :data:`COLD_STEPS`): a gradient,
    :data:`CG_STEPS` (:data:`COLD_CG`) Hessian-vector products and a line search each, every one two
    N·d·m GEMMs."""
    N, d, m = n_samples, state_width, outputs
    steps, cg = (COLD_STEPS, COLD_CG) if cold else (WARM_STEPS, CG_STEPS)
    if own.kind == "custom":
        per_step = 50 * 4.0 * N * d * m  # L-BFGS: gradient evaluations only
    elif own.kind in QUANTILE_KINDS:  # interior point: a cold start every solve, IPM_STEPS factorisations
        per_step = 2.0 * m * N * d * d * IPM_STEPS / steps
    else:
        per_step = (2 + cg) * 4.0 * N * d * m
    return float(problems * steps * per_step)


# --------------------------------------------------------------------------- #
# from the user's loss object to a LastLayerLoss
# --------------------------------------------------------------------------- #
_MSE_NAMES = ("mse", "mseloss", "mse_loss")


def binary_targets(Y: torch.Tensor) -> bool:
    """Float targets holding only 0s and 1s (logits for BCE, or one-hot rows for squared error?)."""
    return Y.is_floating_point() and bool(((Y == 0) | (Y == 1)).all())


def last_layer_loss(loss: Any, Y: torch.Tensor) -> LastLayerLoss | None:
    """The last-layer loss for the user's ``loss`` (a module, a name or a callable) on targets ``Y``.

    None means squared error (the paper's construction, unchanged). Raises :class:`LossQuestion`
    when ``loss`` is not given and 0/1 float targets could be logits for BCE or MSE targets.
    """
    if loss is None:
        if Y.ndim == 1:
            return LastLayerLoss("cross_entropy", "cross-entropy (inferred from integer class labels)")
        if binary_targets(Y):
            raise LossQuestion(
                "Y holds only 0s and 1s: are the model's outputs logits trained with binary cross-entropy, or "
                "outputs trained with squared error against 0/1 (one-hot) targets? Say which with "
                "loss=nn.BCEWithLogitsLoss() or loss=nn.MSELoss() (the monitor judges every epoch in that loss)")
        return None
    if isinstance(loss, str):
        return _from_name(loss)
    if isinstance(loss, nn.MSELoss):
        return None
    if isinstance(loss, nn.CrossEntropyLoss) and _plain(loss, ("weight",), label_smoothing=0.0):
        return LastLayerLoss("cross_entropy", "CrossEntropyLoss")
    if isinstance(loss, nn.BCEWithLogitsLoss) and _plain(loss, ("weight", "pos_weight")):
        return LastLayerLoss("bce", "BCEWithLogitsLoss")
    if isinstance(loss, nn.HuberLoss) and loss.reduction == "mean":
        return LastLayerLoss("huber", f"HuberLoss(delta={loss.delta:g})", delta=loss.delta)
    if isinstance(loss, nn.SmoothL1Loss) and loss.reduction == "mean" and loss.beta > 0:
        return LastLayerLoss("smooth_l1", f"SmoothL1Loss(beta={loss.beta:g})", delta=loss.beta)
    if isinstance(loss, nn.L1Loss) and loss.reduction == "mean":
        return LastLayerLoss("l1", "L1Loss")
    if isinstance(loss, QuantileLoss):
        return LastLayerLoss("quantile", f"QuantileLoss(quantile={loss.quantile:g})", quantile=loss.quantile)
    if isinstance(loss, nn.PoissonNLLLoss) and loss.log_input and not loss.full and loss.reduction == "mean":
        return LastLayerLoss("poisson", "PoissonNLLLoss")
    if callable(loss):
        return _custom(loss)
    raise TypeError(f"loss must be a loss module (e.g. nn.BCEWithLogitsLoss()), its name, or a callable "
                    f"loss(prediction, target); got {type(loss).__name__}")


def _plain(loss: nn.Module, unset: tuple[str, ...], **defaults: float) -> bool:
    """The loss at its defaults where the closed-form derivatives assume them (else: custom)."""
    return (getattr(loss, "reduction", "mean") == "mean" and all(getattr(loss, n, None) is None for n in unset)
            and all(getattr(loss, n, v) == v for n, v in defaults.items()))


def _from_name(name: str) -> LastLayerLoss | None:
    key = name.lower().replace("_", "").replace("-", "")
    if key in (n.replace("_", "") for n in _MSE_NAMES):
        return None
    kinds = {"crossentropy": "cross_entropy", "crossentropyloss": "cross_entropy", "ce": "cross_entropy",
             "bce": "bce", "bcewithlogits": "bce", "bcewithlogitsloss": "bce", "huber": "huber",
             "huberloss": "huber", "smoothl1": "smooth_l1", "smoothl1loss": "smooth_l1", "poisson": "poisson",
             "poissonnll": "poisson", "poissonnllloss": "poisson", "l1": "l1", "l1loss": "l1", "mae": "l1"}
    if key not in kinds:
        raise ValueError(f"unknown loss name {name!r}; use one of mse, cross_entropy, bce, huber, smooth_l1, "
                         "poisson, l1, or pass the loss module itself (e.g. QuantileLoss(quantile=0.9))")
    return LastLayerLoss(kinds[key], name)


def _custom(loss: Any) -> LastLayerLoss:
    name = type(loss).__name__ if isinstance(loss, nn.Module) else getattr(loss, "__name__", type(loss).__name__)

    def fn(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = loss(prediction, target)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(f"loss {name} must return one number (a mean), got "
                             f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
        return value.reshape(())

    return LastLayerLoss("custom", name, fn=fn)
