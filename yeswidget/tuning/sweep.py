"""``yeswidget.sweep(...)``: a grid (or random samples) of configurations, in parallel worker
processes, each run with its own monitor and run log, pruned by verdict; one row per run.

The sweep's folder holds ``sweep.json`` (the specification and the rows, rewritten as each run
finishes) and ``runs/`` (one run log per run); :meth:`Sweep.load` reads it back.
"""
from __future__ import annotations

import concurrent.futures
import json
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.run import Run
from ..integrations.runlog import load_run
from .metrics import best_row, selection_table
from .prune import PruneRule
from .runner import ROW_FIELDS, Job, resolve_task, run_job
from .space import Config, expand

__all__ = ["Sweep", "sweep", "BACKENDS", "SWEEP_FILE", "DEFAULT_SWEEPS_DIR"]

BACKENDS = ("processes", "inline", "ray")
SWEEP_FILE = "sweep.json"
DEFAULT_SWEEPS_DIR = "yeswidget-sweeps"
_FORMAT = "yeswidget-sweep"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _clean(value: Any) -> Any:
    """JSON-safe (non-finite floats → None)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Sweep:
    """A sweep's configurations and, as runs finish, their rows (``results``, in configuration order).

    ``folder``: where ``sweep.json`` and ``runs/`` are. ``subscribe(callback)``: ``callback(row)`` for
    each finished run (from the sweep's thread). ``wait()`` blocks until every run is done.
    """

    def __init__(self, configs: Sequence[Config], folder: str | os.PathLike[str], *, spec: dict[str, Any]) -> None:
        self.configs = list(configs)
        self.folder = Path(folder)
        self.spec = dict(spec)
        self._rows: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[dict[str, Any]], None]] = []
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.wall_seconds = 0.0

    # ------------------------------------------------------------------ rows
    @property
    def results(self) -> list[dict[str, Any]]:
        """One row per finished run (settings, first green, final zone and loss, margins in dB to YES-0
        (``margin_upper_db``) and to the lower edge (``margin_lower_db``), epochs run, pruned and why,
        run-log path), in configuration order."""
        with self._lock:
            return [dict(self._rows[i]) for i in sorted(self._rows)]

    @property
    def done(self) -> bool:
        return len(self._rows) == len(self.configs)

    def best(self, by: str = "utility") -> dict[str, Any] | None:
        """The best run's row: ``"utility"`` (green first, then the lowest final loss) or ``"cost"``
        (the earliest first green)."""
        return best_row(self.results, by)

    def table(self, sort: str = "utility") -> list[dict[str, Any]]:
        """LRBench's selection metrics, one row per configuration (its seeds together), sorted by
        ``"utility"``, ``"cost"`` or ``"robustness"``; see :func:`yeswidget.tuning.metrics.selection_table`."""
        return selection_table(self.results, sort)

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (columns :data:`~yeswidget.tuning.runner.ROW_FIELDS`)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
        return pd.DataFrame(self.results, columns=list(ROW_FIELDS))

    def run(self, row_or_index: dict[str, Any] | int) -> Run:
        """The run of a row (or of a configuration index), read back from its run log."""
        row = self._rows[row_or_index] if isinstance(row_or_index, int) else row_or_index
        if not row.get("run_log"):
            raise ValueError(f"run {row.get('index')} has no run log")
        return load_run(row["run_log"])

    def view(self, *, x: str = "lr", y: str = "batch_size", color_by: str = "zone") -> Any:
        """The live sweep view (a widget: the grid of ``x`` × ``y``, filling in as runs finish; click a
        cell for its run over its cloud); see :class:`yeswidget.widgets.sweep_view.SweepView`."""
        from ..widgets.sweep_view import SweepView

        return SweepView(self, x=x, y=y, color_by=color_by)

    def picture(self, path: str | os.PathLike[str], *, x: str = "lr", y: str = "batch_size",
                color_by: str = "zone") -> Path:
        """Write the grid as a static picture (.png/.svg/.pdf) for a report; its path."""
        from ..view.sweep_grid import save_sweep, sweep_grid

        grid = sweep_grid([c.as_dict() for c in self.configs], self.results, x=x, y=y, color_by=color_by)
        save_sweep(grid, path, title=f"sweep {self.spec.get('task', '')}: final zone, first green epoch")
        return Path(path)

    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(row)`` for every run that finishes from now on (rows so far: :attr:`results`)."""
        self._callbacks.append(callback)

    def _add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows[int(row["index"])] = row
        self.save()
        for callback in list(self._callbacks):
            try:
                callback(dict(row))
            except Exception:  # a display's failure never stops the sweep
                pass

    # ------------------------------------------------------------ lifetime
    def wait(self, timeout: float | None = None) -> bool:
        """Block until every run finished; False if ``timeout`` ran out first. Re-raises a sweep failure."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        if self.error is not None:
            raise RuntimeError(f"the sweep failed: {self.error}") from self.error
        return True

    def save(self) -> Path:
        """Write ``folder/sweep.json`` (the specification and the rows so far)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"format": _FORMAT, "version": 1, "spec": self.spec, "wall_seconds": self.wall_seconds,
                "configs": [c.as_dict() for c in self.configs],
                "rows": [{k: _clean(v) for k, v in row.items()} for row in self.results]}
        path = self.folder / SWEEP_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")
        os.replace(tmp, path)  # never a half-written file
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Sweep:
        """A sweep read back from its folder (or its ``sweep.json``): its configurations and rows."""
        path = Path(folder)
        path = path / SWEEP_FILE if path.is_dir() else path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no {SWEEP_FILE} in {os.fspath(folder)!r}: not a sweep folder") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a yeswidget sweep (no format {_FORMAT!r})")
        loaded = cls([Config(**c) for c in data["configs"]], path.parent, spec=data.get("spec", {}))
        loaded.wall_seconds = float(data.get("wall_seconds", 0.0))
        for row in data["rows"]:
            if row.get("final_loss") is None and row.get("epochs_run"):
                row["final_loss"] = math.nan  # a non-finite loss was stored as null
            loaded._rows[int(row["index"])] = row
        return loaded

    def __repr__(self) -> str:
        return f"Sweep({len(self._rows)}/{len(self.configs)} runs, folder={os.fspath(self.folder)!r})"


def _context() -> multiprocessing.context.BaseContext:
    """A forkserver where there is one: torch and yeswidget are imported once, in the server, and each
    worker is forked from it (no thread or lock of this process is copied); else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["yeswidget.tuning.runner", "yeswidget.training.tasks"])
        return context
    return multiprocessing.get_context("spawn")


def _run_processes(sweep: Sweep, jobs: list[Job], workers: int) -> None:
    context = _context()
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in concurrent.futures.as_completed(futures):
            sweep._add(future.result())


def _execute(sweep: Sweep, jobs: list[Job], backend: str, workers: int) -> None:
    t0 = time.perf_counter()
    try:
        if backend == "inline":
            for job in jobs:
                sweep._add(run_job(job))
        elif backend == "ray":
            from .ray_backend import run_with_ray

            run_with_ray(jobs, sweep._add, workers)
        else:
            _run_processes(sweep, jobs, workers)
    except BaseException as exc:
        sweep.error = exc
    finally:
        sweep.wall_seconds = time.perf_counter() - t0
        sweep.save()


def _check_picklable(task: Any) -> None:
    import pickle

    try:
        pickle.dumps(task)
    except Exception as exc:
        raise TypeError("the task cannot be sent to worker processes (it does not pickle: "
                        f"{type(exc).__name__}: {exc}); give a built-in task's name, a module-level function "
                        "returning the Task, a Task whose make_model is a module-level function, "
                        "or backend='inline'") from None


def sweep(task_or_factory: Any, *, lr: Any = 1e-3, batch_size: Any = None, schedule: Any = None,
          optimizer: Any = None, seeds: Sequence[int] = (0,), epochs: int | None = None, prune: Any = "red",
          workers: int | None = None, backend: str = "processes", samples: int | None = None,
          sample_seed: int = 0, folder: str | os.PathLike[str] | None = None, wait: bool = True,
          loss: str = "mse") -> Sweep:
    """Run every configuration of the grid (lists) or ``samples`` random draws (``LogUniform`` /
    ``Uniform`` ranges) of a task; settings not given are the task's recipe.

    ``task_or_factory``: a Task, a built-in task's name or a function returning a Task. ``epochs``:
    per run (default: the task's). ``prune``: "red" (stop runs still red after k epochs), "verdict"
    (also yellow plateaus), None, or a :class:`~yeswidget.tuning.prune.PruneRule`. ``workers``:
    processes at once (default: min(cores, runs)); torch threads per worker = cores // workers.
    ``backend``: "processes", "inline" (here, one by one) or "ray" (Ray Tune trials). ``folder``:
    where sweep.json and the run logs go (default: ``yeswidget-sweeps/<time>``). ``wait=False``
    returns at once; rows arrive as runs finish (see :meth:`Sweep.subscribe`). ``loss``: what every
    run is trained and judged in, one of "mse" (the paper's), "huber", "smooth_l1", "l1"; the rows'
    final losses and margins are in it.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    rule = PruneRule.of(prune)
    task = resolve_task(task_or_factory)  # here too: a bad task is an error now, not in every worker
    recipe = dict(task.defaults)
    epochs = int(recipe.get("epochs", 100)) if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int ≥ 1; got {epochs!r}")
    axes = {"lr": lr, "batch_size": recipe.get("batch_size", 50) if batch_size is None else batch_size,
            "schedule": recipe.get("schedule", "step") if schedule is None else schedule,
            "optimizer": recipe.get("optimizer", "adam") if optimizer is None else optimizer, "seed": list(seeds)}
    configs = expand(axes, epochs, samples=samples, sample_seed=sample_seed)
    from ..training.trainer import check_training_loss
    from .runner import settings_for

    for config in configs:
        settings_for(task, config)  # a bad value is an error here, naming itself, before any process starts
        check_training_loss(loss, config.optimizer)
    cores = _cores()
    workers = min(cores, len(configs)) if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int ≥ 1; got {workers!r}")
    threads = max(1, cores // workers)  # workers × threads ≤ cores: OpenMP teams never contend
    sent = task_or_factory if isinstance(task_or_factory, str) else task
    if backend != "inline":
        _check_picklable(sent)
    folder = Path(folder) if folder is not None else Path(DEFAULT_SWEEPS_DIR) / time.strftime("%Y%m%d-%H%M%S")
    runs_dir = folder / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    spec = {"task": getattr(task, "name", ""), "backend": backend, "workers": workers, "threads": threads,
            "prune": rule.mode, "epochs": epochs, "samples": samples, "loss": loss}
    result = Sweep(configs, folder, spec=spec)
    jobs = [Job(sent, config, i, rule, os.fspath(runs_dir.resolve()), threads, loss)
            for i, config in enumerate(configs)]
    result.save()
    return _start(result, jobs, backend, workers, wait)


def _start(result: Sweep, jobs: list[Job], backend: str, workers: int, wait: bool) -> Sweep:
    """Run the jobs here, or in the sweep's thread with ``wait=False``."""
    if wait:
        _execute(result, jobs, backend, workers)
        result.wait()
    else:
        result._thread = threading.Thread(target=_execute, args=(result, jobs, backend, workers),
                                          name="yeswidget-sweep", daemon=True)
        result._thread.start()
    return result
