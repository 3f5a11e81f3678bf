"""A PyTorch Lightning callback that runs a :class:`~yeswidget.monitor.Monitor` (optional extra).

    from yeswidget.integrations.lightning import YesCallback
    callback = YesCallback(X_train, Y_train, verbose=True)
    lightning.Trainer(max_epochs=200, callbacks=[callback]).fit(module, loader)
    callback.run            # the Run record; callback.monitor while fitting

Every logger the trainer has (``trainer.loggers``: TensorBoardLogger, CSVLogger,
MLFlowLogger, WandbLogger, …) receives the YES metrics of each epoch through its
``log_metrics`` (names as in :mod:`yeswidget.integrations.metrics`, plus ``yes/epoch``),
at the optimizer step the epoch ended on; ``log_metrics=False`` turns that off.

Lightning is imported when this module is, not by ``import yeswidget``
(``pip install "yeswidget[lightning]"``). The LightningModule itself is the
model the monitor reads, unedited: by what its ``forward`` executes, or by
``predict=lambda module, x: …`` when the trained map is not ``forward`` (an
autoencoder whose ``training_step`` runs ``decoder(encoder(x))``); ``output=``
picks the tensor of a tuple/dict result; ``taps=[…]`` names hidden layers.
"""
from __future__ import annotations

import queue
from typing import TYPE_CHECKING, Any

try:  # the unified package first, then the standalone one
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        # the standalone package: the same class under its older module name
        from pytorch_lightning.callbacks import Callback  # type: ignore[assignment]
    except ImportError as exc:
        raise ImportError(
            'yeswidget.integrations.lightning needs PyTorch Lightning: pip install "yeswidget[lightning]"'
        ) from exc

from ..core.run import EpochEvent, EpochRecord, Run
from ..monitor import Monitor
from .metrics import epoch_metrics

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule, Trainer
    from lightning.pytorch.utilities.types import STEP_OUTPUT

    from ..widgets.chart import CloudChart

__all__ = ["YesCallback"]


class YesCallback(Callback):
    """Watch a Lightning fit: the training loss of each batch is logged (from the
    ``training_step`` output), each training epoch is certified on ``X``, ``Y``.

    ``X`` (N × n), ``Y`` (N × m) or a Dataset/DataLoader, and ``**monitor_options``
    go to :class:`~yeswidget.monitor.Monitor`; ``chart=True`` also displays a
    :class:`~yeswidget.widgets.chart.CloudChart` (in Jupyter) when the fit starts.
    Only global rank zero draws and prints. Under DDP (``strategy="ddp"``) each rank certifies
    its share of ``X``, ``Y`` (every world_size-th sample; ``shard=False``: pass each rank's own
    shard yourself) and all ranks hold the verdict of the whole set. The run is part of the
    callback's ``state_dict``, so a fit resumed from a checkpoint continues the same run.
    """

    def __init__(self, X: Any, Y: Any = None, *, chart: bool = False, log_metrics: bool = True,
                 shard: bool = True, **monitor_options: Any) -> None:
        super().__init__()
        self.X, self.Y = X, Y
        self.chart_wanted = chart
        self.log_metrics = bool(log_metrics)
        self._records: queue.SimpleQueue[EpochRecord] = queue.SimpleQueue()  # epochs not yet given to the loggers
        self.monitor_options = monitor_options
        self.monitor: Monitor | None = None
        self.chart: CloudChart | None = None
        self.run: Run | None = None
        self._resumed: Run | None = None
        self.shard = bool(shard)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        options = dict(self.monitor_options)
        options.setdefault("epochs", trainer.max_epochs if (trainer.max_epochs or -1) > 0 else None)
        if not trainer.is_global_zero:
            options["verbose"] = False  # one printer, one chart: on global rank zero
        X, Y = self._shard(trainer)
        self.monitor = Monitor(pl_module, X, Y, optimizer=optimizer, **options)
        if self._resumed is not None:
            self.monitor.resume(self._resumed)
            self._resumed = None
        self.run = self.monitor.run
        if self.log_metrics:
            self.monitor.subscribe(self._collect)
        if self.chart_wanted and trainer.is_global_zero:
            from IPython.display import display

            from ..widgets.chart import CloudChart

            self.chart = CloudChart(self.monitor)
            display(self.chart)  # type: ignore[no-untyped-call]  # IPython's display is unannotated

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles the callbacks into each process: what belongs to this process stays here
        state = dict(self.__dict__)
        state.update(_records=None, monitor=None, chart=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._records = queue.SimpleQueue()

    def _shard(self, trainer: Any) -> tuple[Any, Any]:
        """Under a multi-process strategy (DDP) each rank certifies every world_size-th sample, so
        the union the ranks' monitors reduce over is the certification set given, once."""
        world, rank = int(getattr(trainer, "world_size", 1) or 1), int(getattr(trainer, "global_rank", 0) or 0)
        if world > 1 and self.shard and hasattr(self.X, "__getitem__") and hasattr(self.X, "shape"):
            if self.Y is not None and hasattr(self.Y, "shape"):
                return self.X[rank::world], self.Y[rank::world]
        return self.X, self.Y

    def state_dict(self) -> dict[str, Any]:
        """The run so far (saved in Lightning checkpoints), every finished epoch included."""
        if self.monitor is not None and not self.monitor.closed:
            self.monitor.wait()  # a checkpoint taken at an epoch's end holds that epoch's record
        return {"run": self.run.to_dict()} if self.run is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the saved run at the next fit (``trainer.fit(..., ckpt_path=…)``)."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"YesCallback state must be a dict (from YesCallback.state_dict()); got "
                            f"{type(state_dict).__name__}: the checkpoint is damaged or not from this callback")
        if state_dict.get("run"):
            try:
                self._resumed = Run.from_dict(state_dict["run"])
            except (ValueError, TypeError) as exc:
                raise ValueError(f"the checkpoint's YesCallback state is not a yeswidget run ({exc}); it is damaged "
                                 "or was not written by YesCallback: resume without it (a new run starts)") from None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: STEP_OUTPUT,
                           batch: Any, batch_idx: int) -> None:
        if self.monitor is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self.monitor.log(loss)
        self._log_to_loggers(trainer)  # epochs the bounds worker finished meanwhile

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.monitor is not None:
            self.monitor.epoch_end()
            self._log_to_loggers(trainer)

    # ---- the trainer's loggers (called on the training thread only) ----------
    def _collect(self, event: Any) -> None:
        if isinstance(event, EpochEvent):  # may arrive on the monitor's worker thread
            self._records.put(event.record)

    def _log_to_loggers(self, trainer: Trainer) -> None:
        logged = False
        while True:
            try:
                record = self._records.get_nowait()
            except queue.Empty:
                break
            metrics = {"yes/epoch": float(record.epoch), **epoch_metrics(record)}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=record.step)
            logged = True
        if logged:
            for logger in trainer.loggers:
                logger.save()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if self.monitor is not None:
            self.monitor.fail(exception)
            self.monitor.close()
            self._log_to_loggers(trainer)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.monitor is not None:
            # interrupted (e.g. early stopping) before max_epochs: stopped, not finished
            total = self.monitor.epochs_total
            self.monitor.finish("finished" if total is None or self.monitor.epoch >= total else "stopped")
            self.monitor.close()
            self._log_to_loggers(trainer)
