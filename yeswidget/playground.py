"""The Playground: retry learning rates and batch sizes from the same start, live.

    pg = Playground(tasks.phase_retrieval())
    pg                      # sliders, Train / Retry, Pause, Stop, Reset, the chart, the runs table
    run = pg.retry(lr=1e-2) # same initial weights (from the seed), trains in a background thread

Training runs in a background thread so the kernel stays free to take widget
events (slider moves) while it trains. Every run is kept, failed and diverged
ones too; choosing a row of the runs table puts its settings back.
"""
from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as widgets

from .core.run import EpochEvent, Run, StatusEvent, change_text, to_db
from .tasks import TASKS, get_task
from .training import OPTIMIZERS, SCHEDULES, Settings, Trainer, batch_size_options
from .widgets.chart import CloudChart
from .widgets.playground_families import Family, architecture, check_architecture, make_family
from .widgets.playground_predictions import PredictionsPanel
from .widgets.playground_settings import format_settings, parse_settings
from .widgets.playground_theme import theme_html
from .widgets.pump import default_pump
from .widgets.sync import close_all
from .widgets.tables import RunsTable, ZoneTimeline

__all__ = ["Playground", "RUN_COLORS"]

#: line colours of successive runs: none of the zone colours, each at least 3:1 against every band
#: on a light background (dark themes draw a lighter shade, see ``widgets/playground_theme.py``)
RUN_COLORS = ("#1f77b4", "#c2185b", "#6a3d9a", "#b15928", "#0b6e4f", "#2e5e8a", "#8c564b", "#555555")
LAYOUTS = ("default", "compact")

_SETTING_KEYS = ("lr", "batch_size", "epochs", "optimizer", "schedule", "seed")
_ARCH_KEYS = ("depth", "width")


class Playground(widgets.VBox):
    """One displayable widget: controls, the live cloud chart, the zone timeline and the runs table.

    ``task``: a :class:`~yeswidget.tasks.Task`. ``lr``, ``batch_size``, ``epochs``,
    ``optimizer`` ("adam"/"sgd"), ``schedule`` (a name in ``yeswidget.schedules.SCHEDULES``) and
    ``seed`` are the starting control values (default: the task's own recipe). ``every``: bound cadence
    (``"auto"`` or an int, see :class:`~yeswidget.monitor.Monitor`). ``layout``: ``"default"`` (controls
    above the chart) or ``"compact"`` (for a projector: controls beside the chart, the verdict badge and
    the zone timeline above it, 14 px text; controls, badge, timeline and chart fit 1024×576).
    """

    def __init__(self, task, *, lr: float | None = None, batch_size: int | None = None, epochs: int | None = None,
                 optimizer: str | None = None, schedule: str | None = None, seed: int = 0, every: Any = "auto",
                 max_samples: int | None = None, layout: str = "default", **kwargs) -> None:
        self._closed = True  # until the widget exists: a constructor that fails has nothing to close
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
        # the task's own recipe (the paper's optimizer, lr, batch size, epochs, schedule) unless overridden
        given = {"lr": lr, "batch_size": batch_size, "epochs": epochs, "optimizer": optimizer, "schedule": schedule}
        defaults = _recipe(task, given, seed, every)
        lr, batch_size, epochs = defaults.lr, defaults.batch_size, defaults.epochs
        optimizer, schedule = defaults.optimizer, defaults.schedule
        self.task = task
        self.layout_name = layout
        self.defaults = defaults
        self.every = every
        self.max_samples = max_samples
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

        # YES-0 once per family (task + architecture), reused by every run of it. Built on the very
        # samples each run's Monitor certifies on (the same seeded subset when max_samples is given)
        # and with the model's own bias and activation, so the cloud is the model's cloud.
        self._tasks: dict[str, Any] = {task.name: task}  # tasks built so far, by name
        self.families: list[Family] = []
        self._run_family: dict[str, Family] = {}
        depth, width = architecture(task.model(seed))
        self.family = self._family(task, depth, width)

        # ---- controls ----------------------------------------------------------
        n = task.X_train.shape[0]
        style = {"description_width": "initial"}
        self.lr_slider = widgets.FloatLogSlider(value=1e-3, base=10, min=-5, max=0, step=0.1,
                                                description="learning rate", readout_format=".1e", style=style,
                                                continuous_update=False)
        _set_lr_value(self.lr_slider, lr)
        options = batch_size_options(n)
        self.batch_slider = widgets.SelectionSlider(options=options, value=_nearest(options, batch_size),
                                                    description="batch size", style=style,
                                                    continuous_update=False)
        self.epochs_box = widgets.BoundedIntText(value=epochs, min=1, max=100_000, description="epochs",
                                                 style=style, layout=widgets.Layout(width="10em"))
        self.optimizer_box = widgets.ToggleButtons(options=list(OPTIMIZERS), value=optimizer,
                                                   description="optimizer", style={"button_width": "5em"})
        self.schedule_box = widgets.Dropdown(options=list(SCHEDULES), value=schedule, description="lr schedule",
                                             style=style, layout=widgets.Layout(width="14em"))
        self.seed_box = widgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=style,
                                               layout=widgets.Layout(width="9em"))
        names = list(TASKS) if task.name in TASKS else [task.name, *TASKS]
        self.task_box = widgets.Dropdown(options=names, value=task.name, description="task", style=style,
                                         layout=widgets.Layout(width="16em"))
        self.depth_box = widgets.BoundedIntText(value=depth, min=2, max=12, description="depth (layers)",
                                                style=style, layout=widgets.Layout(width="10em"),
                                                tooltip="Linear layers L; a new depth starts a new family")
        self.width_box = widgets.BoundedIntText(value=max(width, 1), min=1, max=4096, description="width",
                                                style=style, layout=widgets.Layout(width="8em"))
        self.task_box.observe(self._on_task, names="value")
        self.retry_button = widgets.Button(description="Train", button_style="primary", icon="play",
                                           tooltip="start a run from the seed's initial weights")
        self.pause_button = widgets.Button(description="Pause", icon="pause", disabled=True)
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger", disabled=True)
        self.reset_button = widgets.Button(description="Reset", icon="undo",
                                           tooltip="put the controls back to their starting values (runs are kept)")
        self.step_button = widgets.Button(description="Step 1 epoch", icon="step-forward",
                                          tooltip="train one more epoch, then pause (a new run if none is live)")
        self.retry_button.on_click(lambda _: self._retry_clicked())
        self.step_button.on_click(lambda _: self.step_epoch())
        self.pause_button.on_click(lambda _: self.resume() if self.paused else self.pause())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        self.hide_button = widgets.Button(description="Hide run", icon="eye-slash", disabled=True,
                                          tooltip="hide or show the chosen run's line on the chart",
                                          layout=widgets.Layout(width="auto", min_width="9em"))
        self.delete_button = widgets.Button(description="Delete run", icon="trash", disabled=True,
                                            tooltip="remove the chosen run from the table and the chart",
                                            layout=widgets.Layout(width="auto", min_width="9em"))
        self.hide_button.on_click(lambda _: self._toggle_chosen())
        self.delete_button.on_click(lambda _: self._delete_chosen())
        self.lr_slider.observe(self._on_lr, names="value")
        self.batch_slider.observe(self._on_batch, names="value")

        # ---- displays ------------------------------------------------------------
        self.chart = CloudChart(title="" if layout == "compact" else task.name, layout=widgets.Layout(flex="1 1 auto", min_width="0"))
        self.predictions = PredictionsPanel(task)
        self._chart_row = widgets.HBox([self.chart, self.predictions.box], layout=widgets.Layout(width="100%"))
        self.timeline = ZoneTimeline()
        self.table = RunsTable()
        self._select_handle = self.table.on_select(self._on_select)
        self.message = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.edge_note = widgets.HTML(layout=widgets.Layout(width="100%"))  # is the lower edge stale?
        self.info = widgets.HTML(self._info_html())
        rows = [
            widgets.HBox([self.lr_slider, self.batch_slider]),
            widgets.HBox([self.epochs_box, self.optimizer_box, self.schedule_box, self.seed_box]),
            widgets.HBox([self.task_box, self.depth_box, self.width_box]),
            widgets.HBox([self.retry_button, self.step_button, self.pause_button, self.stop_button,
                          self.reset_button]),
        ]
        self.share = widgets.HTML(layout=widgets.Layout(width="100%"))  # the settings string, to copy
        self._run_actions = widgets.HBox([self.hide_button, self.delete_button, self.share])
        # hatch patterns and theme rules (an HTML widget that takes no room)
        self.theme = widgets.HTML(theme_html(RUN_COLORS), layout=widgets.Layout(height="0px", margin="0px"))
        if layout == "compact":
            children, boxes = self._compact(rows)
        else:
            controls = widgets.VBox(rows)
            boxes = [*rows, controls]
            children = [self.theme, self.info, controls, self.message, self.edge_note, self._chart_row, self.timeline,
                        self.table, self._run_actions]
        self._boxes = [*boxes, self._run_actions, self._chart_row]  # closed with the Playground (models too)
        super().__init__(children, **kwargs)
        self.add_class("yeswidget-playground")
        if layout == "compact":
            self.add_class("yeswidget-compact")
        # every later widget write happens on the UI pump thread: handlers only mark this dirty
        self._ui = default_pump().register(self._apply, name="playground")
        self._closed = False

    def _compact(self, rows: list) -> tuple[list, list]:
        """The projector layout: badge and timeline above the chart, the controls in a column beside it."""
        column = "330px"
        for slider in (self.lr_slider, self.batch_slider):
            slider.layout.width = "320px"
            slider.style.description_width = "6.5em"
        for box in (self.epochs_box, self.seed_box, self.depth_box, self.width_box):
            box.layout.width = "158px"
        self.schedule_box.layout.width = self.task_box.layout.width = "320px"
        self.optimizer_box.style.button_width = "4.5em"
        for button in (self.retry_button, self.pause_button, self.stop_button, self.reset_button):
            button.layout.width = "104px"
        self.step_button.layout.width = "208px"
        self.depth_box.description = "depth"
        boxes = [widgets.HBox([self.epochs_box, self.seed_box]), widgets.HBox([self.depth_box, self.width_box]),
                 widgets.HBox([self.retry_button, self.step_button]),
                 widgets.HBox([self.pause_button, self.stop_button, self.reset_button])]
        controls = widgets.VBox([self.lr_slider, self.batch_slider, boxes[0], self.optimizer_box, self.schedule_box,
                                 self.task_box, boxes[1], boxes[2], boxes[3]],
                                layout=widgets.Layout(width=column, min_width=column, flex="0 0 auto"))
        controls.add_class("yeswidget-controls")
        # 576 CSS px high, less JupyterLab's bars: timeline, status and a 250 px figure fit
        self.chart.figure.layout.height = "250px"
        self.chart.figure.fig_margin = dict(top=20, bottom=45, left=65, right=20)
        self.chart.progress.layout.display = self.chart.eta.layout.display = "none"  # the timeline shows it
        self.chart.controls.layout.display = "none"  # scale / minibatch toggles: below the fold would hide them
        self.chart.legend.layout.display = "none"
        self.timeline.layout.width = "100%"
        self._chart_row.children = (self.chart,)
        main = widgets.HBox([controls, self._chart_row], layout=widgets.Layout(width="100%", align_items="flex-start"))
        self._chart_row.layout.flex, self._chart_row.layout.min_width = "1 1 auto", "0"
        children = [self.theme, self.timeline, main, self.message, self.edge_note, self.predictions.box, self.table,
                    self._run_actions, self.info]
        return children, [*rows, *boxes, controls, main]

    @property
    def cloud(self):
        """The current family's :class:`~yeswidget.bounds.YesCloud` (YES-0 computed once)."""
        return self.family.cloud

    def _info_html(self) -> str:
        family = self.family
        return (f"<b>{html.escape(self.task.name)}</b>: {html.escape(self.task.description)}<br><small>"
                f"{family.certification_text()}; losses in the metric E "
                f"(squared error summed over outputs, mean over samples), in dB. "
                f"Family {family.description}: YES-0 = {to_db(family.cloud.upper):.2f} dB "
                f"for this data and architecture.</small>")

    def _family(self, task: Any, depth: int, width: int) -> Family:
        """The family of runs for ``task`` at this architecture (made, with its cloud, when new)."""
        for family in self.families:
            if family.matches(task, depth, width):
                return family
        family = make_family(task, depth, width, len(self.families), self.max_samples)
        self.families.append(family)
        return family

    def set_task(self, name: str) -> None:
        """Switch to a built-in task (by name): its recipe in the controls, its own architecture
        and cloud; runs of other tasks are hidden on the chart (they stay in the table)."""
        task = self._tasks.get(name)
        if task is None:
            task = self._tasks[name] = get_task(name)
        self.task = task
        self.defaults = _recipe(task, {}, self.defaults.seed, self.every)
        depth, width = architecture(task.model(0))
        self.family = self._family(task, depth, width)
        self.hidden.update(r.run_id for r in self.runs if r.config.get("task") != task.name)
        self._pending_controls.update(batch_options=batch_size_options(task.n_train), task=task.name,
                                      depth=depth, width=max(width, 1),
                                      **{k: getattr(self.defaults, k) for k in _SETTING_KEYS})
        self._sync_chart()

    def _on_task(self, change) -> None:
        if self._syncing or change["new"] == self.task.name:
            return
        try:
            self.set_task(change["new"])
        except Exception as exc:  # e.g. a task whose optional package is missing
            self._message_html = (f"<div style='color:#a00'>cannot load task {html.escape(str(change['new']))}: "
                                  f"{html.escape(f'{type(exc).__name__}: {exc}')}</div>")
            self._pending_controls["task"] = self.task.name
            self._ui.flush()

    # ---------------------------------------------------------------- settings
    def settings(self) -> Settings:
        """The controls' current values as :class:`~yeswidget.training.Settings`."""
        return Settings(lr=float(self.lr_slider.value), batch_size=int(self.batch_slider.value),
                        epochs=int(self.epochs_box.value), optimizer=self.optimizer_box.value,
                        schedule=self.schedule_box.value, seed=int(self.seed_box.value), every=self.every,
                        step_size=self.defaults.step_size, gamma=self.defaults.gamma)

    def settings_string(self) -> str:
        """The controls (task, architecture, hyper-parameters, seed, cadence) as one copyable line;
        :meth:`from_settings` recreates the setup from it."""
        values = dict(self.settings().as_dict(), task=self.task.name, depth=int(self.depth_box.value),
                      width=int(self.width_box.value))
        return format_settings(values)

    @classmethod
    def from_settings(cls, task: Any, text: str, **kwargs: Any) -> Playground:
        """A Playground set up as ``text`` (from :meth:`settings_string`) says.

        ``task``: the :class:`~yeswidget.tasks.Task` it was made with, or None for the built-in
        task the string names. ``kwargs`` go to the constructor (e.g. ``max_samples``).
        """
        values = parse_settings(text)
        if task is None:
            if "task" not in values:
                raise ValueError("the settings string names no task: pass the Task as the first argument")
            task = get_task(values["task"])
        elif values.get("task", task.name) != task.name:
            raise ValueError(f"these settings are for the task {values['task']!r}, not {task.name!r}: "
                             f"pass that task, or None to build the built-in one")
        given = {k: values[k] for k in ("lr", "batch_size", "epochs", "optimizer", "schedule") if k in values}
        pg = cls(task, seed=values.get("seed", 0), every=values.get("every", "auto"), **given, **kwargs)
        arch = {k: values[k] for k in ("depth", "width") if k in values}
        if arch:
            try:
                pg.set_controls(**arch)
            except Exception:
                pg.close()
                raise
        return pg

    def set_controls(self, **values: Any) -> None:
        """Put values into the controls without touching a running run."""
        unknown = set(values) - set(_SETTING_KEYS) - set(_ARCH_KEYS)
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; choose from {list(_SETTING_KEYS + _ARCH_KEYS)}")
        check_architecture(values.get("depth", int(self.depth_box.value)), values.get("width", int(self.width_box.value)))
        # validate all first: a clear error, nothing half-set
        Settings(**{**self.settings().as_dict(), **{k: v for k, v in values.items() if k in _SETTING_KEYS}})
        self._pending_controls.update(values)
        self._ui.flush()  # the pump writes the controls; this returns once they show the values

    def _apply_controls(self) -> None:
        values, self._pending_controls = self._pending_controls, {}
        if not values:
            return
        self._syncing = True  # these writes are not user moves: do not act on them
        try:
            if "lr" in values:
                _set_lr_value(self.lr_slider, float(values["lr"]))
            if "batch_options" in values:
                self.batch_slider.options = list(values["batch_options"])
            if "task" in values and self.task_box.value != values["task"]:
                self.task_box.value = values["task"]
            if "batch_size" in values:
                options = list(self.batch_slider.options)
                size = int(values["batch_size"])
                if size not in options:
                    self.batch_slider.options = sorted(set(options) | {size})
                self.batch_slider.value = size
            for key, box in (("epochs", self.epochs_box), ("optimizer", self.optimizer_box),
                             ("schedule", self.schedule_box), ("seed", self.seed_box),
                             ("depth", self.depth_box), ("width", self.width_box)):
                if key in values:
                    box.value = values[key] if key in ("optimizer", "schedule") else int(values[key])
        finally:
            self._syncing = False

    def reset(self) -> None:
        """Put the controls back to their starting values (runs are kept)."""
        depth, width = architecture(self.task.model(0))
        self.set_controls(**{k: getattr(self.defaults, k) for k in _SETTING_KEYS}, depth=depth, width=max(width, 1))

    # ---------------------------------------------------------------- runs
    def retry(self, **settings: Any) -> Run:
        """Set the given controls, stop any current run, and train a new run from the seed's weights.

        Returns the new :class:`~yeswidget.core.run.Run` (filled while it trains; see :meth:`wait`).
        """
        if settings:
            self.set_controls(**settings)
        return self._start()

    def step_epoch(self) -> Run:
        """Train one more epoch of the live run, then pause (the teaching pace).

        Without a live run: a new run from the controls that pauses after its first epoch.
        Returns at once; the run pauses on its own (``current.wait_parked()`` blocks until then).
        """
        trainer = self._trainer
        if trainer is not None and trainer.alive and trainer.run.status == "running":
            trainer.step_epochs(1)
            self._ui.flush()
            return trainer.run
        return self._start(pause_after=1)

    def _start(self, pause_after: int | None = None) -> Run:
        chosen = self.settings()
        family = self.family = self._family(self.task, int(self.depth_box.value), int(self.width_box.value))
        self.stop()
        self.wait()
        self._count += 1
        run_id = f"run {self._count}"
        self._colors[run_id] = RUN_COLORS[(self._count - 1) % len(RUN_COLORS)]
        self._run_family[run_id] = family
        trainer = Trainer(family.task, chosen, cloud=family.cloud, subscribers=(self._on_event,), run_id=run_id,
                          max_samples=self.max_samples, on_monitor=self._watch, on_epoch=self._predict)
        trainer.run.config.update(self._run_labels(run_id))
        self._trainer = trainer
        self._message_html = ""
        if pause_after is not None:
            trainer.step_epochs(pause_after)
        trainer.start()
        run = trainer.run
        run.config.update(self._run_labels(run_id))
        self.runs.append(run)
        self.trainers[run.run_id or run_id] = trainer
        if run.status == "failed" and not run.epochs:
            self._show_failure(run)
        self._ui.flush()
        return run

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ended; False if ``timeout`` ran out."""
        trainer = self._trainer
        if trainer is None:
            return True
        done = trainer.wait(timeout)
        if done:
            self.chart.flush()
            self._ui.flush()
        return done

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

    def _watch(self, monitor) -> None:
        """Called in the training thread once the new run's Monitor exists (before its first step):
        the run gets its name and colour, the run shown so far becomes a faded line in its table
        colour (unless hidden or deleted), the new run is drawn live."""
        monitor.run.config.update(self._run_labels(monitor.run.run_id))
        previous = self.chart.run
        if (previous is not None and previous.epochs and any(r is previous for r in self.runs)
                and previous.run_id not in self.hidden and all(p is not previous for p in self.chart.past_runs)):
            self.chart.add_run(previous, color=previous.config.get("color"))
        self.chart.watch(monitor, keep_previous=False)

    def _run_labels(self, run_id: str) -> dict:
        """What a run's config carries for the display: name (legend), colour, family."""
        family = self._run_family.get(run_id, self.family)
        first = family is self.families[0]
        return {"name": run_id if first else f"{run_id} · {family.label}", "color": self._colors.get(run_id, RUN_COLORS[0]),
                "family": family.label, "depth": family.depth, "width": family.width}

    def _predict(self, trainer: Trainer, epoch: int) -> None:
        """Training thread, after each whole epoch: the predictions panel's few samples."""
        if trainer.model is None:  # (built before the first epoch; nothing to show otherwise)
            return
        try:
            self.predictions.take(trainer.model, epoch, trainer.run.config.get("color", RUN_COLORS[0]))
        except Exception as exc:  # a display must never stop the training
            self._message_html = (f"<div style='color:#a00'>predictions panel: "
                                  f"{html.escape(f'{type(exc).__name__}: {exc}')}</div>")
        self._ui.mark()

    # ---------------------------------------------------------------- run management
    def find_run(self, which: Run | str | int) -> Run:
        """The run given as a :class:`Run`, its id (``"run 3"``) or its number (``3``, as in the table)."""
        for run in self.runs:
            if run is which or run.run_id == which or (isinstance(which, int) and _number(run) == which):
                return run
        known = ", ".join(r.run_id for r in self.runs) or "none yet"
        raise KeyError(f"no run {which!r} in this Playground (runs: {known})")

    def hide(self, which: Run | str | int) -> None:
        """Hide a run's line on the chart (it stays in the table, marked hidden)."""
        self.hidden.add(self.find_run(which).run_id)
        self._sync_chart()

    def show(self, which: Run | str | int) -> None:
        """Show a hidden run's line again."""
        self.hidden.discard(self.find_run(which).run_id)
        self._sync_chart()

    def delete(self, which: Run | str | int) -> None:
        """Remove a run from the table and the chart (a running one is stopped first)."""
        run = self.find_run(which)
        trainer = self.trainers.pop(run.run_id, None)
        if trainer is not None and trainer.alive:
            trainer.stop()
            trainer.wait(30)
        if trainer is not None and trainer.monitor is not None:
            trainer.monitor.close()
        if trainer is self._trainer:
            self._trainer = None
        self.runs = [r for r in self.runs if r is not run]
        self.hidden.discard(run.run_id)
        if self.chart.run is run:
            self.chart.watch(None, keep_previous=False)
        self._sync_chart()

    def _sync_chart(self) -> None:
        """Past runs on the chart: every kept, shown run but the one drawn live, in order."""
        current = self.chart.run
        wanted = [r for r in self.runs if r is not current and r.epochs and r.run_id not in self.hidden]
        if [id(r) for r in self.chart.past_runs] != [id(r) for r in wanted]:
            self.chart.clear_runs()
            for run in wanted:
                self.chart.add_run(run, color=run.config.get("color"))
        self._ui.flush()

    def _chosen(self) -> Run | None:
        chosen = self.table.selected
        return next((r for r in self.runs if _number(r) == chosen), None)

    def _toggle_chosen(self) -> None:
        run = self._chosen()
        if run is not None:
            (self.show if run.run_id in self.hidden else self.hide)(run)

    def _delete_chosen(self) -> None:
        run = self._chosen()
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

    # ---------------------------------------------------------------- live controls
    def _on_lr(self, change) -> None:
        if not self._syncing and self.running:
            self._trainer.set_lr(float(change["new"]))  # type: ignore[union-attr]

    def _on_batch(self, change) -> None:
        if not self._syncing and self.running:
            self._trainer.set_batch_size(int(change["new"]))  # type: ignore[union-attr]

    def _on_select(self, row: dict) -> None:
        run = next((r for r in self.runs if _number(r) == row.get("id")), None)
        self._ui.mark()  # the hide/delete buttons name the chosen run
        if run is None:
            return
        self.set_controls(**{k: run.config[k] for k in _SETTING_KEYS if k in run.config})
        self.chart.highlight(run.run_id if run is not self.chart.run else None)

    # ---------------------------------------------------------------- events → UI
    def _on_event(self, event: Any) -> None:
        # on a monitor's dispatcher thread (or the training thread for a run that failed to start):
        # remember what to show, and let the pump draw it
        if isinstance(event, StatusEvent) and event.status == "failed":
            run = next((r for r in self.runs if r.run_id == event.run_id), None)
            if run is not None:
                self._show_failure(run)
            else:
                self._message_html = _failure_html(event.message, event.traceback)
        if isinstance(event, (StatusEvent, EpochEvent)):
            self._ui.mark()

    def _show_failure(self, run: Run) -> None:
        self._message_html = _failure_html(f"{run.run_id}: {run.message}", run.traceback)
        self._ui.mark()

    # ---------------------------------------------------------------- the pump draws
    def _apply(self) -> None:
        """On the UI pump thread: controls, buttons, runs table, zone timeline, messages."""
        if self._closed:
            return
        self._apply_controls()
        self._apply_buttons()
        self.table.set_runs([_row(run, run.run_id in self.hidden) for run in self.runs])
        self._apply_current_line()
        self.predictions.apply()
        current = self.runs[-1] if self.runs else None
        if current is not None:
            shown = (current.run_id, len(current.epochs))
            if shown != self._shown_epochs:  # the timeline is resent only when an epoch was added
                self._shown_epochs = shown
                self.timeline.set_run(current)
        share = f"<small>settings: <code>{html.escape(self.settings_string())}</code></small>"
        if self.share.value != share:
            self.share.value = share
        info = self._info_html()
        if self.info.value != info:
            self.info.value = info
        note = _edge_note(current) if current is not None else ""
        if self.edge_note.value != note:
            self.edge_note.value = note
        message = self._message_html
        if message is None and current is not None and current.warnings and current.status != "failed":
            # e.g. "hidden width 3 is narrower than the output width 8: YES-0 is a reference …"
            notes = "".join(f"<li>{html.escape(w)}</li>" for w in dict.fromkeys(current.warnings))
            message = f"<div style='color:#8a5a00'><b>note</b><ul>{notes}</ul></div>"
        if message is not None and self.message.value != message:
            self.message.value = message

    def _apply_buttons(self) -> None:
        # a run whose status has ended counts as done even while its thread winds down
        running = self.running and self._trainer is not None and self._trainer.run.status == "running"
        paused = self.paused
        for widget, name, value in (
            (self.retry_button, "description", "Retry" if self.runs else "Train"),
            (self.pause_button, "disabled", not running), (self.stop_button, "disabled", not running),
            (self.pause_button, "description", "Resume" if paused else "Pause"),
            (self.pause_button, "icon", "play" if paused else "pause"),
        ):
            if getattr(widget, name) != value:
                setattr(widget, name, value)
        chosen = self._chosen()
        hide_text = f"{'Show' if chosen.run_id in self.hidden else 'Hide'} {chosen.run_id}" if chosen else "Hide run"
        for widget, name, value in (
            (self.retry_button, "disabled", self.starting),
            (self.hide_button, "description", hide_text), (self.hide_button, "disabled", chosen is None),
            (self.delete_button, "description", f"Delete {chosen.run_id}" if chosen else "Delete run"),
            (self.delete_button, "disabled", chosen is None),
        ):
            if getattr(widget, name) != value:
                setattr(widget, name, value)

    def _apply_current_line(self) -> None:
        """The live run's line in its own colour (as in the table), hidden when it is hidden."""
        run = self.chart.run
        if run is None or not any(r is run for r in self.runs):
            return
        color, shown = run.config.get("color", RUN_COLORS[0]), run.run_id not in self.hidden
        for mark in (self.chart.loss_line, self.chart.loss_dots):
            if list(mark.colors) != [color]:
                mark.colors = [color]
            if mark.visible != shown:
                mark.visible = shown

    # ---------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Stop the training thread, leave the UI pump and close every widget this Playground made.

        No thread of this widget is left when it returns (unless a run ignores Stop for 30 s).
        """
        if self._closed:
            return
        trainers = [t for t in [*self.trainers.values(), self._trainer] if t is not None]
        for trainer in trainers:
            if trainer.alive:
                trainer.stop()
        for trainer in trainers:
            trainer.wait(30)
            if trainer.monitor is not None:
                trainer.monitor.close()
        self._closed = True
        self._ui.close()
        self._select_handle.remove()
        self.chart.close()
        self.predictions.close()
        # every model this Playground made: controls, boxes, table, timeline, and their layouts and styles
        close_all(self, *self._boxes)


def _set_lr_value(slider: widgets.FloatLogSlider, lr: float) -> None:
    """Set a log slider to ``lr``, widening its range first (the slider would silently clamp)."""
    exponent = math.log10(lr)
    with slider.hold_trait_notifications():
        if exponent < slider.min:
            slider.min = float(math.floor(exponent))
        if exponent > slider.max:
            slider.max = float(math.ceil(exponent))
    slider.value = lr


def _nearest(options: list[int], value: int) -> int:
    return min(options, key=lambda o: (abs(o - value), o))


def _recipe(task: Any, given: dict, seed: int, every: Any) -> Settings:
    """The task's own recipe (optimizer, lr, batch size, epochs, schedule), ``given`` values overriding."""
    recipe = dict(task.defaults)
    recipe.update({k: v for k, v in given.items() if v is not None})
    return Settings(lr=float(recipe.get("lr", 1e-3)), batch_size=int(recipe.get("batch_size", 50)),
                    epochs=int(recipe.get("epochs", 200)), optimizer=recipe.get("optimizer", "adam"),
                    schedule=recipe.get("schedule", "step"), seed=seed, every=every,
                    step_size=int(recipe.get("step_size", 50)), gamma=float(recipe.get("gamma", 0.9)))


def _number(run: Run) -> int:
    """The table's ``#``: the run's number, as in its name (``run 3`` → 3; kept after a delete)."""
    try:
        return int(str(run.run_id).rsplit(" ", 1)[-1])
    except ValueError:
        return -1


def _row(run: Run, hidden: bool = False) -> dict:
    final = run.final
    ended = run.status != "running"
    green = run.epochs_to_green
    return {
        "id": _number(run), "label": _row_label(run) + (" (hidden)" if hidden else ""), "lr": float(run.config.get("lr", float("nan"))),
        "batch_size": int(run.config.get("batch_size", 0)), "optimizer": str(run.config.get("optimizer", "")),
        "schedule": str(run.config.get("schedule", "")), "seed": int(run.config.get("seed", 0)),
        "final_loss_db": to_db(final.loss) if final else None, "final_zone": final.zone if final else None,
        "epochs_to_green": green if green is not None or not ended else None,
        "wall_time": float(final.wall_time) if final else 0.0, "status": run.status,
        "color": run.config.get("color", "#333"),
    }


def _row_label(run: Run) -> str:
    """The run's name and its live changes, e.g. ``run 2 · lr 1.0e-03 → 6.6e-03 @ 1.50``."""
    changes = [change_text(m) for m in run.marks if m.get("kind") in ("lr", "batch_size")]
    family = run.config.get("family")
    tag = [f"{family} ({run.config.get('depth')}×{run.config.get('width')})"] if family not in (None, "A") else []
    return " · ".join([run.run_id, *tag, *changes])


def _edge_note(run: Run) -> str:
    """Says when the lower edge on screen was computed at an earlier epoch than the loss (``every`` > 1)."""
    if not run.epochs or run.epochs[-1].bounds_updated:
        return ""
    latest = run.epochs[-1].epoch
    computed = next((r.epoch for r in reversed(run.epochs) if r.bounds_updated), None)
    since = f"computed at epoch {computed}" if computed is not None else "not computed yet"
    return (f"<small>lower edge {since}, loss at epoch {latest}: the edge is stale until it is "
            f"recomputed (every few epochs, see <code>every</code>)</small>")


def _failure_html(message: str, traceback: str) -> str:
    details = f"<details><summary>last frames</summary><pre>{html.escape(traceback)}</pre></details>" if traceback else ""
    return (f"<div style='color:#a00'><b>training failed</b>: {html.escape(message)} "
            f"(the run is kept in the table){details}</div>")
