"""A zone-aware learning-rate range test: ``yeswidget.lr_find(task_or_model, X, Y)``.

From one set of initial weights (a copy: the model given is not touched), a short run whose
learning rate grows exponentially, step by step, from ``lr_min`` to ``lr_max`` (Smith 2017; the
test of fastai's ``lr_find`` and torch-lr-finder). After every step the loss is measured on the
whole training set in the cloud's metric E and compared with YES-0, the top edge of the cloud
(computed once from the data): the margin ``E − YES-0`` in dB. The suggested range is where that
margin falls fastest per decade of learning rate, i.e. where the loss leaves red fastest; the
test stops when the loss has clearly diverged (more than ``DIVERGED_DB`` above its best).

The lower edge (green) needs the network's own hidden layers at an epoch, so a range test says
"red" (above YES-0) or "below YES-0" only; it never calls a step green.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.zones import ZONE_COLORS, to_db
from ..monitor import Monitor
from .recipe import make_optimizer
from .slimtrain import SlimTrain

__all__ = ["lr_find", "LrFindResult", "DIVERGED_DB", "STEEP_FRACTION", "EPOCHS_OF_STEPS"]

#: the test stops once the loss is this many dB above the best loss seen (it has diverged)
DIVERGED_DB = 6.0
#: the suggested range: where the margin falls at least this fraction of its steepest rate
STEEP_FRACTION = 1 / 3
#: without ``steps``: the test lasts as long as the short runs it stands for, this many epochs of
#: minibatches (between 50 and 200 steps)
EPOCHS_OF_STEPS = 4


@dataclass
class LrFindResult:
    """What the range test saw. ``lrs``, ``losses`` (E on the training set after each step),
    ``margins_db`` (loss − YES-0 in dB; > 0: red), ``slopes`` (dB per decade of lr, smoothed);
    ``upper``: YES-0; ``suggested``: the lr where the loss leaves red fastest; ``range``: the
    learning rates around it where it falls at least :data:`STEEP_FRACTION` as fast; ``left_red_at``:
    the first lr whose loss is below YES-0 (None: never in this test); ``reason``: why there is no
    suggestion, when there is none."""

    lrs: np.ndarray
    losses: np.ndarray
    margins_db: np.ndarray
    slopes: np.ndarray
    upper: float
    suggested: float | None
    range: tuple[float, float] | None
    left_red_at: float | None
    reason: str = ""
    initial_loss: float = math.nan
    config: dict[str, Any] = field(default_factory=dict)

    def zones(self) -> list[str]:
        """Per step: ``"red"`` (above YES-0) or ``"yellow"`` (below it; green needs an epoch's edge)."""
        return ["red" if not m <= 0 else "yellow" for m in self.margins_db]

    def __repr__(self) -> str:
        if self.range is None:
            return f"LrFindResult(no suggestion: {self.reason})"
        lo, hi = self.range
        return (f"LrFindResult(suggested lr {self.suggested:.2e}, range {lo:.2e} … {hi:.2e}, "
                f"below YES-0 from lr {self.left_red_at:.2e})" if self.left_red_at is not None else
                f"LrFindResult(suggested lr {self.suggested:.2e}, range {lo:.2e} … {hi:.2e}, still red)")

    def plot(self, ax: Any = None, *, title: str | None = None) -> Any:
        """The loss (dB) against the learning rate (log axis) over the cloud: red above YES-0, the
        suggested range shaded. Returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4), dpi=100)
        db = np.array([to_db(v) for v in self.losses])
        top = np.nanmax(np.append(db[np.isfinite(db)], to_db(self.upper))) + 3
        yes0 = to_db(self.upper)
        bottom = min(np.nanmin(db[np.isfinite(db)]) if np.isfinite(db).any() else yes0, yes0) - 3
        ax.axhspan(yes0, top, color=ZONE_COLORS["red"], alpha=0.25, lw=0, label="red: above YES-0")
        ax.axhspan(bottom, yes0, color=ZONE_COLORS["yellow"], alpha=0.2, lw=0, label="below YES-0")
        ax.axhline(yes0, color=ZONE_COLORS["red"], lw=1)
        if self.range is not None:
            ax.axvspan(*self.range, color="#444444", alpha=0.12, lw=0, label="leaves red fastest")
            ax.axvline(self.suggested, color="#222222", ls="--", lw=1)
        ax.plot(self.lrs, db, color="#1f3a93", lw=1.6, label="loss after the step")
        ax.set_xscale("log")
        ax.set_ylim(bottom, top)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss E (dB)")
        ax.set_title(title or "learning-rate range test over the cloud")
        ax.legend(loc="lower left", fontsize=8)
        return ax


def _resolve(task_or_model: Any, X: Any, Y: Any, seed: int) -> tuple[nn.Module, Any, Any, dict[str, Any]]:
    if isinstance(task_or_model, nn.Module):
        if X is None or Y is None:
            raise ValueError("lr_find(model, X, Y): give the training inputs X and targets Y with a model")
        return copy.deepcopy(task_or_model), X, Y, {}
    if hasattr(task_or_model, "model") and hasattr(task_or_model, "X_train"):
        task = task_or_model
        X = task.X_train if X is None else X
        Y = task.Y_train if Y is None else Y
        return task.model(seed), X, Y, dict(getattr(task, "defaults", {}) or {})
    raise TypeError(f"lr_find needs a Task or an nn.Module (with X and Y); got {type(task_or_model).__name__}")


def _check_range(lr_min: float, lr_max: float, steps: int) -> None:
    if not (0 < lr_min < lr_max and math.isfinite(lr_max)):
        raise ValueError(f"need 0 < lr_min < lr_max (finite); got lr_min={lr_min!r}, lr_max={lr_max!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 5:
        raise ValueError(f"steps must be an int ≥ 5; got {steps!r}")


def _slopes(lrs: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """dB per decade of lr of the margin, smoothed over a window of ~1/10 of the steps."""
    window = max(3, len(margins) // 10) | 1
    padded = np.pad(margins, window // 2, mode="edge")
    smooth = np.convolve(padded, np.ones(window) / window, mode="valid")
    return np.gradient(smooth, np.log10(lrs)) if len(lrs) > 1 else np.zeros_like(margins)


def _suggest(lrs: np.ndarray, margins: np.ndarray, slopes: np.ndarray) -> tuple[int | None, tuple[int, int], str]:
    """Index of the steepest fall while red (or as it crosses YES-0), the steep range's ends, why none."""
    if len(lrs) < 5 or not np.isfinite(margins[0]):
        return None, (0, 0), "the loss was not finite from the first steps"
    if margins[0] <= 0:
        return None, (0, 0), "the initial weights are already below YES-0: there is no red to leave"
    best = int(np.nanargmin(np.where(np.isfinite(margins), margins, np.inf)))
    # the fall that counts is the one from red: up to the first step below YES-0 or the best loss
    crossed = np.flatnonzero(margins <= 0)
    end = min(best, int(crossed[0]) if crossed.size else best)
    candidates = slopes[: end + 1]
    j = int(np.argmin(candidates))
    if not candidates[j] < 0:
        return None, (0, 0), "the loss did not fall at any learning rate of the test"
    steep = candidates <= STEEP_FRACTION * candidates[j]
    lo = j
    while lo > 0 and steep[lo - 1]:
        lo -= 1
    hi = j
    while hi < end and steep[hi + 1]:
        hi += 1
    return j, (lo, hi), ""


def _batches(n: int, batch_size: int, seed: int) -> Any:
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def _full_loss(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(X) - Y).square().sum() / X.shape[0])  # the metric E


def _run_test(model: nn.Module, X: torch.Tensor, Y: torch.Tensor, lrs: np.ndarray, upper: float,
              optimizer_name: str, batch_size: int, seed: int) -> list[float]:
    optimizer = make_optimizer(optimizer_name, model, float(lrs[0]))
    loss_fn = nn.MSELoss(reduction="sum")
    losses: list[float] = []
    batches = _batches(X.shape[0], min(batch_size, X.shape[0]), seed)
    model.train()
    for lr in lrs:
        for group in optimizer.param_groups:
            group["lr"] = float(lr)
        index = next(batches)
        optimizer.zero_grad(set_to_none=True)
        loss = (optimizer.loss(X[index], Y[index]) if isinstance(optimizer, SlimTrain)
                else loss_fn(model(X[index]), Y[index]))
        torch.autograd.backward(loss)
        optimizer.step()
        losses.append(_full_loss(model, X, Y))
        if not math.isfinite(losses[-1]) or to_db(losses[-1]) > to_db(min(losses)) + DIVERGED_DB:
            break  # diverged: the larger learning rates would only say so again
    return losses


def lr_find(task_or_model: Any, X: Any = None, Y: Any = None, *, lr_min: float = 1e-5, lr_max: float = 1.0,
            steps: int | None = None, batch_size: int | None = None, optimizer: str | None = None,
            seed: int = 0) -> LrFindResult:
    """Range-test the learning rate of ``task_or_model`` (a Task: its model from ``seed``, its data
    and recipe; or an ``nn.Module`` with ``X`` (N × n) and ``Y`` (N × m), copied: the model is not
    trained). ``steps`` steps (default: :data:`EPOCHS_OF_STEPS` epochs' worth) of minibatches of
    ``batch_size`` (the task's, else 50) with ``optimizer`` (the task's, else Adam), the lr growing
    geometrically from ``lr_min`` to ``lr_max``. The loss is the cloud's metric E on the whole of X
    after each step; see :class:`LrFindResult`."""
    model, X, Y, recipe = _resolve(task_or_model, X, Y, seed)
    optimizer_name = optimizer or recipe.get("optimizer", "adam")
    batch_size = int(batch_size or recipe.get("batch_size", 50))
    if steps is None:
        steps = max(50, min(200, EPOCHS_OF_STEPS * max(1, len(X) // batch_size)))
    _check_range(lr_min, lr_max, steps)
    torch.manual_seed(seed)
    # the cloud's YES-0 and the certified data (lr_find measures squared error)
    with Monitor(model, X, Y, runs_dir=None, every=1, loss="mse") as monitor:
        upper = float(monitor.cloud.upper)
        Xt, Yt = monitor.X, monitor._Y_data.to(monitor.X.dtype)
    if Yt.shape != (Xt.shape[0],) + tuple(model(Xt[:1]).shape[1:]):
        raise ValueError("lr_find measures the squared error E: Y must have the model's output shape (N × m)")
    lrs_planned = np.geomspace(lr_min, lr_max, steps)
    initial = _full_loss(model, Xt, Yt)
    losses = np.array(_run_test(model, Xt, Yt, lrs_planned, upper, optimizer_name, batch_size, seed))
    lrs = lrs_planned[: len(losses)]
    margins = np.array([to_db(v) - to_db(upper) if math.isfinite(v) else math.inf for v in losses])
    slopes = _slopes(lrs, np.where(np.isfinite(margins), margins, np.nanmax(margins[np.isfinite(margins)],
                                                                             initial=0.0) + DIVERGED_DB))
    j, (lo, hi), reason = _suggest(lrs, margins, slopes)
    crossed = np.flatnonzero(margins <= 0)
    return LrFindResult(
        lrs=lrs, losses=losses, margins_db=margins, slopes=slopes, upper=upper,
        suggested=None if j is None else float(lrs[j]), range=None if j is None else (float(lrs[lo]), float(lrs[hi])),
        left_red_at=float(lrs[crossed[0]]) if crossed.size else None, reason=reason, initial_loss=initial,
        config={"lr_min": lr_min, "lr_max": lr_max, "steps": steps, "batch_size": batch_size,
                "optimizer": optimizer_name, "seed": seed})
