"""``LiveCloud``: a monitor and its chart in one widget, for people who write their own loop.

    live = LiveCloud(model, X, Y, optimizer=opt)
    display(live)
    for epoch in live.epochs(100):
        for xb, yb in loader:
            ...; opt.step(); live.log(loss)

With ``optimizer`` it shows a learning-rate slider acting on that optimizer at
its next step. A blocking cell cannot take slider moves (the kernel is busy),
so :meth:`train_in_background` runs the loop function in a thread.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Callable, Iterator

import ipywidgets as widgets

from .chart import CloudChart
from .core.run import EpochEvent, Run
from .monitor import Monitor
from .playground import _set_lr_value

__all__ = ["LiveCloud"]


class LiveCloud(widgets.VBox):
    """Monitor + :class:`~yeswidget.chart.CloudChart` (+ an lr slider when ``optimizer`` is given).

    ``model``, ``X``, ``Y`` and ``**monitor_options`` (``predict=``, ``output=``, ``taps=``, ``every=``,
    ``max_samples=``, …) go to :class:`~yeswidget.monitor.Monitor`.
    """

    def __init__(self, model, X, Y=None, *, optimizer=None, scale: str = "db", **monitor_options: Any) -> None:
        self.monitor = Monitor(model, X, Y, optimizer=optimizer, **monitor_options)
        self.chart = CloudChart(scale=scale)
        self.chart.watch(self.monitor)
        self.optimizer = optimizer
        self.thread: threading.Thread | None = None
        self._syncing = False
        children: list[widgets.Widget] = []
        self.lr_slider: widgets.FloatLogSlider | None = None
        if optimizer is not None:
            lr = float(optimizer.param_groups[0]["lr"])
            self.lr_slider = widgets.FloatLogSlider(
                value=lr, base=10, min=-6, max=1, step=0.1, description="learning rate", readout_format=".1e",
                continuous_update=False, style={"description_width": "initial"},
            )
            _set_lr_value(self.lr_slider, lr)  # widen the range for an lr outside 1e-6 … 10
            self.lr_slider.observe(self._on_lr, names="value")
            self._follow = self.monitor.subscribe(self._on_event)
            children.append(self.lr_slider)
        children.append(self.chart)
        super().__init__(children)

    # the loop-facing API (same as the monitor's)
    def log(self, loss: Any = None, **kwargs: Any) -> None:
        """Record one step's minibatch loss (tensor or float; no device sync)."""
        self.monitor.log(loss, **kwargs)

    def epoch_end(self) -> None:
        """Close an epoch: certify, update the cloud, redraw."""
        self.monitor.epoch_end()

    def epochs(self, n: int) -> Iterator[int]:
        """``for epoch in live.epochs(n):`` (calls :meth:`epoch_end` after each epoch)."""
        return self.monitor.epochs(n)

    @property
    def run(self) -> Run:
        return self.monitor.run

    def set_lr(self, lr: float) -> None:
        """Set the optimizer's learning rate for every parameter group (takes effect at its next step)."""
        if self.optimizer is None:
            raise ValueError("LiveCloud was created without optimizer=…; there is no learning rate to set")
        if not lr > 0:
            raise ValueError(f"lr must be positive; got {lr!r}")
        for group in self.optimizer.param_groups:
            group["lr"] = float(lr)

    def _on_lr(self, change) -> None:
        if not self._syncing:
            self.set_lr(float(change["new"]))

    def _on_event(self, event: Any) -> None:
        # a user's scheduler moves the lr: show it on the slider without feeding it back.
        # Read the optimizer itself, not the epoch record: a record of an epoch that ended
        # before a slider move still carries the old lr and would snap the slider back.
        if isinstance(event, EpochEvent) and self.lr_slider is not None and self.optimizer is not None:
            current = float(self.optimizer.param_groups[0]["lr"])
            if math.isclose(current, float(self.lr_slider.value), rel_tol=1e-9):
                return
            self._syncing = True
            try:
                _set_lr_value(self.lr_slider, current)
            finally:
                self._syncing = False

    def train_in_background(self, loop: Callable[..., Any], *args: Any, **kwargs: Any) -> threading.Thread:
        """Run ``loop(*args, **kwargs)`` in a daemon thread so the slider works while it trains.

        An exception in the loop marks the run failed (shown in the chart, record kept).
        """
        if self.thread is not None and self.thread.is_alive():
            raise RuntimeError("a loop is already running in the background; call stop() and wait() first")

        def target() -> None:
            try:
                loop(*args, **kwargs)
            except BaseException as exc:
                # Leaving a ``for … in live.epochs(n)`` loop by an exception has already marked
                # the run "stopped" (the generator cannot see the exception): record the real thing.
                if self.monitor.run.status != "diverged":
                    self.monitor.fail(exc)
            else:
                self.monitor.finish()

        self.thread = threading.Thread(target=target, name="yeswidget-user-loop", daemon=True)
        self.thread.start()
        return self.thread

    def stop(self) -> None:
        """Ask a loop written with :meth:`epochs` to stop after the current epoch."""
        self.monitor.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background loop (if any) and the pending bounds are done."""
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                return False
        done = self.monitor.wait(timeout)
        self.chart.flush()
        return done

    def close(self) -> None:
        """Stop the background loop (after its current epoch), the monitor's worker and every
        redraw timer, then close the widgets: no thread of this widget is left."""
        self.stop()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(30)
        self.monitor.close()
        self.chart.close()  # joins its redraw timer
        if self.lr_slider is not None:
            self.lr_slider.close()
        super().close()
