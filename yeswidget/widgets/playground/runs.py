"""The Playground's runs: starting one, following it on the chart, the kept runs (find, hide,
show, delete) and which of them the chart draws. The live run's line style goes to the chart,
which draws it through its scene (the Playground writes no mark)."""
from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING, Any

from ...core.run import EpochEvent, Run, StatusEvent
from ...engine.capture import CapturePlan
from ...training import SETTINGS_KEYS, Settings, Trainer, batch_size_options
from ...training.tasks import get_task
from ..sync import close_all
from .controls import chosen_settings
from .draw import failure_html, number
from .families import Family, make_family, read_plan, shape_of
from .theme import RUN_COLORS

if TYPE_CHECKING:
    from .app import Playground

__all__ = ["start_run", "watch", "run_labels", "predict", "find_run", "delete", "sync_chart",
           "style_live_line"]


def start_run(pg: Playground, pause_after: int | None = None) -> Run:
    """Stop any current run and train a new one from the controls (paused after ``pause_after`` epochs)."""
    chosen_run = chosen_settings(pg)
    family = pg.family = family_for(pg, pg.task, int(pg.depth_box.value), int(pg.width_box.value))
    pg.stop()
    pg._wait(None, refresh=False)  # the run before has ended; this cell's new chart stays as it is
    pg._count += 1
    run_id = f"run {pg._count}"
    pg._colors[run_id] = RUN_COLORS[(pg._count - 1) % len(RUN_COLORS)]
    pg._run_family[run_id] = family
    trainer = Trainer(family.task, chosen_run, cloud=family.cloud, subscribers=(pg._on_event,), run_id=run_id,
                      max_samples=pg.max_samples, on_monitor=functools.partial(watch, pg),
                      on_epoch=functools.partial(predict, pg))
    trainer.run.config.update(run_labels(pg, run_id))
    pg._trainer = trainer
    pg._message_html = ""
    if pause_after is not None:
        trainer.step_epochs(pause_after)
    trainer.start()
    run = trainer.run
    run.config.update(run_labels(pg, run_id))
    pg.runs.append(run)
    pg.trainers[run.run_id or run_id] = trainer
    if run.status == "failed" and not run.epochs:
        show_failure(pg, run)
    pg._ui.flush()
    return run


def watch(pg: Playground, monitor: Any) -> None:
    """Called in the training thread once the new run's Monitor exists (before its first step):
    the run gets its name and colour, the run shown so far becomes a faded line in its table
    colour (unless hidden or deleted), the new run is drawn live."""
    monitor.run.config.update(run_labels(pg, monitor.run.run_id))
    previous = pg.chart.run
    if (previous is not None and previous.epochs and any(r is previous for r in pg.runs)
            and previous.run_id not in pg.hidden and all(p is not previous for p in pg.chart.past_runs)):
        pg.chart.add_run(previous, color=previous.config.get("color"))
    pg.chart.line_style(monitor.run.config.get("color", RUN_COLORS[0]), monitor.run.run_id not in pg.hidden)
    pg.chart.watch(monitor, keep_previous=False)


def run_labels(pg: Playground, run_id: str) -> dict[str, Any]:
    """What a run's config carries for the display: name (legend), colour, family."""
    family = pg._run_family.get(run_id, pg.family)
    first = family is pg.families[0]
    return {"name": run_id if first else f"{run_id} · {family.label}", "color": pg._colors.get(run_id, RUN_COLORS[0]),
            "family": family.label, "depth": family.depth, "width": family.width}


def predict(pg: Playground, trainer: Trainer, epoch: int) -> None:
    """Training thread, after each whole epoch: the predictions panel's few samples."""
    if trainer.model is None:  # (built before the first epoch; nothing to show otherwise)
        return
    try:
        pg.predictions.take(trainer.model, epoch, trainer.run.config.get("color", RUN_COLORS[0]))
    except Exception as exc:  # a display must never stop the training
        pg._message_html = (f"<div style='color:#a00'>predictions panel: "
                              f"{html.escape(f'{type(exc).__name__}: {exc}')}</div>")
    pg._ui.mark()


def find_run(pg: Playground, which: Run | str | int) -> Run:
    """The run given as a :class:`Run`, its id (``"run 3"``) or its number (``3``, as in the table)."""
    for run in pg.runs:
        if run is which or run.run_id == which or (isinstance(which, int) and number(run) == which):
            return run
    known = ", ".join(r.run_id for r in pg.runs) or "none yet"
    raise KeyError(f"no run {which!r} in this Playground (runs: {known})")


def delete(pg: Playground, which: Run | str | int) -> None:
    """Remove a run from the table and the chart (a running one is stopped first)."""
    run = find_run(pg, which)
    trainer = pg.trainers.pop(run.run_id, None)
    if trainer is not None and trainer.alive:
        trainer.stop()
        trainer.wait(30)
    if trainer is not None and trainer.monitor is not None:
        trainer.monitor.close()
    if trainer is pg._trainer:
        pg._trainer = None
    pg.runs = [r for r in pg.runs if r is not run]
    pg.hidden.discard(run.run_id)
    if pg.chart.run is run:
        pg.chart.watch(None, keep_previous=False)
    sync_chart(pg)


def sync_chart(pg: Playground) -> None:
    """Past runs on the chart: every kept, shown run of the current task but the one drawn live, in order."""
    current = pg.chart.run
    wanted = [r for r in pg.runs if r is not current and r.epochs and r.run_id not in pg.hidden
              and r.config.get("task", pg.task.name) == pg.task.name]
    if [id(r) for r in pg.chart.past_runs] != [id(r) for r in wanted]:
        pg.chart.clear_runs()
        for run in wanted:
            pg.chart.add_run(run, color=run.config.get("color"))
    style_live_line(pg)
    pg._ui.flush()
    pg.chart.flush()


def style_live_line(pg: Playground) -> None:
    """The live run's line in its own colour (as in the table), hidden when it is hidden."""
    run = pg.chart.run
    if run is None or not any(r is run for r in pg.runs):
        pg.chart.line_style(None, True)
        return
    pg.chart.line_style(run.config.get("color", RUN_COLORS[0]), run.run_id not in pg.hidden)


def set_task(pg: Playground, name: str) -> None:
    """Switch to a built-in task (by name): its recipe in the controls (epochs scaled as the first
    task's were, e.g. a classroom's shorter runs), its own architecture and cloud. The chart is
    cleared at once to the new family (no run of it yet); runs of other tasks stay in the table
    and come back on the chart when their task does."""
    task = pg._tasks.get(name)
    if task is None:
        task = pg._tasks[name] = get_task(name)
    pg.task = task
    pg.defaults = Settings.for_task(task, {"epochs": classroom_epochs(pg, task)}, seed=pg.defaults.seed,
                                    every=pg.every)
    plan = read_plan(task.model(0), task.X_train)
    depth, width = shape_of(plan)
    pg.family = family_for(pg, task, depth, width, plan)
    pg._pending_controls.update(batch_options=batch_size_options(task.n_train), task=task.name,
                                depth=depth, width=max(width, 1),
                                **{k: getattr(pg.defaults, k) for k in SETTINGS_KEYS})
    current = pg.chart.run
    if current is not None and current.config.get("task", task.name) != task.name:
        pg.chart.watch(None, keep_previous=False)  # the view is the new family's from now on
    sync_chart(pg)


def classroom_epochs(pg: Playground, task: Any) -> int:
    """The epochs for ``task``: its recipe's, scaled as the Playground's first task's were scaled
    (``Playground(task, epochs=30)`` on a 100-epoch recipe gives 30 % of every task's recipe);
    the first task gets back exactly what it was given."""
    if task.name == pg._first_task[0]:
        return pg._first_task[1]
    recipe = Settings.for_task(task).epochs
    return max(1, round(recipe * pg._epoch_scale))


def on_task(pg: Playground, change: dict[str, Any]) -> None:
    if pg._syncing or change["new"] == pg.task.name:
        return
    try:
        set_task(pg, change["new"])
    except Exception as exc:  # e.g. a task whose optional package is missing
        pg._message_html = (f"<div style='color:#a00'>cannot load task {html.escape(str(change['new']))}: "
                              f"{html.escape(f'{type(exc).__name__}: {exc}')}</div>")
        pg._pending_controls["task"] = pg.task.name
        pg._ui.flush()


def step_epoch(pg: Playground) -> Run:
    """Train one more epoch of the live run, then pause (the teaching pace).

    Without a live run: a new run from the controls that pauses after its first epoch.
    Returns at once; the run pauses on its own (``current.wait_parked()`` blocks until then).
    """
    trainer = pg._trainer
    if trainer is not None and trainer.alive and trainer.run.status == "running":
        trainer.step_epochs(1)
        pg._ui.flush()
        return trainer.run
    return start_run(pg, pause_after=1)


def family_for(pg: Playground, task: Any, depth: int, width: int, plan: CapturePlan | None = None) -> Family:
    """The family of runs for ``task`` at this architecture (made, with its cloud, when new;
    ``plan``: the task's own model, read already)."""
    for family in pg.families:
        if family.matches(task, depth, width):
            return family
    family = make_family(task, depth, width, len(pg.families), pg.max_samples, plan)
    pg.families.append(family)
    return family


def on_event(pg: Playground, event: Any) -> None:
    # on a monitor's dispatcher thread (or the training thread for a run that failed to start):
    # remember what to show, and let the pump draw it
    if isinstance(event, StatusEvent) and event.status == "failed":
        run = next((r for r in pg.runs if r.run_id == event.run_id), None)
        if run is not None:
            show_failure(pg, run)
        else:
            pg._message_html = failure_html(event.message, event.traceback)
    if isinstance(event, (StatusEvent, EpochEvent)):
        pg._ui.mark()


def show_failure(pg: Playground, run: Run) -> None:
    pg._message_html = failure_html(f"{run.run_id}: {run.message}", run.traceback)
    pg._ui.mark()


def close(pg: Playground) -> None:
    """Stop the training thread, leave the UI pump and close every widget this Playground made.

    No thread of this widget is left when it returns (unless a run ignores Stop for 30 s).
    """
    if pg._closed:
        return
    trainers = [t for t in [*pg.trainers.values(), pg._trainer] if t is not None]
    for trainer in trainers:
        if trainer.alive:
            trainer.stop()
    for trainer in trainers:
        trainer.wait(30)
        if trainer.monitor is not None:
            trainer.monitor.close()
    pg._closed = True
    pg._ui.close()
    pg._select_handle.remove()
    pg.chart.close()
    pg.predictions.close()
    # every model this Playground made: controls, boxes, table, timeline, and their layouts and styles
    close_all(pg, *pg._boxes)
