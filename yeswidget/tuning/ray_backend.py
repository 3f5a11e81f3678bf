"""``backend="ray"``: the sweep's configurations as Ray Tune trials, pruned by verdict.

Each trial runs the same :func:`~yeswidget.tuning.runner.run_job` as a worker process, stepping
the Trainer one epoch at a time and reporting every epoch's record; :class:`YesStopper` applies
the sweep's :class:`~yeswidget.tuning.prune.PruneRule` to the reports, so a trial is stopped at
the same epoch, with the same reason, as in the process backend, and the rows are the same.

Tests and a laptop start a local Ray on this machine (``ray.init(num_cpus=workers)``); on a
cluster, call ``ray.init(address="ray://<head>:10001")`` (or set ``RAY_ADDRESS``) before the
sweep: an initialised Ray is used as it is. Needs ``pip install "yeswidget[ray]"``.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

from ..core.run import EpochRecord
from .prune import PruneRule
from .runner import Job, run_job

__all__ = ["YesStopper", "run_with_ray", "trial"]


def _import_tune() -> Any:
    try:
        from ray import tune
    except ImportError as exc:
        raise ImportError('backend="ray" needs Ray Tune: pip install "yeswidget[ray]" (ray[tune])') from exc
    return tune


def trial(config: dict[str, Any], jobs: Sequence[Job] = ()) -> None:
    """The Ray Tune function trainable: run job ``config["index"]``, report every epoch."""
    from ray import tune

    given = jobs[int(config["index"])]
    job = replace(given, rule=PruneRule("off"))  # the verdict is reported; the stopper stops the trial
    records: list[EpochRecord] = []

    def report(row: dict[str, Any], record: EpochRecord, restart: float) -> str | None:
        records.append(record)
        reason = given.rule.decide(records, given.config.epochs, restart)
        tune.report({"row": row, "record": asdict(record), "restart": restart, "prune": reason or "",
                     "done": False})
        return reason  # if Tune has not stopped the trial at the report, it stops here, at the same epoch

    row = run_job(job, on_epoch=report)
    tune.report({"row": row, "record": None, "restart": 0.0, "prune": row["prune_reason"], "done": True})


class YesStopper:
    """A Ray Tune stopper that prunes by verdict: it stops a trial whose report says the sweep's
    rule prunes it (``result["prune"]``, decided next to the run on its own records), or, for
    reports without it, applies ``rule`` to the trial's reported records."""

    def __init__(self, rule: PruneRule, epochs: int) -> None:
        self.rule = rule
        self.epochs = epochs
        self.records: dict[str, list[EpochRecord]] = {}
        self.reasons: dict[str, str] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if result.get("done") or result.get("record") is None:
            return False
        if result.get("prune"):
            self.reasons[trial_id] = str(result["prune"])
            return True
        records = self.records.setdefault(trial_id, [])
        records.append(EpochRecord(**result["record"]))
        reason = self.rule.decide(records, self.epochs, float(result.get("restart", 0.0)))
        if reason is not None:
            self.reasons[trial_id] = reason
            return True
        return False

    def stop_all(self) -> bool:
        return False


def _stopper_class(tune: Any) -> type:
    # a subclass of tune.Stopper, made when Ray is there (this module imports without it)
    return type("YesTuneStopper", (YesStopper, tune.Stopper), {})


def _noted_reason(path: str | None) -> str | None:
    """The reason the run's own log notes for its pruning (the runner notes it before it stops)."""
    if not path:
        return None
    from ..integrations.runlog import load_run

    prefix = "pruned by the sweep: "
    notes = [w[len(prefix):] for w in load_run(path).warnings if w.startswith(prefix)]
    return notes[-1] if notes else None


def run_with_ray(jobs: Sequence[Job], add: Callable[[dict[str, Any]], None], workers: int) -> None:
    """Run ``jobs`` as Tune trials, ``workers`` at a time; ``add(row)`` for each finished trial."""
    tune = _import_tune()
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    rule, epochs = jobs[0].rule, jobs[0].config.epochs
    stopper = _stopper_class(tune)(rule, epochs)
    storage = os.path.join(os.path.dirname(jobs[0].runs_dir), "ray")
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trial, jobs=list(jobs)), {"cpu": 1}),
        param_space={"index": tune.grid_search(list(range(len(jobs))))},
        tune_config=tune.TuneConfig(max_concurrent_trials=workers),
        run_config=tune.RunConfig(stop=stopper, storage_path=storage, name="trials", verbose=0),
    )
    results = tuner.fit()
    for result in results:
        if result.error is not None:
            raise RuntimeError(f"a Ray Tune trial failed: {result.error}")
        row = dict(result.metrics["row"])
        reason = result.metrics.get("prune") or _noted_reason(row.get("run_log")) or None
        if reason is not None and not row.get("pruned"):
            row.update(status="pruned", pruned=True, prune_reason=reason)
        add(row)
