"""Find and capture a network's hidden layers by what its ``forward`` executes.

Imports only torch and the standard library. Nothing here touches the user's
training forward: discovery (:func:`trace`) and capture (:func:`capture`) each
run their own no-grad, eval-mode pass under a ``torch.overrides.TorchFunctionMode``
that is active in the calling thread only, for the duration of that pass.

What is certified (the YES network of YES-BOUNDS.md, made explicit):

* **X** is the model's input, flattened per sample (N × n). It never changes
  during training, so YES-0 is computed once and the running minima of YES-k
  stay valid.
* **The L affine layers** are the ``Linear`` layers (``F.linear``, or a matmul
  with a parameter) on the path from the input to the output, in the order
  ``forward`` runs them. Anything executed before the first of them (a
  convolutional feature extractor, pooling, ``Flatten``) is part of layer 1: the
  bounds fit layer 1 straight from the raw input. With ``include_conv=True``
  the convolutions count as affine layers too (their feature maps are then
  hidden layers: wide and costly, see :mod:`yeswidget.engine.cost`).
* **The hidden outputs** ``A_0 … A_{L-2}`` are the tensors the activation
  returns (post-activation), whether the activation is a module (also one module
  called several times), ``F.relu``, ``torch.tanh`` or ``Tensor.relu()``.
  ``BatchNorm``/``Dropout`` (in eval mode), ``Flatten``/``view``/``reshape`` are
  per-feature affine maps or the identity: before the activation they belong to
  the layer's affine map, after it to the next layer's. Two ``Linear`` layers
  with no activation between them (an autoencoder's linear bottleneck) compose
  to one affine map and count as one layer.
* **The output** is what ``forward`` returns (or ``predict(model, x)``), chosen
  by ``output=`` when it is a tuple or dict, flattened to N × m.
"""
from __future__ import annotations

import functools
import inspect
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["Activation", "CaptureError", "CapturePlan", "LayerInfo", "capture", "select_output", "trace"]

Predict = Callable[[nn.Module, torch.Tensor], Any]
OutputSelector = int | str | Callable[[Any], torch.Tensor] | None


class CaptureError(ValueError):
    """The layers cannot be read from what ``forward`` executed; the message says
    what was found, in forward order, and which option fixes it."""


# --------------------------------------------------------------------------- #
# what each executed torch function is
# --------------------------------------------------------------------------- #
_ACTIVATION_NAMES = frozenset({
    "relu", "relu6", "leaky_relu", "gelu", "tanh", "sigmoid", "silu", "elu", "selu", "celu", "softplus",
    "mish", "hardtanh", "hardswish", "hardsigmoid", "logsigmoid", "softsign", "tanhshrink", "threshold",
})
_CONV_NAMES = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})
_MATMUL_NAMES = frozenset({"matmul", "__matmul__", "mm", "addmm"})
# reshapes and moves: not worth naming in describe()
_SILENT_NAMES = frozenset({
    "flatten", "view", "reshape", "contiguous", "squeeze", "unsqueeze", "clone", "detach", "to", "float",
    "double", "half", "type", "type_as", "cpu", "cuda", "view_as", "reshape_as", "__getitem__", "expand",
    "expand_as",
})
_ADD_NAMES = frozenset({"add", "__add__", "__radd__", "sub", "__sub__"})
# per-feature affine maps (eval mode) or the identity: they join the neighbouring layer's affine map
_AFFINE_LIKE = _SILENT_NAMES | _ADD_NAMES | frozenset({
    "batch_norm", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    "mul", "__mul__", "__rmul__", "div", "__truediv__", "neg", "__neg__", "identity",
    # pooling between convolutions (include_conv=True): average pooling is linear; max pooling commutes
    # with a monotone activation (pool(relu(z)) = relu(pool(z))), the usual conv block
    "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
})
# callables used by the bounds for each activation name
_ACTIVATION_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "logsigmoid": F.logsigmoid,
}
# activations yeswidget.engine.bounds knows by name (with their default parameters)
_BOUNDS_NAMES = frozenset({"relu", "tanh", "sigmoid"})


def _func_name(func: Callable) -> str:
    name = getattr(func, "__name__", "") or ""
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]  # in-place variant: relu_ → relu
    return name


def _is_inplace(func: Callable, args: tuple, kwargs: dict) -> bool:
    name = getattr(func, "__name__", "") or ""
    if name.endswith("_") and not name.endswith("__"):
        return True
    return kwargs.get("inplace") is True or any(a is True for a in args[1:])


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


@dataclass(frozen=True)
class Activation:
    """One element-wise activation as ``forward`` called it: ``name`` and its
    non-default keyword arguments (e.g. ``leaky_relu(negative_slope=0.2)``).
    Calling it applies the same function to a tensor."""

    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        base = _ACTIVATION_FUNCTIONS.get(self.name) or getattr(F, self.name)
        return functools.partial(base, **dict(self.kwargs)) if self.kwargs else base

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.function(tensor)

    def for_bounds(self) -> str | Callable[[torch.Tensor], torch.Tensor]:
        """What ``YesCloud(activation=…)`` takes: a name when it knows it, else this callable."""
        return self.name if self.name in _BOUNDS_NAMES and not self.kwargs else self

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs)
        return f"{self.name}({args})" if args else self.name


def _activation_of(name: str, func: Callable, args: tuple, kwargs: dict) -> Activation:
    """The activation with the parameters it was called with (``inplace`` dropped)."""
    reference = _ACTIVATION_FUNCTIONS.get(name) or getattr(F, name, None)
    try:
        if reference is None:
            raise TypeError(name)
        signature = inspect.signature(reference)
        arguments = list(signature.bind(*args, **kwargs).arguments.items())[1:]
        defaults = {k: p.default for k, p in signature.parameters.items()}
    except (TypeError, ValueError):  # a builtin without a signature (F.gelu): its keywords as given
        arguments, defaults = list(kwargs.items()), {}
    extra = {k: v for k, v in arguments if k != "inplace" and not isinstance(v, torch.Tensor) and defaults.get(k) != v}
    return Activation(name, tuple(sorted(extra.items())))


# --------------------------------------------------------------------------- #
# the data flow: one node per (layer, before/after its activation)
# --------------------------------------------------------------------------- #
class _Node:
    """The state of a tensor on its way through the network.

    ``layer``: affine layers applied on its path (0: the input itself);
    ``activated``: the layer's activation has been applied; ``parent``: the
    previous layer's activated node (or the input node).
    """

    def __init__(self, layer: int, parent: _Node | None, *, activated: bool = False,
                 affine: tuple[str, ...] = (), bias: bool = False, problem: str | None = None) -> None:
        self.layer = layer
        self.parent = parent
        self.activated = activated
        self.affine = affine  # descriptions of the affine ops composing this layer
        self.bias = bias
        self.problem = problem
        self.activation: Activation | None = None
        self.site: str | None = None  # where the activation was called
        self.tap: torch.Tensor | None = None  # the activation's output
        self.ops: list[str] = []  # other ops seen at this node, in order
        self.pre_ops: list[str] = []  # ops between the affine map and the activation

    def derived(self, **changes) -> _Node:
        node = _Node(self.layer, self.parent, activated=self.activated, affine=self.affine,
                     bias=self.bias, problem=self.problem)
        node.activation, node.site, node.tap = self.activation, self.site, self.tap
        node.ops, node.pre_ops = list(self.ops), list(self.pre_ops)
        for key, value in changes.items():
            setattr(node, key, value)
        return node

    def chain(self) -> list[_Node]:
        """The layer nodes from layer 1 to this one (the input node excluded)."""
        nodes: list[_Node] = []
        node: _Node | None = self
        while node is not None and node.layer > 0:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    def root(self) -> _Node:
        node = self
        while node.parent is not None:
            node = node.parent
        return node


class _Recorder(TorchFunctionMode):
    """Follows every torch function that touches the input's descendants."""

    def __init__(self, model: nn.Module, *, include_conv: bool, describe: bool) -> None:
        super().__init__()
        self.include_conv = include_conv
        self.describe = describe
        self._tags: dict[int, tuple[weakref.ref, _Node]] = {}
        self._taps: dict[int, _Node] = {}  # id(tap tensor) → node holding it
        self._params = {id(p): (name, module) for name, module in model.named_modules()
                        for p in module.parameters(recurse=False)}
        self._param_names = {id(p): f"{name}.{pname}" if name else pname for name, module in model.named_modules()
                             for pname, p in module.named_parameters(recurse=False)}
        self._modules = {id(m): name for name, m in model.named_modules()}
        self._root_name = type(model).__name__
        self.calls: dict[int, int] = {}  # activation module id → times called
        self.input_node = _Node(0, None)

    # -- tags --------------------------------------------------------------
    def tag(self, tensor: torch.Tensor, node: _Node) -> None:
        self._tags[id(tensor)] = (weakref.ref(tensor), node)

    def node_of(self, tensor: torch.Tensor) -> _Node | None:
        entry = self._tags.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            return entry[1]
        return None

    # -- the hook torch calls for every function -----------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = list(_tensors(args)) + list(_tensors(kwargs))
        nodes: list[_Node] = []
        for tensor in inputs:
            node = self.node_of(tensor)
            if node is not None and all(node is not n for n in nodes):
                nodes.append(node)
        if not nodes:
            return func(*args, **kwargs)
        if self._taps and _is_inplace(func, args, kwargs):
            for tensor in inputs:  # keep the captured values if an op is about to overwrite them
                held = self._taps.pop(id(tensor), None)
                if held is not None and held.tap is tensor:
                    held.tap = tensor.clone()
                    self._taps[id(held.tap)] = held
        out = func(*args, **kwargs)
        results = list(_tensors(out))
        if not results:
            return out
        node = nodes[0] if len(nodes) == 1 else self._merge(nodes, func)
        new = self._step(node, func, args, kwargs, results[0], inputs)
        for tensor in results:
            self.tag(tensor, new)
        return out

    def _merge(self, nodes: list[_Node], func: Callable) -> _Node:
        deepest = max(nodes, key=lambda n: (n.layer, n.activated))
        where = ", ".join(_layer_word(n) for n in nodes)
        return deepest.derived(problem=f"`{_func_name(func)}` combines {where} (a skip or residual connection?)")

    def _step(self, node: _Node, func, args, kwargs, out: torch.Tensor, inputs) -> _Node:
        name = _func_name(func)
        params = [t for t in inputs if id(t) in self._params]
        if name == "linear" or (name in _MATMUL_NAMES and params) or (self.include_conv and name in _CONV_NAMES):
            return self._affine(node, name, args, kwargs, out, params)
        if name in _ACTIVATION_NAMES:
            return self._activation(node, name, func, args, kwargs, out)
        # x @ W + b (a hand-written layer's bias), or BatchNorm's running-mean shift: an effective bias
        adds_bias = not node.activated and node.layer > 0 and not node.bias and (
            (name in _ADD_NAMES and bool(params)) or name == "batch_norm")
        if adds_bias or (self.describe and name not in _SILENT_NAMES):
            # a new node: a sibling branch (probas = softmax(logits)) does not change the logits' node
            return node.derived(bias=node.bias or adds_bias,
                                ops=node.ops + [name] if self.describe and name not in _SILENT_NAMES else node.ops)
        return node

    @staticmethod
    def _not_affine(node: _Node, before: str) -> _Node:
        """``node`` with a problem if an op that is neither affine nor an activation ran since its last step."""
        strange = [op for op in node.ops if op not in _AFFINE_LIKE]
        if node.layer == 0 or not strange or node.problem:
            return node
        return node.derived(problem=f"`{', '.join(dict.fromkeys(strange))}` runs after {_layer_word(node)} and "
                                    f"before {before}: it is neither an affine map nor an element-wise activation")

    def _affine(self, node: _Node, name: str, args, kwargs, out: torch.Tensor, params) -> _Node:
        node = self._not_affine(node, f"the affine map `{name}`")
        weight = next((p for p in params if p.ndim >= 2), params[0] if params else None)
        has_bias = name in ("addmm",) or any(p.ndim == 1 for p in params)
        if name in ("linear",) or name in _CONV_NAMES:
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            has_bias = bias is not None
        label = self._describe_affine(name, weight, args, out, has_bias) if self.describe else name
        if node.layer > 0 and not node.activated:
            # no activation since the previous affine map: the two compose to one affine layer
            return node.derived(affine=node.affine + (label,), bias=node.bias or has_bias)
        return _Node(node.layer + 1, node, affine=(label,), bias=has_bias, problem=node.problem)

    def _describe_affine(self, name: str, weight, args, out: torch.Tensor, has_bias: bool) -> str:
        owner = "(unregistered weight)"
        if weight is not None and id(weight) in self._params:
            module_name, module = self._params[id(weight)]
            owner = f"{module_name or self._root_name} ({type(module).__name__})"
            if name not in ("linear",) + tuple(_CONV_NAMES):
                owner = self._param_names[id(weight)]
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        fan_in = _per_sample(source) if source is not None else "?"
        return f"{owner}: {name} {fan_in}→{_per_sample(out)}" + (" +bias" if has_bias else "")

    def _activation(self, node: _Node, name: str, func, args, kwargs, out: torch.Tensor) -> _Node:
        if node.layer == 0:  # inside the feature extractor before layer 1
            return node.derived(ops=node.ops + [name]) if self.describe else node
        node = self._not_affine(node, f"the activation `{name}`")
        if node.activated:
            return node.derived(problem=f"two activations in a row after {_layer_word(node)} "
                                        f"({node.activation} then {name})")
        new = node.derived(activated=True)
        new.activation = _activation_of(name, func, tuple(args), kwargs) if self.describe else Activation(name)
        new.tap = out
        new.pre_ops, new.ops = list(node.ops), []
        self._taps[id(out)] = new
        if self.describe:
            new.site = self._caller(_spelling(func, name))
        return new

    def _caller(self, spelling: str) -> str:
        """Which module's forward called the activation (trace only: walks frames)."""
        frame: types.FrameType | None = sys._getframe(3)
        for _ in range(60):
            if frame is None:
                break
            code = frame.f_code
            if code.co_name == "forward" and code.co_argcount:
                owner = frame.f_locals.get(code.co_varnames[0])  # `self`, whatever it is called
                if owner is not None and id(owner) in self._modules:
                    module_name = self._modules[id(owner)]
                    if module_name and not list(owner.children()):
                        self.calls[id(owner)] = self.calls.get(id(owner), 0) + 1
                        return f"{module_name} ({type(owner).__name__}) call {self.calls[id(owner)]}"
                    where = f"{type(owner).__name__}.forward" + (f" ({module_name})" if module_name else "")
                    return f"{spelling} in {where}"
            frame = frame.f_back
        return f"{spelling} outside any module's forward (in predict=)"


def _spelling(func: Callable, name: str) -> str:
    """How the user wrote the call: F.relu, torch.relu or Tensor.relu."""
    qualname = getattr(func, "__qualname__", "") or ""
    module = getattr(func, "__module__", "") or ""
    if qualname.startswith(("TensorBase.", "Tensor.")):
        return f"Tensor.{func.__name__}"
    if module.startswith(("torch.nn.functional", "torch._C._nn")):
        return f"F.{func.__name__}"
    return f"torch.{func.__name__}"


def _per_sample(tensor: torch.Tensor) -> str:
    shape = tuple(tensor.shape[1:]) if tensor.ndim > 1 else tuple(tensor.shape)
    return "×".join(str(s) for s in shape) or "1"


def _layer_word(node: _Node) -> str:
    if node.layer == 0:
        return "the input"
    return f"layer {node.layer}" + (" (after its activation)" if node.activated else " (before its activation)")


# --------------------------------------------------------------------------- #
# running the model
# --------------------------------------------------------------------------- #
def select_output(result: Any, output: OutputSelector) -> torch.Tensor:
    """The tensor compared with Y: ``result`` itself, ``result[output]`` (int index or
    dict key; an attribute for other objects), or ``output(result)`` for a callable."""
    if output is None:
        if isinstance(result, torch.Tensor):
            return result
        raise CaptureError(f"the model returned {_summarise(result)}, not one tensor; choose the tensor that is "
                           f"compared with Y with output={_suggest(result)}")
    if callable(output) and not isinstance(output, (int, str)):
        chosen = output(result)
    elif isinstance(output, bool) or not isinstance(output, (int, str)):
        raise TypeError("output must be an int index, a dict key (str) or a callable(result) -> tensor; "
                        f"got {output!r}")
    else:
        try:
            chosen = result[output] if isinstance(result, (tuple, list, dict)) or isinstance(output, int) \
                else getattr(result, output)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise CaptureError(f"output={output!r} does not select anything from {_summarise(result)} "
                               f"({type(exc).__name__}: {exc}); use output={_suggest(result)}") from exc
    if not isinstance(chosen, torch.Tensor):
        raise CaptureError(f"output={output!r} selected {type(chosen).__name__}, not a tensor, "
                           f"from {_summarise(result)}")
    return chosen


def _summarise(result: Any) -> str:
    def one(value: Any) -> str:
        return f"Tensor {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
    if isinstance(result, (tuple, list)):
        items = ", ".join(f"[{i}] {one(v)}" for i, v in enumerate(result))
        return f"a {type(result).__name__} of {len(result)} ({items})"
    if isinstance(result, dict):
        items = ", ".join(f"{k!r}: {one(v)}" for k, v in result.items())
        return f"a dict ({items})"
    return one(result)


def _suggest(result: Any) -> str:
    if isinstance(result, (tuple, list)) and result:
        return "0" + (" (the first item; output=1 for the second, …)" if len(result) > 1 else "")
    if isinstance(result, dict) and result:
        return repr(next(iter(result)))
    return "a callable(result) -> tensor"


@dataclass
class _Pass:
    output: torch.Tensor
    node: _Node
    recorder: _Recorder
    fired: list[list[tuple[torch.Tensor, _Node | None]]]  # per explicit tap: (output copy, its node) per call


def _run(model: nn.Module, x: torch.Tensor, predict: Predict | None, output: OutputSelector,
         *, include_conv: bool, describe: bool, taps: Sequence[nn.Module] = ()) -> _Pass:
    """One no-grad, eval-mode pass of ``model`` (or ``predict``) on ``x`` under the recorder.

    ``taps``: modules whose outputs are recorded by forward hooks that exist only
    during this pass and ignore other threads (a training loop running meanwhile).
    """
    recorder = _Recorder(model, include_conv=include_conv, describe=describe)
    modes = {m: m.training for m in model.modules()}
    fired: list[list[tuple[torch.Tensor, _Node | None]]] = [[] for _ in taps]
    thread = threading.get_ident()

    def hook_for(index: int):
        def hook(module, args, out):
            if threading.get_ident() != thread:
                return
            if not isinstance(out, torch.Tensor):
                raise CaptureError(f"taps[{index}] ({type(module).__name__}) returned {type(out).__name__}, not a "
                                   "tensor; choose a module whose output is the hidden layer's activation")
            fired[index].append((out.detach().clone(), recorder.node_of(out)))
        return hook

    handles = [module.register_forward_hook(hook_for(i)) for i, module in enumerate(taps)]
    try:
        model.eval()
        with torch.no_grad(), recorder:
            recorder.tag(x, recorder.input_node)
            result = model(x) if predict is None else predict(model, x)
            chosen = select_output(result, output)
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes.items():
            module.training = mode
    node = recorder.node_of(chosen)
    if node is None:
        via = "predict(model, x)" if predict is not None else f"{type(model).__name__}.forward"
        raise CaptureError(f"the output chosen from {via} ({_summarise(result)}) does not depend on the input x "
                           "through the operations seen; check output= (or predict=)")
    return _Pass(chosen, node, recorder, fired)


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def _prepare_input(model: nn.Module, x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"the input must be a torch.Tensor, samples first; got {type(x).__name__}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"the input has shape {tuple(x.shape)}: it needs at least one sample (samples first)")
    if x.device.type == "meta":
        raise ValueError("the input is on the meta device, which holds no values; give real data")
    device, dtype = _model_device_dtype(model)
    return x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)


# --------------------------------------------------------------------------- #
# the plan
# --------------------------------------------------------------------------- #
@dataclass
class LayerInfo:
    """One affine layer of the certified network: the affine ops composing it
    (module, op, per-sample shapes), its activation (None for the last layer, linear),
    where the activation was called, its output width and whether it has a bias."""

    index: int
    affine: tuple[str, ...]
    activation: Activation | Callable[[torch.Tensor], torch.Tensor] | None
    site: str | None
    width: int
    bias: bool
    before_activation: list[str] = field(default_factory=list)  # e.g. batch_norm (eval: per-feature affine)
    after: list[str] = field(default_factory=list)  # ops after the activation (the last layer: after its map)


@dataclass
class CapturePlan:
    """What is certified, read from one traced pass (see the module docstring).

    ``layers``: the L affine layers in forward order; ``hidden_widths`` h_1 … h_{L-1};
    ``input_shape``: one sample's input shape, ``input_features`` n = its size;
    ``output_features`` m; ``prelude``: ops run before layer 1 (part of it).
    """

    layers: list[LayerInfo]
    input_shape: tuple[int, ...]
    input_features: int
    output_features: int
    prelude: list[str]
    predict: Predict | None = None
    output: OutputSelector = None
    include_conv: bool = False
    model_name: str = "model"
    notes: list[str] = field(default_factory=list)
    taps: list[tuple[str, nn.Module]] | None = None  # explicit taps: (name, module), in forward order

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def hidden_widths(self) -> list[int]:
        return [layer.width for layer in self.layers[:-1]]

    @property
    def activation(self) -> Activation | Callable[[torch.Tensor], torch.Tensor] | None:
        """The activation of layer 1 (the bounds use one activation between all layers)."""
        return self.layers[0].activation if self.depth > 1 else None

    @property
    def bias(self) -> bool:
        return any(layer.bias for layer in self.layers)

    def bounds_kwargs(self) -> dict[str, Any]:
        """``YesCloud(X, Y, **plan.bounds_kwargs())``: depth, bias, activation."""
        activation = self.activation
        chosen: str | Callable[[torch.Tensor], torch.Tensor]
        if activation is None:
            chosen = "identity"
        elif isinstance(activation, Activation):
            chosen = activation.for_bounds()
        else:
            chosen = activation
        return {"depth": self.depth, "bias": self.bias, "activation": chosen}

    def describe(self) -> str:
        """Several lines: the certified network, in forward order."""
        source = "predict(model, x)" if self.predict is not None else f"{self.model_name}.forward"
        shape = "×".join(map(str, self.input_shape)) or "1"
        lines = [f"Certified network: {self.depth} affine layer(s), traced from what {source} executed, in order."]
        lines.append(f"  X: the model input, {shape} per sample → {self.input_features} features (flattened)")
        if self.prelude:
            lines.append("  before layer 1, part of it (layer 1 is fitted from the raw input): "
                         + ", ".join(self.prelude))
        for layer in self.layers:
            head = f"  layer {layer.index}: {' → '.join(layer.affine)}"
            head += "".join(f" → {op}" for op in layer.before_activation)
            if layer.activation is not None and layer.index < self.depth:
                tail = f" → {layer.activation} [{layer.site}] = hidden output {layer.index}, width {layer.width}"
            elif layer.activation is not None:  # an output activation (noted below)
                tail = f" → {layer.activation} → output, {layer.width} features"
            else:
                tail = f" → output, {layer.width} features"
            extra = f"; then {', '.join(layer.after)}" if layer.after else ""
            lines.append(head + tail + extra)
        chosen = "" if self.output is None else f" (output={self.output!r})"
        lines.append(f"  Y is compared with the output{chosen}; activation {self.activation or 'none'}, "
                     f"bias {'yes' if self.bias else 'no'}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


def trace(model: nn.Module, example_input: Any, *, predict: Predict | None = None,
          output: OutputSelector = None, include_conv: bool = False,
          taps: Sequence[nn.Module | str] | None = None,
          activation: str | Callable[[torch.Tensor], torch.Tensor] | None = None) -> CapturePlan:
    """Discover the certified network from one pass on ``example_input`` (a few samples, samples first).

    ``predict(model, x)``: the trained map when it is not ``forward``; ``output``:
    which part of the result is compared with Y (index, key or callable);
    ``include_conv``: count convolutions as affine layers (hidden = their feature maps);
    ``taps``: instead of discovery, the L-1 submodules (or their dotted names) whose
    outputs are the hidden layers, each called once per forward; ``activation``: the
    activation the bounds use (a name such as ``"relu"`` or an element-wise callable)
    instead of the one found.
    Raises :class:`CaptureError` naming what was found and the option that fixes it.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if predict is not None and not callable(predict):
        raise TypeError(f"predict must be a callable predict(model, x) -> output; got {type(predict).__name__}")
    chosen_activation = _resolve_activation(activation)
    tap_modules = _resolve_taps(model, taps) if taps is not None else None
    x = _prepare_input(model, example_input)
    run = _run(model, x, predict, output, include_conv=include_conv, describe=True,
               taps=[m for _, m in tap_modules or ()])
    if run.output.ndim < 1 or run.output.shape[0] != x.shape[0]:
        raise CaptureError(f"the output has shape {tuple(run.output.shape)} for {x.shape[0]} input samples: it must "
                           "hold one row per sample; choose another with output= or predict=")
    if tap_modules is not None:
        layers = _layers_from_taps(run, tap_modules, x.shape[0])
    else:
        layers = _layers_from_chain(run, include_conv)
    missing = [layer.index for layer in layers[:-1] if layer.activation is None]
    fallback = chosen_activation or (layers[0].activation if layers[0].activation is not None else Activation("relu"))
    for layer in layers[:-1]:
        layer.activation = chosen_activation or layer.activation or fallback
    plan = CapturePlan(layers=layers, input_shape=tuple(x.shape[1:]), input_features=int(x[0].numel()),
                       output_features=int(run.output[0].numel()), prelude=list(run.node.root().ops),
                       predict=predict, output=output, include_conv=include_conv, model_name=type(model).__name__,
                       taps=tap_modules)
    plan.notes = _notes(plan, run.node if tap_modules is None else None)
    if missing and chosen_activation is None:
        plan.notes.append(f"the tap(s) of layer(s) {missing} are not the output of an activation; the bounds use "
                          f"{plan.activation} (pass activation=… if the network uses another)")
    return plan


def _resolve_activation(activation) -> Activation | Callable[[torch.Tensor], torch.Tensor] | None:
    if activation is None or isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        name = activation.lower()
        if name not in _ACTIVATION_NAMES:
            raise ValueError(f"activation={activation!r} is not known; use one of {sorted(_ACTIVATION_NAMES)} "
                             "or pass an element-wise callable")
        return Activation(name)
    if callable(activation):
        return activation
    raise TypeError(f"activation must be a name such as 'relu' or an element-wise callable; got {activation!r}")


def _resolve_taps(model: nn.Module, taps: Sequence[nn.Module | str]) -> list[tuple[str, nn.Module]]:
    if isinstance(taps, (str, nn.Module)) or not isinstance(taps, Sequence):
        raise TypeError("taps must be a list of submodules (or their dotted names), one per hidden layer, "
                        f"in forward order; got {type(taps).__name__}")
    names = {id(m): name for name, m in model.named_modules()}
    resolved = []
    for i, tap in enumerate(taps):
        if isinstance(tap, str):
            try:
                module = model.get_submodule(tap)
            except AttributeError as exc:
                known = ", ".join(name for name, _ in list(model.named_modules())[1:13])
                raise CaptureError(f"taps[{i}]={tap!r} is not a submodule of {type(model).__name__} "
                                   f"(its submodules: {known}, …)") from exc
        elif isinstance(tap, nn.Module):
            if id(tap) not in names:
                raise CaptureError(f"taps[{i}] ({type(tap).__name__}) is not a submodule of {type(model).__name__}")
            module = tap
        else:
            raise TypeError(f"taps[{i}] must be a submodule or its dotted name; got {type(tap).__name__}")
        resolved.append((names[id(module)], module))
    return resolved


def _layers_from_chain(run: _Pass, include_conv: bool) -> list[LayerInfo]:
    chain = run.node.chain()
    seen = _seen(run.node.root(), chain)
    if not chain:
        raise CaptureError(f"no affine layer (nn.Linear / F.linear) runs between the input and the output; "
                           f"executed: {seen}. The YES bounds need a network of affine layers"
                           + ("" if include_conv else " (for a convolution-only network pass include_conv=True)"))
    for node in chain + [run.node]:
        if node.problem:
            raise CaptureError(f"{node.problem}; executed, in forward order: {seen}. The YES bounds need a chain of "
                               "affine layers with one element-wise activation each: pass taps=[…] (the modules "
                               "whose outputs are the hidden layers), or predict= to certify a part of the model "
                               "that is such a chain")
    layers = []
    for index, node in enumerate(chain, start=1):
        tap = node.tap
        width = int(tap[0].numel()) if (tap is not None and index < len(chain)) else int(run.output[0].numel())
        before = list(node.pre_ops) if node.activated else []
        layers.append(LayerInfo(index, node.affine, node.activation, node.site, width, node.bias, before,
                                list(node.ops)))
    return layers


def _layers_from_taps(run: _Pass, taps: list[tuple[str, nn.Module]], n: int) -> list[LayerInfo]:
    outputs = _fired_once(run, taps, n, "the traced pass")
    layers = []
    for index, ((name, module), (tensor, node)) in enumerate(zip(taps, outputs), start=1):
        activated = node is not None and node.activated and node.tap is not None
        layers.append(LayerInfo(index, (f"… up to taps[{index - 1}] = {name} ({type(module).__name__})",),
                                node.activation if activated else None, name, int(tensor[0].numel()),
                                True if node is None else node.bias or node.layer == 0))
    bias = run.node.bias if run.node.chain() else True
    layers.append(LayerInfo(len(taps) + 1, ("… after the last tap, to the output",), None, None,
                            int(run.output[0].numel()), bias))
    return layers


def _fired_once(run: _Pass, taps: list[tuple[str, nn.Module]], n: int, where: str):
    outputs = []
    for i, ((name, module), calls) in enumerate(zip(taps, run.fired)):
        if len(calls) != 1:
            why = ("never ran: pass modules that forward (or predict) calls" if not calls else
                   f"ran {len(calls)} times: a module called at several depths (one nn.ReLU reused) cannot tell "
                   "the layers apart; leave taps=None and the discovery will tell the calls apart")
            raise CaptureError(f"on {where}, taps[{i}] = {name} ({type(module).__name__}) {why}")
        tensor, node = calls[0]
        if tensor.ndim < 1 or tensor.shape[0] != n:
            raise CaptureError(f"on {where}, taps[{i}] = {name} returned shape {tuple(tensor.shape)} for {n} "
                               "samples: a tap must give one row per sample")
        outputs.append((tensor, node))
    return outputs


def _seen(input_node: _Node, chain: list[_Node]) -> str:
    words = list(input_node.ops)
    for node in chain:
        words += [a.split(": ")[-1].split(" ")[0] if ": " in a else a for a in node.affine]
        words += node.pre_ops + ([str(node.activation)] if node.activation is not None else []) + node.ops
    return ", ".join(words) or "nothing that depends on the input"


def _notes(plan: CapturePlan, last: _Node | None) -> list[str]:
    notes = []

    kinds = {str(layer.activation) for layer in plan.layers[:-1] if layer.activation is not None}
    if len(kinds) > 1:
        notes.append(f"the hidden layers use different activations ({', '.join(sorted(kinds))}); the bounds "
                     f"use {plan.activation} between every pair of layers")
    if last is not None and last.activated:
        notes.append(f"the output passes through {last.activation} after the last affine layer; the YES "
                     "network's last layer is linear, so YES-0 is a reference, not a certificate "
                     "(pick the pre-activation output with output= or predict= if forward returns it)")
    if {layer.bias for layer in plan.layers} == {True, False}:
        notes.append("some layers have a bias and some do not; the bounds fit every layer with a bias")
    strange = [op for op in (last.ops if last is not None else []) if op not in _AFFINE_LIKE]
    if strange:
        notes.append(f"the output passes through {', '.join(dict.fromkeys(strange))} after the last affine layer; "
                     "the YES network's last layer is affine, so YES-0 is a reference, not a certificate (choose "
                     "the tensor before it with output= or predict= if forward returns it)")
    merged = [layer.index for layer in plan.layers if len(layer.affine) > 1]
    if merged:
        notes.append(f"layer(s) {merged} compose several affine maps with no activation between them "
                     "(a linear bottleneck): they count as one affine layer")
    return notes


# --------------------------------------------------------------------------- #
# capture
# --------------------------------------------------------------------------- #
def capture(model: nn.Module, X: Any, plan: CapturePlan, *, predict: Predict | None = None,
            output: OutputSelector = None, chunk_size: int = 4096) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The hidden outputs (L-1 tensors, N × h_l) and the output (N × m) of ``model`` on ``X``.

    A no-grad, eval-mode pass per chunk of ``chunk_size`` samples, on the model's
    device; training modes are restored afterwards. ``predict``/``output`` default
    to the plan's. Raises :class:`CaptureError` if a pass takes another path than
    the traced one.
    """
    predict = plan.predict if predict is None else predict
    output = plan.output if output is None else output
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int ≥ 1 (samples per pass); got {chunk_size!r}")
    X = _prepare_input(model, X)
    hidden_chunks: list[list[torch.Tensor]] = [[] for _ in range(plan.depth - 1)]
    outputs = []
    for start in range(0, X.shape[0], chunk_size):
        x = X[start:start + chunk_size]
        run = _run(model, x, predict, output, include_conv=plan.include_conv, describe=False,
                   taps=[m for _, m in plan.taps or ()])
        if plan.taps is not None:
            where = f"samples {start}…{start + x.shape[0] - 1}"
            taps = [t for t, _ in _fired_once(run, plan.taps, x.shape[0], where)]
            for i, (tap, width) in enumerate(zip(taps, plan.hidden_widths)):
                if tap[0].numel() != width:
                    raise CaptureError(f"on {where}, taps[{i}] gave {tap[0].numel()} features per sample, "
                                       f"not the {width} traced")
        else:
            taps = _check_pass(run, plan, x.shape[0], start)
        for i, tap in enumerate(taps):
            hidden_chunks[i].append(tap.reshape(tap.shape[0], -1))
        outputs.append(run.output.reshape(run.output.shape[0], -1))
    hidden = [chunks[0] if len(chunks) == 1 else torch.cat(chunks) for chunks in hidden_chunks]
    return hidden, outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _check_pass(run: _Pass, plan: CapturePlan, n: int, start: int) -> list[torch.Tensor]:
    chain = run.node.chain()
    where = f"samples {start}…{start + n - 1}"
    if len(chain) != plan.depth or any(node.problem for node in chain + [run.node]):
        raise CaptureError(f"on {where} forward ran {len(chain)} affine layer(s), not the {plan.depth} traced; "
                           "a model whose path depends on the data cannot be certified as one network")
    taps = [node.tap for node in chain[:-1]]
    for i, (tap, width) in enumerate(zip(taps, plan.hidden_widths)):
        if tap is None or tap.shape[0] != n or tap[0].numel() != width:
            shape = None if tap is None else tuple(tap.shape)
            raise CaptureError(f"on {where} hidden output {i + 1} has shape {shape}, expected {n} × {width} "
                               "(one row per sample, as traced)")
    if run.output.shape[0] != n:
        raise CaptureError(f"on {where} the output has shape {tuple(run.output.shape)}: expected one row per sample")
    return taps  # type: ignore[return-value]
