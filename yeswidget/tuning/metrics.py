"""LRBench's selection metrics on a sweep's rows: utility, cost and robustness.

* **utility**: how good the run ends: the final zone (green before yellow before red), then the
  mean final loss in dB over the configuration's seeds (lower is better);
* **cost**: what reaching green takes: mean epochs to the first green (and seconds); a
  configuration none of whose seeds reached green costs ∞;
* **robustness**: the spread over seeds: the standard deviation of the final loss in dB (0 with
  one seed) and the fraction of seeds that reached green.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["selection_table", "best_row", "SORTS", "ZONE_RANK"]

SORTS = ("utility", "cost", "robustness")
#: the better zone first; a run without a verdict last
ZONE_RANK = {"green": 0, "yellow": 1, "red": 2}
_SETTINGS = ("lr", "batch_size", "schedule", "optimizer", "epochs")


def _loss_db(row: dict[str, Any]) -> float:
    value = row.get("final_loss_db")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.inf


def _green(row: dict[str, Any]) -> float:
    value = row.get("first_green")
    return float(value) if isinstance(value, int) else math.inf


def best_row(rows: Sequence[dict[str, Any]], by: str = "utility") -> dict[str, Any] | None:
    """The best row by ``"utility"`` (zone, then final loss) or ``"cost"`` (first green, then loss)."""
    if by not in ("utility", "cost"):
        raise ValueError(f"by must be 'utility' or 'cost'; got {by!r}")
    if not rows:
        return None

    def utility(row: dict[str, Any]) -> tuple[float, float]:
        return float(ZONE_RANK.get(str(row.get("final_zone")), 3)), _loss_db(row)

    def cost(row: dict[str, Any]) -> tuple[float, float]:
        return _green(row), _loss_db(row)

    chosen: dict[str, Any] = min(rows, key=utility if by == "utility" else cost)
    return dict(chosen)


def _group(rows: Sequence[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in _SETTINGS), []).append(row)
    return groups


def _summary(key: tuple[Any, ...], rows: list[dict[str, Any]]) -> dict[str, Any]:
    losses = [_loss_db(r) for r in rows]
    finite = [v for v in losses if math.isfinite(v)]
    greens = [_green(r) for r in rows]
    seconds = [r["seconds_to_green"] for r in rows if isinstance(r.get("seconds_to_green"), (int, float))]
    zones = sorted((str(r.get("final_zone")) for r in rows), key=lambda z: ZONE_RANK.get(z, 3))
    return {
        **dict(zip(_SETTINGS, key)), "seeds": len(rows), "worst_zone": zones[-1], "best_zone": zones[0],
        "utility_db": statistics.fmean(finite) if len(finite) == len(losses) else math.inf,
        "cost_epochs": statistics.fmean(greens) if all(math.isfinite(g) for g in greens) else math.inf,
        "cost_seconds": statistics.fmean(seconds) if len(seconds) == len(rows) else math.inf,
        "robustness_db": statistics.pstdev(finite) if len(finite) == len(losses) and finite else math.inf,
        "green_fraction": sum(1 for g in greens if math.isfinite(g)) / len(rows),
        "pruned": sum(1 for r in rows if r.get("pruned")),
    }


def selection_table(rows: Sequence[dict[str, Any]], sort: str = "utility") -> list[dict[str, Any]]:
    """One row per configuration (settings without the seed), sorted by ``sort``: ``"utility"``
    (lowest mean final loss dB first), ``"cost"`` (fewest epochs to green) or ``"robustness"``
    (most seeds green, then the smallest spread)."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}; got {sort!r}")
    table = [_summary(key, group) for key, group in _group(rows).items()]
    keys = {
        "utility": lambda r: (ZONE_RANK.get(r["worst_zone"], 3), r["utility_db"]),
        "cost": lambda r: (r["cost_epochs"], r["utility_db"]),
        "robustness": lambda r: (-r["green_fraction"], r["robustness_db"], r["utility_db"]),
    }
    return sorted(table, key=keys[sort])
