"""The monitor's hooks on the user's model and optimizer (public torch hooks only), and how a
logged minibatch loss is put in the metric E."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..core.handle import Handle

if TYPE_CHECKING:
    from .monitor import Monitor

__all__ = ["watch_forward", "attach_optimizer", "remove", "metric_scale", "expected_steps"]


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
    m.optimizer = optimizer

    def after_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        m.lr = float(opt.param_groups[0]["lr"])
        m.steps.count()

    handle = optimizer.register_step_post_hook(after_step)
    m._handles.append(handle)
    return Handle(handle.remove)


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

