"""Reading the hidden layers: forward hooks on the tapped modules, live only during the
monitor's own no-grad certification pass (the user's training forward is untouched)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .discovery import LayerPlan, UnsupportedModelError

__all__ = ["TapCapture", "model_device", "model_dtype", "hook_free"]


class TapCapture:
    """Forward hooks on ``plan.taps``; :meth:`run` returns hidden outputs and the model output."""

    def __init__(self, model: nn.Module, plan: LayerPlan) -> None:
        self.model = model
        self.plan = plan
        self._capturing = False
        self._captured: list[torch.Tensor | None] = [None] * len(plan.taps)
        self.calls = [0] * len(plan.taps)
        self.handles: list[Any] = [m.register_forward_hook(self._tap(i)) for i, m in enumerate(plan.taps)]

    @property
    def capturing(self) -> bool:
        """True only inside the monitor's own certification pass."""
        return self._capturing

    def _tap(self, index: int) -> Callable[..., None]:
        def tap(module: nn.Module, inputs: Any, output: Any) -> None:
            if self._capturing:
                if not isinstance(output, torch.Tensor):
                    raise TypeError(f"tap {index} ({type(module).__name__}) returned {type(output).__name__}, "
                                    "not a tensor; choose a module whose output is the hidden activation")
                self._captured[index] = output.detach()
                self.calls[index] += 1
        return tap

    def run(self, X: torch.Tensor, chunk: int = 8192, *,
            capture: bool = True) -> tuple[list[torch.Tensor | None], torch.Tensor]:
        """Hidden outputs (list of N × h; None for a tap that never fired; empty when not
        ``capture``) and the output (N × m), in eval mode without grad."""
        was_training = {m: m.training for m in self.model.modules()}
        self.calls = [0] * len(self.plan.taps)
        hidden_chunks: list[list[torch.Tensor]] = [[] for _ in self.plan.taps]
        outputs = []
        self._capturing = capture
        try:
            self.model.eval()
            with torch.no_grad():
                for start in range(0, X.shape[0], chunk):
                    self._captured = [None] * len(self.plan.taps)
                    outputs.append(self.model(X[start:start + chunk]))
                    for i, h in enumerate(self._captured):
                        if h is not None:
                            hidden_chunks[i].append(h.reshape(h.shape[0], -1))
        finally:
            self._capturing = False
            self._captured = [None] * len(self.plan.taps)
            for module, mode in was_training.items():
                module.training = mode
        # one chunk, the usual case: no copy (fresh outputs of a no-grad pass)
        hidden = [(chunks[0] if len(chunks) == 1 else torch.cat(chunks)) if chunks else None
                  for chunks in hidden_chunks] if capture else []
        flat = [o.reshape(o.shape[0], -1) for o in outputs]
        return hidden, flat[0] if len(flat) == 1 else torch.cat(flat)

    def check(self, hidden: list[torch.Tensor | None]) -> None:
        """Every tap fired exactly once per forward pass, or a clear error."""
        silent = [i for i, h in enumerate(hidden) if h is None]
        if silent:
            names = ", ".join(f"taps[{i}] ({type(self.plan.taps[i]).__name__})" for i in silent)
            raise UnsupportedModelError(
                f"{names} never fired during a forward pass of the model on X: pass modules that the model's "
                "forward() actually calls, one per hidden layer, in order"
            )
        repeated = [i for i, n in enumerate(self.calls) if n > 1]
        if repeated:
            i = repeated[0]
            raise UnsupportedModelError(
                f"taps[{i}] ({type(self.plan.taps[i]).__name__}) fired {self.calls[i]} times in one forward "
                "pass: a module used at several depths cannot tell the layers apart; give each hidden layer "
                "its own module"
            )

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


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
