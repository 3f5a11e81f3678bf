"""``LiveCloud``: a monitor and its chart in one widget, for people who write their own loop.

    live = LiveCloud(model, X, Y, optimizer=opt)
    display(live)
    for epoch in live.epochs(100):
        for xb, yb in loader:
            ...; opt.step(); live.log(loss)

With ``optimizer`` it shows a learning-rate slider acting on that optimizer at
its next step. A blocking cell cannot take slider moves (the kernel is busy),
so :meth:`train_in_background` runs the loop function in a thread. Every widget
write happens on the UI pump thread (:mod:`yeswidget.widgets.pump`).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as widgets

from ..core.run import EpochEvent, Run
from ..monitor import Monitor
from ..monitor.registry import claim, release
from ..training.recipe import check_lr
from .chart import CloudChart
from .lr_slider import lr_slider, set_lr_value
from .picture import Picture
from .pump import default_pump
from .sync import close_all

__all__ = ["LiveCloud"]


class LiveCloud(Picture, widgets.VBox):
    """Monitor + :class:`~yeswidget.widgets.chart.CloudChart` (+ an lr slider when ``optimizer`` is given).

    ``model``, ``X``, ``Y`` and ``**monitor_options`` (``predict=``, ``output=``, ``taps=``, ``every=``,
    ``max_samples=``, …) go to :class:`~yeswidget.monitor.Monitor`.
    Building a second LiveCloud on the same model (a cell run twice) closes the first.
    """

    def __init__(self, model: Any, X: Any, Y: Any = None, *, optimizer: Any = None, scale: str = "db",
                 **monitor_options: Any) -> None:
        self._closed = True  # until the widget exists: a failed constructor has nothing to close
        self.thread: threading.Thread | None = None
        self.lr_slider: widgets.FloatLogSlider | None = None
        self.monitor = Monitor(model, X, Y, optimizer=optimizer, **monitor_options)
        self.optimizer = optimizer
        try:
            self.chart = CloudChart(self.monitor, scale=scale)
            children: list[widgets.Widget] = []
            if optimizer is not None:
                self.lr_slider = lr_slider(float(optimizer.param_groups[0]["lr"]))
                self.lr_slider.observe(self._on_lr, names="value")
                children.append(self.lr_slider)
            children.append(self.chart)
        except BaseException:
            self.monitor.close()
            raise
        super().__init__(children)
        self._closed = False
        self._syncing = False
        self._ui = default_pump().register(self._apply, name="live-cloud")
        self._follow = self.monitor.subscribe(self._on_event) if optimizer is not None else None
        claim(model, self, replaces=self.monitor)  # a second LiveCloud on this model closes this one

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

    @property
    def closed(self) -> bool:
        return self._closed

    def set_lr(self, lr: float) -> None:
        """Set the optimizer's learning rate for every parameter group (takes effect at its next step).

        During a run the change is recorded in it (a mark: when, from → to) and drawn on the chart.
        """
        if self.optimizer is None:
            raise ValueError("LiveCloud was created without optimizer=…; there is no learning rate to set")
        lr = check_lr(lr)
        previous = float(self.optimizer.param_groups[0]["lr"])
        for group in self.optimizer.param_groups:
            group["lr"] = float(lr)
        if self.run.status == "running" and self.monitor.epoch + self.monitor.steps.this_epoch > 0:
            self.monitor.mark("lr", float(lr), previous=previous)

    def _on_lr(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.set_lr(float(change["new"]))

    def _on_event(self, event: Any) -> None:
        if isinstance(event, EpochEvent):
            self._ui.mark()  # a user's scheduler may have moved the lr: the pump shows it

    def _apply(self) -> None:
        """On the UI pump thread: show the optimizer's lr on the slider without feeding it back.
        (Read the optimizer itself: an epoch record from before a slider move carries the old lr.)"""
        if self.lr_slider is None or self.optimizer is None or self._closed:
            return
        current = float(self.optimizer.param_groups[0]["lr"])
        if math.isclose(current, float(self.lr_slider.value), rel_tol=1e-9):
            return
        self._syncing = True
        try:
            set_lr_value(self.lr_slider, current)
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
        self._ui.flush()
        if threading.current_thread() is threading.main_thread():
            self.refresh_picture()  # the saved notebook's picture shows the run as it ended
        return done

    def _picture_chart(self) -> Any:
        return self.chart

    def close(self) -> None:
        """Stop the background loop (after its current epoch) and the monitor, leave the UI pump,
        then close every widget this LiveCloud made: no thread of it is left."""
        if self._closed:  # closed, or a constructor that failed before the widgets existed
            return
        self._closed = True
        self.stop()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(30)
        self._ui.close()
        self.monitor.close()
        release(self.monitor.model, self)
        self.chart.close()
        close_all(self)  # the slider, the box, and their layouts and styles

