"""A run as one row of a runs table: the one mapping the notebook's ``RunsTable``, the Playground
and the command line's ``show`` table read (and ``js/src/runs_table.js`` draws, column by column)."""
from __future__ import annotations

from typing import Any

from ..core.zones import to_db

__all__ = ["RUNS_TABLE_COLUMNS", "ROW_KEYS", "run_row"]

#: sortable columns of a runs table, in display order (``js/src/runs_table.js`` ``COLUMNS``)
RUNS_TABLE_COLUMNS = (
    "id",
    "label",
    "lr",
    "batch_size",
    "optimizer",
    "schedule",
    "seed",
    "final_loss_db",
    "final_zone",
    "epochs_to_green",
    "wall_time",
    "status",
)

#: every key a row may carry (``color`` is drawn, not a column)
ROW_KEYS = RUNS_TABLE_COLUMNS + ("color",)


def run_row(run: Any, index: int, *, label: str | None = None) -> dict[str, Any]:
    """The row of a :class:`~yeswidget.core.run.Run` (duck-typed) numbered ``index``; ``label``
    replaces the run's own label. Values the run does not know are None."""
    config = dict(getattr(run, "config", None) or {})
    final = getattr(run, "final", None)
    loss = getattr(final, "loss", None)
    optimizer, schedule = config.get("optimizer"), config.get("schedule")
    return {
        "id": index,
        "label": label or getattr(run, "label", None) or str(getattr(run, "run_id", "") or f"run {index}"),
        "lr": config.get("lr"),
        "batch_size": config.get("batch_size"),
        "optimizer": None if optimizer is None else str(optimizer),
        "schedule": None if schedule is None else str(schedule),
        "seed": config.get("seed"),
        "final_loss_db": None if loss is None else to_db(loss),
        "final_zone": getattr(run, "final_zone", None),
        "epochs_to_green": getattr(run, "epochs_to_green", None),
        "wall_time": getattr(final, "wall_time", None),
        "status": getattr(run, "status", None),
        "color": config.get("color"),
    }
