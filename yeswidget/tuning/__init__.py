"""Tuning with the cloud: sweeps in parallel processes (or Ray Tune), pruned by the YES verdict,
LRBench's selection metrics. ``yeswidget.sweep(...)`` is :func:`yeswidget.tuning.sweep.sweep`."""
from __future__ import annotations

from .metrics import best_row, selection_table
from .prune import PRUNE_MODES, PruneRule, restart_epochs
from .runner import ROW_FIELDS
from .space import Config, LogUniform, Uniform
from .sweep import BACKENDS, Sweep, sweep

__all__ = ["sweep", "Sweep", "PruneRule", "PRUNE_MODES", "restart_epochs", "Config", "LogUniform", "Uniform",
           "ROW_FIELDS", "BACKENDS", "selection_table", "best_row"]
