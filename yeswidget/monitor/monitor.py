"""The monitor: subscribes to any PyTorch training loop through public hooks.

The only room that touches the user's model and optimizer; it imports no UI. It composes
a :class:`MonitorConfig`, layer discovery, the certification pass (:class:`TapCapture`),
the cadence, the bounds worker, and the run store + event bus of :mod:`yeswidget.core`.

    monitor = Monitor(model, X, Y, optimizer=opt)
    for epoch in monitor.epochs(200):
        for xb, yb in loader:
            ...; opt.step(); monitor.log(loss)

Every loss the monitor judges is the metric E of the YES bounds measured on the
*certification set* (the X, Y given, or a fixed seeded subset of them), the same
samples the bounds are computed on; minibatch losses are only drawn.
"""
from __future__ import annotations

import math
import sys
import time
import traceback as traceback_module
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..bounds import YesCloud
from ..capture import CaptureError, CapturePlan, OutputSelector, Predict, capture, trace
from ..core.bus import EventBus
from ..core.handle import Handle
from ..core.run import EpochRecord, Run
from ..core.store import RunStore
from ..core.zones import verdict
from ..cost import CostEstimate, check, estimate_for_plan
from ..distributed import all_reduce_sum, is_distributed, is_main_process, union_mean
from ..outputs.plateau import plateau_note
from ..outputs.runlog import enable_run_log
from .cadence import Cadence
from .config import MonitorConfig
from .data import certification_set, describe_certification
from .discovery import activation_name, check_options, failing_module, tap_activation
from .judge import Judge, step_loss_info
from .printer import TextPrinter
from .registry import claim, release
from .scope import Scope
from .steps import StepLog
from .taps import model_device, model_dtype
from .uncaught import UncaughtWatch
from .worker import BoundsWorker, EpochItem

__all__ = ["Monitor"]

_FLOAT_INFO = ("accuracy", "val_loss", "val_accuracy")  # 0-d tensors until the worker reads them


class Monitor:
    """Watch a training loop and compute the YES cloud epoch by epoch.

    ``model``: any module, unedited. The certified network is read from what ``forward``
    executes, in order (:func:`yeswidget.capture.trace`): the ``Linear`` layers, the
    post-activation tensors (activation modules, also one called several times, ``F.relu``,
    ``torch.tanh``, …), BatchNorm/Dropout/Flatten in between; convolutions before the first
    ``Linear`` belong to layer 1 (``include_conv=True`` counts them as layers). ``predict``:
    ``predict(model, x) -> output`` when the trained map is not ``forward``; ``output``: the
    tensor compared with Y when the result is a tuple/dict (``output=0``, ``output="logits"``
    or a callable); ``taps``: the L-1 submodules (or dotted names) whose outputs are the hidden
    layers, instead of discovery. Operations the YES construction cannot fold (recurrent layers,
    attention, LayerNorm, residual sums, gates) give zone ``none`` with the reason, unless the
    option ``certify_from`` names the module (or dotted name) whose output the head reads: the head
    is then judged "head given current features". :meth:`describe` says what is certified. Before training,
    one YES-k update is estimated from shapes and refused (:class:`~yeswidget.cost.CostError`)
    beyond ``max_update_seconds`` (60 s) or half the free memory, unless ``allow_expensive=True``.
    ``X`` (N × …), ``Y`` (N × m, or N class labels): the certification set, as tensors, numpy
    arrays or pandas DataFrames (or a Dataset/DataLoader as ``X``). ``optimizer``: counts steps and
    reads the learning rate through ``register_step_post_hook``. ``cloud``: a YesCloud on the
    same data whose YES-0 is reused. ``loss``: the loss the loop logs (a module such as
    ``nn.CrossEntropyLoss()`` or its name): a loss that is not the metric E is drawn on its
    own axis. Integer class labels as ``Y`` make a classifier (see :mod:`.judge`).
    ``validation``: held-out ``(X_val, Y_val)`` or a DataLoader, scored each epoch, never
    judged against the cloud. ``config`` (a :class:`MonitorConfig` or dict) and keyword
    ``options`` (the same names: ``every``, ``max_samples``, ``dtype``, …) set how it certifies.
    """

    def __init__(self, model: nn.Module, X: Any, Y: Any = None, *,
                 taps: Sequence[nn.Module | str] | None = None, predict: Predict | None = None,
                 output: OutputSelector = None, optimizer: torch.optim.Optimizer | None = None,
                 cloud: YesCloud | None = None, loss: Any = None, validation: Any = None,
                 config: MonitorConfig | Mapping[str, Any] | None = None, **options: Any) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.config = cfg = MonitorConfig.build(config, options)
        self.model = model
        X, Y, self.certification = certification_set(X, Y, cfg.max_samples, cfg.seed)
        self.device = model_device(model)
        # the forward pass needs the model's dtype; the bounds and the judged loss use the data
        # as given (a bfloat16 copy of Y would move YES-0 by ~1e-4)
        param_dtype = model_dtype(model)
        self.X = X.to(self.device, dtype=param_dtype if X.is_floating_point() else X.dtype)
        self._Y_given = Y.to(self.device)
        self.N = int(self.X.shape[0])
        # torch.distributed: each rank passes its shard; the cloud, the epoch loss and the zones are
        # those of the union, every collective runs on the training thread in the same order on every
        # rank (so no background worker), and only global rank 0 publishes, prints and writes
        self._distributed = is_distributed()
        self.plan, self._flops_per_sample = self._trace(model, taps, predict, output, cfg)
        self.scope = Scope(self.plan)  # the whole network, the head given current features, or no verdict
        self._X_data = self.plan.bounds_input(X.to(self.device))  # flattened, or one-hot ids
        self.depth = self.plan.depth
        self.bias = self.plan.bias if cfg.bias is None else bool(cfg.bias)
        self.step_loss, reduction = step_loss_info(loss, cfg.loss_reduction)
        self._loss_reduction = reduction
        self._closed = False
        self._set_targets()
        self.cost = self._check_cost(param_dtype)
        claim(model, self)  # a second monitor on this model (a cell run twice) closes the first
        self._handles: list[Any] = []
        self._handles.append(model.register_forward_pre_hook(self._on_forward))
        self.optimizer: torch.optim.Optimizer | None = None
        try:
            if optimizer is not None:
                self.attach_optimizer(optimizer)
            self.validation = self._validation_set(validation)
            t0 = time.perf_counter()
            self.cloud = self._make_cloud(cloud)
            yes0_seconds = time.perf_counter() - t0
        except BaseException:
            self._remove_hooks()  # a monitor that fails to start leaves nothing on the model
            release(model, self)
            raise
        self.bus = EventBus(on_error=self._subscriber_failed)
        self.bus.muted = self._distributed and not is_main_process()
        if self._distributed:
            self.judge.target_scale = self._union_target_scale()
        self.store = RunStore(self._new_run(yes0_seconds), self.bus)
        self.cadence = Cadence(cfg.every, cfg.budget, self.cost.update_flops)
        self.worker = BoundsWorker(self._finish_epoch, background=cfg.background and not self._distributed)
        self.steps = StepLog(self.store, self._metric_scale)
        self.epoch = 0  # completed epochs
        self.epochs_total: int | None = cfg.epochs
        self.lr: float | None = self.run.config.get("lr")
        self.batch_size: int | None = None
        self._samples_this_epoch = 0
        self._t_start: float | None = None
        self._bounds_seconds = 0.0
        self._last_bounds_cost = 0.0
        self.stop_requested = False
        self._discard_epoch = False
        self._Y_metric: torch.Tensor | None = None
        self.error: BaseException | None = None
        self._overfit_noted_at = 0
        self._uncaught = UncaughtWatch(self)
        if cfg.verbose:
            self.subscribe(TextPrinter())
        self.run_log: Any = None  # the crash-safe run log (yeswidget.outputs.runlog); .path is its file
        try:
            if not self.bus.muted:
                self.run_log = enable_run_log(self, cfg.runs_dir)
        except BaseException:  # a monitor that fails to start leaves nothing on the model
            self.close()
            raise

    # ------------------------------------------------------------ building
    def _trace(self, model: nn.Module, taps: Sequence[nn.Module | str] | None, predict: Predict | None,
               output: OutputSelector, cfg: MonitorConfig) -> tuple[CapturePlan, float]:
        """Read the certified network from one no-grad pass on a few samples; its forward FLOPs per sample."""
        from torch.utils.flop_counter import FlopCounterMode

        check_options(taps, predict, output)
        sample = self.X[: min(self.N, 64)]
        counter = FlopCounterMode(display=False)
        try:
            with counter:
                plan = trace(model, sample, predict=predict, output=output, include_conv=cfg.include_conv,
                             taps=taps, activation=cfg.activation or tap_activation(model, taps),
                             certify_from=cfg.certify_from, strict=False)
        except CaptureError:
            raise
        except Exception as exc:
            via = "predict(model, x)" if predict is not None else f"{type(model).__name__}.forward"
            via += failing_module(exc, model)
            raise ValueError(
                f"the model cannot process X (shape {tuple(self.X.shape)}): {via} raised {type(exc).__name__}: "
                f"{exc}. X must be the model's input, samples first (or pass predict=lambda model, x: …)"
            ) from exc
        flops = float(counter.get_total_flops()) / max(int(sample.shape[0]), 1)
        if flops <= 0:  # an operator FlopCounterMode does not count: two FLOPs per parameter
            flops = 2.0 * sum(p.numel() for p in model.parameters())
        return plan, flops

    def _set_targets(self) -> None:
        """The targets the bounds use (Y as given, or one-hot class labels) and the plan's notes."""
        plan = self.plan
        self.judge = Judge(self._Y_given, plan.output_features, self.config.judge)
        self._Y_data = self.judge.targets if self._Y_given.ndim == 1 else self._Y_given
        self.Y = self._Y_data.to(self.X.dtype if self.X.is_floating_point() else torch.float64)
        self._notes = list(plan.notes) + [note for note in [self.scope.note()] if note]
        narrow = [h for h in plan.hidden_widths if h < plan.output_features]
        if narrow:
            self._notes.append(
                f"hidden width {min(narrow)} is narrower than the output width {plan.output_features}: the "
                "YES-0 network does not fit inside this architecture, so YES-0 is a reference, not a certificate")
        for note in self._notes:
            warnings.warn(note, stacklevel=3)

    def _check_cost(self, captured_dtype: torch.dtype) -> CostEstimate:
        """Estimate YES-0 and one YES-k update from shapes; refuse (before training) what would not fit."""
        dtype = self.config.dtype
        bounds_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        estimate = estimate_for_plan(self.plan, self.N, bias=self.bias, device=self.device, dtype=bounds_dtype,
                                     captured_dtype=captured_dtype if captured_dtype.is_floating_point
                                     else torch.float32)
        if self.plan.certified:  # nothing is computed for a model without a verdict
            check(estimate, max_seconds=self.config.max_update_seconds, allow_expensive=self.config.allow_expensive)
        for note in estimate.notes:
            warnings.warn(note, stacklevel=3)
            self._notes.append(note)
        return estimate

    def _union_target_scale(self) -> float:
        """The targets' spread over the union of the ranks' shards (what a bound of "0" is measured against)."""
        targets = self.judge.targets.to(torch.float64)
        sums = all_reduce_sum(torch.stack([targets.sum(0), targets.square().sum(0)]))
        count = float(all_reduce_sum(torch.tensor([float(targets.shape[0])], dtype=torch.float64)).item())
        return float((sums[1] - sums[0].square() / count).sum().item() / count)

    def _validation_set(self, validation: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
        """Held-out (X, targets, labels) on the model's device, or None."""
        if validation is None:
            return None
        if isinstance(validation, (tuple, list)) and len(validation) == 2:
            Xv, Yv, _ = certification_set(validation[0], validation[1], None, 0)
        else:
            Xv, Yv, _ = certification_set(validation, None, None, 0)
        Xv = Xv.to(self.device, dtype=self.X.dtype)
        if Xv.shape[1:] != self.X.shape[1:]:
            raise ValueError(f"validation inputs have shape {tuple(Xv.shape)} but the training inputs "
                             f"{tuple(self.X.shape)}: they must be the same kind of samples")
        Yv = Yv.to(self.device)
        if (Yv.ndim == 1) != (self.judge.labels is not None):
            raise ValueError("validation targets must be of the same kind as Y (class labels, or N × m targets)")
        if Yv.ndim == 1:
            targets = nn.functional.one_hot(Yv.long(), self.judge.targets.shape[1]).to(self.judge.targets.dtype)
            return Xv, targets, Yv.long()
        if Yv.shape[1] != self._Y_data.shape[1]:
            raise ValueError(f"validation targets have {Yv.shape[1]} columns but Y has {self._Y_data.shape[1]}")
        return Xv, Yv.to(self.judge.targets.dtype), None

    def _make_cloud(self, cloud: YesCloud | None) -> Any:
        if cloud is not None and (self.plan.head or not self.plan.certified):
            raise ValueError("cloud= cannot be reused here: " + self.scope.label)
        if self.plan.head and self._distributed:
            raise ValueError("certify_from= is not supported with torch.distributed yet: each rank's features "
                             "would give its own head bounds; certify on one process")
        if self.plan.head or not self.plan.certified:
            return self.scope.make_cloud(self.model, self.X, self._Y_data, bias=self.bias,
                                         activation=self.plan.bounds_kwargs()["activation"],
                                         dtype=self.config.dtype, device=self.device)
        if cloud is not None:
            if cloud.depth != self.depth or cloud.N != self.N:
                raise ValueError(f"cloud was built for depth {cloud.depth} on {cloud.N} samples; this model "
                                 f"has depth {self.depth} and the certification set {self.N} samples")
            # a cloud built on another device (e.g. the task's CPU tensors) follows the model
            return cloud if cloud.device == self.device else cloud.to(self.device)
        activation = self.plan.bounds_kwargs()["activation"]
        return YesCloud(self._X_data, self._Y_data, self.depth, bias=self.bias, activation=activation,
                        dtype=self.config.dtype)

    def _new_run(self, yes0_seconds: float) -> Run:
        cfg, plan = self.config, self.plan
        settings: dict[str, Any] = {
            "depth": self.depth, "bias": self.bias, "widths": plan.hidden_widths,
            "activation": activation_name(plan.activation),
            "every": cfg.every, "max_samples": cfg.max_samples, "n_samples": self.cloud.N, "epochs": cfg.epochs,
            "optimizer": type(self.optimizer).__name__.lower() if self.optimizer is not None else None,
            "task_kind": self.judge.kind, "judged": self.judge.describe(), "step_loss": dict(self.step_loss),
            "certified": self.scope.label,
            "validation": None if self.validation is None else int(self.validation[0].shape[0]),
        }
        if self.optimizer is not None:
            settings["lr"] = float(self.optimizer.param_groups[0]["lr"])
        settings.update(cfg.labels)
        certification = dict(self.certification, text=describe_certification(self.certification),
                             target_scale=self.judge.target_scale, certified=self.scope.label)
        return Run(run_id=cfg.run_id or uuid.uuid4().hex[:8], config=settings, depth=self.depth,
                   upper=self.cloud.upper, layer_errors=list(self.cloud.layer_errors), certification=certification,
                   timings={"yes0_seconds": yes0_seconds, "bounds_seconds": 0.0, "certify_seconds": 0.0},
                   warnings=list(self._notes))

    # --------------------------------------------------------------- hooks
    def _on_forward(self, module: nn.Module, args: Any) -> None:
        # the training batch size, read from the model's own input (no sync); only forward
        # passes that build a graph count (an evaluation pass under no_grad is not a step)
        if (torch.is_grad_enabled() and args and isinstance(args[0], torch.Tensor)
                and args[0].ndim >= 1):
            self.batch_size = int(args[0].shape[0])
            self._samples_this_epoch += self.batch_size

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> Handle:
        """Count steps and read the learning rate after every ``optimizer.step()``."""
        if not hasattr(optimizer, "register_step_post_hook"):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}")
        self.optimizer = optimizer

        def after_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            self.lr = float(opt.param_groups[0]["lr"])
            self.steps.count()

        handle = optimizer.register_step_post_hook(after_step)
        self._handles.append(handle)
        return Handle(handle.remove)

    @property
    def hooks_registered(self) -> int:
        """Hooks this monitor holds on the model and optimizer (0 after :meth:`close`)."""
        return len(self._handles)

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    # ---------------------------------------------------------------- steps
    def _metric_scale(self, loss: Any) -> Any:
        """A logged minibatch loss in the metric E (per sample, summed over outputs)."""
        if self._loss_reduction == "mean":
            return loss * self.Y.shape[1]
        if self._loss_reduction == "sum" and self.batch_size:
            return loss / self.batch_size
        return loss

    def log(self, loss: Any = None, *, lr: float | None = None, batch_size: int | None = None) -> None:
        """Record one training step's minibatch loss (a tensor or float; no device sync).

        Without an optimizer attached, each call also counts a step.
        """
        self._check_open()
        if self._t_start is None:
            self._t_start = time.perf_counter()
        if self.optimizer is None:
            self.steps.count()
        if lr is not None:
            self.lr = float(lr)
        if batch_size is not None:
            self.batch_size = int(batch_size)
        self.steps.log(loss, epoch=self.epoch, lr=self.lr, batch_size=self.batch_size,
                       expected_steps=self._expected_steps())

    def _expected_steps(self) -> int | None:
        """Steps per epoch: known after the first epoch, estimated from the data size before."""
        if self.steps.per_epoch:
            return self.steps.per_epoch
        if self.batch_size:
            return max(1, math.ceil(int(self.certification.get("of", self.N)) / self.batch_size))
        return None

    @property
    def step(self) -> int:
        """Optimizer steps so far."""
        return self.steps.total

    @property
    def steps_per_epoch(self) -> int | None:
        return self.steps.per_epoch

    def mark(self, kind: str, value: Any, **extra: Any) -> None:
        """Note something that happened mid-run (drawn on the chart), e.g. a batch-size change."""
        self.store.mark(self.steps.position(self.epoch, self._expected_steps()), kind, value, **extra)

    # --------------------------------------------------------------- epochs
    def epoch_end(self) -> None:
        """Close an epoch: certify (one no-grad forward pass), queue the bounds, publish the epoch."""
        self._check_open()
        if self._t_start is None:
            self._t_start = time.perf_counter()
        t0 = time.perf_counter()
        self.steps.end_epoch()
        epoch = self.epoch + 1
        if self.cadence.period is None and self.cadence.every == "auto":  # the first epoch this monitor sees
            samples = self._samples_this_epoch or int(self.certification.get("of", self.N))
            self.cadence.fix_period(3.0 * self._flops_per_sample * samples)  # forward + backward ≈ 3 forwards
        self._samples_this_epoch = 0
        # an interrupt before the epoch is queued leaves it uncounted: only certified epochs count
        item = self._certify(epoch)
        self._check_open()  # closed meanwhile (a subscriber's close): queue nothing, start no thread
        self.epoch = epoch
        self.store.add_timing("certify_seconds", time.perf_counter() - t0)
        self.worker.submit(item)

    def _certify(self, epoch: int) -> EpochItem:
        """The epoch's loss (and accuracy, validation) and, when YES-k is due, the hidden outputs."""
        hidden, output = capture(self.model, self.X, self.plan)
        if self._Y_metric is None:
            # the metric in the bounds' precision: a float32 sum over N·m squared errors is off by
            # ~1e-6 relative, enough to flip a zone at an edge
            self._Y_metric = self._Y_data.to(self.cloud.dtype)
        loss, accuracy = self.judge.score(output, targets=self._Y_metric)
        if self._distributed:  # E (and accuracy) over the union of the ranks' shards
            loss = torch.tensor(union_mean(loss * self.N, self.N), dtype=torch.float64)
            if accuracy is not None:
                accuracy = torch.tensor(union_mean(accuracy * self.N, self.N), dtype=torch.float64)
        scheduled = self._due(epoch) or self.scope.every_epoch
        if self._distributed:  # a bound update on every rank when any rank finds it due
            scheduled = bool(all_reduce_sum(torch.tensor([float(scheduled)], dtype=torch.float64)).item() > 0)
        # a loss below YES-0 may reach the lower edge: the worker decides, in epoch order, whether a
        # fresh edge is needed to judge it (so the choice never depends on how fast the worker ran)
        due = scheduled or self._may_reach_the_edge(loss)
        info: dict[str, Any] = {"lr": self.lr, "batch_size": self.batch_size, "step": self.step,
                                "wall_time": time.perf_counter() - (self._t_start or 0.0), "accuracy": accuracy}
        if self.validation is not None:
            Xv, Tv, Lv = self.validation
            _, val_output = capture(self.model, Xv, self.plan)
            info["val_loss"], info["val_accuracy"] = self.judge.score(val_output, labels=Lv, targets=Tv)
        pending: list[torch.Tensor | None] | None = list(hidden) if due else None
        return EpochItem(epoch, loss, pending, info, scheduled=scheduled)

    def _due(self, epoch: int) -> bool:
        """Whether the cadence asks for a YES-k update at ``epoch``."""
        timings = self.run.timings
        spent = timings["yes0_seconds"] + timings["certify_seconds"] + self._bounds_seconds
        wall = time.perf_counter() - (self._t_start or time.perf_counter()) + timings["yes0_seconds"]
        return self.cadence.due(epoch, time_spent=spent, next_cost=self._last_bounds_cost, wall=wall,
                                busy=self.worker.busy)

    def _may_reach_the_edge(self, loss: torch.Tensor) -> bool:
        """An epoch is green only against a lower edge computed at that epoch: a loss below YES-0
        sends its hidden outputs to the worker, which updates the edge if the loss reaches it."""
        if not self.config.confirm_green or self.depth == 1:
            return False
        value = float(loss)  # one sync per epoch
        return math.isfinite(value) and value <= self.cloud.upper

    def _confirmation_needed(self, item: EpochItem) -> bool:
        """On the worker, in epoch order: does this unscheduled epoch's loss reach the current edge?"""
        return bool(self.cloud.epochs) and float(item.loss) <= self.cloud.lower

    def _finish_epoch(self, item: EpochItem) -> None:
        """On the worker: the bounds (when due), then the epoch record, published in order."""
        try:
            loss = float(item.loss)
            if item.hidden is not None and not item.scheduled and not self._confirmation_needed(item):
                item.hidden = None  # the loss stays above the edge: yellow without a new update
            updated = self._update_bounds(item) if item.hidden is not None and math.isfinite(loss) else False
            fresh = updated or not self.config.confirm_green
            zone, reason = verdict(loss, self.cloud.upper, self.cloud.lower, depth=self.depth,
                                   has_lower_edge=bool(self.cloud.epochs) and fresh,
                                   target_scale=self.judge.target_scale)
            zone, reason = self.scope.adjust(zone, reason, loss)
            info: dict[str, Any] = {k: (None if v is None else float(v)) if k in _FLOAT_INFO else v
                                    for k, v in item.info.items()}
            record = EpochRecord(
                epoch=item.epoch, loss=loss, upper=self.cloud.upper, lower=self.cloud.lower, zone=zone,
                yes_k=self.cloud.yes_k(), bounds_updated=updated, reason=reason, **info)
            self.store.add_epoch(record, self.epochs_total)
            self._watch_overfitting()
            note = plateau_note(self.run.epochs)  # a yellow plateau is noted once, in the run
            if note:
                self.store.note(note)
            if not math.isfinite(loss) and self.run.status == "running":
                self.store.set_status("diverged", f"the epoch loss became {loss} at epoch {record.epoch}")
        except Exception as exc:  # never raise into the training loop
            self.error = exc
            self.store.note(f"epoch {item.epoch}: {type(exc).__name__}: {exc}")

    def _watch_overfitting(self) -> None:
        """A note when validation rises ``overfit_epochs`` epochs in a row while training is green."""
        k = self.config.overfit_epochs
        recent = self.run.epochs[-(k + 1):]
        if len(recent) < k + 1 or recent[-1].zone != "green" or any(r.val_loss is None for r in recent):
            return
        rising = all(b.val_loss > a.val_loss for a, b in zip(recent, recent[1:]))  # type: ignore[operator]
        if rising and self._overfit_noted_at < recent[0].epoch:
            self._overfit_noted_at = recent[-1].epoch
            self.store.note(f"overfitting: the validation loss rose for {k} epochs in a row (to epoch "
                            f"{recent[-1].epoch}) while the training loss is green")

    def _update_bounds(self, item: EpochItem) -> bool:
        t0 = time.perf_counter()
        hidden = item.hidden
        assert hidden is not None and all(h is not None for h in hidden)
        try:
            bounds = self.cloud.compute([h for h in hidden if h is not None])
        except ValueError as exc:
            if "non-finite" not in str(exc):
                raise
            self.store.note(f"epoch {item.epoch}: bounds skipped ({exc})")  # a diverging network
            return False
        finally:
            item.hidden = None
            self._last_bounds_cost = time.perf_counter() - t0
            self._bounds_seconds += self._last_bounds_cost
            self.store.set_timing("bounds_seconds", self._bounds_seconds)
        self.cloud.record(bounds, epoch=item.epoch)
        return True

    def resume(self, run: Run) -> None:
        """Continue an earlier run of this model on the same data (e.g. a Lightning fit resumed from a
        checkpoint): its epochs, steps and marks are kept and the lower edge keeps its running minimum."""
        if self.epoch or self.run.epochs:
            raise RuntimeError("resume() must come before the first epoch of this monitor")
        if run.depth != self.depth or not math.isclose(run.upper, self.cloud.upper, rel_tol=1e-6, abs_tol=1e-12):
            raise ValueError(f"cannot resume run {run.run_id!r}: it was certified on other data or another "
                             f"architecture (depth {run.depth}, YES-0 {run.upper!r}; here depth {self.depth}, "
                             f"YES-0 {self.cloud.upper!r})")
        for record in run.epochs:
            if record.bounds_updated and self.depth > 1:
                # the stored YES-k are running minima: recording them again rebuilds the same curves
                self.cloud.record({tuple(range(k)): value for k, value in enumerate(record.yes_k, start=1)},
                                  epoch=record.epoch)
        self.store.restore(run)
        self.epoch = run.epochs[-1].epoch if run.epochs else 0
        self.steps.total = run.epochs[-1].step if run.epochs else 0

    # -------------------------------------------------------------- waiting
    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued bound update is done and delivered; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.worker.wait(timeout):
            return False
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.bus.drain(remaining)

    # ------------------------------------------------------------- lifetime
    def epochs(self, n: int) -> Iterator[int]:
        """``for epoch in monitor.epochs(n):`` calls :meth:`epoch_end` after each body, then :meth:`finish`.

        Stops early (status ``stopped``) when :meth:`stop` was called; one Ctrl-C stops at once.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"epochs(n) needs an int n ≥ 0; got {n!r}")
        self._check_open()
        self._reopen(n)
        self.epochs_total = n
        self.store.update_config(epochs=n)
        if self._t_start is None:
            self._t_start = time.perf_counter()
        completed = False
        caller = sys._getframe(1)  # the frame running the loop: its code is in the traceback of a failure
        loop_code = caller.f_code
        del caller
        self._uncaught.disarm()
        try:
            for epoch in range(self.epoch, n):
                if self.stop_requested:
                    break
                yield epoch
                if self._discard_epoch:
                    self._discard_epoch = False  # left mid-epoch: no record of a partial epoch
                    self.steps.flush()
                    break
                self.epoch_end()
            completed = not self.stop_requested
        except GeneratorExit:
            # the loop was left early: a break or return, or an exception in the loop body, which
            # never enters this generator. "stopped" for now; an exception that goes uncaught
            # (the cell or the script fails with it) turns the run into "failed" (see .uncaught)
            if self.run.status == "running" and self.epoch < n:
                self.finish("stopped")
                self.store.note(f"the training loop was left after epoch {self.epoch} of {n}")
                self._uncaught.arm(loop_code)
            raise
        except KeyboardInterrupt:
            self.interrupt()
            raise
        except BaseException as exc:
            self.fail(exc)
            raise
        finally:
            if self.run.status == "running":
                self.finish("finished" if completed else "stopped")

    def _reopen(self, n: int) -> None:
        status = self.run.status
        if status == "running":
            return
        if status == "finished" and n > self.epoch:
            self.stop_requested = False
            self.store.set_status("running", f"continued to {n} epochs")
            return
        raise RuntimeError(
            f"this run is {status} after {self.epoch} epochs, so epochs({n}) has nothing to do"
            + ("; ask for more epochs than that to continue it" if status == "finished" else
               "; create a new Monitor for a new run"))

    def stop(self, *, discard_epoch: bool = False) -> None:
        """Ask a loop driven by :meth:`epochs` to stop after the current epoch.

        ``discard_epoch=True``: the current epoch was cut short, so it is not certified
        (its step losses are kept).
        """
        self.stop_requested = True
        self._discard_epoch = bool(discard_epoch)

    def interrupt(self) -> None:
        """Stop at once (Ctrl-C): drop pending bound updates, keep every finished epoch, end threads."""
        self.stop_requested = True
        self.worker.cancel()
        self.steps.flush()
        self.worker.stop(timeout=1.5)  # records the epochs left in the queue, without updates
        if self.run.status == "running":
            self.store.set_status("stopped", f"interrupted after epoch {self.epoch}")
        self.bus.stop(timeout=0.5)

    def fail(self, exc: BaseException) -> None:
        """Mark the run failed with the exception and its last frames (the record is kept)."""
        frames = traceback_module.format_exception(type(exc), exc, exc.__traceback__)
        self.worker.wait()
        self.store.set_status("failed", f"{type(exc).__name__}: {exc}", "".join(frames[-6:]))
        if self._closed:  # failed after close (an uncaught exception seen later): deliver, end the thread
            self.bus.stop()

    def finish(self, status: str = "finished") -> None:
        """End the run: wait for the bounds, then set ``status`` (unless it already diverged or failed)."""
        self.steps.flush()
        self.worker.wait()
        if self.run.status == "running":
            self.store.set_status(status, "")
        # idle threads would keep this monitor (and its data) alive; they restart if needed
        self.worker.stop()
        self.bus.stop()

    def close(self) -> None:
        """Remove every hook, stop the threads, drop activations (safe to call twice)."""
        if self._closed:
            return
        try:
            self.steps.flush()  # keep the last step losses, also after a failure
            if self.run.status == "running":
                done = self.epochs_total in (None, self.epoch) and self.epoch > 0
                self.finish("finished" if done else "stopped")
        finally:
            self._closed = True
            self._remove_hooks()
            release(self.model, self)
            self.worker.stop()
            self.bus.stop()
            self._Y_metric = None
            if getattr(self, "run_log", None) is not None:  # the last fields and the final sync
                self.run_log.remove()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Monitor is closed; create a new one for a new run")

    def __enter__(self) -> Monitor:
        if self._t_start is None:
            self._t_start = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, KeyboardInterrupt):
            self.interrupt()
        elif exc is not None and not isinstance(exc, GeneratorExit):
            self.fail(exc)
        self.close()

    # --------------------------------------------------------------- events
    def subscribe(self, callback: Callable[[Any], None]) -> Handle:
        """Call ``callback(event)`` for every StepEvent / EpochEvent / StatusEvent, on the
        monitor's dispatcher thread (never inline on the training loop or the worker)."""
        return self.bus.subscribe(callback)

    def _subscriber_failed(self, callback: Callable[[Any], None], exc: BaseException) -> None:
        self.store.note(f"subscriber {callback!r} raised {type(exc).__name__}: {exc}")

    # ---------------------------------------------------------------- reads
    @property
    def run(self) -> Run:
        """The run record (written only by the monitor's store)."""
        return self.store.run

    @property
    def zone(self) -> str | None:
        return self.run.final_zone

    # settings, read through (older code reads them from the monitor)
    @property
    def every(self) -> int | str:
        return self.config.every

    @property
    def budget(self) -> float:
        return self.config.budget

    @property
    def background(self) -> bool:
        return self.config.background

    @property
    def loss_reduction(self) -> str | None:
        return self._loss_reduction

    @property
    def confirm_green(self) -> bool:
        return self.config.confirm_green

    def describe(self) -> str:
        """What is certified, in forward order: the L affine layers, the activation, the hidden widths,
        bias, the tapped tensors, the certification set, the judged quantity and the cost estimate."""
        plan = self.plan
        widths = ", ".join(map(str, plan.hidden_widths)) or "none (one affine layer: YES-0 only)"
        if plan.taps is not None:
            tapped = ", ".join(f"{name} ({type(module).__name__})" for name, module in plan.taps)
            tapped = f"the outputs of taps {tapped}"
        elif plan.depth > 1:
            tapped = "the post-activation tensors of layers " + ", ".join(str(i) for i in range(1, plan.depth))
        else:
            tapped = "nothing (no hidden layer)"
        override = "" if self.config.bias is None else " (bias= given)"
        lines = [
            plan.describe(),
            f"Hidden widths: {widths}; activation: {activation_name(plan.activation)}; "
            f"bias: {'yes' if self.bias else 'no'}{override}",
            f"Tapped (captured in the monitor's own no-grad pass each epoch): {tapped}",
            f"Certification set: {describe_certification(self.certification)}",
            f"Judged: {self.judge.describe()}",
            f"Cost: {self.cost.describe()}",
            *self.scope.describe(),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Monitor(depth={self.depth}, N={self.N}, epoch={self.epoch}, status={self.run.status!r}, "
                f"zone={self.zone!r}; monitor.describe() says what is certified)")
