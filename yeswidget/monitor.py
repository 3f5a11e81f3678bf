"""The monitor: subscribes to any PyTorch training loop through public hooks.

The only module that touches the user's model and optimizer. It imports no UI
library: a script gets the same verdicts through :class:`TextPrinter`.

    monitor = Monitor(model, X, Y, optimizer=opt)
    for epoch in monitor.epochs(200):
        for xb, yb in loader:
            ...; opt.step(); monitor.log(loss)

Every loss the monitor judges is the metric E of YES-BOUNDS.md measured on the
*certification set* (the X, Y given, or a fixed seeded subset of them), the same
samples the bounds are computed on; minibatch losses are only drawn.
"""
from __future__ import annotations

import math
import queue
import sys
import threading
import time
import traceback as traceback_module
import uuid
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

import torch
from torch import nn

from ._handle import Handle
from .bounds import YesCloud
from .distributed import all_reduce_sum, is_distributed, is_main_process, union_mean
from .run import EpochEvent, EpochRecord, Run, StatusEvent, StepEvent, to_db

__all__ = ["Monitor", "TextPrinter", "ZONE_WORDS", "discover_layers", "LayerPlan", "UnsupportedModelError"]

#: one-line meaning of each zone (paper's readings)
ZONE_WORDS = {
    "red": "above YES-0: ineffective, the data has not shaped the weights yet",
    "yellow": "inside the cloud: meaningful training, not optimal",
    "green": "below the lower edge: effective training, maybe diminishing returns",
}

_ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.SiLU, nn.Softplus, nn.ReLU6,
    nn.Hardtanh, nn.SELU, nn.CELU, nn.Mish,
)
# layers that are the identity at evaluation time or only reshape the input
_PASSTHROUGH_TYPES: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Identity, nn.Flatten, nn.AlphaDropout)
# loss modules registered on a model (common in LightningModules) are not layers
_IGNORED_TYPES: tuple[type, ...] = _PASSTHROUGH_TYPES + (nn.modules.loss._Loss,)


class UnsupportedModelError(ValueError):
    """The monitor cannot read the model's layers; the message says how to pass ``taps``."""


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
    others = [m for m in leaves if not isinstance(m, (nn.Linear,) + _ACTIVATION_TYPES)]
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
            if not isinstance(nxt, _ACTIVATION_TYPES):
                raise UnsupportedModelError(
                    f"{type(model).__name__}: Linear layer {len(taps) + 1} is followed by {type(nxt).__name__}, "
                    f"not by an element-wise activation module (an activation applied with torch.relu inside "
                    f"forward() cannot be seen by hooks); found {_describe(leaves)}. {how}"
                )
            taps.append(nxt)
            activations.append(nxt)
        elif isinstance(leaf, _ACTIVATION_TYPES) and isinstance(leaves[i + 1], _ACTIVATION_TYPES):
            raise UnsupportedModelError(f"two activations in a row in {type(model).__name__}: {_describe(leaves)}. {how}")
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


# --------------------------------------------------------------------------- #
# the certification set
# --------------------------------------------------------------------------- #
def _read_pairs(data: Iterable, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for item in data:
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise TypeError(f"{what} must yield (input, target) pairs; got an item of type {type(item).__name__}")
        x, y = item[0], item[1]
        xs.append(torch.as_tensor(x))
        ys.append(torch.as_tensor(y))
    if not xs:
        raise ValueError(f"{what} is empty: the certification set needs samples")
    # inputs keep the model's shape (a CNN needs N × C × H × W); targets become N × m
    if what == "DataLoader":
        return torch.cat(xs), torch.cat([y.reshape(y.shape[0], -1) for y in ys])
    return torch.stack(xs), torch.stack([y.reshape(-1) for y in ys])


def _certification_set(X, Y, max_samples: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    source = "tensors"
    if Y is None:
        if isinstance(X, torch.utils.data.DataLoader):
            X, Y = _read_pairs(X, "DataLoader")
            source = "DataLoader"
        elif isinstance(X, torch.utils.data.Dataset):
            X, Y = _read_pairs((X[i] for i in range(len(X))), "Dataset")  # type: ignore[arg-type]
            source = "Dataset"
        else:
            raise TypeError(
                "give the certification data as Monitor(model, X, Y) with tensors, or Monitor(model, dataset) "
                f"with a Dataset/DataLoader of (input, target) pairs; got X of type {type(X).__name__} and no Y"
            )
    for name, value in (("X", X), ("Y", Y)):
        if not isinstance(value, torch.Tensor):
            try:
                import numpy as np

                if isinstance(value, np.ndarray):
                    continue
            except ImportError:  # pragma: no cover
                pass
            raise TypeError(f"{name} must be a torch.Tensor (N × features); got {type(value).__name__}")
    X, Y = torch.as_tensor(X), torch.as_tensor(Y)
    if Y.ndim == 1:
        raise ValueError(
            f"Y has shape {tuple(Y.shape)}: the YES bounds need targets as N × m (use Y.reshape(-1, 1) for one output)"
        )
    if X.ndim < 2:
        raise ValueError(f"X has shape {tuple(X.shape)}: expected N samples first (N × features)")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but Y has {Y.shape[0]}; they must be the same samples")
    total = X.shape[0]
    info = {"source": source, "n_samples": total, "of": total, "subset": False, "seed": None}
    if max_samples is not None:
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 2:
            raise ValueError(f"max_samples must be an int ≥ 2 or None; got {max_samples!r}")
        if total > max_samples:
            generator = torch.Generator().manual_seed(seed)
            index = torch.randperm(total, generator=generator)[:max_samples].sort().values
            X, Y = X[index], Y[index]
            info.update(n_samples=max_samples, subset=True, seed=seed)
    return X, Y, info


def describe_certification(info: dict) -> str:
    """One line for the UI: which samples the bounds and the epoch loss use."""
    if info.get("subset"):
        return (f"bounds and epoch loss on a fixed random subset of {info['n_samples']} of the "
                f"{info['of']} training samples (seed {info['seed']})")
    return f"bounds and epoch loss on all {info['n_samples']} training samples"


# --------------------------------------------------------------------------- #
# the monitor
# --------------------------------------------------------------------------- #
_STOP = object()


class Monitor:
    """Watch a training loop and compute the YES cloud epoch by epoch.

    ``model``: an MLP-style stack (nested containers allowed) or any model with
    ``taps=[module, …]`` naming the L-1 hidden-layer outputs. ``X`` (N × n),
    ``Y`` (N × m): the certification set (or a Dataset/DataLoader as ``X``).
    ``every``: ``"auto"`` (YES-k at epoch 1, then whenever the monitor's time so far,
    YES-0, the epoch-end passes and the updates, plus one more update fits in
    ``budget`` = 20% of the wall time), or an int k (YES-k recomputed at epoch 1
    and every k-th epoch; 1 = the paper).
    ``max_samples``: certify on a fixed seeded subset of at most that many samples.
    ``optimizer``: counts steps and reads the learning rate through
    ``register_step_post_hook``. ``epochs``: the planned number (for progress).
    ``background``: compute YES-k in a worker thread (the loop never waits; on
    Linux the worker runs at a lower priority so it takes idle CPU first).
    ``loss_reduction``: how the minibatch losses given to :meth:`log` were reduced
    (``"mean"`` or ``"sum"`` as in ``MSELoss``), so they are drawn in the metric E;
    None: they already are (or are drawn as given). They are never judged.
    ``confirm_green``: with ``every="auto"``, recompute YES-k (outside the budget) at an
    epoch whose loss drops below a lower edge at least two epochs old, so a move into
    green is judged against a fresh edge (a stale edge sits higher and calls green early).
    """

    def __init__(
        self,
        model: nn.Module,
        X: Any,
        Y: Any = None,
        *,
        taps: Sequence[nn.Module] | None = None,
        every: int | str = "auto",
        max_samples: int | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        epochs: int | None = None,
        bias: bool | None = None,
        activation: Any = None,
        dtype: torch.dtype | str = torch.float64,
        background: bool = True,
        budget: float = 0.2,
        seed: int = 0,
        loss_reduction: str | None = None,
        confirm_green: bool = False,
        config: dict | None = None,
        cloud: YesCloud | None = None,
        run_id: str | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if every != "auto" and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"every must be 'auto' or an int ≥ 1 (epochs between bound updates); got {every!r}")
        if not 0 < budget <= 1:
            raise ValueError(f"budget must be in (0, 1] (fraction of wall time for bounds); got {budget!r}")
        if loss_reduction not in (None, "mean", "sum"):
            raise ValueError(
                f"loss_reduction must be None (logged losses are already the metric E), 'mean' "
                f"(MSELoss(reduction='mean')) or 'sum' (MSELoss(reduction='sum')); got {loss_reduction!r}"
            )
        self.loss_reduction = loss_reduction
        self.confirm_green = bool(confirm_green)
        self._last_update_epoch = 0
        self.model = model
        self.every = every
        self.budget = float(budget)
        self.background = bool(background)
        self.epochs_total: int | None = epochs
        self._handles: list[Any] = []
        self._subscribers: list[Callable[[Any], None]] = []
        self._lock = threading.RLock()
        self._closed = False

        # --- the layers -------------------------------------------------------
        if taps is None:
            self.plan = discover_layers(model)
        else:
            taps = list(taps)
            if not taps or not all(isinstance(t, nn.Module) for t in taps):
                raise TypeError("taps must be a non-empty list of nn.Module objects (the hidden-layer outputs)")
            inferred = activation
            if inferred is None:
                kinds = {type(t) for t in taps}
                if len(kinds) == 1 and issubclass(next(iter(kinds)), _ACTIVATION_TYPES):
                    inferred = "relu" if isinstance(taps[0], nn.ReLU) else taps[0]
                else:
                    inferred = "relu"
                    warnings.warn("taps are not activation modules: the bounds assume ReLU between layers "
                                  "(pass activation=… if the network uses another)", stacklevel=2)
            if bias is None and not any(getattr(m, "bias", None) is not None for m in model.modules()
                                        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))):
                bias = False  # no layer has a bias: neither do the least-squares layers
            self.plan = LayerPlan(taps=taps, depth=len(taps) + 1, bias=True if bias is None else bool(bias),
                                  activation=inferred, widths=[], output_width=None, auto=False)
        if bias is not None:
            self.plan.bias = bool(bias)
        if activation is not None:
            self.plan.activation = activation
        self.depth = self.plan.depth

        # --- the data ---------------------------------------------------------
        X, Y, self.certification = _certification_set(X, Y, max_samples, seed)
        self.device = _model_device(model)
        param_dtype = _model_dtype(model)
        # the forward pass needs the model's dtype; the bounds and the judged loss use the data
        # as given (a bfloat16 copy of Y would move YES-0 by ~1e-4)
        self.X = X.to(self.device, dtype=param_dtype)
        self.Y = Y.to(self.device, dtype=param_dtype)
        self._X_data = X.to(self.device).reshape(X.shape[0], -1)
        self._Y_data = Y.to(self.device)
        self.N = self.X.shape[0]
        # --- torch.distributed: each rank passes its shard; the cloud and the epoch loss are those
        # of the union, every collective runs in the training thread in the same order on every
        # rank (so no background worker), and only global rank 0 emits events ---
        self._distributed = is_distributed()
        if self._distributed:
            self.background = False

        # --- hooks ------------------------------------------------------------
        self._capturing = False
        self._captured: list[torch.Tensor | None] = [None] * len(self.plan.taps)
        self._tap_calls = [0] * len(self.plan.taps)
        for index, module in enumerate(self.plan.taps):
            self._handles.append(module.register_forward_hook(self._make_tap(index)))
        self._handles.append(model.register_forward_pre_hook(self._on_forward))
        self.optimizer = optimizer
        try:
            if optimizer is not None:
                self.attach_optimizer(optimizer)

            # --- check the model against the data before training -------------
            try:
                hidden, output = self._forward_certification(limit=min(self.N, 64))
            except Exception as exc:
                raise ValueError(
                    f"the model cannot process X (shape {tuple(self.X.shape)}): {type(exc).__name__}: {exc}. "
                    "X must be the model's input, samples first"
                ) from exc
            self._check_fit(hidden, output)
            if not self.plan.widths:  # taps given: read the widths from the check pass
                self.plan.widths = [int(h.shape[1]) for h in hidden]
                self.plan.output_width = int(output.shape[1])
            narrow = [h for h in self.plan.widths if h < (self.plan.output_width or 0)]
            self._warnings = []
            if narrow:
                msg = (f"hidden width {min(narrow)} is narrower than the output width {self.plan.output_width}: "
                       "the YES-0 network does not fit inside this architecture, so YES-0 is a reference, "
                       "not a certificate")
                warnings.warn(msg, stacklevel=2)
                self._warnings = [msg]

            # --- the cloud (YES-0 once) ---------------------------------------
            t0 = time.perf_counter()
            if cloud is not None:
                if cloud.depth != self.depth or cloud.N != self.N:
                    raise ValueError(f"cloud was built for depth {cloud.depth} on {cloud.N} samples; this model "
                                     f"has depth {self.depth} and the certification set {self.N} samples")
                # a cloud built on another device (e.g. the task's CPU tensors) follows the model
                self.cloud = cloud if cloud.device == self.device else cloud.to(self.device)
            else:
                activation = self.plan.activation
                if isinstance(activation, nn.Module):
                    # the module is also a tap: calling it would fire the monitor's own hook
                    activation = _hook_free(activation)
                self.cloud = YesCloud(self._X_data, self._Y_data, self.depth, bias=self.plan.bias,
                                      activation=activation, dtype=dtype)
        except BaseException:
            # a monitor that fails to start leaves nothing behind on the model or optimizer
            for handle in self._handles:
                handle.remove()
            self._handles.clear()
            raise
        yes0_seconds = time.perf_counter() - t0

        # --- the run record ---------------------------------------------------
        full_config = {
            "depth": self.depth, "bias": self.plan.bias, "widths": list(self.plan.widths),
            "activation": self.plan.activation if isinstance(self.plan.activation, str)
            else type(self.plan.activation).__name__,
            "every": every, "max_samples": max_samples, "n_samples": self.cloud.N,
            "optimizer": type(optimizer).__name__.lower() if optimizer is not None else None,
            "epochs": epochs,
        }
        if optimizer is not None:
            full_config["lr"] = float(optimizer.param_groups[0]["lr"])
        full_config.update(config or {})
        self.run = Run(
            run_id=run_id or uuid.uuid4().hex[:8], config=full_config, depth=self.depth, upper=self.cloud.upper,
            layer_errors=list(self.cloud.layer_errors), certification=dict(self.certification,
                                                                             text=describe_certification(self.certification)),
            timings={"yes0_seconds": yes0_seconds, "bounds_seconds": 0.0, "certify_seconds": 0.0},
            warnings=list(self._warnings),
        )

        # --- step bookkeeping --------------------------------------------------
        self.step = 0
        self.epoch = 0  # completed epochs
        self.lr: float | None = full_config.get("lr")
        self.batch_size: int | None = None
        self._pending: list[tuple[int, Any]] = []  # (step index within epoch, loss tensor/float)
        self._steps_this_epoch = 0
        self.steps_per_epoch: int | None = None
        self._last_flush = time.perf_counter()
        self._t_start: float | None = None
        self._bounds_seconds = 0.0
        self._last_bounds_cost = 0.0
        self.stop_requested = False
        self._discard_epoch = False
        self._Y_metric: torch.Tensor | None = None  # Y in the bounds' dtype, for the epoch loss
        self.error: BaseException | None = None

        # --- worker ------------------------------------------------------------
        self._queue: queue.Queue = queue.Queue()
        # at most two epochs' hidden activations wait for the worker: when it falls behind
        # (every=1 on a fast loop) the loop waits instead of memory growing without limit
        self._hidden_slots = threading.BoundedSemaphore(2)
        self._worker: threading.Thread | None = None
        self._inflight = 0
        self._inflight_cond = threading.Condition()
        if verbose:
            self.subscribe(TextPrinter())

    # ------------------------------------------------------------------ hooks
    def _make_tap(self, index: int):
        def tap(module, inputs, output):
            if self._capturing:
                if not isinstance(output, torch.Tensor):
                    raise TypeError(f"tap {index} ({type(module).__name__}) returned {type(output).__name__}, "
                                    "not a tensor; choose a module whose output is the hidden activation")
                self._captured[index] = output.detach()
                self._tap_calls[index] += 1
        return tap

    def _on_forward(self, module, args):
        # training-time batch size, read from the model's own input (no sync)
        # (only forward passes that build a graph: an evaluation pass under no_grad is not a step)
        if (not self._capturing and torch.is_grad_enabled() and args and isinstance(args[0], torch.Tensor)
                and args[0].ndim >= 1):
            self.batch_size = int(args[0].shape[0])

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> Handle:
        """Count steps and read the learning rate after every ``optimizer.step()``."""
        if not hasattr(optimizer, "register_step_post_hook"):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}")
        self.optimizer = optimizer

        def after_step(opt, args, kwargs):
            self.lr = float(opt.param_groups[0]["lr"])
            self._count_step()

        handle = optimizer.register_step_post_hook(after_step)
        self._handles.append(handle)
        return Handle(handle.remove)

    # ------------------------------------------------------------ forward pass
    def _forward_certification(self, limit: int | None = None, chunk: int = 8192):
        """Hidden outputs (list of N × h) and model output on the certification set."""
        X = self.X if limit is None else self.X[:limit]
        was_training = {m: m.training for m in self.model.modules()}
        self._tap_calls = [0] * len(self.plan.taps)
        hidden_chunks: list[list[torch.Tensor]] = [[] for _ in self.plan.taps]
        outputs = []
        self._capturing = True
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
        # (one chunk, the usual case: no copy; these tensors are fresh outputs of a no-grad pass)
        hidden = [(chunks[0] if len(chunks) == 1 else torch.cat(chunks)) if chunks else None
                  for chunks in hidden_chunks]
        outputs = [o.reshape(o.shape[0], -1) for o in outputs]
        output = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        return hidden, output

    def _check_fit(self, hidden, output) -> None:
        silent = [i for i, h in enumerate(hidden) if h is None]
        if silent:
            names = ", ".join(f"taps[{i}] ({type(self.plan.taps[i]).__name__})" for i in silent)
            raise UnsupportedModelError(
                f"{names} never fired during a forward pass of the model on X: pass modules that the model's "
                "forward() actually calls, one per hidden layer, in order"
            )
        repeated = [i for i, n in enumerate(self._tap_calls) if n > 1]
        if repeated:
            raise UnsupportedModelError(
                f"taps[{repeated[0]}] ({type(self.plan.taps[repeated[0]]).__name__}) fired "
                f"{self._tap_calls[repeated[0]]} times in one forward pass: a module used at several depths "
                "cannot tell the layers apart; give each hidden layer its own module"
            )
        if output.shape[1] != self.Y.shape[1]:
            raise ValueError(
                f"the model's output has {output.shape[1]} features per sample but Y has {self.Y.shape[1]} "
                f"(Y shape {tuple(self.Y.shape)}); Y must be the targets the model is trained to produce"
            )

    # ------------------------------------------------------------------ steps
    def _count_step(self) -> None:
        self.step += 1
        self._steps_this_epoch += 1

    def log(self, loss: Any = None, *, lr: float | None = None, batch_size: int | None = None) -> None:
        """Record one training step's minibatch loss (a tensor or float; no device sync).

        Without an optimizer attached, each call also counts a step.
        """
        if self._t_start is None:
            self._start()
        if self.optimizer is None:
            self._count_step()
        if lr is not None:
            self.lr = float(lr)
        if batch_size is not None:
            self.batch_size = int(batch_size)
        if loss is not None:
            if isinstance(loss, torch.Tensor):
                loss = loss.detach()
                if loss.numel() != 1:
                    raise ValueError(f"log(loss) expects a scalar loss; got a tensor of shape {tuple(loss.shape)}")
            else:
                loss = float(loss)
            # drawn in the metric E so the minibatch line sits on the cloud's scale
            if self.loss_reduction == "mean":
                loss = loss * self.Y.shape[1]
            elif self.loss_reduction == "sum" and self.batch_size:
                loss = loss / self.batch_size
            self._pending.append((self._steps_this_epoch, self.epoch, loss))
        if self.steps_per_epoch and time.perf_counter() - self._last_flush > 0.25:
            self._flush_steps()

    def _flush_steps(self) -> None:
        """Send pending step losses as one StepEvent (one device sync for all)."""
        self._last_flush = time.perf_counter()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        values = [v for _, _, v in pending]
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        if tensors:
            floats = iter(torch.stack([t.reshape(()).to(torch.float64) for t in tensors]).tolist())
            values = [next(floats) if isinstance(v, torch.Tensor) else v for v in values]
        per_epoch = self.steps_per_epoch or max(self._steps_this_epoch, 1)
        positions = tuple(epoch + min(k, per_epoch) / per_epoch for k, epoch, _ in pending)
        with self._lock:
            first = len(self.run.step_losses)
            self.run.step_losses.extend(values)
            self.run.step_positions.extend(positions)
        self._emit(StepEvent(self.run.run_id, first, positions, tuple(values), self.lr, self.batch_size))

    def mark(self, kind: str, value: Any) -> None:
        """Note something that happened mid-run (drawn on the chart), e.g. a batch-size change."""
        position = self.epoch + (self._steps_this_epoch / self.steps_per_epoch if self.steps_per_epoch else 0.0)
        with self._lock:
            self.run.marks.append({"position": position, "kind": str(kind), "value": value})

    # ----------------------------------------------------------------- epochs
    def _start(self) -> None:
        self._t_start = time.perf_counter()

    def _due(self, epoch: int) -> bool:
        if self.every != "auto":
            return epoch == 1 or epoch % int(self.every) == 0
        if epoch == 1:
            return True  # one update gives the cloud its lower edge
        with self._inflight_cond:
            if self._inflight > 0:
                return False  # the worker is still busy: never let work pile up
        # Everything the monitor costs the loop counts against the budget (YES-0, the
        # epoch-end forward passes, the bound updates), and the next update is assumed to
        # cost what the last one did. The last epoch is not special: forcing an update
        # there would put a whole update, waited for in finish(), outside the budget.
        timings = self.run.timings
        overhead = timings["yes0_seconds"] + timings["certify_seconds"]
        wall = time.perf_counter() - (self._t_start or time.perf_counter()) + timings["yes0_seconds"]
        return overhead + self._bounds_seconds + self._last_bounds_cost <= self.budget * wall

    def _confirm_green(self, loss: torch.Tensor) -> bool:
        """With ``every="auto"``, a move into green is judged against a lower edge computed
        at that very epoch: an edge left over from earlier epochs sits higher (it is a
        running minimum over fewer epochs) and would call green too early."""
        if not self.confirm_green or self.every != "auto" or self.depth == 1 or not self.cloud.epochs:
            return False
        if self.epoch - self._last_update_epoch < 2:
            return False  # the edge is fresh enough
        last = self.run.epochs[-1] if self.run.epochs else None
        if last is not None and last.zone == "green":
            return False
        value = float(loss)  # one sync per epoch, only in auto mode
        return math.isfinite(value) and value <= self.cloud.lower

    def epoch_end(self) -> None:
        """Close an epoch: certify (one forward pass, no grad), queue the bounds, emit the epoch event."""
        if self._closed:
            raise RuntimeError("this Monitor is closed; create a new one for a new run")
        if self._t_start is None:
            self._start()
        t0 = time.perf_counter()
        self.epoch += 1
        if self._steps_this_epoch:
            self.steps_per_epoch = self._steps_this_epoch
        self._flush_steps()
        hidden, output = self._forward_certification()
        # the metric E in the bounds' precision (float64 by default): a float32 sum over N·m
        # squared errors is off by ~1e-6 relative, enough to flip a zone at an edge
        if self._Y_metric is None:
            self._Y_metric = self._Y_data.to(self.cloud.dtype)
        squared = (output.to(self._Y_metric.dtype) - self._Y_metric).square().sum()
        # under torch.distributed: E over the union, and a bound update when any rank finds it due
        loss = union_mean(squared, self.N) if self._distributed else squared / self.N
        due = self._due(self.epoch) or self._confirm_green(loss)
        if self._distributed:
            due = bool(all_reduce_sum(torch.tensor([float(due)])).item() > 0)
        if due:
            self._last_update_epoch = self.epoch
        item = {
            "epoch": self.epoch, "loss": loss, "hidden": hidden if due else None, "lr": self.lr,
            "batch_size": self.batch_size, "step": self.step,
            "wall_time": time.perf_counter() - self._t_start,  # type: ignore[operator]
        }
        self.run.timings["certify_seconds"] += time.perf_counter() - t0
        self._steps_this_epoch = 0
        with self._inflight_cond:
            self._inflight += 1
        if self.background:
            self._ensure_worker()
            if item["hidden"] is not None:
                self._hidden_slots.acquire()
            self._queue.put(item)
        else:
            self._finish_epoch(item)

    def _stop_worker(self) -> None:
        """Let the worker finish what is queued and end (it restarts if more epochs come)."""
        with self._lock:
            worker, self._worker = self._worker, None
            work_queue = self._queue
        if worker is not None:
            work_queue.put(_STOP)
            if worker is not threading.current_thread():  # a subscriber may close the monitor
                worker.join(timeout=30)

    def _ensure_worker(self) -> None:
        if self._closed:
            raise RuntimeError("this Monitor is closed; create a new one for a new run")
        if self._worker is None or not self._worker.is_alive():
            # each worker reads its own queue: a stopping worker finishes what it was given
            self._queue = queue.Queue()
            self._worker = threading.Thread(target=self._work, args=(self._queue,), name="yeswidget-bounds",
                                            daemon=True)
            self._worker.start()

    def _work(self, work_queue: queue.Queue) -> None:
        _lower_thread_priority()
        while True:
            item = work_queue.get()
            if item is _STOP:
                return
            heavy = item["hidden"] is not None
            try:
                self._finish_epoch(item)
            finally:
                if heavy:
                    self._hidden_slots.release()

    def _finish_epoch(self, item: dict) -> None:
        try:
            hidden = item.pop("hidden")
            loss = float(item.pop("loss"))
            bounds_updated = False
            if hidden is not None and math.isfinite(loss):
                t0 = time.perf_counter()
                try:
                    bounds = self.cloud.compute(hidden)
                except ValueError as exc:
                    if "non-finite" not in str(exc):
                        raise
                    # a diverging network: its hidden outputs hold NaN/inf
                    self._note(f"epoch {item['epoch']}: bounds skipped ({exc})")
                else:
                    self.cloud.record(bounds, epoch=item["epoch"])
                    bounds_updated = True
                cost = time.perf_counter() - t0
                self._last_bounds_cost = cost
                self._bounds_seconds += cost
                self.run.timings["bounds_seconds"] = self._bounds_seconds
            del hidden
            record = EpochRecord(
                epoch=item["epoch"], loss=loss, upper=self.cloud.upper, lower=self.cloud.lower,
                zone=self.cloud.zone(loss), yes_k=self.cloud.yes_k(), bounds_updated=bounds_updated,
                lr=item["lr"], batch_size=item["batch_size"], step=item["step"], wall_time=item["wall_time"],
            )
            with self._lock:
                self.run.epochs.append(record)
                self.run.timings["wall_seconds"] = record.wall_time
            self._emit(EpochEvent(self.run.run_id, record, self.epochs_total))
            if not math.isfinite(loss) and self.run.status == "running":
                self._set_status("diverged", f"the epoch loss became {loss} at epoch {record.epoch}")
        except Exception as exc:  # never raise into the training loop
            self.error = exc
            self._note(f"epoch {item.get('epoch')}: {type(exc).__name__}: {exc}")
        finally:
            with self._inflight_cond:
                self._inflight -= 1
                self._inflight_cond.notify_all()

    def _note(self, message: str) -> None:
        with self._lock:
            self.run.warnings.append(message)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued bound update is done; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if threading.current_thread() is self._worker:
            # called from a subscriber, on the worker: what is queued runs after this
            # callback returns, so there is nothing it could wait for
            return self._inflight <= 1
        with self._inflight_cond:
            while self._inflight > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._inflight_cond.wait(remaining)
        return True

    # --------------------------------------------------------------- lifetime
    def epochs(self, n: int) -> Iterator[int]:
        """``for epoch in monitor.epochs(n):`` — calls :meth:`epoch_end` after each body, then :meth:`finish`.

        Stops early (status ``stopped``) when :meth:`stop` was called.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"epochs(n) needs an int n ≥ 0; got {n!r}")
        self.epochs_total = n
        self.run.config["epochs"] = n
        if self._t_start is None:
            self._start()
        completed = False
        try:
            for epoch in range(self.epoch, n):
                if self.stop_requested:
                    break
                yield epoch
                if self._discard_epoch:
                    self._discard_epoch = False  # left mid-epoch: no record of a partial epoch
                    self._flush_steps()
                    break
                self.epoch_end()
            completed = not self.stop_requested
        except GeneratorExit:
            # The loop was left early: ``break``, ``return``, or an exception in the loop body
            # (which never enters this generator; Python only closes it). ``with monitor:``
            # records such an exception as "failed" with its traceback.
            if self.run.status == "running" and self.epoch < n:
                self.finish("stopped")
                self._note(f"the training loop was left after epoch {self.epoch} of {n}")
            raise
        except BaseException as exc:
            self.fail(exc)
            raise
        finally:
            if self.run.status == "running":
                self.finish("finished" if completed else "stopped")

    def stop(self, *, discard_epoch: bool = False) -> None:
        """Ask a loop driven by :meth:`epochs` to stop after the current epoch.

        ``discard_epoch=True``: the current epoch was cut short, so it is not certified
        (its step losses are kept).
        """
        self.stop_requested = True
        self._discard_epoch = bool(discard_epoch)

    def fail(self, exc: BaseException) -> None:
        """Mark the run failed with the exception and its last frames (the record is kept)."""
        frames = traceback_module.format_exception(type(exc), exc, exc.__traceback__)
        self.wait()
        self._set_status("failed", f"{type(exc).__name__}: {exc}", "".join(frames[-6:]))

    def finish(self, status: str = "finished") -> None:
        """End the run: wait for the bounds, then set ``status`` (unless it already diverged or failed)."""
        self._flush_steps()
        self.wait()
        if self.run.status == "running":
            self._set_status(status, "")
        self._stop_worker()  # an idle worker thread would keep this monitor (and its data) alive

    def _set_status(self, status: str, message: str, tb: str = "") -> None:
        with self._lock:
            self.run.status = status
            self.run.message = message
            self.run.traceback = tb
        self._emit(StatusEvent(self.run.run_id, status, message, tb))

    def close(self) -> None:
        """Remove every hook, stop the worker, drop activations (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._flush_steps()  # keep the last step losses, also after a failure
            # self.epoch, not run.epochs: the worker may not have recorded the last epochs yet
            if self.run.status == "running" and self.epoch:
                self.finish("finished" if self.epochs_total in (None, self.epoch) else "stopped")
        finally:
            for handle in self._handles:
                handle.remove()
            self._handles.clear()
            self._stop_worker()
            self._captured = [None] * len(self.plan.taps)
            self._pending = []

    def __enter__(self) -> "Monitor":
        if self._t_start is None:
            self._start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None and not isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
            self.fail(exc)
        elif exc is not None:
            self.finish("stopped")
        self.close()

    # ------------------------------------------------------------------ events
    def subscribe(self, callback: Callable[[Any], None]) -> Handle:
        """Call ``callback(event)`` for every StepEvent / EpochEvent / StatusEvent (maybe from a worker thread)."""
        if not callable(callback):
            raise TypeError(f"callback must be callable; got {type(callback).__name__}")
        with self._lock:
            self._subscribers.append(callback)

        def undo() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return Handle(undo)

    def _emit(self, event: Any) -> None:
        if getattr(self, "_distributed", False) and not is_main_process():
            return  # only global rank 0 draws, prints and writes
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception as exc:  # a broken display must not stop training
                self._note(f"subscriber {callback!r} raised {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ reads
    @property
    def zone(self) -> str | None:
        return self.run.final_zone

    @property
    def hooks_registered(self) -> int:
        return len(self._handles)

    def __repr__(self) -> str:
        return (f"Monitor(depth={self.depth}, N={self.N}, epoch={self.epoch}, status={self.run.status!r}, "
                f"zone={self.zone!r})")


def _lower_thread_priority(niceness: int = 10) -> None:
    """Let the training loop win the CPU from the bounds worker (Linux: per-thread nice).

    On a machine whose cores are all busy (the training loop's own threads, other
    processes), the worker then takes what is left instead of slowing every step; on an
    idle core it runs at full speed. Elsewhere the nice value is per process: leave it.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import os

        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except (AttributeError, OSError):  # pragma: no cover - no permission or no such call
        pass


def _hook_free(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """An activation module as a plain function: no hooks fire, no graph is built."""

    def activation(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module.forward(t)

    activation.__name__ = type(module).__name__
    return activation


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


# --------------------------------------------------------------------------- #
# text output
# --------------------------------------------------------------------------- #
class TextPrinter:
    """A subscriber printing one line per epoch: epoch, loss dB, YES-0 dB, lower edge dB, zone."""

    def __init__(self, stream: TextIO | None = None, *, every: int = 1) -> None:
        self.stream = stream
        self.every = max(1, int(every))

    @staticmethod
    def format(record: EpochRecord, epochs_total: int | None = None) -> str:
        total = f"/{epochs_total}" if epochs_total else ""
        return (f"epoch {record.epoch:>4}{total}  loss {to_db(record.loss):8.2f} dB  "
                f"YES-0 {to_db(record.upper):8.2f} dB  lower {to_db(record.lower):8.2f} dB  "
                f"{record.zone:<6} ({ZONE_WORDS[record.zone]})")

    def __call__(self, event: Any) -> None:
        stream = self.stream or sys.stdout
        if isinstance(event, EpochEvent):
            if event.record.epoch % self.every == 0 or (event.epochs_total and event.record.epoch == event.epochs_total):
                print(self.format(event.record, event.epochs_total), file=stream, flush=True)
        elif isinstance(event, StatusEvent) and event.status != "running":
            print(f"run {event.status}" + (f": {event.message}" if event.message else ""), file=stream, flush=True)
