"""Small tasks for the tuning tests, as module-level functions so worker processes can import them."""
from __future__ import annotations

import functools

import torch

from yeswidget import tasks


def tiny_abs() -> tasks.Task:
    """64 samples, 4 inputs, 3 outputs |X W|; a 4 → 8 → 8 → 3 ReLU network (reaches green with Adam)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g)
    Y = (X @ torch.randn(4, 3, generator=g)).abs()
    return tasks.Task.from_tensors(functools.partial(tasks.mlp, (4, 8, 8, 3)), X, Y, name="tiny-abs",
                                   lr=1e-2, batch_size=16, epochs=30, optimizer="adam", schedule="constant")
