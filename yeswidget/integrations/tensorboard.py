"""TensorBoard output: the YES metrics as scalars, the verdict as text, the cloud as an image.

    from yeswidget.integrations import TensorBoardOutput
    TensorBoardOutput(log_dir="tb/run1").attach(monitor)      # or TensorBoardOutput(writer)

Scalars (see :mod:`yeswidget.integrations.metrics`): ``yes/loss``, ``yes/yes0``, ``yes/lower``,
``yes/yes_k/<k>``, ``yes/zone`` (red 0, yellow 1, green 2), ``yes/margin_db``, ``yes/accuracy``
when present, at the epoch (or optimizer step, ``x="step"``). Text: ``yes/verdict`` (verdict,
margins, certification set, notes) at the end and ``yes/notes`` for each yellow plateau.
Image: ``yes/cloud`` at the end (``image=False`` to skip).
Needs ``torch.utils.tensorboard``, i.e. ``pip install "yeswidget[tensorboard]"``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.plateau import plateau_starts
from ..core.run import EpochRecord, Run, StatusEvent
from ._base import Output
from .metrics import epoch_metrics, verdict_summary

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TensorBoardOutput"]


def _summary_writer(log_dir: Any) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch raises this when the tensorboard package is missing
        raise ImportError('TensorBoardOutput needs TensorBoard: pip install "yeswidget[tensorboard]"') from exc
    return SummaryWriter(log_dir=None if log_dir is None else str(log_dir))


def cloud_image(run: Run) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The run's cloud picture as an H × W × 3 uint8 array (what ``save_cloud`` would draw)."""
    import numpy as np

    from ..view.render import draw_cloud

    figure = draw_cloud(run)
    figure.canvas.draw()
    rgba = figure.canvas.buffer_rgba()  # type: ignore[attr-defined]  # draw_cloud's figures have an Agg canvas
    pixels: np.ndarray[Any, np.dtype[np.uint8]] = np.asarray(rgba)[..., :3].copy()
    return pixels


class TensorBoardOutput(Output):
    """Write a run to TensorBoard through ``writer`` (a ``SummaryWriter``; closed only if made here).

    ``log_dir``: where a new writer writes (default: TensorBoard's ``runs/<time>``).
    ``x``: ``"epoch"`` (default) or ``"step"`` (optimizer steps, to share an axis with
    losses logged per step). ``image``: add the cloud picture when the run ends.
    """

    def __init__(self, writer: Any = None, *, log_dir: Any = None, x: str = "epoch", image: bool = True) -> None:
        super().__init__()
        if writer is not None and not hasattr(writer, "add_scalar"):
            raise TypeError(f"writer must be a torch.utils.tensorboard.SummaryWriter; got {type(writer).__name__}")
        if writer is not None and log_dir is not None:
            raise ValueError("give either writer (an open SummaryWriter) or log_dir (a new one writes there), not both")
        if x not in ("epoch", "step"):
            raise ValueError(f"x must be 'epoch' or 'step' (the scalars' x axis); got {x!r}")
        self.writer = writer
        self.owns_writer = writer is None
        self.log_dir = log_dir
        self.x = x
        self.image = bool(image)

    def _x(self, record: EpochRecord) -> int:
        return int(record.epoch if self.x == "epoch" else record.step)

    def start(self, run: Run) -> None:
        if self.writer is None:
            self.writer = _summary_writer(self.log_dir)
        if run.certification.get("text"):
            self.writer.add_text("yes/certification", run.certification["text"], 0)

    def on_epoch(self, record: EpochRecord) -> None:
        step = self._x(record)
        for name, value in epoch_metrics(record).items():
            self.writer.add_scalar(name, value, step)
        plateau = plateau_starts(self.records)
        if plateau is not None:
            self.writer.add_text("yes/notes", plateau.text, step)

    def on_status(self, event: StatusEvent) -> None:
        step = self._x(self.records[-1]) if self.records else 0
        self.writer.add_text("yes/verdict", verdict_summary(self.run), step)
        if self.image and (self.records or self.run.epochs):
            self.writer.add_image("yes/cloud", cloud_image(self.run), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is None:
            return
        if self.owns_writer:
            self.writer.close()
        else:
            self.writer.flush()
