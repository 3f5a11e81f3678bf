"""torch.distributed helpers for the YES bounds: sums over the union of every rank's shard.

Pure math room: imports torch and the standard library only, no UI.

Every rank passes its own shard of the certification set; the engine all-reduces
(float64) the Gram and cross sums, the loss sums and the sample counts, so every
rank gets the bounds of the union, identical on all ranks. Every rank must call
every function here (and every bound computed with a process group) in the same
order: a collective called on one rank only waits forever (a rank-zero branch
must only draw, print or write).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

import torch
import torch.distributed as _torch_dist  # loaded by ``import torch`` already; used only when available

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = ["resolve_group", "is_distributed", "world_size", "rank", "is_main_process",
           "all_reduce_sum", "reduce_parts", "union_constant", "union_metric", "union_mean"]

#: ``process_group=False``: compute on this process's data only
LOCAL: Literal[False] = False

#: ``process_group=``: None (the default group when initialised), False (local only) or a ProcessGroup
GroupLike: TypeAlias = "ProcessGroup | Literal[False] | None"


def _initialized() -> bool:
    """torch.distributed is built in and its default group is initialised."""
    return _torch_dist.is_available() and _torch_dist.is_initialized()


def resolve_group(process_group: GroupLike = None) -> ProcessGroup | None:
    """The group to reduce over, or ``None`` for a purely local computation.

    ``None`` (default): the default group when torch.distributed is initialised
    with more than one rank; ``False``: local only; a ProcessGroup: that group.
    """
    if process_group is False:
        return None
    if process_group is None:
        if not _initialized() or _torch_dist.get_world_size() < 2:
            return None
        return _torch_dist.group.WORLD
    if not _initialized():
        raise RuntimeError("process_group was given but torch.distributed is not initialised; "
                           "call torch.distributed.init_process_group(...) first or pass process_group=False")
    return process_group


def is_distributed(process_group: GroupLike = None) -> bool:
    """True when bounds computed with ``process_group`` are reduced over several ranks."""
    return resolve_group(process_group) is not None


def world_size(process_group: GroupLike = None) -> int:
    group = resolve_group(process_group)
    return 1 if group is None else _torch_dist.get_world_size(group)


def rank(process_group: GroupLike = None) -> int:
    """This process's rank in the group (0 when not distributed)."""
    group = resolve_group(process_group)
    return 0 if group is None else _torch_dist.get_rank(group)


def is_main_process() -> bool:
    """True on global rank 0, or when torch.distributed is not initialised: the one
    process that draws, prints and writes the run."""
    if not _initialized():
        return True
    return _torch_dist.get_rank() == 0


def _reduce_device(tensor: torch.Tensor, group: ProcessGroup) -> torch.device:
    """NCCL reduces CUDA tensors only; gloo reduces CPU tensors."""
    backend = _torch_dist.get_backend(group)
    if backend == "nccl":
        return tensor.device if tensor.device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu") if backend == "gloo" else tensor.device


def all_reduce_sum(tensor: torch.Tensor, process_group: GroupLike = None) -> torch.Tensor:
    """The float64 sum of ``tensor`` over every rank (a new tensor on ``tensor``'s device).

    Not distributed: a float64 copy. Every rank must call it, with the same shape.
    """
    group = resolve_group(process_group)
    total = tensor.detach().to(torch.float64).clone()
    if group is None:
        return total
    where = _reduce_device(total, group)
    buffer = total.to(where)
    _torch_dist.all_reduce(buffer, op=_torch_dist.ReduceOp.SUM, group=group)
    return buffer.to(tensor.device)


def reduce_parts(parts: list[torch.Tensor], group: ProcessGroup | None) -> list[torch.Tensor]:
    """Each tensor's float64 sum over the ranks of ``group``, in one collective.

    ``group``: an already resolved group (:func:`resolve_group`); None means local, and the
    parts come back as they are. Every rank must call it with the same shapes, in the same order.
    """
    if group is None or not parts:
        return parts
    flat = all_reduce_sum(torch.cat([p.reshape(-1) for p in parts]), group)
    out: list[torch.Tensor] = []
    start = 0
    for p in parts:
        out.append(flat[start:start + p.numel()].reshape(p.shape))
        start += p.numel()
    return out


def union_constant(tensor: torch.Tensor, process_group: GroupLike = None) -> bool:
    """Whether each column of ``tensor`` (this rank's rows × m) holds one value over every rank's rows.

    Two tiny collectives (max and min); every rank must call it.
    """
    local = tensor.detach().to(torch.float64).reshape(tensor.shape[0], -1)
    if local.shape[0]:
        high, low = local.amax(0), local.amin(0)
    else:  # no rows here: the other ranks decide
        high = torch.full(local.shape[1:], -torch.inf, dtype=torch.float64, device=local.device)
        low = torch.full(local.shape[1:], torch.inf, dtype=torch.float64, device=local.device)
    group = resolve_group(process_group)
    if group is not None:
        where = _reduce_device(high, group)
        high, low = high.to(where), low.to(where)
        _torch_dist.all_reduce(high, op=_torch_dist.ReduceOp.MAX, group=group)
        _torch_dist.all_reduce(low, op=_torch_dist.ReduceOp.MIN, group=group)
    return bool(torch.equal(high, low))


def union_mean(total: float | torch.Tensor, count: float | torch.Tensor, process_group: GroupLike = None) -> float:
    """``Σ total / Σ count`` over every rank (e.g. an epoch's summed loss over its samples)."""
    pair = torch.stack([torch.as_tensor(total, dtype=torch.float64).detach().cpu().reshape(()),
                        torch.as_tensor(count, dtype=torch.float64).detach().cpu().reshape(())])
    summed, counted = all_reduce_sum(pair, process_group).tolist()
    if counted <= 0:
        raise ValueError("union_mean: no samples on any rank (the summed count is 0)")
    return float(summed / counted)


def union_metric(prediction: torch.Tensor, target: torch.Tensor, process_group: GroupLike = None) -> float:
    """The YES metric E = ‖Ŷ − Y‖²_F / N over the union of every rank's samples.

    ``prediction``, ``target``: this rank's N_r × m outputs and targets.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction has shape {tuple(prediction.shape)} but target has {tuple(target.shape)}")
    squared = (prediction.detach().to(torch.float64) - target.detach().to(torch.float64)).square().sum()
    return union_mean(squared, prediction.shape[0], process_group)


def agree(values: list[float], what: str, process_group: GroupLike = None) -> None:
    """Raise the same error on every rank unless every rank passed the same ``values``.

    Two tiny collectives (max and min); every rank must call it.
    """
    group = resolve_group(process_group)
    if group is None:
        return
    local = torch.tensor(values, dtype=torch.float64)
    where = _reduce_device(local, group)
    high, low = local.to(where), local.to(where).clone()
    _torch_dist.all_reduce(high, op=_torch_dist.ReduceOp.MAX, group=group)
    _torch_dist.all_reduce(low, op=_torch_dist.ReduceOp.MIN, group=group)
    if not torch.equal(high, low):
        raise ValueError(f"the ranks disagree on {what}: {low.tolist()} on some, {high.tolist()} on others; "
                         "every rank must pass data of the same shape (and at least one sample)")
