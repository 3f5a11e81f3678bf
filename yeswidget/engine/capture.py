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

__all__ = ["Activation", "CaptureError", "CapturePlan", "LayerInfo", "NotFolded", "OneHotInput", "capture",
           "select_output", "trace"]

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
# not named in describe()'s list of what forward executed: reads of sizes and layout moves
_UNNAMED = _SILENT_NAMES | frozenset({
    "dim", "size", "__get__", "__set__", "numel", "__len__", "is_floating_point", "transpose", "permute", "t",
    "is_contiguous", "stride", "storage_offset", "element_size", "__bool__", "item", "tolist", "chunk", "split",
    "unbind", "narrow", "select",
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
# operations the YES construction cannot fold into an affine layer (YES-BOUNDS.md, "What the construction may
# fold into layer 1"): a least-squares layer fitted in their place can see what the model cannot, or the model
# cannot represent the fitted layer, so no bound is a certificate
_NOT_FOLDED: dict[str, str] = {
    **dict.fromkeys(("lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell",
                     "rnn_relu_cell"),
                    "a recurrent layer: its outputs are causal in time, while a least-squares layer fitted over the "
                    "flattened window sees every time step at once (a next-value target may sit in the window)"),
    **dict.fromkeys(("scaled_dot_product_attention", "multi_head_attention_forward", "_native_multi_head_attention"),
                    "attention: products of two functions of the input, not an affine map"),
    **dict.fromkeys(("_transformer_encoder_layer_fwd", "_transformer_decoder_only_layer_fwd"),
                    "a transformer layer (attention, residual sums, layer norms)"),
    "embedding_bag": "a bag of embeddings (each sample's ids looked up and pooled into one vector), which the "
                     "construction does not expand into a one-hot first layer",
    **dict.fromkeys(("layer_norm", "group_norm", "rms_norm", "instance_norm"),
                    "a per-sample normalisation (it divides by each sample's own spread): not an affine map"),
    # a hand-written pool (x.mean(1) over a sequence's embeddings, x.amax((2, 3)) over an image): the model applies
    # one map to every pooled position, which a least-squares layer over all positions at once need not be
    **dict.fromkeys(("mean", "sum", "nanmean", "nansum", "amax", "amin", "max", "min", "logsumexp", "prod", "std",
                     "var", "norm", "median", "cumsum"),
                    "a reduction within each sample (pooling over positions, or a per-sample statistic): the model "
                    "shares its maps across what is reduced, so the YES network need not fit inside this "
                    "architecture"),
}
_MERGE_WORDS: dict[str, str] = {
    **dict.fromkeys(("add", "__add__", "__radd__", "__iadd__", "sub", "__sub__", "__rsub__", "__isub__"),
                    "a residual sum (x + f(x)): the model adds two branches, a layer-by-layer construction cannot"),
    **dict.fromkeys(("mul", "__mul__", "__rmul__", "__imul__", "div", "__truediv__"),
                    "a gate (an elementwise product of two branches): not an affine map of either"),
    **dict.fromkeys(("matmul", "__matmul__", "bmm", "einsum", "baddbmm"),
                    "a product of two branches (hand-written attention?): not an affine map"),
    **dict.fromkeys(("cat", "concat", "concatenate", "stack", "hstack"),
                    "a concatenation of two branches (a skip connection): the later layers read earlier ones"),
}
# callables used by the bounds for each activation name
_ACTIVATION_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "logsigmoid": F.logsigmoid,
}
# activations yeswidget.engine.bounds knows by name (with their default parameters)
_BOUNDS_NAMES = frozenset({"relu", "tanh", "sigmoid"})


def _func_name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", "") or ""
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]  # in-place variant: relu_ → relu
    return name


def _is_inplace(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
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


@dataclass(frozen=True)
class NotFolded:
    """One operation on the input's path that the YES construction cannot fold into an affine layer:
    ``op`` as torch named it, ``what`` it is in words, the ``module`` that ran it, ``where`` in the chain."""

    op: str
    what: str
    module: str
    where: str
    path: str = ""  # the module's dotted name (for the model itself: the last submodule that ran before)

    def __str__(self) -> str:
        who = f" in {self.module}" if self.module else ""
        return f"`{self.op}`{who}, after {self.where}: {self.what}"


@dataclass(frozen=True)
class OneHotInput:
    """The model input holds integer ids read by an ``nn.Embedding``: layer 1 reads their one-hot
    expansion (``num`` columns per id, less the padding id, whose embedding is fixed at 0)."""

    num: int
    dim: int
    padding_idx: int | None
    module: str

    @property
    def columns(self) -> int:
        """One-hot columns per id."""
        return self.num - (self.padding_idx is not None)

    def expand(self, ids: torch.Tensor) -> torch.Tensor:
        """N × (positions · columns) float64 one-hot features of ``ids`` (N × positions…)."""
        flat = ids.reshape(ids.shape[0], -1).long()
        if bool((flat < 0).any()) or bool((flat >= self.num).any()):
            raise ValueError(f"the input holds ids outside 0 … {self.num - 1}, the rows of {self.module}")
        onehot = F.one_hot(flat, self.num).to(torch.float64)
        if self.padding_idx is not None:
            keep = [i for i in range(self.num) if i != self.padding_idx]
            onehot = onehot[..., keep]
        return onehot.reshape(ids.shape[0], -1)


def _activation_of(name: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Activation:
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
        self.head: bool = parent.head if parent is not None else False  # descends from certify_from='s output
        self.folds = True  # False when ``problem`` is an operation the construction cannot fold (not a misreading)
        self.source: torch.Tensor | None = None  # layer 1 with certify_from=: the tensor its affine map reads

    def derived(self, **changes: Any) -> _Node:
        node = _Node(self.layer, self.parent, activated=self.activated, affine=self.affine,
                     bias=self.bias, problem=self.problem)
        node.activation, node.site, node.tap = self.activation, self.site, self.tap
        node.folds, node.source, node.head = self.folds, self.source, self.head
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

    def __init__(self, model: nn.Module, *, include_conv: bool, describe: bool, head: bool = False) -> None:
        super().__init__()
        self.include_conv = include_conv
        self.describe = describe
        # certify_from=: the features (ops on the input's side) are taken as they are; the certified chain
        # starts at ``head_root``, the tapped module's output
        self.head_root: _Node | None = _Node(0, None) if head else None
        if self.head_root is not None:
            self.head_root.head = True
        self.input_tensor: torch.Tensor | None = None
        self.executed: list[tuple[str, str]] = []  # describe: (module, op) for every op on the input's path
        self.not_folded: list[NotFolded] = []  # the operations the construction cannot fold, in forward order
        self.embedding: OneHotInput | None = None
        self.head_start: int | None = None  # certify_from=: index in ``executed`` of the head's first affine map
        self._tags: dict[int, tuple[weakref.ref[torch.Tensor], _Node]] = {}
        self._taps: dict[int, _Node] = {}  # id(tap tensor) → node holding it
        self._params = {id(p): (name, module) for name, module in model.named_modules()
                        for p in module.parameters(recurse=False)}
        self._param_names = {id(p): f"{name}.{pname}" if name else pname for name, module in model.named_modules()
                             for pname, p in module.named_parameters(recurse=False)}
        self._modules = {id(m): name for name, m in model.named_modules()}
        self._root_name = type(model).__name__
        self.calls: dict[int, int] = {}  # activation module id → times called
        self.input_node = _Node(0, None)
        self._submodule = ""  # describe: the dotted name of the last submodule that ran an op on the path

    # -- tags --------------------------------------------------------------
    def tag(self, tensor: torch.Tensor, node: _Node) -> None:
        self._tags[id(tensor)] = (weakref.ref(tensor), node)

    def node_of(self, tensor: torch.Tensor) -> _Node | None:
        entry = self._tags.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            return entry[1]
        return None

    # -- the hook torch calls for every function -----------------------------
    def __torch_function__(self, func: Callable[..., Any], types: Sequence[type], args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        inputs = list(_tensors(args)) + list(_tensors(kwargs))
        nodes: list[_Node] = []
        for tensor in inputs:
            node = self.node_of(tensor)
            if node is not None and all(node is not n for n in nodes):
                nodes.append(node)
        if not nodes:
            return func(*args, **kwargs)
        if self.describe and _func_name(func) not in _UNNAMED:
            owner, path = self._owner(with_path=True)
            self.executed.append((owner, _func_name(func)))
            self._submodule = path or self._submodule
        if self.head_root is not None:
            nodes = [n for n in nodes if n.head]
            if not nodes:  # the features' side (certify_from=): taken as it is at each epoch
                out = func(*args, **kwargs)
                for tensor in _tensors(out):
                    self.tag(tensor, self.input_node)
                return out
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
        source = next((t for t in inputs if self.node_of(t) is node), None)
        new = self._step(node, func, args, kwargs, results[0], inputs, source)
        for tensor in results:
            self.tag(tensor, new)
        return out

    def _merge(self, nodes: list[_Node], func: Callable[..., Any]) -> _Node:
        deepest = max(nodes, key=lambda n: (n.layer, n.activated))
        where = ", ".join(_layer_word(n) for n in nodes)
        name = _func_name(func)
        what = _MERGE_WORDS.get(name, f"`{name}` of two branches: not an affine map of one")
        merged = deepest.derived(problem=f"`{name}` combines {where} (a skip or residual connection?)", folds=False)
        self._record_not_folded(name, what, merged)
        return merged

    def _record_not_folded(self, name: str, what: str, node: _Node) -> None:
        module, path = self._owner(with_path=True) if self.describe else ("", "")
        # run by the model's own forward (x.mean(1)): the head can be certified from the submodule it reads
        self.not_folded.append(NotFolded(name, what, module, _layer_word(node), path or self._submodule))

    def _fold_problem(self, node: _Node, name: str, what: str) -> _Node:
        """``node`` after an operation that does not fold (recurrent, attention, LayerNorm, …)."""
        if self.head_root is not None and node.layer == 0:  # before the head: part of the current features
            return node.derived(ops=node.ops + [name]) if self.describe else node
        self._record_not_folded(name, what, node)
        if node.problem:
            return node.derived(ops=node.ops + [name])
        return node.derived(problem=f"`{name}` runs after {_layer_word(node)}: {what}", folds=False,
                            ops=node.ops + [name])

    def _embedding(self, node: _Node, args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor,
                   source: torch.Tensor | None) -> _Node:
        """``F.embedding(ids, weight)`` on the model input: a linear map of the ids' one-hot expansion."""
        ids = self.input_tensor
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        padding = args[2] if len(args) > 2 else kwargs.get("padding_idx")
        exact = (node.layer == 0 and not node.head and self.embedding is None and ids is not None
                 and source is not None and source.shape == ids.shape and not source.is_floating_point()
                 and isinstance(weight, torch.Tensor) and torch.equal(source.long(), ids.long()))
        if not exact:
            return self._fold_problem(node, "embedding", "an embedding lookup of anything but the model's integer "
                                      "input ids (a second lookup, or ids computed by the model)")
        assert source is not None and isinstance(weight, torch.Tensor)  # for mypy: ``exact`` checked both
        num, dim = int(weight.shape[0]), int(weight.shape[1])
        padding = None if padding is None else int(padding) % num
        owner = self._params.get(id(weight))
        module = f"{owner[0] or self._root_name} ({type(owner[1]).__name__})" if owner else "(unregistered table)"
        self.embedding = OneHotInput(num, dim, padding, module)
        label = f"{module}: embedding = linear map of the one-hot ids {_per_sample(source)}×{num}→{_per_sample(out)}"
        new = _Node(node.layer + 1, node, affine=(label,), bias=False, problem=node.problem)
        new.folds = node.folds
        return new

    def _step(self, node: _Node, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
              out: torch.Tensor, inputs: list[torch.Tensor], source: torch.Tensor | None = None) -> _Node:
        name = _func_name(func)
        params = [t for t in inputs if id(t) in self._params]
        if name in _NOT_FOLDED:
            return self._fold_problem(node, name, _NOT_FOLDED[name])
        if name == "embedding" and not (self.head_root is not None and node.layer == 0):
            return self._embedding(node, args, kwargs, out, source)
        if name == "linear" or (name in _MATMUL_NAMES and params) or (self.include_conv and name in _CONV_NAMES):
            if node.layer == 0 and self.head_root is not None and source is not None:
                new = self._affine(node, name, args, kwargs, out, params)
                if source.ndim > 2 and name not in _CONV_NAMES and not new.problem:
                    what = (f"the head's first layer reads {_per_sample(source)} per sample and applies one map to "
                            "each position (shared weights); a least-squares layer over all positions at once can "
                            "see later positions, which a causal head cannot: certify from a module whose output "
                            "is one vector per sample")
                    self._record_not_folded(name, what, node)
                    new.problem, new.folds = f"`{name}` per position: {what}", False
                new.source = source.detach()  # the head's input, as its first affine map reads it
                if self.head_start is None:
                    self.head_start = max(len(self.executed) - 1, 0)
                return new
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
        strange = [op for op in node.ops if op not in _AFFINE_LIKE and op not in _NOT_FOLDED]
        if node.layer == 0 or not strange or node.problem:
            return node
        return node.derived(problem=f"`{', '.join(dict.fromkeys(strange))}` runs after {_layer_word(node)} and "
                                    f"before {before}: it is neither an affine map nor an element-wise activation")

    def _affine(self, node: _Node, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor,
                params: list[torch.Tensor]) -> _Node:
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
        new = _Node(node.layer + 1, node, affine=(label,), bias=has_bias, problem=node.problem)
        new.folds = node.folds
        return new

    def _describe_affine(self, name: str, weight: torch.Tensor | None, args: tuple[Any, ...], out: torch.Tensor,
                         has_bias: bool) -> str:
        owner = "(unregistered weight)"
        if weight is not None and id(weight) in self._params:
            module_name, module = self._params[id(weight)]
            owner = f"{module_name or self._root_name} ({type(module).__name__})"
            if name not in ("linear",) + tuple(_CONV_NAMES):
                owner = self._param_names[id(weight)]
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        fan_in = _per_sample(source) if source is not None else "?"
        return f"{owner}: {name} {fan_in}→{_per_sample(out)}" + (" +bias" if has_bias else "")

    def _activation(self, node: _Node, name: str, func: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any], out: torch.Tensor) -> _Node:
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

    def _owner(self, *, with_path: bool = False) -> Any:
        """The innermost submodule whose forward runs the current op, as ``name (Type)`` (describe only);
        ``with_path``: also its dotted name."""
        frame: types.FrameType | None = sys._getframe(2)
        found = ("predict=", "")
        for _ in range(80):
            if frame is None:
                break
            code = frame.f_code
            if code.co_name in ("forward", "_conv_forward") and code.co_argcount:
                owner = frame.f_locals.get(code.co_varnames[0])
                if owner is not None and id(owner) in self._modules:
                    path = self._modules[id(owner)]
                    found = (f"{path or self._root_name} ({type(owner).__name__})", path)
                    break
            frame = frame.f_back
        return found if with_path else found[0]

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


def _spelling(func: Callable[..., Any], name: str) -> str:
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
         *, include_conv: bool, describe: bool, taps: Sequence[nn.Module] = (),
         head: nn.Module | None = None) -> _Pass:
    """One no-grad, eval-mode pass of ``model`` (or ``predict``) on ``x`` under the recorder.

    ``taps``: modules whose outputs are recorded by forward hooks that exist only
    during this pass and ignore other threads (a training loop running meanwhile).
    ``head``: the ``certify_from=`` module; the certified chain starts at its output.
    """
    recorder = _Recorder(model, include_conv=include_conv, describe=describe, head=head is not None)
    modes = {m: m.training for m in model.modules()}
    fired: list[list[tuple[torch.Tensor, _Node | None]]] = [[] for _ in taps]
    thread = threading.get_ident()
    head_calls: list[int] = []

    def head_hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if threading.get_ident() != thread or recorder.head_root is None:
            return
        head_calls.append(1)
        for tensor in _tensors(out):  # the features at this epoch: the certified chain starts here
            recorder.tag(tensor, recorder.head_root)

    def hook_for(index: int) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            if threading.get_ident() != thread:
                return
            if not isinstance(out, torch.Tensor):
                raise CaptureError(f"taps[{index}] ({type(module).__name__}) returned {type(out).__name__}, not a "
                                   "tensor; choose a module whose output is the hidden layer's activation")
            fired[index].append((out.detach().clone(), recorder.node_of(out)))
        return hook

    handles = [module.register_forward_hook(hook_for(i)) for i, module in enumerate(taps)]
    if head is not None:
        handles.append(head.register_forward_hook(head_hook))
    try:
        model.eval()
        with torch.no_grad(), recorder:
            recorder.tag(x, recorder.input_node)
            recorder.input_tensor = x
            result = model(x) if predict is None else predict(model, x)
            chosen = select_output(result, output)
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes.items():
            module.training = mode
    node = _head_checked(recorder.node_of(chosen), head, len(head_calls))
    if node is None:
        via = "predict(model, x)" if predict is not None else f"{type(model).__name__}.forward"
        raise CaptureError(f"the output chosen from {via} ({_summarise(result)}) does not depend on the input x "
                           "through the operations seen; check output= (or predict=)")
    return _Pass(chosen, node, recorder, fired)


def _head_checked(node: _Node | None, head: nn.Module | None, calls: int) -> _Node | None:
    """The output's node, after checking that certify_from ran once and that the output reads it."""
    if head is None:
        return node
    if calls != 1:
        raise CaptureError(f"certify_from ({type(head).__name__}) " + (
            "never ran: name a module that forward (or predict) calls" if not calls else
            f"ran {calls} times: name the module whose single output the head reads"))
    if node is None or not node.head:
        raise CaptureError(f"the output does not depend on the output of certify_from ({type(head).__name__}): "
                           "name the module whose output the head reads")
    return node


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
    certify_from: tuple[str, nn.Module] | None = None  # the head's input is this module's output, at each epoch
    one_hot: OneHotInput | None = None  # layer 1 reads the one-hot expansion of integer input ids
    executed: list[tuple[str, str]] = field(default_factory=list)  # (module, op) on the input's path, in order
    not_folded: list[NotFolded] = field(default_factory=list)  # why nothing is certified (empty: certified)
    head_start: int | None = None  # certify_from=: where the head's first affine map is in ``executed``
    #: the note (one of ``notes``) that the output passes through ``output_link``: dropped by a loss that absorbs it
    link_note: str | None = None

    @property
    def certified(self) -> bool:
        """False when forward runs operations the construction cannot fold: no bound is a certificate."""
        return not self.not_folded

    @property
    def output_link(self) -> str | None:
        """``sigmoid``, ``log_softmax`` or ``softmax`` when the output passes through that alone after
        the last affine map (a loss on its output can absorb it: BCELoss after a sigmoid is BCE on
        the logits); else None."""
        last = self.layers[-1] if self.layers else None
        if last is None or last.before_activation:
            return None
        name = None if last.activation is None else _activation_label(last.activation)
        if name == "sigmoid" and not last.after:
            return "sigmoid"
        if name is None and last.after in (["log_softmax"], ["softmax"]):
            return last.after[0]
        return None

    @property
    def head(self) -> bool:
        """True when only the head after ``certify_from`` is certified, given its current input features."""
        return self.certify_from is not None

    def bounds_input(self, X: torch.Tensor) -> torch.Tensor:
        """What layer 1 of the YES network reads (N × n): the flattened input, or the one-hot expansion of
        the ids an embedding reads (``X`` the model input; with certify_from= the features are captured)."""
        if self.one_hot is not None and not self.head:
            return self.one_hot.expand(X)
        return X.reshape(X.shape[0], -1)

    def suggestion(self) -> str:
        """The option that certifies the head on top of what does not fold."""
        if self.certify_from is not None:
            return (f"the head after certify_from={self.certify_from[0]!r} is not certifiable either; name a module "
                    "whose output the head reads as one vector per sample, through affine layers and activations")
        paths = [item.path.split(".")[0] for item in self.not_folded if item.path]
        named = f"certify_from={paths[-1]!r}" if paths else "certify_from=<module>"
        return (f"pass {named} (the module whose output the head reads) to certify the head given the current "
                "features")

    def reason(self) -> str:
        """Why there is no verdict, in one line ('' when certified)."""
        if self.certified:
            return ""
        ops = "; ".join(str(item) for item in self.not_folded)
        return (f"the YES construction cannot represent this model (it folds only affine maps and element-wise "
                f"activations into its layers): {ops}. So no bound is a certificate; {self.suggestion()}")

    def not_covered(self) -> str:
        """What the verdict does not cover, in one line."""
        if not self.certified:
            return "everything: " + "; ".join(f"{item.op} in {item.module}" for item in self.not_folded)
        if self.head:
            assert self.certify_from is not None
            name, module = self.certify_from
            return (f"everything forward runs up to the output of certify_from={name!r} ({type(module).__name__}): "
                    f"{_executed_text(self.features_ops())}; the verdict is for the head given current features")
        if self.taps is not None:
            return ("what runs between the taps is taken as the layers named by taps= (executed: "
                    f"{_executed_text(self.executed)})")
        if self.prelude:
            return (f"the operations before layer 1 ({', '.join(dict.fromkeys(self.prelude))}): layer 1 is fitted "
                    "from the raw input")
        return "nothing: every operation on the path to the output is part of the layers above"

    def features_ops(self) -> list[tuple[str, str]]:
        """With certify_from=: the (module, op) pairs that make the head's input features."""
        if self.certify_from is None:
            return []
        return self.executed[: self.head_start] if self.head_start is not None else list(self.executed)

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
        if not self.certified:
            lines = [f"Not certified (no verdict): {source} runs operations the YES construction cannot fold.",
                     f"  executed, in forward order: {_executed_text(self.executed)}"]
            lines += [f"  not covered: {item}" for item in self.not_folded]
            lines.append(f"  {self.suggestion()}")
            return "\n".join(lines)
        if self.head:
            assert self.certify_from is not None
            name, module = self.certify_from
            lines = [f"Certified: the head given current features: {self.depth} affine layer(s) after "
                     f"certify_from={name!r} ({type(module).__name__}), traced from what {source} executed, in order.",
                     f"  features (not certified, taken as they are at each epoch): "
                     f"{_executed_text(self.features_ops())}",
                     f"  X: the head's input at each epoch, {shape} per sample → {self.input_features} features"]
        elif self.one_hot is not None:
            lines = [f"Certified network: {self.depth} affine layer(s), traced from what {source} executed, in order.",
                     f"  X: the model input, {shape} integer ids per sample, read by {self.one_hot.module}: "
                     f"layer 1 reads their one-hot expansion, {shape} × {self.one_hot.columns} → "
                     f"{self.input_features} features"]
        else:
            lines = [f"Certified network: {self.depth} affine layer(s), traced from what {source} executed, in order.",
                     f"  X: the model input, {shape} per sample → {self.input_features} features (flattened)"]
        if self.prelude:
            lines.append("  before layer 1, part of it (layer 1 is fitted from the raw input): "
                         + ", ".join(self.prelude))
        for layer in self.layers:
            head = f"  layer {layer.index}: {' → '.join(layer.affine)}"
            head += "".join(f" → {op}" for op in layer.before_activation)
            if layer.activation is not None and layer.index < self.depth:
                tail = (f" → {_activation_label(layer.activation)} [{layer.site}] = hidden output {layer.index}, "
                        f"width {layer.width}")
            elif layer.activation is not None:  # an output activation (noted below)
                tail = f" → {_activation_label(layer.activation)} → output, {layer.width} features"
            else:
                tail = f" → output, {layer.width} features"
            extra = f"; then {', '.join(layer.after)}" if layer.after else ""
            lines.append(head + tail + extra)
        chosen = "" if self.output is None else f" (output={self.output!r})"
        activation = _activation_label(self.activation) if self.activation is not None else "none"
        lines.append(f"  Y is compared with the output{chosen}; activation {activation}, "
                     f"bias {'yes' if self.bias else 'no'}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


def trace(model: nn.Module, example_input: Any, *, predict: Predict | None = None,
          output: OutputSelector = None, include_conv: bool = False,
          taps: Sequence[nn.Module | str] | None = None,
          activation: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
          certify_from: nn.Module | str | None = None, strict: bool = True) -> CapturePlan:
    """Discover the certified network from one pass on ``example_input`` (a few samples, samples first).

    ``predict(model, x)``: the trained map when it is not ``forward``; ``output``:
    which part of the result is compared with Y (index, key or callable);
    ``include_conv``: count convolutions as affine layers (hidden = their feature maps);
    ``taps``: instead of discovery, the L-1 submodules (or their dotted names) whose
    outputs are the hidden layers, each called once per forward; ``activation``: the
    activation the bounds use (a name such as ``"relu"`` or an element-wise callable)
    instead of the one found; ``certify_from``: a submodule (or its dotted name) whose output at
    each epoch is the head's input: the head is certified given those current features.
    ``strict=False``: a model running operations the construction cannot fold (recurrent,
    attention, LayerNorm, residual sums, gates) gives a plan that is not ``certified``, with the
    reasons in ``not_folded``, instead of an error.
    Raises :class:`CaptureError` naming what was found and the option that fixes it.
    """
    tap_modules, head = _trace_options(model, predict, taps, certify_from)
    chosen_activation = _resolve_activation(activation)
    x = _prepare_input(model, example_input)
    run = _run(model, x, predict, output, include_conv=include_conv, describe=True,
               taps=[m for _, m in tap_modules or ()], head=None if head is None else head[1])
    if run.output.ndim < 1 or run.output.shape[0] != x.shape[0]:
        raise CaptureError(f"the output has shape {tuple(run.output.shape)} for {x.shape[0]} input samples: it must "
                           "hold one row per sample; choose another with output= or predict=")
    chain = run.node.chain()
    problems = [node for node in chain + [run.node] if node.problem]
    if tap_modules is None and chain and problems and not strict and not any(n.folds for n in problems):
        return _uncovered_plan(model, run, x, predict, output, include_conv, head)
    if tap_modules is not None:
        layers = _layers_from_taps(run, tap_modules, x.shape[0])
    else:
        layers = _layers_from_chain(run, include_conv)
    missing = [layer.index for layer in layers[:-1] if layer.activation is None]
    fallback = chosen_activation or (layers[0].activation if layers[0].activation is not None else Activation("relu"))
    for layer in layers[:-1]:
        layer.activation = chosen_activation or layer.activation or fallback
    features = chain[0].source if head is not None else None
    shape = tuple(x.shape[1:]) if features is None else tuple(features.shape[1:])
    recorder = run.recorder
    plan = CapturePlan(layers=layers, input_shape=shape, input_features=_numel(shape),
                       output_features=int(run.output[0].numel()), prelude=list(run.node.root().ops),
                       predict=predict, output=output, include_conv=include_conv, model_name=type(model).__name__,
                       taps=tap_modules, certify_from=head, one_hot=recorder.embedding,
                       executed=list(recorder.executed), head_start=recorder.head_start)
    if head is not None:  # what runs before the head's first affine map is part of its input features
        plan.prelude = []
    if recorder.embedding is not None and head is None:
        plan.input_features = _numel(plan.input_shape) * recorder.embedding.columns
    plan.notes = _notes(plan, run.node if tap_modules is None else None)
    if tap_modules is not None and recorder.not_folded:
        plan.notes.append(_taps_over_unfolded_note(recorder))
    if missing and chosen_activation is None:
        plan.notes.append(f"the tap(s) of layer(s) {missing} are not the output of an activation; the bounds use "
                          f"{plan.activation} (pass activation=… if the network uses another)")
    return plan


def _trace_options(model: nn.Module, predict: Predict | None, taps: Sequence[nn.Module | str] | None,
                   certify_from: nn.Module | str | None
                   ) -> tuple[list[tuple[str, nn.Module]] | None, tuple[str, nn.Module] | None]:
    """trace()'s options checked: the resolved taps and the certify_from module (name, module)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if predict is not None and not callable(predict):
        raise TypeError(f"predict must be a callable predict(model, x) -> output; got {type(predict).__name__}")
    tap_modules = _resolve_taps(model, taps) if taps is not None else None
    head = _resolve_taps(model, [certify_from], "certify_from")[0] if certify_from is not None else None
    if head is not None and tap_modules is not None:
        raise ValueError("give taps= or certify_from=, not both: with certify_from= the head's hidden layers "
                         "are read from what it executes")
    return tap_modules, head


def _taps_over_unfolded_note(recorder: _Recorder) -> str:
    ops = "; ".join(str(item) for item in _distinct(recorder.not_folded))
    return (f"forward runs operations the YES construction cannot fold ({ops}); with taps= the YES "
            "network may not fit inside this architecture, so YES-0 is a reference, not a certificate")


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= int(size)
    return count


def _uncovered_plan(model: nn.Module, run: _Pass, x: torch.Tensor, predict: Predict | None, output: OutputSelector,
                    include_conv: bool, head: tuple[str, nn.Module] | None) -> CapturePlan:
    """The plan of a model the construction cannot represent: no layers are certified, only the output is read."""
    m = int(run.output[0].numel())
    whole = LayerInfo(1, ("the whole model (not covered)",), None, None, m, True)
    return CapturePlan(layers=[whole], input_shape=tuple(x.shape[1:]), input_features=int(x[0].numel()),
                       output_features=m, prelude=[], predict=predict, output=output, include_conv=include_conv,
                       model_name=type(model).__name__, certify_from=head, executed=list(run.recorder.executed),
                       not_folded=_distinct(run.recorder.not_folded))


def _distinct(items: list[NotFolded]) -> list[NotFolded]:
    """One entry per (op, module): a module called at every time step or in every block is named once."""
    seen: dict[tuple[str, str], NotFolded] = {}
    for item in items:
        seen.setdefault((item.op, item.module), item)
    return list(seen.values())


def _resolve_activation(activation: str | Activation | Callable[[torch.Tensor], torch.Tensor] | None
                        ) -> Activation | Callable[[torch.Tensor], torch.Tensor] | None:
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


def _resolve_taps(model: nn.Module, taps: Sequence[nn.Module | str],
                  option: str = "taps") -> list[tuple[str, nn.Module]]:
    if option != "taps":  # certify_from=: one module, named as such in the messages
        if not isinstance(taps[0], (str, nn.Module)):
            raise TypeError(f"certify_from must be a submodule or its dotted name; got {type(taps[0]).__name__}")
        try:
            return _resolve_taps(model, taps)
        except CaptureError as exc:
            raise CaptureError(str(exc).replace("taps[0]", "certify_from")) from None
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
                               "whose outputs are the hidden layers), predict= to certify a part of the model "
                               "that is such a chain, or certify_from= (the module whose output the head reads) "
                               "to certify the head given the current features")
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
                                node.activation if activated and node is not None else None, name,
                                int(tensor[0].numel()),
                                True if node is None else node.bias or node.layer == 0))
    bias = run.node.bias if run.node.chain() else True
    layers.append(LayerInfo(len(taps) + 1, ("… after the last tap, to the output",), None, None,
                            int(run.output[0].numel()), bias))
    return layers


def _fired_once(run: _Pass, taps: list[tuple[str, nn.Module]], n: int, where: str
                ) -> list[tuple[torch.Tensor, _Node | None]]:
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


def _activation_label(activation: Any) -> str:
    """An activation by its name: ``gelu(approximate='tanh')``, ``GELU`` (a module as a function), ``relu``."""
    if isinstance(activation, (str, Activation)):
        return str(activation)
    return str(getattr(activation, "__name__", None) or type(activation).__name__)


def _executed_text(executed: list[tuple[str, str]]) -> str:
    """``emb (Embedding): embedding; lstm (LSTM): lstm; head (Linear): linear``, consecutive ops of a module joined."""
    groups: list[tuple[str, list[str]]] = []
    for module, op in executed:
        if op in _SILENT_NAMES:
            continue
        if groups and groups[-1][0] == module:
            if groups[-1][1][-1] != op:
                groups[-1][1].append(op)
        else:
            groups.append((module, [op]))
    return "; ".join(f"{module}: {', '.join(ops)}" for module, ops in groups) or "nothing"


def _notes(plan: CapturePlan, last: _Node | None) -> list[str]:
    notes = []
    embedding = plan.one_hot
    if embedding is not None and not plan.head and embedding.dim < embedding.columns:
        notes.append(f"{embedding.module} maps each id's one-hot expansion ({embedding.columns} values) to "
                     f"{embedding.dim} features, narrower than the expansion: the YES-0 network (layer 1 fitted "
                     "from the one-hot input) does not fit inside this architecture, so YES-0 is a reference, "
                     "not a certificate")

    kinds = {str(layer.activation) for layer in plan.layers[:-1] if layer.activation is not None}
    if len(kinds) > 1:
        notes.append(f"the hidden layers use different activations ({', '.join(sorted(kinds))}); the bounds "
                     f"use {plan.activation} between every pair of layers")
    link = plan.output_link
    if last is not None and last.activated:
        note = (f"the output passes through {last.activation} after the last affine layer; the YES "
                "network's last layer is linear, so YES-0 is a reference, not a certificate "
                "(pick the pre-activation output with output= or predict= if forward returns it)")
        notes.append(note)
        if link is not None:
            plan.link_note = note
    if {layer.bias for layer in plan.layers} == {True, False}:
        notes.append("some layers have a bias and some do not; the bounds fit every layer with a bias")
    strange = [op for op in (last.ops if last is not None else []) if op not in _AFFINE_LIKE]
    if strange:
        notes.append(f"the output passes through {', '.join(dict.fromkeys(strange))} after the last affine layer; "
                     "the YES network's last layer is affine, so YES-0 is a reference, not a certificate (choose "
                     "the tensor before it with output= or predict= if forward returns it)")
        if link is not None:
            plan.link_note = notes[-1]
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

    With ``certify_from=`` the head's input features (N × n) come first; a plan that is not
    ``certified`` gives no hidden outputs.

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
    count = 0 if not plan.certified else plan.depth - 1 + int(plan.head)
    hidden_chunks: list[list[torch.Tensor]] = [[] for _ in range(count)]
    outputs = []
    for start in range(0, X.shape[0], chunk_size):
        x = X[start:start + chunk_size]
        run = _run(model, x, predict, output, include_conv=plan.include_conv, describe=False,
                   taps=[m for _, m in plan.taps or ()],
                   head=None if plan.certify_from is None else plan.certify_from[1])
        if not plan.certified:  # nothing to certify: only the output is judged
            taps = []
        elif plan.taps is not None:
            where = f"samples {start}…{start + x.shape[0] - 1}"
            taps = [t for t, _ in _fired_once(run, plan.taps, x.shape[0], where)]
            for i, (tap, width) in enumerate(zip(taps, plan.hidden_widths)):
                if tap[0].numel() != width:
                    raise CaptureError(f"on {where}, taps[{i}] gave {tap[0].numel()} features per sample, "
                                       f"not the {width} traced")
        else:
            taps = _check_pass(run, plan, x.shape[0], start)
            if plan.head:
                taps = [_head_input(run, plan, x.shape[0], start), *taps]
        for i, tap in enumerate(taps):
            hidden_chunks[i].append(tap.reshape(tap.shape[0], -1))
        outputs.append(run.output.reshape(run.output.shape[0], -1))
    hidden = [chunks[0] if len(chunks) == 1 else torch.cat(chunks) for chunks in hidden_chunks]
    return hidden, outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _head_input(run: _Pass, plan: CapturePlan, n: int, start: int) -> torch.Tensor:
    """The tensor the head's first affine map read on this pass (certify_from=)."""
    source = run.node.chain()[0].source
    if source is None or source.shape[0] != n or source[0].numel() != plan.input_features:
        shape = None if source is None else tuple(source.shape)
        raise CaptureError(f"on samples {start}…{start + n - 1} the head's input has shape {shape}, expected "
                           f"{n} × {plan.input_features} (as traced)")
    return source


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
