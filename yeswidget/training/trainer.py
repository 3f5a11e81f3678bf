"""Train a :class:`~yeswidget.training.tasks.Task` under a :class:`~yeswidget.monitor.Monitor`,
in a background thread, with live controls (learning rate, batch size, pause,
stop). No UI imports: the Playground, ``LiveCloud`` and the command line share it.

Learning-rate schedules are multipliers of the *base* learning rate, so a live
change of the base (the slider) composes with the schedule at the next step:
``lr(epoch) = base_lr × factor(epoch)``.
"""
from __future__ import annotations

import threading
import time
import traceback as traceback_module
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..core.run import Run, StatusEvent
from ..engine.bounds import YesCloud
from ..monitor import Monitor
from .recipe import Settings, check_lr, make_optimizer, schedule_factor
from .slimtrain import SlimTrain

__all__ = ["Trainer", "TRAINING_LOSSES", "training_loss", "check_training_loss"]

#: the losses a task can be trained (and judged) in: name -> the module, mean over all elements
TRAINING_LOSSES: dict[str, Callable[..., nn.Module]] = {
    "mse": nn.MSELoss, "huber": nn.HuberLoss, "smooth_l1": nn.SmoothL1Loss, "l1": nn.L1Loss}


def training_loss(name: str, reduction: str = "mean") -> nn.Module:
    """The loss module named ``name`` (a key of :data:`TRAINING_LOSSES`) with that reduction."""
    if name not in TRAINING_LOSSES:
        raise ValueError(f"loss must be one of {', '.join(TRAINING_LOSSES)}; got {name!r}")
    return TRAINING_LOSSES[name](reduction=reduction)


def check_training_loss(name: str, optimizer: str) -> None:
    """Raise ValueError unless ``name`` is a training loss ``optimizer`` can train in."""
    training_loss(name)
    if name != "mse" and optimizer == "slimtrain":
        raise ValueError(f"slimtrain solves the last layer in squared error; it cannot train in {name}: "
                         "use another optimizer or loss='mse'")


def _minibatch_loss(model: nn.Module, optimizer: torch.optim.Optimizer | SlimTrain, loss_fn: nn.Module,
                    xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """The summed loss of one minibatch (slimTrain: with the last layer solved for it)."""
    if isinstance(optimizer, SlimTrain):
        return optimizer.loss(xb, yb)
    loss: torch.Tensor = loss_fn(model(xb), yb)
    return loss


class Trainer:
    """One training run of ``task`` with ``settings``, in a background thread.

    ``start()`` builds the model from ``settings.seed`` (identical initial
    weights for identical seeds), the optimizer, and a Monitor; then trains with
    ``MSELoss(reduction="sum")`` on shuffled minibatches (seeded), or in ``loss`` (a key of
    :data:`TRAINING_LOSSES`), summed likewise, and judged in that loss. Live controls:
    :meth:`set_lr` (next step), :meth:`set_batch_size` (next epoch, marked on the
    run), :meth:`pause` / :meth:`resume`, :meth:`stop` (within one step).
    ``cloud``: a YesCloud on the task's training data whose YES-0 is reused.
    ``on_epoch(trainer, epochs_done)``: called in the training thread after each whole epoch
    (e.g. a few predictions for a display; the weights do not move while it runs).
    """

    def __init__(self, task: Any, settings: Settings, *, cloud: YesCloud | None = None,
                 subscribers: tuple[Callable[[Any], None], ...] = (), run_id: str | None = None,
                 max_samples: int | None = None, on_monitor: Callable[[Monitor], None] | None = None,
                 stop_on_divergence: bool = True,
                 on_epoch: Callable[[Trainer, int], None] | None = None, loss: str = "mse") -> None:
        check_training_loss(loss, settings.optimizer)
        self.loss = training_loss(loss)
        self.loss_name = loss
        self.task = task
        self.settings = settings
        self.base_lr = float(settings.lr)
        self._batch_size = int(settings.batch_size)
        self._cloud = cloud
        self._subscribers = tuple(subscribers)
        self._run_id = run_id
        self._max_samples = max_samples
        self._on_monitor = on_monitor
        self.stop_on_divergence = stop_on_divergence
        self._on_epoch = on_epoch  # called in the training thread after each whole epoch (1-based count)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()  # set = not paused
        self._ready = threading.Event()
        self._pause_at: int | None = None  # pause at the start of this 0-based epoch (step_epochs)
        self._epochs_done = 0
        self._parked = threading.Event()  # set while paused at an epoch boundary
        self.thread: threading.Thread | None = None
        self.monitor: Monitor | None = None
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | SlimTrain | None = None
        self.initial_state: dict[str, torch.Tensor] | None = None
        self.run: Run = Run(run_id=run_id or "", config=dict(settings.as_dict(), task=getattr(task, "name", "")))
        self.error: BaseException | None = None

    # ------------------------------------------------------------- controls
    def set_lr(self, lr: float) -> None:
        """New base learning rate; reaches the optimizer at the next step."""
        self.base_lr = check_lr(lr)

    def set_batch_size(self, batch_size: int) -> None:
        """New batch size; applies from the next epoch (and is marked on the run)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int ≥ 1; got {batch_size!r}")
        self._batch_size = batch_size

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def step_epochs(self, n: int = 1) -> None:
        """Train ``n`` more epochs (finishing the current one first), then pause at that epoch boundary."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int ≥ 1; got {n!r}")
        self._pause_at = self._epochs_done + n
        self._parked.clear()
        self.resume()

    def wait_parked(self, timeout: float | None = None) -> bool:
        """Block until the run paused at the boundary :meth:`step_epochs` asked for, or ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._parked.wait(0.05):
            if not self.alive and self.thread is not None:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
        return True

    def stop(self) -> None:
        """Stop within one step (also wakes a paused run)."""
        self._stop.set()
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` was called (the run ends before its next step)."""
        return self._stop.is_set()

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ended; False if ``timeout`` ran out first."""
        if self.thread is None:
            return True
        self.thread.join(timeout)
        return not self.thread.is_alive()

    # ------------------------------------------------------------- the run
    def start(self, *, background: bool = True) -> Trainer:
        """Build everything and train (in a daemon thread unless ``background=False``)."""
        if background:
            self.thread = threading.Thread(target=self._main, name="yeswidget-train", daemon=True)
            self.thread.start()
            self._ready.wait()
        else:
            self._main()
        return self

    def _build(self) -> None:
        s = self.settings
        self.model = self.task.model(s.seed)
        self.initial_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.optimizer = make_optimizer(s.optimizer, self.model, self.base_lr)
        cloud = self._cloud.fresh() if self._cloud is not None else None
        config = dict(s.as_dict(), task=getattr(self.task, "name", ""))
        wrapped = self.optimizer.optimizer if isinstance(self.optimizer, SlimTrain) else self.optimizer
        # the recipe trains in squared error (the paper's protocol, judged in the metric E) unless
        # another loss was asked for: then it is judged in that loss
        self.monitor = Monitor(self.model, self.task.X_train, self.task.Y_train, optimizer=wrapped,
                               loss="mse" if self.loss_name == "mse" else self.loss,
                               epochs=s.epochs, every=s.every, cloud=cloud, labels=config, run_id=self._run_id,
                               max_samples=self._max_samples, confirm_green=True)
        for callback in self._subscribers:
            self.monitor.subscribe(callback)
        self.run = self.monitor.run
        if self._on_monitor is not None:
            self._on_monitor(self.monitor)

    def _main(self) -> None:
        try:
            self._build()
        except BaseException as exc:  # nothing is lost: the failure is a run too
            self.error = exc
            frames = traceback_module.format_exception(type(exc), exc, exc.__traceback__)
            self.run.status, self.run.message = "failed", f"{type(exc).__name__}: {exc}"
            self.run.traceback = "".join(frames[-6:])
            for callback in self._subscribers:
                try:
                    callback(StatusEvent(self.run.run_id, "failed", self.run.message, self.run.traceback))
                except Exception:
                    pass
            self._ready.set()
            return
        self._ready.set()
        monitor = self.monitor
        assert monitor is not None and self.model is not None and self.optimizer is not None
        try:
            self._train(monitor, self.model, self.optimizer)
        except BaseException as exc:
            self.error = exc
            monitor.fail(exc)
        finally:
            monitor.close()

    def _park(self, epoch: int) -> None:
        """At the start of 0-based ``epoch``: pause here if :meth:`step_epochs` asked to."""
        self._epochs_done = epoch
        if self._pause_at is not None and epoch >= self._pause_at:
            self._pause_at = None
            self._running.clear()
            self._parked.set()
            self._running.wait()
            self._parked.clear()

    def _train(self, monitor: Monitor, model: nn.Module, optimizer: torch.optim.Optimizer | SlimTrain) -> None:
        s = self.settings
        X, Y = self.task.X_train, self.task.Y_train
        N = X.shape[0]
        device = monitor.device
        # the model's dtype (a float64 or bfloat16 model), as the monitor's forward passes use
        X, Y = X.to(device, dtype=monitor.X.dtype), Y.to(device, dtype=monitor.X.dtype)
        loss_fn = training_loss(self.loss_name, reduction="sum")  # summed, as the recipe's learning rates assume
        # logged per sample (metric E) for squared error, else as the judged mean over all elements
        per = 1 if self.loss_name == "mse" or Y.ndim < 2 else Y.shape[1]
        generator = torch.Generator().manual_seed(s.seed)
        batch_size = None
        applied_base = self.base_lr
        model.train()
        for epoch in monitor.epochs(s.epochs):
            self._park(epoch)
            if self._stop.is_set():
                monitor.stop()
                break
            wanted = min(self._batch_size, N)  # read once: the slider may move meanwhile
            if batch_size is not None and wanted != batch_size:
                monitor.mark("batch_size", wanted, previous=batch_size)
            batch_size = wanted
            # shuffle=False: the published scripts' protocol, minibatches in data order every epoch
            order = (torch.randperm(N, generator=generator) if s.shuffle else torch.arange(N)).to(device)
            factor = schedule_factor(s, epoch)
            cut_short = False
            for start in range(0, N, batch_size):
                if not self._running.is_set():
                    self._running.wait()
                if self._stop.is_set():
                    cut_short = start > 0
                    break
                if self.base_lr != applied_base:  # a live change (the slider): part of the run's record
                    monitor.mark("lr", self.base_lr, previous=applied_base)
                    applied_base = self.base_lr
                lr = self.base_lr * factor
                for group in optimizer.param_groups:
                    group["lr"] = lr
                index = order[start:start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = _minibatch_loss(model, optimizer, loss_fn, X[index], Y[index])
                torch.autograd.backward(loss)
                optimizer.step()
                # logged per sample (metric E on the minibatch) so it is comparable with the cloud
                # (batch_size: the epoch's setting, not the size of a short last minibatch)
                monitor.log(loss.detach() / (index.shape[0] * per), batch_size=batch_size)
            if isinstance(optimizer, SlimTrain) and optimizer.regularization is not None:
                monitor.note("regularization", optimizer.regularization)  # λ of the epoch's last solve
            if not cut_short and self._on_epoch is not None:
                self._on_epoch(self, epoch + 1)
            if self._stop.is_set():
                # a partial epoch is not certified as if it were whole
                monitor.stop(discard_epoch=cut_short)
            if self.stop_on_divergence and monitor.run.status == "diverged":
                monitor.stop()
        monitor.wait()
        if self._stop.is_set() and monitor.run.status == "running":
            monitor.finish("stopped")
