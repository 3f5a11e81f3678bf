"""Layer discovery helpers.

The :class:`~yeswidget.monitor.Monitor` reads the certified network from what ``forward``
executes (:func:`yeswidget.capture.trace`); this module checks its options and names
activations. :func:`discover_layers` (a registration-order reading of an MLP-style stack,
no data needed) stays for the playground and the command line. Imports no UI.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from torch import nn

from ..capture import Activation, CaptureError
from .taps import hook_free

__all__ = ["LayerPlan", "UnsupportedModelError", "discover_layers", "plan_from_taps", "ACTIVATION_TYPES",
           "activation_name", "check_options", "failing_module", "tap_activation"]

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.SiLU, nn.Softplus, nn.ReLU6,
    nn.Hardtanh, nn.SELU, nn.CELU, nn.Mish,
)
# layers that are the identity at evaluation time or only reshape the input
_PASSTHROUGH_TYPES: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Identity, nn.Flatten, nn.AlphaDropout)
# loss modules registered on a model (common in LightningModules) are not layers
_IGNORED_TYPES: tuple[type, ...] = _PASSTHROUGH_TYPES + (nn.modules.loss._Loss,)


#: the monitor cannot read the model's layers; the message names what forward executed and the option that fixes it
UnsupportedModelError = CaptureError

# activation modules the bounds know by name
_NAMED_MODULES: dict[type[nn.Module], str] = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}


@dataclass
class LayerPlan:
    """What the monitor read from the model: the L-1 tapped hidden modules,
    the activation used between layers, bias, and the layer widths."""

    taps: list[nn.Module]
    depth: int
    bias: bool
    activation: Any  # a module (callable) or a name understood by yeswidget.bounds
    widths: list[int]  # hidden widths h_1 … h_{L-1} (empty when unknown)
    output_width: int | None
    auto: bool


# --------------------------------------------------------------------------- #
# layer discovery
# --------------------------------------------------------------------------- #
def _leaves(module: nn.Module) -> list[nn.Module]:
    children = list(module.children())
    if not children:
        return [module]
    out: list[nn.Module] = []
    for child in children:
        out.extend(_leaves(child))
    return out


def _describe(leaves: Sequence[nn.Module]) -> str:
    names = [type(m).__name__ for m in leaves[:12]]
    return ", ".join(names) + (", …" if len(leaves) > 12 else "")


def discover_layers(model: nn.Module) -> LayerPlan:
    """Read an MLP-style stack: Linear, activation, …, Linear (nested containers allowed).

    Raises :class:`UnsupportedModelError` saying what was found and how to pass ``taps``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    leaves = [m for m in _leaves(model) if not isinstance(m, _IGNORED_TYPES)]
    how = (
        "For other models pass taps=[module, …]: the L-1 modules whose outputs are the hidden-layer "
        "activations (N × h each), in forward order, e.g. Monitor(model, X, Y, taps=[model.block1.act, …])."
    )
    if not leaves:
        raise UnsupportedModelError(f"found no layers in {type(model).__name__}. {how}")
    others = [m for m in leaves if not isinstance(m, (nn.Linear,) + ACTIVATION_TYPES)]
    if others:
        raise UnsupportedModelError(
            f"cannot read {type(model).__name__} as a stack of Linear layers and element-wise activations: "
            f"it contains {type(others[0]).__name__} (layers found: {_describe(leaves)}). {how}"
        )
    linears = [m for m in leaves if isinstance(m, nn.Linear)]
    if not isinstance(leaves[0], nn.Linear) or not isinstance(leaves[-1], nn.Linear):
        raise UnsupportedModelError(
            f"expected the stack to start and end with nn.Linear (the last layer linear, as the YES bounds "
            f"assume); found {_describe(leaves)}. {how}"
        )
    taps: list[nn.Module] = []
    activations: list[nn.Module] = []
    for i, leaf in enumerate(leaves[:-1]):
        if isinstance(leaf, nn.Linear):
            nxt = leaves[i + 1]
            if not isinstance(nxt, ACTIVATION_TYPES):
                raise UnsupportedModelError(
                    f"{type(model).__name__}: Linear layer {len(taps) + 1} is followed by {type(nxt).__name__}, "
                    f"not by an element-wise activation module (an activation applied with torch.relu inside "
                    f"forward() cannot be seen by hooks); found {_describe(leaves)}. {how}"
                )
            taps.append(nxt)
            activations.append(nxt)
        elif isinstance(leaf, ACTIVATION_TYPES) and isinstance(leaves[i + 1], ACTIVATION_TYPES):
            raise UnsupportedModelError(
                f"two activations in a row in {type(model).__name__}: {_describe(leaves)}. {how}")
    kinds = {type(a) for a in activations}
    if len(kinds) > 1:
        warnings.warn(
            f"the hidden layers use different activations ({sorted(k.__name__ for k in kinds)}); the bounds "
            f"use the first one ({type(activations[0]).__name__}) between every pair of layers",
            stacklevel=3,
        )
    biases = {lin.bias is not None for lin in linears}
    if len(biases) > 1:
        warnings.warn("some Linear layers have a bias and some do not; the bounds assume biases", stacklevel=3)
    activation: Any = activations[0] if activations else "identity"
    if isinstance(activation, nn.ReLU):
        activation = "relu"
    return LayerPlan(
        taps=taps,
        depth=len(linears),
        bias=True in biases,
        activation=activation,
        widths=[lin.out_features for lin in linears[:-1]],
        output_width=linears[-1].out_features,
        auto=True,
    )




def plan_from_taps(model: nn.Module, taps: Sequence[nn.Module], *, activation: Any = None,
                   bias: bool | None = None) -> LayerPlan:
    """A plan from user-named hidden-layer modules (``taps``), in forward order."""
    taps = list(taps)
    if not taps or not all(isinstance(t, nn.Module) for t in taps):
        raise TypeError("taps must be a non-empty list of nn.Module objects (the hidden-layer outputs)")
    inferred = activation
    if inferred is None:
        kinds = {type(t) for t in taps}
        if len(kinds) == 1 and issubclass(next(iter(kinds)), ACTIVATION_TYPES):
            inferred = "relu" if isinstance(taps[0], nn.ReLU) else taps[0]
        else:
            inferred = "relu"
            warnings.warn("taps are not activation modules: the bounds assume ReLU between layers "
                          "(pass activation=… if the network uses another)", stacklevel=3)
    if bias is None and not any(getattr(m, "bias", None) is not None for m in model.modules()
                                if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))):
        bias = False  # no layer has a bias: neither do the least-squares layers
    return LayerPlan(taps=taps, depth=len(taps) + 1, bias=True if bias is None else bool(bias),
                     activation=inferred, widths=[], output_width=None, auto=False)


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
