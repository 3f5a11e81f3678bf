"""Small model helpers for the monitor: its device and dtype, an activation module as a hook-free
function. (The hidden layers are captured by :func:`yeswidget.engine.capture.capture`, in the monitor's
own no-grad pass; the user's training forward is untouched.)"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["model_device", "model_dtype", "hook_free"]


def hook_free(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """An activation module as a plain function: no hooks fire, no graph is built."""

    def activation(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            result: torch.Tensor = module.forward(t)
        return result

    activation.__name__ = type(module).__name__
    return activation


def model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()
