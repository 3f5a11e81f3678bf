"""Families of Playground runs: one task, one architecture, one YES cloud.

Runs of a family start from the same architecture, so retry-from-the-same-seed
gives the same initial weights and the YES-0 computed once is every run's. A new
depth or width (or another task) is a new family with its own cloud.
"""
from __future__ import annotations

import dataclasses
import string
from typing import Any

import torch
from torch import nn

from ...engine.bounds import YesCloud
from ...engine.capture import CapturePlan, trace
from ...monitor import certification_set, describe_certification
from ...training.tasks.catalog import _model_factory

__all__ = ["Family", "architecture", "make_family", "check_architecture", "check_epochs", "MAX_DEPTH", "MAX_WIDTH",
           "MAX_EPOCHS"]


@dataclasses.dataclass
class Family:
    """``task`` (with this family's model), ``cloud`` (YES-0 once), ``depth`` (number of
    Linear layers L), ``width`` (hidden width), ``label`` (``"A"``, ``"B"``, …), ``certification``."""

    task: Any
    cloud: YesCloud
    depth: int
    width: int
    label: str
    certification: dict
    source: Any = None  # the task as given (before its model was replaced)

    def matches(self, task: Any, depth: int, width: int) -> bool:
        return self.source is task and (self.depth, self.width) == (depth, width)

    @property
    def description(self) -> str:
        """``"B: 3 layers × 64"``."""
        return f"{self.label}: {self.depth} layers × {self.width}"

    def certification_text(self) -> str:
        where = describe_certification(self.certification)
        return f"{where[0].upper()}{where[1:]}"


def read_plan(model: nn.Module, example: torch.Tensor) -> CapturePlan:
    """The certified network of ``model``, read by :func:`~yeswidget.engine.capture.trace` from one
    pass on ``example`` (a few samples)."""
    return trace(model, example[:2])


def shape_of(plan: CapturePlan) -> tuple[int, int]:
    """(depth L = number of affine layers, the first hidden width) of a plan."""
    widths = plan.hidden_widths or [0]
    return plan.depth, int(widths[0])


def architecture(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """(depth L, the first hidden width) of ``model`` (one pass on ``example``)."""
    return shape_of(read_plan(model, example))


def make_family(task: Any, depth: int, width: int, index: int, max_samples: int | None,
                plan: CapturePlan | None = None) -> Family:
    """The family of ``task`` with ``depth`` Linear layers of hidden ``width`` (the task's own
    model when that is its architecture, else a ReLU MLP ``n → width … → m``). ``plan``: the
    task's own model, read already (no model is built or run again for it)."""
    source = task
    if plan is None:
        plan = read_plan(task.model(0), task.X_train)
    if shape_of(plan) != (depth, width):
        check_architecture(depth, width)
        sizes = (task.n_inputs, *([width] * (depth - 1)), task.n_outputs)
        task = dataclasses.replace(task, make_model=_model_factory(sizes))
        plan = read_plan(task.model(0), task.X_train)
    X_cert, Y_cert, certification = certification_set(task.X_train, task.Y_train, max_samples, 0)
    cloud = YesCloud(X_cert, Y_cert, **plan.bounds_kwargs())
    label = string.ascii_uppercase[index % 26] + ("" if index < 26 else str(index // 26))
    return Family(task, cloud, depth, width, label, certification, source)


#: the Playground's controls' ranges (a value outside is an error, never clamped)
MAX_DEPTH = 12
MAX_WIDTH = 4096
MAX_EPOCHS = 100_000


def check_architecture(depth: Any, width: Any) -> None:
    """A clear error for a depth or width the Playground cannot build."""
    if isinstance(depth, bool) or not isinstance(depth, int) or not 2 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be an int from 2 to {MAX_DEPTH} (Linear layers, input and output included; "
                         f"the Playground's range); got {depth!r}")
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"width must be an int from 1 to {MAX_WIDTH} (hidden units per layer); got {width!r}")


def check_epochs(epochs: Any) -> None:
    """A clear error for more epochs than the Playground's epochs box holds (never clamped)."""
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > MAX_EPOCHS:
        raise ValueError(f"epochs must be at most {MAX_EPOCHS} in the Playground; got {epochs!r}")
