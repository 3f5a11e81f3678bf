"""The monitor's settings: one frozen, validated object instead of loose keywords."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["MonitorConfig", "CADENCES"]

#: ``every`` may be an int k ≥ 1, or one of these
CADENCES = ("auto", "time")
_RUN_ID = re.compile(r"[\w.\- ]{1,100}")  # names a file: no separators, no control characters


@dataclass(frozen=True)
class MonitorConfig:
    """How a :class:`~yeswidget.monitor.Monitor` certifies.

    ``every``: when YES-k is recomputed. An int k: at epoch 1 and every k-th epoch (1 = the
    paper). ``"auto"`` (default): a k fixed from shapes alone, the bounds' FLOPs against the
    training epoch's, so that they cost about ``budget`` of the training work; the same seeded
    run gets the same cadence on any machine. ``"time"``: follow wall time instead (at most
    ``budget`` of it; faster on a busy machine, not reproducible).
    ``confirm_green``: whether an epoch whose loss reaches the lower edge gets a fresh edge.
    True (or ``"budget"``, the default): a move into green always gets one; an epoch that stays
    green gets one while the FLOPs budget allows, else it is green *against the edge of epoch
    k* (``EpochRecord.edge_epoch``, said in its reason). ``"always"``: every such epoch gets one
    (the loop pays for it). False: never (green against the last computed edge, labelled so).
    ``max_samples``/``seed``: certify on a fixed seeded subset. ``epochs``: the planned number.
    ``dtype``: the bounds' precision.
    ``background``: compute YES-k (and, while it is idle, the certification passes) in a worker
    thread (True) or on the training thread (False); ``"auto"`` (the default) decides at the end
    of epoch 1 from the training step's FLOPs (see :func:`.worker.runs_alongside`): a small step is
    bound by the interpreter, so a worker would take turns with it for Python's lock instead of
    running alongside, and the bounds run inline. ``loss_reduction``: how the losses given
    to ``log()`` were reduced (``"mean"``/``"sum"`` as in ``MSELoss``), to draw them in the
    metric E. ``judge``: ``"auto"`` (classifiers given integer labels are judged on softmax
    probabilities against one-hot targets), ``"outputs"`` or ``"probabilities"``.
    ``overfit_epochs``: validation loss rising this many epochs in a row while training is
    green gives an overfitting note. ``bias``/``activation``: override what layer discovery read. ``labels``: extra
    entries for the run's config (shown in tables). ``run_id``: the run's id. ``verbose``:
    print one line per epoch. ``runs_dir``: the crash-safe run log's folder (``"auto"``:
    ``$YESWIDGET_RUNS_DIR`` or ``./yeswidget-runs``; None: no log).
    ``include_conv``: count convolutions as affine layers (their feature maps become hidden
    layers: wide and costly). ``max_update_seconds``: refuse to start when one YES-k update
    (or YES-0) is estimated to take longer than this (seconds) or more than half the device's
    free memory; ``allow_expensive=True`` starts anyway. ``certify_from``: a submodule (or its
    dotted name) whose output at each epoch is the head's input: only the head is certified, given
    those current features (for models whose forward runs what the construction cannot fold:
    recurrent layers, attention, LayerNorm, residual sums, gates).
    """

    every: int | str = "auto"
    budget: float = 0.2
    confirm_green: bool | str = True
    max_samples: int | None = None
    seed: int = 0
    epochs: int | None = None
    dtype: torch.dtype | str = torch.float64
    background: bool | str = "auto"
    loss_reduction: str | None = None
    judge: str = "auto"
    overfit_epochs: int = 3
    bias: bool | None = None
    activation: Any = None
    labels: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    verbose: bool = False
    runs_dir: Any = "auto"
    include_conv: bool = False
    max_update_seconds: float = 60.0
    allow_expensive: bool = False
    certify_from: Any = None

    def __post_init__(self) -> None:
        every = self.every
        if every not in CADENCES and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"every must be 'auto', 'time' or an int ≥ 1 (epochs between bound updates); "
                             f"got {every!r}")
        if self.confirm_green not in (True, False, "budget", "always"):
            raise ValueError(f"confirm_green must be True or 'budget' (confirmations within the cost budget), "
                             f"'always' (every one) or False (none); got {self.confirm_green!r}")
        if self.background not in (True, False, "auto"):
            raise ValueError(f"background must be True (a worker thread), False (the training thread) or 'auto' "
                             f"(decided from the training step's size at the end of epoch 1); got {self.background!r}")
        if not 0 < self.budget <= 1:
            raise ValueError(f"budget must be in (0, 1] (fraction of the training cost for bounds); "
                             f"got {self.budget!r}")
        if self.loss_reduction not in (None, "mean", "sum"):
            raise ValueError(
                f"loss_reduction must be None (logged losses are already the metric E), 'mean' "
                f"(MSELoss(reduction='mean')) or 'sum' (MSELoss(reduction='sum')); got {self.loss_reduction!r}"
            )
        ms = self.max_samples
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or ms < 2):
            raise ValueError(f"max_samples must be an int ≥ 2 or None; got {ms!r}")
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, int)
                                        or self.epochs < 0):
            raise ValueError(f"epochs must be an int ≥ 0 or None; got {self.epochs!r}")
        if self.judge not in ("auto", "outputs", "probabilities"):
            raise ValueError(f"judge must be 'auto', 'outputs' or 'probabilities'; got {self.judge!r}")
        if isinstance(self.overfit_epochs, bool) or not isinstance(self.overfit_epochs, int) or self.overfit_epochs < 1:
            raise ValueError(f"overfit_epochs must be an int ≥ 1; got {self.overfit_epochs!r}")
        if isinstance(self.max_update_seconds, bool) or not isinstance(self.max_update_seconds, (int, float)) \
                or not self.max_update_seconds > 0:
            raise ValueError(f"max_update_seconds must be a number of seconds > 0; got {self.max_update_seconds!r}")
        dtype = self.dtype
        resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
        if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
            raise ValueError(f"dtype must be a floating-point torch dtype for the bounds (torch.float64, the default, "
                             f"or torch.float32, or their names); got {dtype!r}")
        run_id = self.run_id
        if run_id is not None and (not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id)):
            raise ValueError(f"run_id must be a name of 1–100 letters, digits, '.', '_', '-' or spaces (it names the "
                             f"run log's file, so no '/' or '\\'); got {run_id!r}")
        if self.certify_from is not None and not isinstance(self.certify_from, (str, torch.nn.Module)):
            raise TypeError("certify_from must be a submodule or its dotted name (the module whose output the head "
                            f"reads); got {type(self.certify_from).__name__}")
        if not isinstance(self.labels, Mapping):
            raise TypeError(f"labels must be a dict of run settings to show; got {type(self.labels).__name__}")

    @classmethod
    def build(cls, config: MonitorConfig | Mapping[str, Any] | None, options: Mapping[str, Any]) -> MonitorConfig:
        """``config`` (an object or a dict) with keyword ``options`` on top; unknown names are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        base: dict[str, Any] = {}
        if isinstance(config, MonitorConfig):
            base = {name: getattr(config, name) for name in known}
        elif config is not None:
            if not isinstance(config, Mapping):
                raise TypeError(f"config must be a MonitorConfig or a dict; got {type(config).__name__}")
            base = dict(config)
        base.update(options)
        unknown = sorted(set(base) - known)
        if unknown:
            raise TypeError(f"Monitor got unknown option(s) {unknown}; the options are {sorted(known)}")
        return cls(**base)
