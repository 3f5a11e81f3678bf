"""A PyTorch Lightning callback that runs a :class:`~yeswidget.monitor.Monitor` (optional extra).

    from yeswidget.lightning import YesCallback
    callback = YesCallback(X_train, Y_train, verbose=True)
    lightning.Trainer(max_epochs=200, callbacks=[callback]).fit(module, loader)
    callback.run            # the Run record; callback.monitor while fitting

Lightning is imported when this module is, not by ``import yeswidget``
(``pip install "yeswidget[lightning]"``). The LightningModule itself is the
model the monitor reads (its ``forward`` must map X to the outputs); pass
``taps=[…]`` for anything that is not an MLP-style stack.
"""
from __future__ import annotations

from typing import Any

try:  # the unified package first, then the standalone one
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        from pytorch_lightning.callbacks import Callback
    except ImportError as exc:
        raise ImportError(
            'yeswidget.lightning needs PyTorch Lightning: pip install "yeswidget[lightning]"'
        ) from exc

from .monitor import Monitor
from .run import Run

__all__ = ["YesCallback"]


class YesCallback(Callback):
    """Watch a Lightning fit: the training loss of each batch is logged (from the
    ``training_step`` output), each training epoch is certified on ``X``, ``Y``.

    ``X`` (N × n), ``Y`` (N × m) or a Dataset/DataLoader, and ``**monitor_options``
    go to :class:`~yeswidget.monitor.Monitor`; ``chart=True`` also displays a
    :class:`~yeswidget.chart.CloudChart` (in Jupyter) when the fit starts.
    """

    def __init__(self, X: Any, Y: Any = None, *, chart: bool = False, **monitor_options: Any) -> None:
        super().__init__()
        self.X, self.Y = X, Y
        self.chart_wanted = chart
        self.monitor_options = monitor_options
        self.monitor: Monitor | None = None
        self.chart = None
        self.run: Run | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        options = dict(self.monitor_options)
        options.setdefault("epochs", trainer.max_epochs if (trainer.max_epochs or -1) > 0 else None)
        self.monitor = Monitor(pl_module, self.X, self.Y, optimizer=optimizer, **options)
        self.run = self.monitor.run
        if self.chart_wanted:
            from IPython.display import display

            from .widgets.chart import CloudChart

            self.chart = CloudChart(self.monitor)
            display(self.chart)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.monitor is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self.monitor.log(loss)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.monitor is not None:
            self.monitor.epoch_end()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self.monitor is not None:
            self.monitor.fail(exception)
            self.monitor.close()

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.monitor is not None:
            # interrupted (e.g. early stopping) before max_epochs: stopped, not finished
            total = self.monitor.epochs_total
            self.monitor.finish("finished" if total is None or self.monitor.epoch >= total else "stopped")
            self.monitor.close()
