"""Certification: close an epoch (one no-grad pass on the certification set), decide whether the
bounds are due, and on the worker compute them, judge the epoch and publish its record in order.

Functions of the :class:`~yeswidget.monitor.Monitor` they are given (its façade calls them).
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from ..core.plateau import plateau_note
from ..core.run import EpochRecord, Run
from ..core.zones import own_loss_reason, verdict
from ..engine.capture import capture
from ..engine.distributed import all_reduce_sum, union_mean
from .lifecycle import relay_interrupt
from .shadow import ShadowModel
from .worker import EpochItem, runs_alongside

if TYPE_CHECKING:
    from .monitor import Monitor

__all__ = ["certification_pass", "end_epoch", "finish_epoch", "keep_failed_epoch", "resume"]

_FLOAT_INFO = ("accuracy", "val_loss", "val_accuracy")  # 0-d tensors until the worker reads them
_RECORD_INFO = ("lr", "batch_size", "step", "wall_time")  # an ended epoch's settings, known before its bounds


def end_epoch(m: Monitor) -> None:
    """Close an epoch: certify (one no-grad forward pass), queue the bounds, publish the epoch."""
    m._check_open()
    relay_interrupt(m)
    if m._t_start is None:
        m._t_start = time.perf_counter()
    t0 = time.perf_counter()
    m.steps.end_epoch()
    epoch = m.epoch + 1
    samples = m._samples_this_epoch or int(m.certification.get("of", m.N))
    training_flops = 3.0 * m._flops_per_sample * samples  # forward + backward ≈ 3 forwards
    if m.cadence.period is None and m.cadence.every == "auto":  # the first epoch this monitor sees
        m.cadence.fix_period(training_flops)
    if m._background_auto:  # before the first item is queued: where the bounds run from now on
        m._background_auto = False
        steps = m.steps.per_epoch  # this epoch's optimizer steps (None: none were seen)
        m.worker.background = runs_alongside(training_flops / steps if steps else None, m.device)
    m._samples_this_epoch = 0
    # an interrupt before the epoch is queued leaves it uncounted: only certified epochs count
    item = open_item(m, epoch)
    item.training_flops = training_flops
    item.deferred = shadow_ready(m, epoch)
    if not item.deferred:
        certification_pass(m, item, m.model, m.plan)
    m._check_open()  # closed meanwhile (a subscriber's close): queue nothing, start no thread
    m.epoch = epoch
    m.store.add_timing("certify_seconds", time.perf_counter() - t0)
    if not item.deferred:
        publish_pending(m, item)
    m.worker.submit(item)


def publish_pending(m: Monitor, item: EpochItem) -> None:
    """The run log: this epoch's loss is durable before its bounds are known."""
    if m.store.has_sinks:
        m.store.add_pending({"epoch": item.epoch, "loss": float(item.loss),
                             **{k: item.info.get(k) for k in _RECORD_INFO}})


def open_item(m: Monitor, epoch: int) -> EpochItem:
    """An ended epoch's settings and whether YES-k is due, read on the training thread."""
    scheduled = is_due(m, epoch) or m.scope.every_epoch
    if m._distributed:  # a bound update on every rank when any rank finds it due
        scheduled = bool(all_reduce_sum(torch.tensor([float(scheduled)], dtype=torch.float64)).item() > 0)
    info: dict[str, Any] = {"lr": m.lr, "batch_size": m.batch_size, "step": m.step,
                            "wall_time": time.perf_counter() - (m._t_start or 0.0), "extra": m._extra}
    m._extra = {}
    return EpochItem(epoch, None, None, info, scheduled=scheduled)


def shadow_ready(m: Monitor, epoch: int) -> bool:
    """Whether this epoch's certification pass runs on the worker, on the model's copy (see
    :mod:`.shadow`): after the first epoch (whose pass checks the plan on the training thread),
    with a background worker that is idle, so nothing reads the copy while it is refreshed."""
    if epoch <= 1 or not m.worker.background or m._distributed or m.worker.busy:
        return False
    if m._shadow is None:
        if m._shadow_tried:
            return False
        m._shadow_tried = True
        m._shadow = ShadowModel.make(m.model, m.plan)
        if m._shadow is None:
            return False
    if not m._shadow.sync(m.model):  # the model changed its tensors: passes on the training thread
        m._shadow = None
        return False
    return True


def certification_pass(m: Monitor, item: EpochItem, model: torch.nn.Module, plan: Any) -> None:
    """The epoch's loss (and accuracy, validation) and, when YES-k is due, the hidden outputs, from
    one no-grad pass of ``model`` (the user's, or its copy on the worker) over the certification set."""
    hidden, output = capture(model, m.X, plan)
    if m._Y_metric is None:
        # the metric in the bounds' precision: a float32 sum over N·m squared errors is off by
        # ~1e-6 relative, enough to flip a zone at an edge
        m._Y_metric = m._Y_data.to(m.cloud.dtype)
    loss, accuracy = m.judge.score(output, targets=m._Y_metric)
    if m._distributed:  # E (and accuracy) over the union of the ranks' shards
        loss = torch.tensor(union_mean(loss * m.N, m.N), dtype=torch.float64)
        if accuracy is not None:
            accuracy = torch.tensor(union_mean(accuracy * m.N, m.N), dtype=torch.float64)
    # a loss below YES-0 may reach the lower edge: the worker decides, in epoch order, whether a
    # fresh edge is needed to judge it (so the choice never depends on how fast the worker ran)
    wanted = item.scheduled or may_reach_the_edge(m, loss)
    item.info["accuracy"] = accuracy
    if m.validation is not None:
        Xv, Tv, Lv = m.validation
        _, val_output = capture(model, Xv, plan)
        item.info["val_loss"], item.info["val_accuracy"] = m.judge.score(val_output, labels=Lv, targets=Tv)
    item.loss = loss
    item.hidden = list(hidden) if wanted else None


def deferred_pass(m: Monitor, item: EpochItem) -> None:
    """On the worker: the certification pass of an epoch whose weights were copied to the shadow."""
    t0 = time.perf_counter()
    shadow = m._shadow
    try:
        if shadow is None:
            raise RuntimeError("the model's copy was dropped before its certification pass")
        certification_pass(m, item, shadow.model, shadow.plan)
    except Exception:
        m._shadow = None  # from the next epoch on, the pass runs on the training thread (and raises there)
        raise
    if m.worker.cancelled:
        item.hidden = None  # interrupted: the epoch is kept, without an update
    m.store.add_timing("certify_seconds", time.perf_counter() - t0)
    publish_pending(m, item)


def is_due(m: Monitor, epoch: int) -> bool:
    """Whether the cadence asks for a YES-k update at ``epoch``."""
    timings = m.run.timings
    spent = timings["yes0_seconds"] + timings["certify_seconds"] + m._bounds_seconds
    wall = time.perf_counter() - (m._t_start or time.perf_counter()) + timings["yes0_seconds"]
    return m.cadence.due(epoch, time_spent=spent, next_cost=m._last_bounds_cost, wall=wall,
                            busy=m.worker.busy)


def may_reach_the_edge(m: Monitor, loss: torch.Tensor) -> bool:
    """An epoch is green only against a lower edge computed at that epoch: a loss below YES-0
    sends its hidden outputs to the worker, which updates the edge if the loss reaches it."""
    if not m.config.confirm_green or m.depth == 1:
        return False
    value = float(loss)  # one sync per epoch
    return math.isfinite(value) and value <= m.cloud.upper


def confirmation_needed(m: Monitor, item: EpochItem) -> bool:
    """On the worker, in epoch order: does this unscheduled epoch's loss reach the current edge?"""
    own = getattr(m.cloud, "loss", None)
    if own is not None and not own.certifies_lower:
        return False  # no exact last-layer solve: no green to confirm
    if own is not None and m._ridge_limited and own.kind in UNREACHED_INFIMUM:
        return False  # separable classes: a ridge-fitted edge certifies no green, a fresh one neither
    return bool(m.cloud.epochs) and float(item.loss) <= m.cloud.lower


# ---- the cost budget: which updates run (issue 20); decided on the worker, in epoch order ----
UPDATE, WITHHELD, UNCHECKED, SKIPPED, WAITING = "update", "withheld", "unchecked", "skipped", "waiting"


def plan_update(m: Monitor, item: EpochItem, loss: float) -> str:
    """Whether this epoch's hidden outputs get a YES-k update: ``UPDATE``, or ``WITHHELD`` (stays
    green, the FLOPs budget is spent), ``UNCHECKED`` (a move into green during the back-off after
    a check that found a lower edge), ``WAITING`` (no edge yet: the run's budget does not cover its
    first update yet) or ``SKIPPED`` (no hidden outputs, or a fresh edge would change nothing: the
    loss is above the current edge)."""
    ledger = m.cadence.ledger
    if (not m.cloud.epochs and m.depth > 1 and m.cadence.every == "auto" and m.config.confirm_green != "always"
            and not ledger.first_affordable(item.training_flops, m.epochs_total)):
        return WAITING
    if item.hidden is None or not math.isfinite(loss):
        return SKIPPED
    reaches = confirmation_needed(m, item)
    if not m.cloud.epochs or (item.scheduled and (m.cadence.every != "auto" or ledger.affordable)):
        return UPDATE
    if not reaches:
        return SKIPPED  # above the edge: yellow (or red) whatever a fresh edge says
    if m.config.confirm_green == "always" or m.cadence.every == "time":
        return UPDATE
    staying = bool(m.run.epochs) and m.run.epochs[-1].zone == "green"
    if staying:
        return UPDATE if ledger.affordable else WITHHELD
    return UPDATE if ledger.may_check_entry(item.epoch) else UNCHECKED


def edge_reason(m: Monitor, plan: str, zone: str, edge_epoch: int | None, epoch_flops: float) -> str:
    """Words for an epoch judged against an older edge (the record's ``edge_epoch``), or none yet."""
    ledger = m.cadence.ledger
    if plan == WAITING and zone == "yellow":
        planned = max(epoch_flops * ledger.horizon(m.epochs_total), 1.0)
        return (f"below YES-0, no lower edge yet: one YES-k update costs {ledger.first_update / planned:.1f}× "
                f"this run's whole training ({ledger.horizon(m.epochs_total)} epochs), so under the cost budget "
                f"(budget={ledger.budget:g} of the training FLOPs) it waits until about epoch "
                f"{ledger.first_epoch(epoch_flops)}; every=1 or a larger budget computes it now")
    if plan == WITHHELD and zone == "green":
        return (f"green against the edge of epoch {edge_epoch}: the cost budget withheld a fresh edge "
                "(confirm_green='always' computes one every epoch)")
    if plan == UNCHECKED:
        return (f"at or below the edge of epoch {edge_epoch}, not confirmed: a recent check found a lower "
                f"edge; the next check is at epoch {ledger.next_check} or later (cost budget)")
    if m.config.confirm_green is False and zone == "green" and edge_epoch is not None:
        return f"green against the edge of epoch {edge_epoch} (confirm_green=False)"
    return ""


def finish_epoch(m: Monitor, item: EpochItem) -> None:
    """On the worker: the bounds (when due), then the epoch record, published in order."""
    try:
        if item.deferred:
            deferred_pass(m, item)
        loss = float(item.loss)
        m.cadence.ledger.earn(item.training_flops)
        plan = plan_update(m, item, loss)
        if plan != UPDATE:
            item.hidden = None
        confirming = plan == UPDATE and bool(m.cloud.epochs) and confirmation_needed(m, item)
        updated = update_bounds(m, item) if plan == UPDATE else False
        if updated:
            own = getattr(m.cloud, "loss", None)
            m.cadence.ledger.charge(own.report.flops if own is not None else 0.0)
        fresh = updated or not m.config.confirm_green or plan == WITHHELD
        zone, reason = verdict(loss, m.cloud.upper, m.cloud.lower, depth=m.depth,
                               has_lower_edge=bool(m.cloud.epochs) and fresh,
                               target_scale=m.judge.target_scale, constant=m.judge.constant)
        zone, reason = own_loss_edge(m, zone, reason, loss)
        if confirming:
            m.cadence.ledger.checked(item.epoch, green=zone == "green")
        edge_epoch = m.cloud.epochs[-1] if m.cloud.epochs and m.depth > 1 else None
        older = edge_reason(m, plan, zone, edge_epoch, item.training_flops)  # said first: which edge it is against
        reason = f"{older}; {reason}" if older and reason else older or reason
        if not reason and m.judge.own is not None:  # in the user's loss: say what it was held against
            reason = own_loss_reason(zone, m.judge.own.name, loss=loss, lower=m.cloud.lower, depth=m.depth)
        zone, reason = m.scope.adjust(zone, reason, loss)
        info: dict[str, Any] = {k: (None if v is None else float(v)) if k in _FLOAT_INFO else v
                                for k, v in item.info.items()}
        record = EpochRecord(
            epoch=item.epoch, loss=loss, upper=m.cloud.upper, zone=zone,
            lower=math.nan if not m.cloud.epochs and m.depth > 1 else m.cloud.lower,  # none yet: no band
            yes_k=m.cloud.yes_k(), bounds_updated=updated, reason=reason, edge_epoch=edge_epoch, **info)
        m.store.add_epoch(record, m.epochs_total)
        watch_overfitting(m)
        note = plateau_note(m.run.epochs)  # a yellow plateau is noted once, in the run
        if note:
            m.store.note(note)
        if not math.isfinite(loss) and m.run.status == "running":
            m.store.set_status("diverged", f"the epoch loss became {loss} at epoch {record.epoch}")
    except Exception as exc:  # never raise into the training loop; the epoch is kept, without a verdict
        m.error = exc
        m.store.note(f"epoch {item.epoch}: {type(exc).__name__}: {exc}")
        keep_failed_epoch(m, item, exc)


def own_loss_edge(m: Monitor, zone: str, reason: str, loss: float) -> tuple[str, str]:
    """Green in the user's own loss needs an exact, converged last-layer solve (YES-BOUNDS.md)."""
    own = getattr(m.cloud, "loss", None)
    if own is None or zone not in ("green", "yellow"):
        return zone, reason
    if not own.certifies_lower and (zone == "green" or (not reason and loss <= m.cloud.lower)):
        return "yellow", (f"below YES-0 in {own.name}, but this loss has no exact last-layer solve, so there is no "
                          "certified lower edge (red stays a valid verdict; green is not available)")
    separable = m._ridge_limited and own.kind in UNREACHED_INFIMUM
    if zone != "green" and not (separable and m.cloud.epochs and loss <= m.cloud.lower):
        return zone, reason  # (below the edge when a fresh one was not computed: see confirmation_needed)
    if zone == "green" and m._unconverged_at is not None:
        return "yellow", (f"no green: the last-layer solve in {own.name} did not converge at epoch "
                          f"{m._unconverged_at}, so the lower edge is not certified")
    if separable:
        # the edge drawn is the loss of a ridge-fitted last layer; the YES network itself gets below it
        # (its infimum is never reached), so a loss under that edge is not shown to beat the construction
        note = ("not green: the classes are separable in the constructed features, so the YES network's loss "
                "goes below the ridge-fitted lower edge shown (its infimum is never reached) and no lower edge "
                "certifies green (red stays a valid verdict)")
        return "yellow", f"{reason}; {note}" if reason else note
    if m._ridge_limited:
        note = ("green against a ridge-fitted last layer: the YES network's last layer needs large weights here "
                "and is fitted with a small fixed ridge")
        return zone, f"{reason}; {note}" if reason else note
    return zone, reason


#: losses whose last-layer minimum can be unreached (the weights grow without bound: separable
#: classes, zero counts); a ridge-limited fit there is above the infimum. Huber and smooth L1 grow
#: linearly, so a minimum exists and a ridge-limited fit only means large weights
UNREACHED_INFIMUM = ("bce", "cross_entropy", "poisson")


def keep_failed_epoch(m: Monitor, item: EpochItem, exc: Exception) -> None:
    """The record of an epoch whose bounds or verdict failed: its loss, zone none, the error as reason."""
    if any(r.epoch == item.epoch for r in m.run.epochs[-2:]):
        return  # recorded before the failure (e.g. a note that failed afterwards)
    try:
        loss = float(item.loss)
    except Exception:
        loss = math.nan
    info = {k: v for k, v in item.info.items() if k in _RECORD_INFO}
    try:
        yes_k = m.cloud.yes_k()
    except Exception:
        yes_k = []
    reason = f"no verdict: the bounds failed at this epoch ({type(exc).__name__}: {exc})"
    record = EpochRecord(epoch=item.epoch, loss=loss, upper=m.cloud.upper, lower=m.cloud.lower,
                         zone="none", yes_k=yes_k, bounds_updated=False, reason=reason, **info)
    try:
        m.store.add_epoch(record, m.epochs_total)
    except Exception as again:  # pragma: no cover - the store itself failed
        m.store.note(f"epoch {item.epoch} not recorded: {type(again).__name__}: {again}")


def watch_overfitting(m: Monitor) -> None:
    """A note when validation rises ``overfit_epochs`` epochs in a row while training is green."""
    k = m.config.overfit_epochs
    recent = m.run.epochs[-(k + 1):]
    if len(recent) < k + 1 or recent[-1].zone != "green" or any(r.val_loss is None for r in recent):
        return
    rising = all(b.val_loss > a.val_loss for a, b in zip(recent, recent[1:]))  # type: ignore[operator]
    if rising and m._overfit_noted_at < recent[0].epoch:
        m._overfit_noted_at = recent[-1].epoch
        m.store.note(f"overfitting: the validation loss rose for {k} epochs in a row (to epoch "
                        f"{recent[-1].epoch}) while the training loss is green")


def update_bounds(m: Monitor, item: EpochItem) -> bool:
    t0 = time.perf_counter()
    hidden = item.hidden
    assert hidden is not None and all(h is not None for h in hidden)
    try:
        bounds = m.cloud.compute([h for h in hidden if h is not None])
    except ValueError as exc:
        if "non-finite" not in str(exc):
            raise
        m.store.note(f"epoch {item.epoch}: bounds skipped ({exc})")  # a diverging network
        return False
    finally:
        item.hidden = None
        m._last_bounds_cost = time.perf_counter() - t0
        m._bounds_seconds += m._last_bounds_cost
        m.store.set_timing("bounds_seconds", m._bounds_seconds)
    own = getattr(m.cloud, "loss", None)
    if own is not None:  # the last-layer solves in the user's loss: how they went
        if not own.report.converged and own.certifies_lower and m._unconverged_at is None:
            m._unconverged_at = item.epoch
        m._ridge_limited = m._ridge_limited or own.report.ridge_limited
    m.cloud.record(bounds, epoch=item.epoch)
    return True


def resume(m: Monitor, run: Run) -> None:
    """Continue an earlier run of this model on the same data (e.g. a Lightning fit resumed from a
    checkpoint): its epochs, steps and marks are kept and the lower edge keeps its running minimum."""
    if m.epoch or m.run.epochs:
        raise RuntimeError("resume() must come before the first epoch of this monitor")
    if run.depth != m.depth or not math.isclose(run.upper, m.cloud.upper, rel_tol=1e-6, abs_tol=1e-12):
        raise ValueError(f"cannot resume run {run.run_id!r}: it was certified on other data or another "
                         f"architecture (depth {run.depth}, YES-0 {run.upper!r}; here depth {m.depth}, "
                         f"YES-0 {m.cloud.upper!r})")
    for record in run.epochs:
        if record.bounds_updated and m.depth > 1:
            # the stored YES-k are running minima: recording them again rebuilds the same curves
            m.cloud.record({tuple(range(k)): value for k, value in enumerate(record.yes_k, start=1)},
                              epoch=record.epoch)
    m.store.restore(run)
    m.epoch = run.epochs[-1].epoch if run.epochs else 0
    m.steps.total = run.epochs[-1].step if run.epochs else 0
