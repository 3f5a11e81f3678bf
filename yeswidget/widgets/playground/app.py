"""The Playground: retry learning rates and batch sizes from the same start, live.

    pg = Playground(tasks.phase_retrieval())
    pg                      # sliders, Train / Retry, Pause, Stop, Reset, the chart, the runs table
    run = pg.retry(lr=1e-2) # same initial weights (from the seed), trains in a background thread

Training runs in a background thread so the kernel stays free to take widget
events (slider moves) while it trains. Every run is kept, failed and diverged
ones too; choosing a row of the runs table puts its settings back. Behind this
class: :mod:`.controls` (the controls), :mod:`.layout` (the displays and layouts),
:mod:`.runs` (starting and keeping runs), :mod:`.draw` (what the UI pump writes).
"""
from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from ...core.run import Run
from ...training import SETTINGS_KEYS, Settings, Trainer
from ..picture import Picture
from ..pump import default_pump
from . import draw, runs
from .controls import build_controls, chosen_settings
from .families import Family, architecture, check_architecture, check_epochs, read_plan, shape_of
from .layout import LAYOUTS, arrange, build_displays
from .settings import format_settings, from_settings
from .stage import Stage
from .theme import RUN_COLORS

__all__ = ["Playground", "RUN_COLORS"]

_ARCH_KEYS = ("depth", "width")


class Playground(Picture, widgets.VBox):
    """One displayable widget: controls, the live cloud chart, the zone timeline and the runs table.

    ``task``: a :class:`~yeswidget.training.tasks.Task`. ``lr``, ``batch_size``, ``epochs``,
    ``optimizer`` ("adam"/"sgd"), ``schedule`` (constant/step/cosine/cyclic) and
    ``seed`` are the starting control values (default: the task's own recipe). ``every``: bound cadence
    (``"auto"`` or an int, see :class:`~yeswidget.monitor.Monitor`). ``layout``: ``"default"`` (controls
    above the chart) or ``"compact"`` (for a projector: controls beside the chart, the verdict badge and
    the zone timeline above it, 14 px text; controls, badge, timeline and chart fit 1024×576).
    """

    def __init__(self, task: Any, *, lr: float | None = None, batch_size: int | None = None,
                 epochs: int | None = None, optimizer: str | None = None, schedule: str | None = None,
                 seed: int = 0, every: Any = "auto", max_samples: int | None = None, layout: str = "default",
                 **kwargs: Any) -> None:
        self._closed = True  # until the widget exists: a constructor that fails has nothing to close
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
        # the task's own recipe (the paper's optimizer, lr, batch size, epochs, schedule) unless overridden
        given = {"lr": lr, "batch_size": batch_size, "epochs": epochs, "optimizer": optimizer, "schedule": schedule}
        self.defaults = Settings.for_task(task, given, seed=seed, every=every)
        check_epochs(self.defaults.epochs)  # the epochs box's range: an error, never clamped
        # a task switch scales the new task's recipe epochs as this task's were (see runs.classroom_epochs)
        self._first_task = (task.name, int(self.defaults.epochs))
        self._epoch_scale = self.defaults.epochs / Settings.for_task(task).epochs
        self.task, self.layout_name, self.every, self.max_samples = task, layout, every, max_samples
        self.runs: list[Run] = []
        self.hidden: set[str] = set()  # run ids whose lines are hidden on the chart
        self._count = 0  # runs made so far: names "run 1", "run 2", … are never reused after a delete
        self._colors: dict[str, str] = {}  # run id → its colour in chart and table
        self.trainers: dict[str, Trainer] = {}
        self._trainer: Trainer | None = None
        self._syncing = False
        self._message_html: str | None = None  # a failure to show (set on any thread, drawn by the pump)
        self._pending_controls: dict[str, Any] = {}  # control values to put into the widgets (by the pump)
        self._shown_epochs: tuple[str, int] | None = None  # what the timeline shows: (run id, epochs)
        self._stage: Stage | None = None  # the compact copy for training cells (see stage())
        # YES-0 once per family (task + architecture), reused by every run of it. Built on the very
        # samples each run's Monitor certifies on (the same seeded subset when max_samples is given)
        # and with the model's own bias and activation, so the cloud is the model's cloud.
        self._tasks: dict[str, Any] = {task.name: task}  # tasks built so far, by name
        self.families: list[Family] = []
        self._run_family: dict[str, Family] = {}
        plan = read_plan(task.model(seed), task.X_train)  # the task's own model, read once
        depth, width = shape_of(plan)
        self.family = runs.family_for(self, task, depth, width, plan)
        build_controls(self, self.defaults, depth, width)
        build_displays(self, layout, RUN_COLORS)
        self.info.value = draw.info_html(self)
        children, self._boxes = arrange(self, layout)  # the boxes are closed with the Playground
        super().__init__(children, **kwargs)
        self.add_class("yeswidget-playground")
        if layout == "compact":
            self.add_class("yeswidget-compact")
        # every later widget write happens on the UI pump thread: handlers only mark this dirty
        self._ui = default_pump().register(lambda: draw.apply(self), name="playground")
        self._closed = False

    @property
    def cloud(self) -> Any:
        """The current family's :class:`~yeswidget.engine.bounds.YesCloud` (YES-0 computed once)."""
        return self.family.cloud

    def _family(self, task: Any, depth: int, width: int) -> Family:
        return runs.family_for(self, task, depth, width)

    def set_task(self, name: str) -> None:
        """Switch to a built-in task (by name): its recipe in the controls (epochs scaled as this
        Playground's first task's), its own architecture and cloud; the chart shows the new family at
        once, runs of other tasks stay in the table (and on the chart again when their task is back)."""
        runs.set_task(self, name)

    def _on_task(self, change: dict[str, Any]) -> None:
        runs.on_task(self, change)

    # ---------------------------------------------------------------- settings
    def settings(self) -> Settings:
        """The controls' current values as :class:`~yeswidget.training.Settings`."""
        return chosen_settings(self)

    def settings_string(self) -> str:
        """The controls (task, architecture, hyper-parameters, seed, cadence) as one copyable line;
        :meth:`from_settings` recreates the setup from it."""
        values = dict(self.settings().as_dict(), task=self.task.name, depth=int(self.depth_box.value),
                      width=int(self.width_box.value))
        return format_settings(values)

    @classmethod
    def from_settings(cls, task: Any, text: str, **kwargs: Any) -> Playground:
        """A Playground set up as ``text`` (from :meth:`settings_string`) says.

        ``task``: the :class:`~yeswidget.training.tasks.Task` it was made with, or None for the built-in
        task the string names. ``kwargs`` go to the constructor (e.g. ``max_samples``).
        """
        return from_settings(cls, task, text, **kwargs)

    def set_controls(self, **values: Any) -> None:
        """Put values into the controls without touching a running run."""
        unknown = set(values) - set(SETTINGS_KEYS) - set(_ARCH_KEYS)
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; choose from {list(SETTINGS_KEYS + _ARCH_KEYS)}")
        check_architecture(values.get("depth", int(self.depth_box.value)),
                           values.get("width", int(self.width_box.value)))
        check_epochs(values.get("epochs"))
        # validate all first: a clear error, nothing half-set
        Settings(**{**self.settings().as_dict(), **{k: v for k, v in values.items() if k in SETTINGS_KEYS}})
        self._pending_controls.update(values)
        self._ui.flush()  # the pump writes the controls; this returns once they show the values

    def reset(self) -> None:
        """Put the controls back to their starting values (runs are kept)."""
        depth, width = architecture(self.task.model(0), self.task.X_train)
        self.set_controls(**{k: getattr(self.defaults, k) for k in SETTINGS_KEYS}, depth=depth, width=max(width, 1))

    # ---------------------------------------------------------------- runs
    def retry(self, **settings: Any) -> Run:
        """Set the given controls, stop any current run, and train a new run from the seed's weights.

        Returns the new :class:`~yeswidget.core.run.Run` (filled while it trains; see :meth:`wait`).
        """
        if settings:
            self.set_controls(**settings)
        return runs.start_run(self)

    def step_epoch(self) -> Run:
        """Train one more epoch of the live run, then pause (the teaching pace).

        Without a live run: a new run from the controls that pauses after its first epoch.
        Returns at once; the run pauses on its own (``current.wait_parked()`` blocks until then).
        """
        return runs.step_epoch(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ended; False if ``timeout`` ran out."""
        return self._wait(timeout, refresh=True)

    def _wait(self, timeout: float | None, *, refresh: bool) -> bool:
        # refresh=False: a new run starting in this cell; its pictures are refreshed when it ends, and
        # a refresh now would swap the chart just displayed for a picture of the run before
        trainer = self._trainer
        if trainer is None:
            return True
        done = trainer.wait(timeout)
        if done:
            self.chart.flush()
            self._ui.flush()
            if refresh and threading.current_thread() is threading.main_thread():
                self.refresh_picture()  # the saved notebook's picture shows the run that ended
                if self._stage is not None:
                    self._stage.refresh_picture()
        return done

    def stage(self) -> Stage:
        """The live chart again, compactly: verdict, zone timeline, chart, lr slider, Pause / Stop / Step.

        ``display(pg.stage())`` in a training cell keeps the chart on the screen while the cell runs
        (it scrolls itself into view). The same widgets as the Playground's (clicks reach the kernel once
        no cell is running). One stage per Playground, shown as often as wanted; closed with the Playground.
        """
        if self._stage is None:
            self._stage = Stage(self)
            self._boxes.extend(self._stage.parts())
        return self._stage

    def _picture_chart(self) -> Any:
        return self.chart

    def stop(self) -> None:
        """Stop the current run within one step (the run is kept, status stopped)."""
        trainer = self._trainer
        if trainer is not None and trainer.alive:
            trainer.stop()
            trainer.wait(30)
        self._ui.flush()

    def pause(self) -> None:
        if self._trainer is not None and self._trainer.alive:
            self._trainer.pause()
        self._ui.flush()

    def resume(self) -> None:
        if self._trainer is not None:
            self._trainer.resume()
        self._ui.flush()

    @property
    def paused(self) -> bool:
        return self._trainer is not None and self._trainer.alive and self._trainer.paused

    @property
    def running(self) -> bool:
        return self._trainer is not None and self._trainer.alive

    @property
    def current(self) -> Trainer | None:
        """The trainer of the latest run (its ``model``, ``optimizer``, ``monitor``)."""
        return self._trainer

    # ---------------------------------------------------------------- run management
    def find_run(self, which: Run | str | int) -> Run:
        """The run given as a :class:`Run`, its id (``"run 3"``) or its number (``3``, as in the table)."""
        return runs.find_run(self, which)

    def hide(self, which: Run | str | int) -> None:
        """Hide all of a run on the chart: its loss, minibatch line, cloud and badge (it stays in
        the table, marked hidden)."""
        self.hidden.add(self.find_run(which).run_id)
        runs.sync_chart(self)

    def show(self, which: Run | str | int) -> None:
        """Show a hidden run's line again."""
        self.hidden.discard(self.find_run(which).run_id)
        runs.sync_chart(self)

    def delete(self, which: Run | str | int) -> None:
        """Remove a run from the table and the chart (a running one is stopped first)."""
        runs.delete(self, which)

    def _toggle_chosen(self) -> None:
        run = draw.chosen(self)
        if run is not None:
            (self.show if run.run_id in self.hidden else self.hide)(run)

    def _delete_chosen(self) -> None:
        run = draw.chosen(self)
        if run is not None:
            self.delete(run)

    @property
    def starting(self) -> bool:
        """True while the latest run is alive but has not finished its first epoch."""
        trainer = self._trainer
        return trainer is not None and trainer.alive and trainer.run.status == "running" and not trainer.run.epochs

    def _retry_clicked(self) -> None:
        # a double click sends two clicks: the second would stop the run the first just started
        if not self.starting:
            self.retry()

    def _on_lr(self, change) -> None:
        if not self._syncing and self.running:
            self._trainer.set_lr(float(change["new"]))  # type: ignore[union-attr]

    def _on_batch(self, change) -> None:
        if not self._syncing and self.running:
            self._trainer.set_batch_size(int(change["new"]))  # type: ignore[union-attr]

    def _on_select(self, row: dict) -> None:
        run = next((r for r in self.runs if draw.number(r) == row.get("id")), None)
        self._ui.mark()  # the hide/delete buttons name the chosen run
        if run is None:
            return
        task = run.config.get("task")
        if task and task != self.task.name and task in self._tasks:
            self.set_task(task)
        recorded = {k: run.config[k] for k in (*SETTINGS_KEYS, *_ARCH_KEYS) if run.config.get(k) is not None}
        self.set_controls(**recorded)  # every setting the run records: hyper-parameters and architecture
        self.chart.highlight(run.run_id if run is not self.chart.run else None)

    def _on_event(self, event: Any) -> None:
        runs.on_event(self, event)


    def close(self) -> None:
        """Stop the training thread, leave the UI pump and close every widget this Playground made.

        No thread of this widget is left when it returns (unless a run ignores Stop for 30 s).
        """
        runs.close(self)


