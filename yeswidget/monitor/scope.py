"""What a monitor certifies: the whole network, the head given its current features, or nothing.

Read from the :class:`~yeswidget.engine.capture.CapturePlan`. A model whose forward runs operations
the YES construction cannot fold (recurrent layers, attention, LayerNorm, residual sums,
gates) gets no verdict, with the reason, unless ``certify_from=`` names the module whose output
the head reads: the head is then certified *given the features as they are at each epoch*,
with YES-0 and YES-k recomputed on those features every epoch (they change as the features
train, so no running minimum carries over). Imports no UI.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..core.zones import NO_VERDICT
from ..engine.bounds import YesCloud
from ..engine.capture import CapturePlan

__all__ = ["Scope", "HeadCloud", "NoVerdictCloud", "HEAD_LABEL"]

#: how a verdict on the head alone is labelled (chart, run record, describe())
HEAD_LABEL = "head given current features"


class NoVerdictCloud:
    loss = None  # nothing is solved
    """The cloud of a model that cannot be certified: no edges, nothing computed (``upper`` is NaN)."""

    def __init__(self, n_samples: int, device: torch.device, dtype: Any) -> None:
        self.N, self.depth, self.device, self.dtype = n_samples, 1, device, dtype
        self.upper = self.lower = math.nan
        self.epochs: list[int] = []
        self.layer_errors: list[float] = []

    def yes_k(self) -> list[float]:
        return []

    def compute(self, hidden: Any) -> dict[tuple[int, ...], float]:
        return {}

    def record(self, bounds: dict[tuple[int, ...], float], *, epoch: int | None = None) -> float:
        return self.lower

    def to(self, device: torch.device | str) -> NoVerdictCloud:
        return self


class HeadCloud:
    """The YES cloud of the head on its current input features: a fresh :class:`YesCloud` each epoch.

    ``compute(hidden)`` takes ``[features (N × n), head hidden outputs …]`` (what
    :func:`yeswidget.engine.capture.capture` returns with certify_from=); ``record`` makes that
    epoch's cloud the current one. ``upper``/``lower`` are that epoch's YES-0 and lower edge.
    """

    def __init__(self, features: torch.Tensor, Y: torch.Tensor, depth: int, *, bias: bool, activation: Any,
                 dtype: Any, loss: Any = None) -> None:
        self._Y, self.depth, self._bias, self._activation = Y, depth, bias, activation
        self.loss = loss  # the last layer's loss (engine.losses), shared by every epoch's cloud: warm starts
        self._requested_dtype = dtype
        self._now = self._cloud(features)
        self.dtype, self.device = self._now.dtype, self._now.device
        self.epochs: list[int] = []
        self._computed: YesCloud | None = None

    def _cloud(self, features: torch.Tensor) -> YesCloud:
        return YesCloud(features.reshape(features.shape[0], -1), self._Y, self.depth, bias=self._bias,
                        activation=self._activation, dtype=self._requested_dtype, loss=self.loss)

    @property
    def N(self) -> int:
        return self._now.N

    @property
    def upper(self) -> float:
        return self._now.upper

    @property
    def lower(self) -> float:
        return self._now.lower

    @property
    def layer_errors(self) -> list[float]:
        return self._now.layer_errors

    def yes_k(self) -> list[float]:
        return self._now.yes_k()

    def compute(self, hidden: list[torch.Tensor]) -> dict[tuple[int, ...], float]:
        cloud = self._cloud(hidden[0])
        bounds = cloud.compute(list(hidden[1:])) if self.depth > 1 else {}
        self._computed = cloud
        return bounds

    def record(self, bounds: dict[tuple[int, ...], float], *, epoch: int | None = None) -> float:
        cloud = self._computed if self._computed is not None else self._now
        self._computed = None
        cloud.record(bounds, epoch=epoch)
        self._now = cloud
        self.epochs.append(len(self.epochs) + 1 if epoch is None else int(epoch))
        return self.lower

    def to(self, device: torch.device | str) -> HeadCloud:
        self._Y = self._Y.to(device)
        self._now = self._now.to(device)
        self.device = self._now.device
        return self


class Scope:
    """What the verdicts of one monitor are about, from its plan."""

    def __init__(self, plan: CapturePlan) -> None:
        self.plan = plan

    @property
    def label(self) -> str:
        """``network``, ``head given current features (certify_from='lstm')`` or ``none: …``."""
        if not self.plan.certified:
            return "none: " + self.plan.reason()
        if self.plan.certify_from is not None:
            return f"{HEAD_LABEL} (certify_from={self.plan.certify_from[0]!r})"
        return "network"

    @property
    def every_epoch(self) -> bool:
        """The head's bounds depend on this epoch's features: recompute them every epoch."""
        return self.plan.head and self.plan.certified

    def note(self) -> str | None:
        """A run warning saying what is (not) certified, or None for a whole network."""
        if not self.plan.certified:
            return "no verdict: " + self.plan.reason()
        if self.plan.certify_from is not None:
            name, module = self.plan.certify_from
            return (f"certified: the {HEAD_LABEL} (the output of {name} ({type(module).__name__}) at each epoch is "
                    "the head's input; YES-0 and YES-k are recomputed on it every epoch, so they say how well "
                    "the head uses today's features, not how good the features are)")
        return None

    def make_cloud(self, model: Any, X: torch.Tensor, Y: torch.Tensor, *, bias: bool, activation: Any,
                   dtype: Any, device: torch.device, loss: Any = None) -> HeadCloud | NoVerdictCloud:
        """The cloud of a plan that is not a whole certified network."""
        from ..engine.capture import capture  # the head's input features now

        if not self.plan.certified:
            return NoVerdictCloud(int(X.shape[0]), device, dtype)
        hidden, _ = capture(model, X, self.plan)
        return HeadCloud(hidden[0], Y, self.plan.depth, bias=bias, activation=activation, dtype=dtype, loss=loss)

    def adjust(self, zone: str, reason: str, loss: float) -> tuple[str, str]:
        """The zone and reason of an epoch, given what is certified."""
        if not self.plan.certified:
            if not math.isfinite(loss):
                return zone, reason  # a NaN loss is worse than any network
            return NO_VERDICT, self.plan.reason()
        if self.plan.certify_from is not None:
            return zone, HEAD_LABEL + (f"; {reason}" if reason else "")
        return zone, reason

    def describe(self) -> list[str]:
        """describe()'s lines on what is certified and what is not covered."""
        return [f"Verdict on: {self.label}", f"Not covered: {self.plan.not_covered()}"]
