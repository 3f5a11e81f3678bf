"""What the network learns: predicted vs true outputs for a few fixed samples of a task.

The predictions are computed on the training thread after each epoch (a forward of
a handful of samples, while the weights stand still) and drawn by the UI pump.
"""
from __future__ import annotations

import threading
from typing import Any

import bqplot
import ipywidgets as widgets
import numpy as np
import torch

from ..sync import close_all, f32, set_line, set_traits

__all__ = ["PredictionsPanel"]

_TRUE_COLOR = "#888888"  # mid grey: readable on light and dark themes


class PredictionsPanel:
    """A small bqplot chart: for ``n_samples`` fixed samples (held-out ones when the task has
    them), the true output vector (grey, dashed) and the model's prediction (the run's colour),
    stacked one above the other. Classifiers (a task with ``extras["decode"]``) also say the
    true and the predicted class.

    ``take(model, epoch, color)``: training thread. ``apply()``: UI pump thread only.
    Attributes: ``box`` (the widget), ``true_lines``, ``predicted_lines``, ``caption``,
    ``epoch`` (of the predictions shown), ``X`` ``(k, n)`` and ``Y`` ``(k, m)`` (the samples).
    """

    #: predictions kept until the chart shows their epoch (the training thread may be a few epochs ahead)
    KEEP = 16

    def __init__(self, task: Any, n_samples: int = 3) -> None:
        held_out = task.X_test is not None and task.X_test.shape[0] > 0
        X, Y = (task.X_test, task.Y_test) if held_out else (task.X_train, task.Y_train)
        k = int(min(n_samples, X.shape[0]))
        self.X, self.Y = X[:k].detach().clone(), Y[:k].detach().clone()
        self.where = "held-out" if held_out else "training"
        self.decode = task.extras.get("decode") if isinstance(task.extras, dict) else None
        y = self.Y.double().numpy()
        span = float(np.ptp(y)) or 1.0
        self.offsets = np.arange(k)[::-1, None] * 1.25 * span  # sample 1 on top
        self.x = np.tile(np.arange(1, y.shape[1] + 1, dtype=np.float64), (k, 1))
        self.epoch = 0
        self._lock = threading.Lock()
        self._pending: list[tuple[np.ndarray, int, str]] = []  # taken, not drawn yet: (outputs, epoch, colour)
        xs = bqplot.LinearScale()
        ys = bqplot.LinearScale()
        sc = {"x": xs, "y": ys}
        self.true_lines = bqplot.Lines(x=f32(self.x), y=f32(y + self.offsets), scales=sc, colors=[_TRUE_COLOR],
                                       line_style="dashed", stroke_width=1.5, labels=["true"],
                                       enable_hover=False)
        # until the first epoch: the true lines again, fully transparent (bqplot draws no figure whose
        # lines start as empty 2-D arrays, and writes d="null", a console error, for lines of NaN)
        self.predicted_lines = bqplot.Lines(x=f32(self.x), y=f32(y + self.offsets), scales=sc,
                                            colors=["#1f77b4"], stroke_width=2.0, labels=["predicted"],
                                            opacities=[0.0] * k, enable_hover=False)
        x_axis = bqplot.Axis(scale=xs, label="output", tick_format="d", num_ticks=4)
        # no y axis: a hidden bqplot axis still lays out its ticks, at translate(x, undefined) (console errors)
        self.figure = bqplot.Figure(marks=[self.true_lines, self.predicted_lines], axes=[x_axis],
                                    title="predicted vs true", fig_margin=dict(top=35, bottom=40, left=10, right=10),
                                    animation_duration=0, padding_y=0.05,
                                    layout=widgets.Layout(width="100%", height="330px"))
        self.caption = widgets.HTML(self._caption(None))
        self.box = widgets.VBox([self.figure, self.caption], layout=widgets.Layout(width="300px", min_width="240px"))
        self.box.add_class("yeswidget-predictions")

    # ------------------------------------------------------------------ training thread
    def take(self, model: torch.nn.Module, epoch: int, color: str) -> None:
        """Predict the samples with ``model`` (its device and dtype) and keep them for the pump."""
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else self.X.dtype
        training = model.training
        model.eval()  # a prediction, not a training step (dropout off, batch-norm statistics kept)
        try:
            with torch.no_grad():
                out = model(self.X.to(device=device, dtype=dtype)).detach().to("cpu", torch.float64).numpy()
        finally:
            model.train(training)
        with self._lock:
            if self._pending and int(epoch) <= self._pending[-1][1]:  # a new run starts again at epoch 1
                self._pending.clear()
            self._pending.append((out.reshape(self.Y.shape), int(epoch), color))
            del self._pending[:-self.KEEP]

    # ------------------------------------------------------------------ pump thread
    def apply(self, up_to: int | None = None) -> None:
        """Draw the newest predictions of an epoch ≤ ``up_to`` (the epoch the chart shows; None: any)."""
        with self._lock:
            ready = [p for p in self._pending if up_to is None or p[1] <= up_to]
            if not ready:
                return
            pending = ready[-1]
            self._pending = [p for p in self._pending if p[1] > pending[1]]
        out, epoch, color = pending
        self.epoch = epoch
        with self.predicted_lines.hold_sync():
            set_line(self.predicted_lines, self.x, out + self.offsets)  # a diverged run's NaN outputs: none
            set_traits(self.predicted_lines, colors=[color], opacities=[1.0] * out.shape[0])
        set_traits(self.figure, title=f"predicted vs true, epoch {epoch}")
        set_traits(self.caption, value=self._caption(out))

    def _caption(self, out: np.ndarray | None) -> str:
        k = self.X.shape[0]
        head = f"{k} {self.where} samples, top to bottom; dashed: true, solid: predicted"
        if self.decode is None or out is None:
            return f"<small>{head}</small>"
        true = [int(c) for c in self.decode(self.Y)]
        guessed = [int(c) for c in self.decode(torch.from_numpy(out))]
        cells = ", ".join(f"{t} → {g} {'✓' if t == g else '✗'}" for t, g in zip(true, guessed))
        return f"<small>{head}<br>class true → predicted: {cells}</small>"

    def close(self) -> None:
        close_all(self.box)
