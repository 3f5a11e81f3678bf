"""Layer discovery helpers.

The :class:`~yeswidget.monitor.Monitor` reads the certified network from what ``forward``
executes (:func:`yeswidget.engine.capture.trace`, the only layer reader); this module checks
its options and names activations. Imports no UI.
"""
from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from torch import nn

from ..engine.capture import Activation, CaptureError
from .taps import hook_free

__all__ = ["UnsupportedModelError", "ACTIVATION_TYPES", "activation_name", "check_options", "failing_module",
           "tap_activation"]

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.SiLU, nn.Softplus, nn.ReLU6,
    nn.Hardtanh, nn.SELU, nn.CELU, nn.Mish,
)


#: the monitor cannot read the model's layers; the message names what forward executed and the option that fixes it
UnsupportedModelError = CaptureError

# activation modules the bounds know by name
_NAMED_MODULES: dict[type[nn.Module], str] = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}


def check_options(taps: Any, predict: Any, output: Any) -> None:
    """Clear errors for ``taps=``, ``predict=`` and ``output=`` of the wrong kind."""
    how = ("taps must be a non-empty list of submodules (or their dotted names such as 'encoder.act1'), one per "
           "hidden layer, in forward order")
    if isinstance(taps, nn.Module):
        raise TypeError(f"{how}; got a single module (wrap it in a list: taps=[module])")
    if taps is not None and (isinstance(taps, str) or not isinstance(taps, Sequence) or not taps
                             or not all(isinstance(t, (str, nn.Module)) for t in taps)):
        raise TypeError(f"{how}; got {taps!r}")
    if predict is not None and not callable(predict):
        raise TypeError(f"predict must be a callable predict(model, x) -> output; got {type(predict).__name__}")
    if output is not None and (isinstance(output, bool) or not (isinstance(output, (int, str)) or callable(output))):
        raise TypeError("output must be an index (output=0), a key (output='logits') or a callable(result) -> "
                        f"tensor; got {output!r}")


def tap_activation(model: nn.Module, taps: Sequence[nn.Module | str] | None) -> Any:
    """The activation the bounds use when every tap is the same kind of activation module, else None."""
    if not taps:
        return None
    try:
        modules = [model.get_submodule(t) if isinstance(t, str) else t for t in taps]
    except AttributeError:
        return None  # the trace names the bad tap
    kinds = {type(m) for m in modules}
    if len(kinds) != 1 or not issubclass(next(iter(kinds)), ACTIVATION_TYPES):
        return None
    name = _NAMED_MODULES.get(type(modules[0]))
    return name if name is not None else hook_free(modules[0])


def activation_name(activation: Any) -> str:
    """How an activation is shown: ``relu``, ``leaky_relu(negative_slope=0.2)``, a callable's name."""
    if activation is None:
        return "identity"
    if isinstance(activation, (str, Activation)):
        return str(activation)
    return str(getattr(activation, "__name__", type(activation).__name__))


def failing_module(exc: BaseException, model: nn.Module) -> str:
    """`` (in module `name` (Type))``: the innermost submodule of ``model`` whose forward raised ``exc``."""
    names = {id(m): name for name, m in model.named_modules()}
    found = ""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self") if frame.f_code.co_name in ("forward", "_conv_forward") else None
        if owner is not None and id(owner) in names and names[id(owner)]:
            found = f" in module `{names[id(owner)]}` ({type(owner).__name__})"
        tb = tb.tb_next
    return found
