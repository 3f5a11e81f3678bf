"""One configuration of a sweep, run where it is sent (a worker process, a Ray trial, or here).

The run is a plain :class:`~yeswidget.training.Trainer` run of the task with the task's recipe
and the configuration's settings (so it equals a single Playground or ``Trainer`` run with the
same settings and seed), its own monitor and run log. With pruning on, the Trainer is stepped
one epoch at a time (as the Playground's "step" button does) and the rule is applied to each
epoch's record at the boundary: a deterministic decision, whatever the load.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..core.run import EpochRecord, Run
from ..core.zones import to_db
from ..integrations.runlog import RUNS_DIR_ENV
from ..training.recipe import Settings
from ..training.trainer import Trainer
from .prune import PruneRule, restart_epochs
from .space import Config

__all__ = ["Job", "run_job", "row_of", "settings_for", "resolve_task", "ROW_FIELDS"]

#: one row per run, in this order (the sweep table, ``to_pandas()`` and ``sweep.json``)
ROW_FIELDS = ("index", "lr", "batch_size", "schedule", "optimizer", "seed", "epochs", "loss", "first_green",
              "final_zone", "final_loss", "final_loss_db", "margin_upper_db", "margin_lower_db", "epochs_run",
              "seconds_to_green", "wall_seconds", "status", "pruned", "prune_reason", "run_log", "message")


@dataclass(frozen=True)
class Job:
    """What a worker needs: the task (a Task, a task name or a picklable factory), the configuration,
    its index in the sweep, the prune rule, the runs folder, the torch threads to use and the loss
    the run is trained and judged in (a key of :data:`~yeswidget.training.trainer.TRAINING_LOSSES`)."""

    task: Any
    config: Config
    index: int
    rule: PruneRule
    runs_dir: str
    threads: int = 1
    loss: str = "mse"


_TASKS: dict[str, Any] = {}  # a worker's tasks, built once per worker process


def resolve_task(task: Any) -> Any:
    """A Task from a Task, a built-in task's name, or a factory returning one."""
    from ..training.tasks import Task, get_task

    if isinstance(task, Task):
        return task
    if isinstance(task, str):
        if task not in _TASKS:
            _TASKS[task] = get_task(task)
        return _TASKS[task]
    if callable(task):
        built = task()
        if not isinstance(built, Task):
            raise TypeError("the task factory must return a yeswidget.training.tasks.Task; "
                            f"it returned {type(built).__name__}")
        return built
    raise TypeError(f"task_or_factory must be a Task, a task name or a function returning a Task; "
                    f"got {type(task).__name__}")


def settings_for(task: Any, config: Config) -> Settings:
    """The task's recipe (:meth:`Settings.for_task`: step size, gamma, … as the Playground and the CLI
    read it) with the configuration's settings."""
    given = {"lr": config.lr, "batch_size": config.batch_size, "epochs": config.epochs,
             "optimizer": config.optimizer, "schedule": config.schedule}
    return Settings.for_task(task, given, seed=config.seed)


def _widths(model: torch.nn.Module) -> list[int]:
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        return [1, 1]
    return [int(linears[0].in_features), *(int(m.out_features) for m in linears)]


def _margin(loss: float, edge: float) -> float | None:
    value = to_db(loss) - to_db(edge)
    return float(value) if math.isfinite(value) else None


def row_of(run: Run, config: Config, index: int, reason: str | None, log_path: str | None,
           loss: str = "mse") -> dict[str, Any]:
    """The sweep's row for a finished run (plain data: JSON-safe apart from NaN losses); ``loss``:
    the loss it was trained and judged in (its final loss and margins are in that loss)."""
    final: EpochRecord | None = run.final
    green = run.epochs_to_green
    green_record = next((r for r in run.epochs if r.epoch == green), None)
    return {
        "index": index, **config.as_dict(), "loss": loss, "first_green": green,
        "final_zone": final.zone if final else None,
        "final_loss": float(final.loss) if final else None,
        "final_loss_db": float(to_db(final.loss)) if final and math.isfinite(to_db(final.loss)) else None,
        "margin_upper_db": _margin(final.loss, final.upper) if final else None,
        "margin_lower_db": _margin(final.loss, final.lower) if final else None,
        "epochs_run": final.epoch if final else 0,
        "seconds_to_green": float(green_record.wall_time) if green_record else None,
        "wall_seconds": float(final.wall_time) if final else 0.0,
        "status": "pruned" if reason else run.status, "pruned": reason is not None, "prune_reason": reason or "",
        "run_log": log_path, "message": run.message,  # a failed configuration is a row too, with why
    }


#: ``on_epoch(row so far, the epoch's record, restart cost)`` at each boundary; a reason prunes
OnEpoch = Callable[[dict[str, Any], EpochRecord, float], "str | None"]


def _log_path(trainer: Trainer) -> str | None:
    log = getattr(getattr(trainer.monitor, "run_log", None), "path", None)
    return None if log is None else os.fspath(log)


def _stepped(trainer: Trainer, job: Job, restart: float, on_epoch: OnEpoch | None) -> str | None:
    """Train epoch by epoch; apply the rule at each boundary. The reason the run was pruned, or None."""
    trainer.step_epochs(1)
    trainer.start()
    while True:
        trainer.wait_parked()
        monitor = trainer.monitor
        if monitor is not None:
            monitor.wait()
        run = trainer.run
        if not trainer.alive or run.status != "running":
            trainer.wait()
            return None
        reason = job.rule.decide(run.epochs, job.config.epochs, restart)
        if reason is None and on_epoch is not None and run.epochs:
            row = row_of(run, job.config, job.index, None, _log_path(trainer), job.loss)
            reason = on_epoch(row, run.epochs[-1], restart)
        if reason is not None:
            if monitor is not None:
                monitor.store.note(f"pruned by the sweep: {reason}")
            trainer.stop()
            trainer.wait()
            return reason
        trainer.step_epochs(1)


def run_job(job: Job, on_epoch: OnEpoch | None = None) -> dict[str, Any]:
    """Run one configuration here; its row. ``on_epoch(row, record, restart)``: called at every
    epoch boundary (a Ray report); a reason it returns prunes the run as the rule would."""
    torch.set_num_threads(max(1, job.threads))
    os.environ[RUNS_DIR_ENV] = job.runs_dir  # the run log goes to the sweep's folder
    task = resolve_task(job.task)
    settings = settings_for(task, job.config)
    trainer = Trainer(task, settings, run_id=f"sweep-{job.index:03d}", loss=job.loss)
    t0 = time.perf_counter()
    if job.rule.mode == "off" and on_epoch is None:
        trainer.start(background=False)
        reason = None
    else:
        restart = restart_epochs(task.n_train, _widths(task.model(job.config.seed)))
        reason = _stepped(trainer, job, restart, on_epoch)
    row = row_of(trainer.run, job.config, job.index, reason, _log_path(trainer), job.loss)
    row["worker_seconds"] = time.perf_counter() - t0
    return row
