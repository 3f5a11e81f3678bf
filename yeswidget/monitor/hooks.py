"""The monitor's hooks on the user's model and optimizer (public torch hooks only), and how a
logged minibatch loss is put in the metric E."""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..core.handle import Handle
from .steps import check_log_values

if TYPE_CHECKING:
    from .monitor import Monitor

__all__ = ["watch_forward", "attach_optimizer", "log_step", "remove", "metric_scale", "expected_steps"]


def watch_forward(m: Monitor) -> Any:
    """The forward pre-hook that reads the training batch size (its handle)."""

    def on_forward(module: nn.Module, args: Any) -> None:
        # the training batch size, read from the model's own input (no sync); only forward
        # passes that build a graph count (an evaluation pass under no_grad is not a step)
        if torch.is_grad_enabled() and args and isinstance(args[0], torch.Tensor) and args[0].ndim >= 1:
            m.batch_size = int(args[0].shape[0])
            m._samples_this_epoch += m.batch_size

    return m.model.register_forward_pre_hook(on_forward)


def attach_optimizer(m: Monitor, optimizer: torch.optim.Optimizer) -> Handle:
    """Count steps and read the learning rate after every ``optimizer.step()``."""
    if not hasattr(optimizer, "register_step_post_hook"):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}")
    if m.optimizer is optimizer:
        return Handle(lambda: None)  # attached already: counted once
    if m.optimizer is not None:
        raise ValueError(f"this monitor already counts steps with a {type(m.optimizer).__name__}; it counts "
                         "one optimizer's steps (and records its lr), so a second one would count every step "
                         "twice: attach the main optimizer only")
    mine = {id(p) for p in m.model.parameters()}
    theirs = [p for group in optimizer.param_groups for p in group["params"]]
    if theirs and not any(id(p) in mine for p in theirs):
        raise ValueError(f"the {type(optimizer).__name__} optimizer updates none of this model's parameters "
                         "(it was built for another model?): pass the optimizer of the model being trained")
    m.optimizer = optimizer

    def after_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        m.lr = float(opt.param_groups[0]["lr"])
        m.steps.count()

    handle = optimizer.register_step_post_hook(after_step)
    m._handles.append(handle)
    return Handle(handle.remove)


def log_step(m: Monitor, loss: Any, lr: Any, batch_size: Any) -> None:
    """One step's minibatch loss (``Monitor.log``): its values checked, counted without an optimizer."""
    lr, batch_size = check_log_values(loss, lr, batch_size)
    if m._t_start is None:
        m._t_start = time.perf_counter()
    if m.optimizer is None:
        m.steps.count()
    if lr is not None:
        m.lr = lr
    if batch_size is not None:
        m.batch_size = batch_size
    m.steps.log(loss, epoch=m.epoch, lr=m.lr, batch_size=m.batch_size, expected_steps=expected_steps(m))


def remove(m: Monitor) -> None:
    """Remove every hook the monitor holds on the model and the optimizer."""
    for handle in m._handles:
        handle.remove()
    m._handles.clear()


def metric_scale(m: Monitor, loss: Any) -> Any:
    """A logged minibatch loss in the metric E (per sample, summed over outputs)."""
    if m._loss_reduction == "mean":
        return loss * m.Y.shape[1]
    if m._loss_reduction == "sum" and m.batch_size:
        return loss / m.batch_size
    return loss


def expected_steps(m: Monitor) -> int | None:
    """Steps per epoch: known after the first epoch, estimated from the data size before."""
    if m.steps.per_epoch:
        return m.steps.per_epoch
    if m.batch_size:
        return max(1, math.ceil(int(m.certification.get("of", m.N)) / m.batch_size))
    return None

