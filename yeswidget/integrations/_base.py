"""The shape every output shares: a monitor subscriber that writes a run somewhere."""
from __future__ import annotations

from typing import Any

from ..core.handle import Handle
from ..core.run import EpochEvent, EpochRecord, Run, StatusEvent, StepEvent

__all__ = ["Output"]


class Output:
    """Subscribe to a monitor with :meth:`attach`, or write a finished run with :meth:`replay`.

    Subclasses override :meth:`start` (the run is known), :meth:`on_steps`,
    :meth:`on_epoch`, :meth:`on_status` and :meth:`close` (flush, release files).
    ``self.run`` is the live :class:`~yeswidget.core.run.Run` and ``self.records``
    the epoch records received so far.
    """

    def __init__(self) -> None:
        self._run: Run | None = None
        self.records: list[EpochRecord] = []

    @property
    def run(self) -> Run:
        """The run being written (an error before :meth:`attach` or :meth:`replay`)."""
        if self._run is None:
            raise RuntimeError(f"this {type(self).__name__} is not attached to a run yet: call attach(monitor)")
        return self._run

    # ---- wiring -------------------------------------------------------------
    def attach(self, monitor: Any) -> Handle:
        """Start writing ``monitor.run`` and subscribe; the handle's ``remove()`` unsubscribes and closes
        (safe twice; the handle is a context manager)."""
        if not hasattr(monitor, "subscribe") or not isinstance(getattr(monitor, "run", None), Run):
            raise TypeError("attach needs a yeswidget Monitor (with .run and .subscribe); "
                            f"got {type(monitor).__name__}")
        self._begin(monitor.run)
        subscription = monitor.subscribe(self)

        def undo() -> None:
            subscription.remove()
            self.close()

        return Handle(undo)

    def replay(self, run: Run) -> None:
        """Write a finished (or loaded) run as if it were happening now, then close."""
        if not isinstance(run, Run):
            raise TypeError(f"replay needs a yeswidget Run; got {type(run).__name__}")
        self._begin(run, replaying=True)
        try:
            if run.step_losses:
                self(StepEvent(run.run_id, 0, tuple(run.step_positions), tuple(run.step_losses)))
            for record in run.epochs:
                self(EpochEvent(run.run_id, record, run.config.get("epochs")))
            if run.status != "running":
                self(StatusEvent(run.run_id, run.status, run.message, run.traceback))
        finally:
            self.close()

    def _begin(self, run: Run, replaying: bool = False) -> None:
        if self._run is not None:
            raise RuntimeError(f"this {type(self).__name__} already writes run {self._run.run_id!r}; "
                               "make one output per run")
        self._run = run
        self.records = [] if replaying else list(run.epochs)
        self.start(run)

    def __call__(self, event: Any) -> None:
        if isinstance(event, EpochEvent):
            self.records.append(event.record)
            self.on_epoch(event.record)
        elif isinstance(event, StepEvent):
            self.on_steps(event)
        elif isinstance(event, StatusEvent):
            self.on_status(event)

    # ---- what subclasses write ----------------------------------------------
    def start(self, run: Run) -> None:
        """The run is known (config, YES-0); nothing has been written yet."""

    def on_steps(self, event: StepEvent) -> None:
        """Some minibatch losses were logged."""

    def on_epoch(self, record: EpochRecord) -> None:
        """An epoch finished with its bounds (``self.records`` already holds it)."""

    def on_status(self, event: StatusEvent) -> None:
        """The run ended (finished / stopped / diverged / failed)."""

    def close(self) -> None:
        """Flush and release what the output holds (safe to call twice)."""
