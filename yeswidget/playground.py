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
import threading
import time
from typing import Any

import ipywidgets as widgets
import traitlets

from .bounds import YesCloud
from .core.run import EpochEvent, Run, StatusEvent, to_db
from .monitor import ZONE_WORDS, describe_certification, discover_layers
from .monitor import certification_set as _certification_set
from .training import OPTIMIZERS, SCHEDULES, Settings, Trainer, batch_size_options
from .widgets.chart import CloudChart
from .widgets.tables import RunsTable, ZoneTimeline

__all__ = ["Playground", "RUN_COLORS"]

#: line colours of successive runs (colour-blind friendly, none of the zone colours)
RUN_COLORS = ("#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#ff7f0e")

_SETTING_KEYS = ("lr", "batch_size", "epochs", "optimizer", "schedule", "seed")


class Playground(widgets.VBox):
    """One displayable widget: controls, the live cloud chart, the zone timeline and the runs table.

    ``task``: a :class:`~yeswidget.tasks.Task`. ``lr``, ``batch_size``, ``epochs``,
    ``optimizer`` ("adam"/"sgd"), ``schedule`` (constant/step/cosine/cyclic) and
    ``seed`` are the starting control values (default: the task's own recipe). ``every``: bound cadence
    (``"auto"`` or an int, see :class:`~yeswidget.monitor.Monitor`).
    """

    ui_interval = traitlets.Float(0.5, help="seconds between refreshes of the runs table and zone timeline")

    @traitlets.validate("ui_interval")
    def _check_ui_interval(self, proposal):
        if not 0 <= proposal["value"] <= 60:
            raise traitlets.TraitError(f"ui_interval must be between 0 and 60 seconds; got {proposal['value']}")
        return proposal["value"]

    def __init__(self, task, *, lr: float | None = None, batch_size: int | None = None, epochs: int | None = None,
                 optimizer: str | None = None, schedule: str | None = None, seed: int = 0, every: Any = "auto",
                 max_samples: int | None = None, **kwargs) -> None:
        # the task's own recipe (the paper's optimizer, lr, batch size, epochs, schedule) unless overridden
        recipe = dict(task.defaults)
        given = {"lr": lr, "batch_size": batch_size, "epochs": epochs, "optimizer": optimizer, "schedule": schedule}
        recipe.update({k: v for k, v in given.items() if v is not None})
        defaults = Settings(lr=float(recipe.get("lr", 1e-3)), batch_size=int(recipe.get("batch_size", 50)),
                            epochs=int(recipe.get("epochs", 200)), optimizer=recipe.get("optimizer", "adam"),
                            schedule=recipe.get("schedule", "step"), seed=seed, every=every,
                            step_size=int(recipe.get("step_size", 50)), gamma=float(recipe.get("gamma", 0.9)))
        lr, batch_size, epochs = defaults.lr, defaults.batch_size, defaults.epochs
        optimizer, schedule = defaults.optimizer, defaults.schedule
        self.task = task
        self.defaults = defaults
        self.every = every
        self.max_samples = max_samples
        self.runs: list[Run] = []
        self.trainers: dict[str, Trainer] = {}
        self._trainer: Trainer | None = None
        self._syncing = False
        self._ui_lock = threading.Lock()
        self._ui_timer: threading.Timer | None = None
        self._ui_last = 0.0
        self._closed = False

        # YES-0 once per task, reused by every run. Built on the very samples each run's Monitor
        # certifies on (the same seeded subset when max_samples is given) and with the model's own
        # bias and activation, so the Monitor accepts it and the cloud is the model's cloud.
        plan = discover_layers(task.model(seed))
        X_cert, Y_cert, self._certification = _certification_set(task.X_train, task.Y_train, max_samples, 0)
        self.cloud = YesCloud(X_cert, Y_cert, plan.depth, bias=plan.bias, activation=plan.activation)

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
        self.retry_button = widgets.Button(description="Train", button_style="primary", icon="play",
                                           tooltip="start a run from the seed's initial weights")
        self.pause_button = widgets.Button(description="Pause", icon="pause", disabled=True)
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger", disabled=True)
        self.reset_button = widgets.Button(description="Reset", icon="undo",
                                           tooltip="put the controls back to their starting values (runs are kept)")
        self.retry_button.on_click(lambda _: self.retry())
        self.pause_button.on_click(lambda _: self.resume() if self.paused else self.pause())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        self.lr_slider.observe(self._on_lr, names="value")
        self.batch_slider.observe(self._on_batch, names="value")

        # ---- displays ------------------------------------------------------------
        self.chart = CloudChart(title=f"{task.name}")
        self.timeline = ZoneTimeline()
        self.table = RunsTable()
        self._select_handle = self.table.on_select(self._on_select)
        self.message = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.info = widgets.HTML(
            f"<b>{task.name}</b>: {task.description}<br><small>{self._certification_text()}</small>"
        )
        controls = widgets.VBox([
            widgets.HBox([self.lr_slider, self.batch_slider]),
            widgets.HBox([self.epochs_box, self.optimizer_box, self.schedule_box, self.seed_box]),
            widgets.HBox([self.retry_button, self.pause_button, self.stop_button, self.reset_button]),
        ])
        super().__init__([self.info, controls, self.message, self.chart, self.timeline, self.table], **kwargs)
        self.add_class("yeswidget-playground")

    def _certification_text(self) -> str:
        where = describe_certification(self._certification)
        return (f"{where[0].upper()}{where[1:]}; losses in the metric E "
                f"(squared error summed over outputs, mean over samples), in dB. "
                f"YES-0 = {to_db(self.cloud.upper):.2f} dB for this data and architecture.")

    # ---------------------------------------------------------------- settings
    def settings(self) -> Settings:
        """The controls' current values as :class:`~yeswidget.training.Settings`."""
        return Settings(lr=float(self.lr_slider.value), batch_size=int(self.batch_slider.value),
                        epochs=int(self.epochs_box.value), optimizer=self.optimizer_box.value,
                        schedule=self.schedule_box.value, seed=int(self.seed_box.value), every=self.every,
                        step_size=self.defaults.step_size, gamma=self.defaults.gamma)

    def set_controls(self, **values: Any) -> None:
        """Put values into the controls without touching a running run."""
        unknown = set(values) - set(_SETTING_KEYS)
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; choose from {list(_SETTING_KEYS)}")
        Settings(**{**self.settings().as_dict(), **values})  # validate all first: a clear error, nothing half-set
        self._syncing = True
        try:
            if "lr" in values:
                _set_lr_value(self.lr_slider, float(values["lr"]))
            if "batch_size" in values:
                options = list(self.batch_slider.options)
                size = int(values["batch_size"])
                if size not in options:
                    self.batch_slider.options = sorted(set(options) | {size})
                self.batch_slider.value = size
            if "epochs" in values:
                self.epochs_box.value = int(values["epochs"])
            if "optimizer" in values:
                self.optimizer_box.value = values["optimizer"]
            if "schedule" in values:
                self.schedule_box.value = values["schedule"]
            if "seed" in values:
                self.seed_box.value = int(values["seed"])
        finally:
            self._syncing = False

    def reset(self) -> None:
        """Put the controls back to their starting values (runs are kept)."""
        self.set_controls(**{k: getattr(self.defaults, k) for k in _SETTING_KEYS})

    # ---------------------------------------------------------------- runs
    def retry(self, **settings: Any) -> Run:
        """Set the given controls, stop any current run, and train a new run from the seed's weights.

        Returns the new :class:`~yeswidget.core.run.Run` (filled while it trains; see :meth:`wait`).
        """
        if settings:
            self.set_controls(**settings)
        chosen = self.settings()
        self.stop()
        self.wait()
        index = len(self.runs)
        run_id = f"run {index + 1}"
        color = RUN_COLORS[index % len(RUN_COLORS)]
        trainer = Trainer(self.task, chosen, cloud=self.cloud, subscribers=(self._on_event,), run_id=run_id,
                          max_samples=self.max_samples, on_monitor=self._watch)
        trainer.run.config["color"] = color
        self._trainer = trainer
        self.message.value = ""
        trainer.start()
        run = trainer.run
        run.config["color"] = color
        self.runs.append(run)
        self.trainers[run.run_id or run_id] = trainer
        if run.status == "failed" and not run.epochs:
            self._show_failure(run)
        self._refresh_buttons()
        self._refresh_ui(force=True)
        return run

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run ended; False if ``timeout`` ran out."""
        trainer = self._trainer
        if trainer is None:
            return True
        done = trainer.wait(timeout)
        if done:
            self.chart.flush()
            self._refresh_ui(force=True)
            self._refresh_buttons()
        return done

    def stop(self) -> None:
        """Stop the current run within one step (the run is kept, status stopped)."""
        trainer = self._trainer
        if trainer is not None and trainer.alive:
            trainer.stop()
            trainer.wait(30)
        self._refresh_buttons()

    def pause(self) -> None:
        if self._trainer is not None and self._trainer.alive:
            self._trainer.pause()
        self._refresh_buttons()

    def resume(self) -> None:
        if self._trainer is not None:
            self._trainer.resume()
        self._refresh_buttons()

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
        """Called in the training thread once the new run's Monitor exists: the run shown so far
        becomes a faded line in its table colour, the new run is drawn live."""
        previous = self.chart.run
        if previous is not None and previous.epochs and all(p is not previous for p in self.chart.past_runs):
            self.chart.add_run(previous, color=previous.config.get("color"))
        self.chart.watch(monitor, keep_previous=False)

    # ---------------------------------------------------------------- live controls
    def _on_lr(self, change) -> None:
        if not self._syncing and self.running:
            self._trainer.set_lr(float(change["new"]))  # type: ignore[union-attr]

    def _on_batch(self, change) -> None:
        if not self._syncing and self.running:
            self._trainer.set_batch_size(int(change["new"]))  # type: ignore[union-attr]

    def _on_select(self, row: dict) -> None:
        run = next((r for r in self.runs if _row_id(r, self.runs) == row.get("id")), None)
        if run is None:
            return
        self.set_controls(**{k: run.config[k] for k in _SETTING_KEYS if k in run.config})
        self.chart.highlight(run.run_id if run is not self.chart.run else None)

    # ---------------------------------------------------------------- events → UI
    def _on_event(self, event: Any) -> None:
        if isinstance(event, StatusEvent):
            if event.status == "failed":
                run = next((r for r in self.runs if r.run_id == event.run_id), None)
                if run is not None:
                    self._show_failure(run)
                else:
                    self.message.value = _failure_html(event.message, event.traceback)
            self._refresh_ui(force=True)
            self._refresh_buttons()
        elif isinstance(event, EpochEvent):
            self._refresh_ui()

    def _show_failure(self, run: Run) -> None:
        self.message.value = _failure_html(f"{run.run_id}: {run.message}", run.traceback)

    def _refresh_buttons(self) -> None:
        # a run whose status has ended counts as done even while its thread winds down
        running = self.running and self._trainer is not None and self._trainer.run.status == "running"
        self.retry_button.description = "Retry" if self.runs else "Train"
        self.pause_button.disabled = not running
        self.stop_button.disabled = not running
        self.pause_button.description = "Resume" if self.paused else "Pause"
        self.pause_button.icon = "play" if self.paused else "pause"

    def _refresh_ui(self, force: bool = False) -> None:
        """Runs table + zone timeline, at most every ``ui_interval`` seconds (coalesced)."""
        with self._ui_lock:
            if self._closed:
                return
            now = time.monotonic()
            wait = self.ui_interval - (now - self._ui_last)
            if not force and wait > 0:
                if self._ui_timer is None:
                    self._ui_timer = threading.Timer(wait, self._refresh_ui, kwargs={"force": True})
                    self._ui_timer.daemon = True
                    self._ui_timer.start()
                return
            if self._ui_timer is not None:
                self._ui_timer.cancel()
                self._ui_timer = None
            self._ui_last = now
        try:
            self.table.rows = [_row(run, i) for i, run in enumerate(self.runs)]
            current = self.runs[-1] if self.runs else None
            if current is not None:
                records = [{"epoch": r.epoch, "loss_db": to_db(r.loss), "upper_db": to_db(r.upper),
                            "lower_db": to_db(r.lower), "zone": r.zone} for r in list(current.epochs)]
                zone = records[-1]["zone"] if records else ""
                self.timeline.records = records
                self.timeline.zone = zone
                self.timeline.headline = f"{zone}: {ZONE_WORDS[zone]}" if zone else ""
                if current.warnings and current.status != "failed":
                    # e.g. "hidden width 3 is narrower than the output width 8: YES-0 is a reference …"
                    notes = "".join(f"<li>{html.escape(w)}</li>" for w in dict.fromkeys(current.warnings))
                    self.message.value = f"<div style='color:#8a5a00'><b>note</b><ul>{notes}</ul></div>"
        except Exception as exc:  # a display hiccup must never reach the training thread
            self.message.value = f"<small>display update failed: {type(exc).__name__}: {exc}</small>"

    # ---------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Stop the training thread, cancel and join every timer, and close every child widget.

        No thread of this widget is left when it returns (unless a run ignores Stop for 30 s).
        """
        for trainer in list(self.trainers.values()) + [self._trainer]:
            if trainer is not None and trainer.alive:
                trainer.stop()
        for trainer in list(self.trainers.values()) + [self._trainer]:
            if trainer is not None:
                trainer.wait(30)
        with self._ui_lock:
            self._closed = True
            ui_timer, self._ui_timer = self._ui_timer, None
        self._select_handle.remove()
        self.chart.close()  # cancels and joins its redraw timer
        if ui_timer is not None:
            ui_timer.cancel()
            if ui_timer is not threading.current_thread() and ui_timer.ident is not None:
                ui_timer.join(30)
        for child in (self.timeline, self.table, self.message, self.info, self.lr_slider, self.batch_slider,
                      self.epochs_box, self.optimizer_box, self.schedule_box, self.seed_box, self.retry_button,
                      self.pause_button, self.stop_button, self.reset_button):
            child.close()
        super().close()


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


def _row_id(run: Run, runs: list[Run]) -> int:
    return runs.index(run)


def _row(run: Run, index: int) -> dict:
    final = run.final
    ended = run.status != "running"
    green = run.epochs_to_green
    return {
        "id": index, "label": run.run_id, "lr": float(run.config.get("lr", float("nan"))),
        "batch_size": int(run.config.get("batch_size", 0)), "optimizer": str(run.config.get("optimizer", "")),
        "schedule": str(run.config.get("schedule", "")), "seed": int(run.config.get("seed", 0)),
        "final_loss_db": to_db(final.loss) if final else None, "final_zone": final.zone if final else None,
        "epochs_to_green": green if green is not None or not ended else None,
        "wall_time": float(final.wall_time) if final else 0.0, "status": run.status,
        "color": run.config.get("color", "#333"),
    }


def _failure_html(message: str, traceback: str) -> str:
    details = f"<details><summary>last frames</summary><pre>{html.escape(traceback)}</pre></details>" if traceback else ""
    return (f"<div style='color:#a00'><b>training failed</b>: {html.escape(message)} "
            f"(the run is kept in the table){details}</div>")
