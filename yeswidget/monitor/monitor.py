"""The monitor: subscribes to any PyTorch training loop through public hooks.

The only room that touches the user's model and optimizer; it imports no UI and no output. This
façade holds the monitor's state and its public methods; the work is done behind it by
:mod:`.setup` (read the model, the targets, the cost, the run record), :mod:`.certify` (close an
epoch, the bounds on the worker), :mod:`.lifecycle` (the loop, stop / interrupt / fail / finish /
close), :mod:`.steps`, :mod:`.worker`, :mod:`.cadence`, and the run store + event bus of
:mod:`yeswidget.core`.

    monitor = Monitor(model, X, Y, optimizer=opt)
    for epoch in monitor.epochs(200):
        for xb, yb in loader:
            ...; opt.step(); monitor.log(loss)

Every loss the monitor judges is the metric E of the YES bounds measured on the
*certification set* (the X, Y given, or a fixed seeded subset of them), the same
samples the bounds are computed on; minibatch losses are only drawn.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..core.handle import Handle
from ..core.run import Run
from ..engine.bounds import YesCloud
from ..engine.capture import OutputSelector, Predict
from . import certify, hooks, lifecycle, setup
from .config import MonitorConfig
from .judge import step_loss_info
from .outputs import attach_outputs
from .registry import claim, release
from .state import MonitorState
from .taps import model_dtype

__all__ = ["Monitor"]


class Monitor(MonitorState):
    """Watch a training loop and compute the YES cloud epoch by epoch.

    ``model``: any module, unedited. The certified network is read from what ``forward``
    executes, in order (:func:`yeswidget.engine.capture.trace`): the ``Linear`` layers, the
    post-activation tensors (activation modules, also one called several times, ``F.relu``,
    ``torch.tanh``, …), BatchNorm/Dropout/Flatten in between; convolutions before the first
    ``Linear`` belong to layer 1 (``include_conv=True`` counts them as layers). ``predict``:
    ``predict(model, x) -> output`` when the trained map is not ``forward``; ``output``: the
    tensor compared with Y when the result is a tuple/dict (``output=0``, ``output="logits"``
    or a callable); ``taps``: the L-1 submodules (or dotted names) whose outputs are the hidden
    layers, instead of discovery. Operations the construction cannot fold (recurrent layers, attention,
    LayerNorm, residual sums, gates) give zone ``none`` with the reason, unless ``certify_from`` names
    the module whose output the head reads ("head given current features"). :meth:`describe` says
    what is certified. Before training,
    one YES-k update is estimated from shapes and refused (:class:`~yeswidget.engine.cost.CostError`)
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
    ``outputs``: where the run goes besides its subscribers (``[TensorBoardOutput("tb"), …]``, each
    attached now and removed on :meth:`close`); the run log (``runs_dir=``) is attached by default.
    """

    def __init__(self, model: nn.Module, X: Any, Y: Any = None, *,
                 taps: Sequence[nn.Module | str] | None = None, predict: Predict | None = None,
                 output: OutputSelector = None, optimizer: torch.optim.Optimizer | None = None,
                 cloud: YesCloud | None = None, loss: Any = None, validation: Any = None, outputs: Any = None,
                 config: MonitorConfig | Mapping[str, Any] | None = None, **options: Any) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.config = cfg = MonitorConfig.build(config, options)
        self.model = model
        setup.read_data(self, X, Y)
        self.plan, self._flops_per_sample = setup.trace_model(self, model, taps, predict, output, cfg)
        self.depth = self.plan.depth
        self.bias = self.plan.bias if cfg.bias is None else bool(cfg.bias)
        self._closed = False
        setup.set_targets(self, loss)
        self.step_loss, self._loss_reduction = step_loss_info(loss, cfg.loss_reduction, self.judge.own)
        self.cost = setup.check_cost(self, model_dtype(model))
        self._handles: list[Any] = [hooks.watch_forward(self)]
        self.optimizer: torch.optim.Optimizer | None = None
        try:
            if optimizer is not None:
                self.attach_optimizer(optimizer)
            self.validation = setup.validation_set(self, validation)
            t0 = time.perf_counter()
            self.cloud = setup.make_cloud(self, cloud)
            yes0_seconds = time.perf_counter() - t0
        except BaseException:
            hooks.remove(self)  # a monitor that fails to start leaves nothing on the model
            release(model, self)
            raise
        setup.start(self, yes0_seconds)
        # a second monitor on this model (a cell run twice) closes the first; claimed once this one is
        # whole, so a monitor closed by another one (also from another thread) is never half-built
        claim(model, self)
        try:
            self.outputs = attach_outputs(self, outputs, defaults=not self.bus.muted)
        except BaseException:  # a monitor that fails to start leaves nothing on the model
            self.close()
            raise

    @property
    def run_log(self) -> Any:
        """The crash-safe run log's handle (``.path`` is its file), or None when there is none."""
        return self.outputs.get("run_log")

    # ---------------------------------------------------------------- hooks and steps
    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> Handle:
        """Count steps and read the learning rate after every ``optimizer.step()``."""
        return hooks.attach_optimizer(self, optimizer)

    def log(self, loss: Any = None, *, lr: float | None = None, batch_size: int | None = None) -> None:
        """Record one training step's minibatch loss (a tensor or float; no device sync).

        Without an optimizer attached, each call also counts a step.
        """
        self._check_open()
        lifecycle.relay_interrupt(self)
        hooks.log_step(self, loss, lr, batch_size)

    @property
    def step(self) -> int:
        """Optimizer steps so far."""
        return self.steps.total

    @property
    def steps_per_epoch(self) -> int | None:
        return self.steps.per_epoch

    def mark(self, kind: str, value: Any, **extra: Any) -> None:
        """Note something that happened mid-run (drawn on the chart), e.g. a batch-size change."""
        self.store.mark(self.steps.position(self.epoch, hooks.expected_steps(self)), kind, value, **extra)

    def note(self, name: str, value: Any) -> None:
        """A number of the loop's own for this epoch, kept on its record as ``extra[name]`` (last one wins)."""
        self._extra[str(name)] = float(value)

    # --------------------------------------------------------------- epochs
    def epoch_end(self) -> None:
        """Close an epoch: certify (one no-grad forward pass), queue the bounds, publish the epoch.

        With a run log, the epoch's loss is in it (a ``pending`` line) before this returns."""
        certify.end_epoch(self)

    def resume(self, run: Run) -> None:
        """Continue an earlier run of this model on the same data (e.g. a Lightning fit resumed from a
        checkpoint): its epochs, steps and marks are kept and the lower edge keeps its running minimum."""
        certify.resume(self, run)

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
        return lifecycle.epochs(self, n)

    def stop(self, *, discard_epoch: bool = False) -> None:
        """Ask a loop driven by :meth:`epochs` to stop after the current epoch (``discard_epoch=True``:
        the current epoch was cut short, so it is not certified; its step losses are kept)."""
        lifecycle.stop(self, discard_epoch=discard_epoch)

    def interrupt(self) -> None:
        """Stop at once (Ctrl-C): drop pending bound updates, keep every finished epoch, end threads."""
        lifecycle.interrupt(self)

    def fail(self, exc: BaseException) -> None:
        """Mark the run failed with the exception and its last frames (the record is kept)."""
        lifecycle.fail(self, exc)

    def finish(self, status: str = "finished") -> None:
        """End the run: wait for the bounds, then set ``status`` (unless it already diverged or failed)."""
        lifecycle.finish(self, status)

    def close(self) -> None:
        """Remove every hook and output, stop the threads, drop activations (safe to call twice)."""
        lifecycle.close(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            why = f" ({self.closed_reason})" if getattr(self, "closed_reason", "") else ""
            raise RuntimeError(f"this Monitor is closed{why}; create a new one for a new run")

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
        then = " (raised again in the training thread)" if isinstance(exc, KeyboardInterrupt) else ""
        self.store.note(f"subscriber {callback!r} raised {type(exc).__name__}: {exc}{then}")

    # ---------------------------------------------------------------- reads
    @property
    def run(self) -> Run:
        """The run record (written only by the monitor's store)."""
        return self.store.run

    @property
    def zone(self) -> str | None:
        return self.run.final_zone

    @property
    def loss_reduction(self) -> str | None:
        return self._loss_reduction

    def describe(self) -> str:
        """What is certified, in forward order: the L affine layers, the activation, the hidden widths,
        bias, the tapped tensors, the certification set, the judged quantity and the cost estimate."""
        return setup.describe(self)

    def __repr__(self) -> str:
        return (f"Monitor(depth={self.depth}, N={self.N}, epoch={self.epoch}, status={self.run.status!r}, "
                f"zone={self.zone!r}; monitor.describe() says what is certified)")
