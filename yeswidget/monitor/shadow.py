"""A copy of the user's model for the certification pass off the training loop.

An epoch's loss on the certification set is one no-grad forward pass at the epoch's final
weights: a third of an epoch's compute when the certification set is the training set. While
the bounds worker is idle, that pass runs on it instead: the training thread copies the
weights and buffers into this shadow (a memcpy) and trains on; the worker runs the pass on the
shadow. Same weights, same operations, so the same loss and the same verdict as the pass on
the training thread; when the worker is busy (a YES-k update), the pass runs on the training
thread as before, so the copy is never written while it is read.

The copy is made once, without the model's hooks (the user's and the monitor's), sharing the
tensors a module holds as plain attributes, and only for models whose parameters and buffers fit
in :data:`SHADOW_BYTES`; a model that cannot be copied keeps its passes on the training thread.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

from ..engine.capture import CapturePlan

__all__ = ["SHADOW_BYTES", "ShadowModel"]

#: the largest model (parameters and buffers, bytes) that gets a copy
SHADOW_BYTES = 256 * 2**20


class ShadowModel:
    """A hook-free copy of ``model`` whose tensors :meth:`sync` refreshes in place; ``plan``: the
    capture plan with its taps and ``certify_from`` module mapped onto the copy."""

    def __init__(self, model: nn.Module, plan: CapturePlan) -> None:
        memo: dict[int, Any] = {}
        for module in model.modules():  # hooks are not copied: no monitor hook, no user side effect
            for name, value in vars(module).items():
                if "hooks" in name and isinstance(value, dict):
                    memo[id(value)] = type(value)()
                elif isinstance(value, torch.Tensor):  # a plain tensor attribute (a table, a mask): shared, read only
                    memo[id(value)] = value
        self.model: nn.Module = copy.deepcopy(model, memo)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
            parameter.grad = None
        if self._match(model) is None:
            raise ValueError("the copy's tensors do not match the model's")
        self.plan = dataclasses.replace(
            plan,
            taps=None if plan.taps is None else [(n, self.model.get_submodule(n)) for n, _ in plan.taps],
            certify_from=(None if plan.certify_from is None
                          else (plan.certify_from[0], self.model.get_submodule(plan.certify_from[0]))))

    @classmethod
    def make(cls, model: nn.Module, plan: CapturePlan) -> ShadowModel | None:
        """The copy, or None when the model is too large or cannot be copied (it holds a lock, a
        file, a tensor that is not a parameter or buffer shared with the training)."""
        size = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
        if size > SHADOW_BYTES:
            return None
        try:
            return cls(model, plan)
        except Exception:  # anything deepcopy cannot do: the pass stays on the training thread
            return None

    def _match(self, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """(copy, original) for every parameter and buffer, by name; None when they differ."""
        mine = {**dict(self.model.named_parameters()), **dict(self.model.named_buffers())}
        theirs = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        if mine.keys() != theirs.keys():
            return None
        pairs = [(mine[k], theirs[k]) for k in theirs]
        same = all(a.shape == b.shape and a.dtype == b.dtype and a.device == b.device for a, b in pairs)
        return pairs if same else None

    def sync(self, model: nn.Module) -> bool:
        """Copy the model's current weights and buffers into the copy; False (nothing copied) when
        the model changed its tensors (a layer replaced, a dtype or device moved)."""
        pairs = self._match(model)
        if pairs is None:
            return False
        with torch.no_grad():
            for mine, theirs in pairs:
                mine.copy_(theirs)
        devices = {t.device for t, _ in pairs if t.device.type == "cuda"}
        for device in devices:  # the copies were queued on this thread's stream; the worker reads on its own
            torch.cuda.current_stream(device).synchronize()
        return True
