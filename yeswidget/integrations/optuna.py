"""Optuna pruning by the YES verdict: :class:`YesPruner` and :func:`report`.

    pruner = YesPruner(epochs=30)                      # the sweep's rule: red after k epochs
    study = optuna.create_study(pruner=pruner)         # any storage, RDB for many machines
    def objective(trial):
        ...
        for epoch in range(30):
            train_one_epoch(); monitor.epoch_end()
            if report(trial, monitor.run.final):       # the epoch's record
                raise optuna.TrialPruned(pruner.reason(trial))
        return monitor.run.final.loss

:func:`report` stores the epoch's loss as the trial's intermediate value and its record (loss,
edges, zone) as a user attribute, so the pruner, in whichever process, judges by the zone with
:class:`~yeswidget.tuning.prune.PruneRule` (never a green run). Needs ``pip install "yeswidget[optuna]"``.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

try:
    import optuna
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError('yeswidget.integrations.optuna needs Optuna: pip install "yeswidget[optuna]"') from exc

from ..core.run import EpochRecord
from ..tuning.prune import PruneRule

__all__ = ["YesPruner", "report", "RECORDS_ATTR"]

#: the trial's user attribute holding its epoch records (JSON: loss, edges, zone per epoch)
RECORDS_ATTR = "yeswidget_records"
_KEPT = ("epoch", "loss", "upper", "lower", "zone")


def report(trial: optuna.trial.Trial, record: EpochRecord | None) -> bool:
    """Report one epoch's record to ``trial``; True when the study's pruner says to stop."""
    if record is None:
        return False
    kept = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(record).items() if k in _KEPT}
    records = list(trial.user_attrs.get(RECORDS_ATTR, [])) if hasattr(trial, "user_attrs") else []
    records.append(kept)
    trial.set_user_attr(RECORDS_ATTR, records)
    loss = float(record.loss)
    trial.report(loss if math.isfinite(loss) else float("inf"), step=int(record.epoch))
    return bool(trial.should_prune())


def _record(data: dict[str, Any]) -> EpochRecord:
    def number(key: str) -> float:
        value = data.get(key)
        return math.nan if value is None else float(value)

    return EpochRecord(epoch=int(data["epoch"]), loss=number("loss"), upper=number("upper"),
                       lower=number("lower"), zone=str(data["zone"]))


class YesPruner(optuna.pruners.BasePruner):
    """Prune a trial by its zone: still red after k epochs (of ``epochs``), or (``mode="verdict"``)
    a plateau in yellow; never a green trial. ``restart_epochs``: the cost of a fresh trial in
    epochs (see :func:`yeswidget.tuning.prune.restart_epochs`)."""

    def __init__(self, epochs: int, mode: str = "red", *, restart_epochs: float = 1.0,
                 rule: PruneRule | None = None) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an int ≥ 1 (each trial's budget); got {epochs!r}")
        self.epochs = epochs
        self.rule = rule if rule is not None else PruneRule(mode)
        self.restart_epochs = float(restart_epochs)

    def reason(self, trial: optuna.trial.Trial | optuna.trial.FrozenTrial) -> str | None:
        """Why ``trial`` should stop now (the rule's words), or None."""
        records = [_record(r) for r in trial.user_attrs.get(RECORDS_ATTR, [])]
        return self.rule.decide(records, self.epochs, self.restart_epochs)

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return self.reason(trial) is not None
