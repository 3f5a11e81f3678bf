"""What a :class:`~yeswidget.monitor.Monitor` holds, typed: the state its façade and the parts
behind it (:mod:`.setup`, :mod:`.certify`, :mod:`.lifecycle`, :mod:`.hooks`) share. Annotations
only: :func:`.setup.read_data`, ``Monitor.__init__`` and :func:`.setup.start` set them."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..core.bus import EventBus
    from ..core.store import RunStore
    from ..engine.bounds import YesCloud
    from ..engine.capture import CapturePlan
    from ..engine.cost import CostEstimate
    from .cadence import Cadence
    from .config import MonitorConfig
    from .judge import Judge
    from .scope import HeadCloud, NoVerdictCloud, Scope
    from .shadow import ShadowModel
    from .steps import StepLog
    from .uncaught import UncaughtWatch
    from .worker import BoundsWorker

__all__ = ["MonitorState"]


class MonitorState:
    """The monitor's fields (see :class:`~yeswidget.monitor.Monitor` for what they mean)."""

    # what it watches: the model, the certification set on its device, the certified network
    config: MonitorConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    certification: dict[str, Any]
    device: torch.device
    X: torch.Tensor  # N × … inputs in the model's dtype
    Y: torch.Tensor  # N × m targets of the bounds, in X's dtype
    N: int
    _X_given: torch.Tensor
    _X_data: torch.Tensor
    _Y_data: torch.Tensor
    _Y_given: torch.Tensor
    _Y_metric: torch.Tensor | None
    _shadow: ShadowModel | None
    _shadow_tried: bool
    _background_auto: bool
    _distributed: bool
    plan: CapturePlan
    scope: Scope
    depth: int
    bias: bool
    judge: Judge
    step_loss: dict[str, Any]
    _loss_reduction: str | None
    _flops_per_sample: float
    _notes: list[str]
    cost: CostEstimate
    validation: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None
    cloud: YesCloud | HeadCloud | NoVerdictCloud
    _handles: list[Any]
    # the machinery: bus, store, cadence, worker, steps, outputs
    bus: EventBus
    store: RunStore
    cadence: Cadence
    worker: BoundsWorker
    steps: StepLog
    outputs: dict[str, Any]
    _uncaught: UncaughtWatch
    # the loop's progress
    epoch: int
    epochs_total: int | None
    lr: float | None
    batch_size: int | None
    stop_requested: bool
    error: BaseException | None
    _closed: bool
    _discard_epoch: bool
    _samples_this_epoch: int
    _t_start: float | None
    _bounds_seconds: float
    _last_bounds_cost: float
    _overfit_noted_at: int
    _unconverged_at: int | None
    _ridge_limited: bool
    _subscribers_late: bool  # a subscriber outlasted SUBSCRIBER_TIMEOUT once: later stops wait for none
    closed_reason: str  # set when another monitor closed this one (its error says so)
    _extra: dict[str, float]
