"""Setting a monitor up: read the certified network, the targets and the judge, estimate the cost,
build the cloud and the run record; and say what is certified (:func:`describe`).

Functions of the :class:`~yeswidget.monitor.Monitor` they are given (its ``__init__`` calls them).
"""
from __future__ import annotations

import functools
import uuid
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..core.bus import EventBus
from ..core.run import Run
from ..core.store import RunStore
from ..engine.bounds import YesCloud
from ..engine.capture import CaptureError, CapturePlan, OutputSelector, Predict, trace
from ..engine.cost import CostEstimate, check, estimate_for_plan
from ..engine.distributed import all_reduce_sum, is_distributed, is_main_process, resolve_group, union_constant
from ..engine.losses import solve_flops
from ..engine.summed_loss import intercept_loss
from .cadence import Cadence
from .certify import finish_epoch
from .config import MonitorConfig
from .data import certification_set, describe_certification
from .discovery import activation_name, check_options, failing_module, tap_activation
from .hooks import metric_scale
from .judge import Judge
from .printer import TextPrinter
from .scope import Scope
from .steps import StepLog
from .taps import model_device, model_dtype
from .uncaught import UncaughtWatch
from .worker import BoundsWorker

if TYPE_CHECKING:
    from .monitor import Monitor

__all__ = ["read_data", "start", "trace_model", "set_targets", "check_cost", "union_target_scale", "validation_set",
           "make_cloud", "new_run", "describe"]


def read_data(m: Monitor, X: Any, Y: Any) -> None:
    """The certification set on the model's device (``m.X`` for the forward pass, the data for the bounds)."""
    cfg = m.config
    X, Y, m.certification = certification_set(X, Y, cfg.max_samples, cfg.seed)
    m.device = model_device(m.model)
    # the forward pass needs the model's dtype; the bounds and the judged loss use the data
    # as given (a bfloat16 copy of Y would move YES-0 by ~1e-4)
    param_dtype = model_dtype(m.model)
    m.X = X.to(m.device, dtype=param_dtype if X.is_floating_point() else X.dtype)
    m._X_given = X.to(m.device)  # as given: the plan decides how the bounds read it (flattened, one-hot ids)
    m._Y_given = Y.to(m.device)
    m.N = int(m.X.shape[0])
    # torch.distributed: each rank passes its shard; the cloud, the epoch loss and the zones are
    # those of the union, every collective runs on the training thread in the same order on every
    # rank (so no background worker), and only global rank 0 publishes, prints and writes
    m._distributed = is_distributed()


def start(m: Monitor, yes0_seconds: float) -> None:
    """The bus, the store and its run, the cadence, the worker and the step log; the counters."""
    cfg = m.config
    m.bus = EventBus(on_error=m._subscriber_failed)
    m.bus.muted = m._distributed and not is_main_process()
    if m._distributed:  # the targets of the union: every rank judges alike
        m.judge.constant = union_constant(m.judge.targets)
        m.judge.target_scale = union_target_scale(m)
    m.store = RunStore(new_run(m, yes0_seconds), m.bus)
    m.cadence = Cadence(cfg.every, cfg.budget, m.cost.update_flops, estimated_solve=m.cost.solve_flops,
                        first_update=m.cost.first_update_flops)
    m.worker = BoundsWorker(functools.partial(finish_epoch, m),
                               background=cfg.background is not False and not m._distributed)
    m._background_auto = cfg.background == "auto" and not m._distributed  # decided at the first epoch's end
    m.steps = StepLog(m.store, functools.partial(metric_scale, m))
    m.epoch = 0  # completed epochs
    m.epochs_total = cfg.epochs
    m.lr = m.run.config.get("lr")
    m.batch_size = None
    m._samples_this_epoch = 0
    m._t_start = None
    m._bounds_seconds = m._last_bounds_cost = 0.0
    m.stop_requested = m._discard_epoch = False
    m._Y_metric = None
    m._shadow = None  # the model's copy for certification passes on the worker (made at epoch 2)
    m._shadow_tried = False
    m.error = None
    m._overfit_noted_at = 0
    m._unconverged_at = None  # the first epoch whose last-layer solve (own loss) did not converge
    own = getattr(m.cloud, "loss", None)
    m._ridge_limited = own is not None and own.report.ridge_limited  # at YES-0 already
    m._extra = {}  # Monitor.note readings for the epoch being trained
    m._uncaught = UncaughtWatch(m)
    m._subscribers_late = False
    m.outputs = {}
    if cfg.verbose:
        m.subscribe(TextPrinter())


def trace_model(m: Monitor, model: nn.Module, taps: Sequence[nn.Module | str] | None, predict: Predict | None,
           output: OutputSelector, cfg: MonitorConfig) -> tuple[CapturePlan, float]:
    """Read the certified network from one no-grad pass on a few samples; its forward FLOPs per sample."""
    from torch.utils.flop_counter import FlopCounterMode

    check_options(taps, predict, output)
    sample = m.X[: min(m.N, 64)]
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            plan = trace(model, sample, predict=predict, output=output, include_conv=cfg.include_conv,
                         taps=taps, activation=cfg.activation or tap_activation(model, taps),
                         certify_from=cfg.certify_from, strict=False)
    except CaptureError:
        raise
    except Exception as exc:
        via = "predict(model, x)" if predict is not None else f"{type(model).__name__}.forward"
        via += failing_module(exc, model)
        raise ValueError(
            f"the model cannot process X (shape {tuple(m.X.shape)}): {via} raised {type(exc).__name__}: "
            f"{exc}. X must be the model's input, samples first (or pass predict=lambda model, x: …)"
        ) from exc
    flops = float(counter.get_total_flops()) / max(int(sample.shape[0]), 1)
    if flops <= 0:  # an operator FlopCounterMode does not count: two FLOPs per parameter
        flops = 2.0 * sum(p.numel() for p in model.parameters())
    m.scope = Scope(plan)  # the whole network, the head given current features, or no verdict
    m._X_data = plan.bounds_input(m._X_given)  # flattened, or one-hot ids
    return plan, flops


def set_targets(m: Monitor, loss: Any = None) -> None:
    """The judge (in the user's ``loss``), the targets the bounds use (Y as given, or one-hot
    class labels) and the plan's notes."""
    plan = m.plan
    m.judge = Judge(m._Y_given, plan.output_features, m.config.judge, loss=loss, link=plan.output_link)
    m._Y_data = m.judge.targets if m._Y_given.ndim == 1 else m._Y_given
    m.Y = m._Y_data.to(m.X.dtype if m.X.is_floating_point() else torch.float64)
    absorbed = plan.link_note if m.judge.loss.absorbed is not None else None  # the loss includes the link
    m._notes = [note for note in plan.notes if note != absorbed] + [note for note in [m.scope.note()] if note]
    narrow = [h for h in plan.hidden_widths if h < plan.output_features]
    if narrow:
        m._notes.append(
            f"hidden width {min(narrow)} is narrower than the output width {plan.output_features}: the "
            "YES-0 network does not fit inside this architecture, so YES-0 is a reference, not a certificate")
    for note in m._notes:
        warnings.warn(note, stacklevel=3)


def check_cost(m: Monitor, captured_dtype: torch.dtype) -> CostEstimate:
    """Estimate YES-0 and one YES-k update from shapes; refuse (before training) what would not fit."""
    dtype = m.config.dtype
    bounds_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    estimate = estimate_for_plan(m.plan, m.N, bias=m.bias, device=m.device, dtype=bounds_dtype,
                                 captured_dtype=captured_dtype if captured_dtype.is_floating_point
                                 else torch.float32)
    if m.judge.own is not None and m.depth > 1:  # the last-layer solves in the user's loss, per update
        plan = m.plan
        width = max([*plan.hidden_widths, plan.output_features]) + int(m.bias)
        extra = solve_flops(m.judge.own, m.N, width, plan.output_features, 2 ** (m.depth - 1) - 1)
        if estimate.update_flops > 0:
            estimate.update_seconds *= (estimate.update_flops + extra) / estimate.update_flops
        estimate.update_flops += extra  # so the cadence's FLOPs budget counts them
        estimate.solve_flops = extra  # each update is charged what its solves really took (Ledger.charge)
        estimate.first_solve_flops = solve_flops(m.judge.own, m.N, width, plan.output_features,
                                                 2 ** (m.depth - 1) - 1, cold=True)
    if m.plan.certified:  # nothing is computed for a model without a verdict
        check(estimate, max_seconds=m.config.max_update_seconds, allow_expensive=m.config.allow_expensive)
    for note in estimate.notes:
        warnings.warn(note, stacklevel=3)
        m._notes.append(note)
    return estimate


def union_target_scale(m: Monitor) -> float:
    """What a bound of "0" is measured against, over the union of the ranks' shards: the targets'
    spread, or in the user's own loss the loss of the best constant prediction (as in memory)."""
    targets = m.judge.targets.to(torch.float64)
    if m.judge.own is not None and not m.judge.constant:
        return intercept_loss(m.judge.own, targets, resolve_group())
    sums = all_reduce_sum(torch.stack([targets.sum(0), targets.square().sum(0)]))
    count = float(all_reduce_sum(torch.tensor([float(targets.shape[0])], dtype=torch.float64)).item())
    return float((sums[1] - sums[0].square() / count).sum().item() / count)


def validation_set(m: Monitor, validation: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
    """Held-out (X, targets, labels) on the model's device, or None."""
    if validation is None:
        return None
    if isinstance(validation, (tuple, list)) and len(validation) == 2:
        Xv, Yv, _ = certification_set(validation[0], validation[1], None, 0)
    else:
        Xv, Yv, _ = certification_set(validation, None, None, 0)
    Xv = Xv.to(m.device, dtype=m.X.dtype)
    for name, value in (("inputs", Xv), ("targets", Yv)):
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise ValueError(f"validation {name} contain {bad} non-finite value(s) (NaN or inf): the validation "
                             "loss would be NaN; drop or fix those samples")
    if Xv.shape[1:] != m.X.shape[1:]:
        raise ValueError(f"validation inputs have shape {tuple(Xv.shape)} but the training inputs "
                         f"{tuple(m.X.shape)}: they must be the same kind of samples")
    Yv = Yv.to(m.device)
    if (Yv.ndim == 1) != (m.judge.labels is not None):
        raise ValueError("validation targets must be of the same kind as Y (class labels, or N × m targets)")
    if Yv.ndim == 1:
        return Xv, m.judge.label_targets(Yv), Yv.long()
    if Yv.shape[1] != m._Y_data.shape[1]:
        raise ValueError(f"validation targets have {Yv.shape[1]} columns but Y has {m._Y_data.shape[1]}")
    return Xv, Yv.to(m.judge.targets.dtype), None


def make_cloud(m: Monitor, cloud: YesCloud | None) -> Any:
    """The cloud: a YesCloud for a whole network, else the scope's (head given current features, or none)."""
    if cloud is not None and (m.plan.head or not m.plan.certified):
        raise ValueError("cloud= cannot be reused here: " + m.scope.label)
    if m.plan.head and m._distributed:
        raise ValueError("certify_from= is not supported with torch.distributed yet: each rank's features "
                         "would give its own head bounds; certify on one process")
    if m.plan.head or not m.plan.certified:
        return m.scope.make_cloud(m.model, m.X, m._Y_data, bias=m.bias,
                                  activation=m.plan.bounds_kwargs()["activation"],
                                  dtype=m.config.dtype, device=m.device, loss=m.judge.own)
    if cloud is not None:
        if cloud.depth != m.depth or cloud.N != m.N:
            raise ValueError(f"cloud was built for depth {cloud.depth} on {cloud.N} samples; this model "
                             f"has depth {m.depth} and the certification set {m.N} samples")
        own, theirs = m.judge.own, getattr(cloud, "loss", None)
        if (own is None) != (theirs is None) or (own is not None and theirs is not None and own.kind != theirs.kind):
            raise ValueError(f"cloud was built in {'squared error' if theirs is None else theirs.name} but this "
                             f"monitor judges in {'squared error' if own is None else own.name}; build the cloud "
                             "with the same loss (YesCloud(..., loss=...)) or leave cloud= out")
        # a cloud built on another device (e.g. the task's CPU tensors) follows the model
        return cloud if cloud.device == m.device else cloud.to(m.device)
    activation = m.plan.bounds_kwargs()["activation"]
    return YesCloud(m._X_data, m._Y_data, m.depth, bias=m.bias, activation=activation,
                    dtype=m.config.dtype, loss=m.judge.own)


def new_run(m: Monitor, yes0_seconds: float) -> Run:
    cfg, plan = m.config, m.plan
    settings: dict[str, Any] = {
        "depth": m.depth, "bias": m.bias, "widths": plan.hidden_widths,
        "activation": activation_name(plan.activation),
        "every": cfg.every, "max_samples": cfg.max_samples, "n_samples": m.cloud.N, "epochs": cfg.epochs,
        "optimizer": type(m.optimizer).__name__.lower() if m.optimizer is not None else None,
        "task_kind": m.judge.kind, "judged": m.judge.describe(), "step_loss": dict(m.step_loss),
        "loss": "squared error" if m.judge.own is None else m.judge.own.name, "axis": m.judge.axis,
        "certified": m.scope.label,
        "validation": None if m.validation is None else int(m.validation[0].shape[0]),
    }
    if m.optimizer is not None:
        settings["lr"] = float(m.optimizer.param_groups[0]["lr"])
    settings.update(cfg.labels)
    certification = dict(m.certification, text=describe_certification(m.certification),
                         target_scale=m.judge.target_scale, certified=m.scope.label)
    return Run(run_id=cfg.run_id or uuid.uuid4().hex[:8], config=settings, depth=m.depth,
               upper=m.cloud.upper, layer_errors=list(m.cloud.layer_errors), certification=certification,
               timings={"yes0_seconds": yes0_seconds, "bounds_seconds": 0.0, "certify_seconds": 0.0},
               warnings=list(m._notes))


def describe(m: Monitor) -> str:
    """What is certified, in forward order: the L affine layers, the activation, the hidden widths,
    bias, the tapped tensors, the certification set, the judged quantity and the cost estimate."""
    plan = m.plan
    widths = ", ".join(map(str, plan.hidden_widths)) or "none (one affine layer: YES-0 only)"
    if plan.taps is not None:
        tapped = ", ".join(f"{name} ({type(module).__name__})" for name, module in plan.taps)
        tapped = f"the outputs of taps {tapped}"
    elif plan.depth > 1:
        tapped = "the post-activation tensors of layers " + ", ".join(str(i) for i in range(1, plan.depth))
    else:
        tapped = "nothing (no hidden layer)"
    override = "" if m.config.bias is None else " (bias= given)"
    lines = [
        plan.describe(),
        f"Hidden widths: {widths}; activation: {activation_name(plan.activation)}; "
        f"bias: {'yes' if m.bias else 'no'}{override}",
        f"Tapped (captured in the monitor's own no-grad pass each epoch): {tapped}",
        f"Certification set: {describe_certification(m.certification)}",
        f"Judged: {m.judge.describe()}",
        f"Cost: {m.cost.describe()}",
        *m.scope.describe(),
    ]
    return "\n".join(lines)
