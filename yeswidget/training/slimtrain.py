"""slimTrain: train the feature extractor with any optimizer, solve the last layer in closed form.

A network ``model(x) = W·φ(x; θ) + b`` whose last module is an ``nn.Linear`` is separable: for
fixed features the best ``(W, b)`` is a regularized least-squares solution. :class:`SlimTrain`
(after Newman, Chung, Chung, Ruthotto, slimTrain, SIAM J. Sci. Comput. 2022, and Newman,
Ruthotto, Hart, van Bloemen Waanders, "Train like a (Var)Pro", 2021) does, at every step:

1. keep the inputs and targets of the last ``memory`` minibatches (the current one included);
2. compute their features ``φ`` with the *current* θ (one no-grad pass over the memory);
3. solve the last layer from them, ``min_{W,b} (1/n)·‖[φ 1]·[W b]ᵀ − Y‖² + λ·‖[W b]‖²`` over the
   memory's n samples, with λ fixed or chosen by sampled generalized cross-validation (GCV on
   the memory's samples), by one SVD on the model's device, in float64;
4. take an ordinary step of the wrapped optimizer on θ through the solved layer (variable
   projection: the loss with the optimal last layer; the gradient reaches θ through the
   features, the solved layer itself receives none).

    slim = SlimTrain(model, torch.optim.Adam(feature_parameters(model), lr=1e-3))
    for xb, yb in loader:
        loss = slim.step(xb, yb)            # or: slim.zero_grad(); slim.loss(xb, yb).backward(); slim.step()

``slim.optimizer`` is the wrapped optimizer (give it to a Monitor or an lr scheduler);
``slim.regularization`` is the λ of the last solve.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["SlimTrain", "SlimTrainConfig", "feature_parameters", "last_linear", "solve_last_layer"]

#: GCV search: λ·n relative to the largest squared singular value, on a log grid, then refined
_GCV_DECADES = (-12.0, 2.0)
_GCV_POINTS = 57
_GCV_REFINE_POINTS = 25


@dataclass(frozen=True)
class SlimTrainConfig:
    """How :class:`SlimTrain` solves the last layer.

    ``memory``: how many recent minibatches (the current one included) the last layer is solved
    from. ``regularization``: ``"gcv"`` (λ chosen by sampled GCV at every step) or a fixed λ ≥ 0
    (0: the minimum-norm least-squares solution). ``reduction``: the returned loss, the squared
    error summed over outputs and ``"mean"`` (nn.MSELoss's default, per element) or ``"sum"`` over
    the minibatch. ``rcond``: singular values below ``rcond × the largest`` count as zero.
    """

    memory: int = 5
    regularization: str | float = "gcv"
    reduction: str = "mean"
    rcond: float = 1e-10

    def __post_init__(self) -> None:
        if isinstance(self.memory, bool) or not isinstance(self.memory, int) or self.memory < 1:
            raise ValueError(f"memory must be an int ≥ 1 (minibatches kept); got {self.memory!r}")
        reg = self.regularization
        if isinstance(reg, str):
            if reg != "gcv":
                raise ValueError(f"regularization must be 'gcv' or a number ≥ 0; got {reg!r}")
        elif isinstance(reg, bool) or not isinstance(reg, (int, float)) or not (math.isfinite(reg) and reg >= 0):
            raise ValueError(f"regularization must be 'gcv' or a finite number ≥ 0; got {reg!r}")
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum'; got {self.reduction!r}")
        if not (isinstance(self.rcond, float) and 0 < self.rcond < 1):
            raise ValueError(f"rcond must be a float in (0, 1); got {self.rcond!r}")


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last ``nn.Linear`` (in registration order); a clear error when there is none."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise TypeError(f"SlimTrain solves the last layer of a model that ends with nn.Linear; "
                        f"{type(model).__name__} has no nn.Linear. End the model with nn.Linear(features, outputs)")
    return last[-1]


def feature_parameters(model: nn.Module, last: nn.Linear | None = None) -> Iterator[nn.Parameter]:
    """The parameters of everything but the last ``nn.Linear``: what the wrapped optimizer trains."""
    layer = last if last is not None else last_linear(model)
    solved = {id(p) for p in layer.parameters()}
    return (p for p in model.parameters() if id(p) not in solved)


def _gcv_lambda(s: torch.Tensor, uty_sq: torch.Tensor, outside: torch.Tensor, n: int) -> torch.Tensor:
    """λ minimising GCV(λ) = ‖(I − H_λ)Y‖² / tr(I − H_λ)² (a 0-d tensor; no device sync).

    ``s``: singular values (k,); ``uty_sq``: ‖(UᵀY)_i‖² per singular value (k,); ``outside``: the
    part of ‖Y‖² outside the range of U; n: samples. H_λ = A(AᵀA + nλI)⁻¹Aᵀ."""
    scale = s[0].square().clamp_min(torch.finfo(s.dtype).tiny) / n

    def gcv(exponents: torch.Tensor) -> torch.Tensor:
        lam = scale * torch.pow(10.0, exponents)  # (g,)
        shrink = (n * lam)[:, None] / (s.square()[None, :] + (n * lam)[:, None])  # 1 − filter factor, (g, k)
        residual = outside + (shrink.square() * uty_sq[None, :]).sum(1)
        trace = (n - s.numel()) + shrink.sum(1)
        return residual / trace.square().clamp_min(torch.finfo(s.dtype).tiny)

    low, high = _GCV_DECADES
    grid = torch.linspace(low, high, _GCV_POINTS, dtype=s.dtype, device=s.device)
    best = grid[torch.argmin(gcv(grid))]
    step = (high - low) / (_GCV_POINTS - 1)
    fine = best + torch.linspace(-step, step, _GCV_REFINE_POINTS, dtype=s.dtype, device=s.device)
    return scale * torch.pow(10.0, fine[torch.argmin(gcv(fine))])


def solve_last_layer(features: torch.Tensor, targets: torch.Tensor, *, bias: bool = True,
                     regularization: str | float = "gcv",
                     rcond: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(W, b, λ)`` minimising ``(1/n)·‖Z·Wᵀ + b − Y‖² + λ·(‖W‖² + ‖b‖²)`` in float64.

    ``features`` Z: (n, p); ``targets`` Y: (n, m); W: (m, p), b: (m,) or None without bias; λ a
    0-d tensor (chosen by GCV for ``"gcv"``). λ = 0 gives the minimum-norm least-squares solution."""
    Z = features.detach().to(torch.float64)
    Y = targets.detach().to(torch.float64)
    n = int(Z.shape[0])
    A = torch.cat([Z, torch.ones(n, 1, dtype=Z.dtype, device=Z.device)], 1) if bias else Z
    U, s, Vh = torch.linalg.svd(A, full_matrices=False)
    UtY = U.T @ Y  # (k, m)
    if regularization == "gcv":
        outside = (Y.square().sum() - UtY.square().sum()).clamp_min(0.0)
        lam = _gcv_lambda(s, UtY.square().sum(1), outside, n)
    else:
        lam = torch.tensor(float(regularization), dtype=Z.dtype, device=Z.device)
    kept = s > rcond * s[0]
    # Tikhonov filter s/(s² + nλ), the pseudo-inverse 1/s when λ = 0 (zero below the cut-off)
    inverse = torch.where(kept, s / (s.square() + n * lam).clamp_min(torch.finfo(s.dtype).tiny),
                          torch.zeros_like(s))
    solution = Vh.T @ (inverse[:, None] * UtY)  # (p [+1], m)
    if bias:
        return solution[:-1].T, solution[-1], lam
    return solution.T, None, lam


class SlimTrain:
    """The wrapped ``optimizer`` trains the feature extractor; the last ``nn.Linear`` of ``model``
    is solved at every step from the features of the last ``memory`` minibatches.

    ``optimizer``: any torch optimizer, on the feature extractor's parameters
    (:func:`feature_parameters`); the last layer's parameters, if it holds them, get no gradient.
    ``last_layer``: the solved layer, when it is not the model's last ``nn.Linear``. ``config`` or
    keyword options: see :class:`SlimTrainConfig`. The model's output must be that layer's output
    (put an output activation into the loss instead); this is checked at the first step.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, last_layer: nn.Linear | None = None,
                 config: SlimTrainConfig | None = None, **options: Any) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer for the feature extractor (e.g. "
                            f"torch.optim.Adam(feature_parameters(model), lr=1e-3)); got {type(optimizer).__name__}")
        if config is not None and options:
            raise TypeError("pass either config=SlimTrainConfig(...) or keyword options, not both")
        self.config = config if config is not None else SlimTrainConfig(**options)
        self.model = model
        self.optimizer = optimizer
        self.layer = last_layer if last_layer is not None else last_linear(model)
        if not isinstance(self.layer, nn.Linear) or not any(m is self.layer for m in model.modules()):
            raise TypeError("last_layer must be an nn.Linear inside model")
        self._memory: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=self.config.memory)
        self._checked = False
        self._lambda: torch.Tensor | None = None
        self._solved: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.steps = 0

    # ------------------------------------------------------------ optimizer-like
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The wrapped optimizer's parameter groups (set ``group["lr"]`` here as on any optimizer)."""
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def register_step_pre_hook(self, hook: Callable[..., None]) -> Any:
        """A hook before every step of the wrapped optimizer (after the last layer is solved)."""
        return self.optimizer.register_step_pre_hook(hook)

    def register_step_post_hook(self, hook: Callable[..., None]) -> Any:
        """A hook after every step of the wrapped optimizer (what a Monitor uses)."""
        return self.optimizer.register_step_post_hook(hook)

    @property
    def regularization(self) -> float | None:
        """λ of the last solve (one device sync), None before the first step."""
        return None if self._lambda is None else float(self._lambda)

    @property
    def memory_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The ``(inputs, targets)`` minibatches the last layer is solved from, oldest first."""
        return list(self._memory)

    # ------------------------------------------------------------ the step
    def loss(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Add the minibatch to the memory, solve the last layer, return the minibatch loss with
        it (with a graph to the feature extractor: call ``backward()``, then :meth:`step`)."""
        captured: list[torch.Tensor] = []

        def grab(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
            captured[:] = [args[0], output]

        handle = self.layer.register_forward_hook(grab)
        try:
            output = self.model(xb)  # the training pass: its features carry the graph to θ
        finally:
            handle.remove()
        self._check_output(output, captured)
        features = captured[0]
        targets = self._targets(yb, output)
        self._memory.append((xb.detach().clone(), targets.detach().clone()))
        W, b = self._solve(features)
        prediction = nn.functional.linear(features, W, b)
        return nn.functional.mse_loss(prediction, targets, reduction="sum") / (
            prediction.numel() if self.config.reduction == "mean" else 1)

    def step(self, *args: Any, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """``step(xb, yb)``: one whole step (zero_grad, :meth:`loss`, backward, the optimizer's step),
        returning the minibatch loss (detached). ``step(closure)``: call the closure (which calls
        :meth:`loss` and ``backward()``), step, return its loss. ``step()``: after your own backward."""
        if len(args) == 2:
            self.zero_grad()
            with torch.enable_grad():
                loss = self.loss(args[0], args[1])
                if loss.requires_grad:  # a model that is only its last layer has no features to train
                    torch.autograd.backward(loss)
            self._step_optimizer()
            return loss.detach()
        if len(args) == 1 and closure is None:
            closure = args[0]
        elif args:
            raise TypeError("step takes (xb, yb), a closure, or nothing")
        result: torch.Tensor | None = None
        if closure is not None:
            with torch.enable_grad():
                result = closure()
        if self._solved is None:
            raise RuntimeError("SlimTrain.step() before any SlimTrain.loss(xb, yb): the loss must come "
                               "from slim.loss(xb, yb) so that the last layer is solved for the minibatch")
        self._step_optimizer()
        return result

    def _step_optimizer(self) -> None:
        self.optimizer.step()
        self.steps += 1
        assert self._solved is not None
        W, b = self._solved
        with torch.no_grad():  # the solved layer is the model's (whatever the optimizer did to it)
            self.layer.weight.copy_(W)
            if b is not None and self.layer.bias is not None:
                self.layer.bias.copy_(b)

    def _solve(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Solve from the memory's features at the current θ; put the layer into the model."""
        earlier = list(self._memory)[:-1]
        parts = [current.detach()]
        if earlier:
            with torch.no_grad():
                parts.insert(0, self._features(torch.cat([x for x, _ in earlier])))
        targets = torch.cat([y for _, y in self._memory])
        W64, b64, self._lambda = solve_last_layer(
            torch.cat(parts), targets, bias=self.layer.bias is not None,
            regularization=self.config.regularization, rcond=self.config.rcond)
        weight = self.layer.weight
        W = W64.to(weight.dtype)
        b = None if b64 is None else b64.to(weight.dtype)
        self._solved = (W, b)
        with torch.no_grad():
            weight.copy_(W)
            if b is not None and self.layer.bias is not None:
                self.layer.bias.copy_(b)
        return W, b

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []

        def grab(module: nn.Module, args: tuple[Any, ...]) -> None:
            captured[:] = [args[0]]

        handle = self.layer.register_forward_pre_hook(grab)
        try:
            self.model(x)
        finally:
            handle.remove()
        return captured[0]

    def _check_output(self, output: Any, captured: list[torch.Tensor]) -> None:
        if self._checked:
            return
        name = type(self.model).__name__
        if not captured:
            raise ValueError(f"the last layer of {name} was not called by its forward pass: pass "
                             "last_layer= the nn.Linear that makes the output")
        if output is not captured[1]:
            raise ValueError(
                f"SlimTrain solves the last layer in closed form, so {name}'s output must be the output of its "
                f"last nn.Linear ({self.layer}); it returns something computed after it (an activation, a "
                f"reshape, a tuple). Move that into the loss, or pass last_layer= the layer that makes the output")
        self._checked = True

    def _targets(self, yb: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        if yb.shape != output.shape:
            if yb.numel() != output.numel():
                raise ValueError(f"targets of shape {tuple(yb.shape)} do not match the model's output "
                                 f"{tuple(output.shape)}: SlimTrain fits the outputs by least squares")
            yb = yb.reshape(output.shape)
        return yb.to(output.dtype)
