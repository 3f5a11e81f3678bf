"""The certification set: the samples the bounds and the judged epoch loss are computed on."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["certification_set", "describe_certification"]


def _read_pairs(data: Iterable[Any], what: str) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for item in data:
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise TypeError(f"{what} must yield (input, target) pairs; got an item of type {type(item).__name__}")
        x, y = item[0], item[1]
        xs.append(torch.as_tensor(x))
        ys.append(torch.as_tensor(y))
    if not xs:
        raise ValueError(f"{what} is empty: the certification set needs samples")
    # inputs keep the model's shape (a CNN needs N × C × H × W); targets become N × m
    labels = all(y.ndim == (1 if what == "DataLoader" else 0) and not y.is_floating_point() for y in ys)
    if what == "DataLoader":
        targets = torch.cat(ys) if labels else torch.cat([y.reshape(y.shape[0], -1) for y in ys])
        return torch.cat(xs), targets
    # integer scalars are class labels (a 1-D Y); anything else becomes one row of N × m
    return torch.stack(xs), torch.stack(ys) if labels else torch.stack([y.reshape(-1) for y in ys])


def certification_set(X: Any, Y: Any, max_samples: int | None,
                      seed: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    source = "tensors"
    if Y is None:
        if isinstance(X, torch.utils.data.DataLoader):
            X, Y = _read_pairs(X, "DataLoader")
            source = "DataLoader"
        elif isinstance(X, torch.utils.data.Dataset):
            X, Y = _read_pairs((X[i] for i in range(len(X))), "Dataset")  # type: ignore[arg-type]
            source = "Dataset"
        else:
            raise TypeError(
                "give the certification data as Monitor(model, X, Y) with tensors, or Monitor(model, dataset) "
                f"with a Dataset/DataLoader of (input, target) pairs; got X of type {type(X).__name__} and no Y"
            )
    for name, value in (("X", X), ("Y", Y)):
        if not isinstance(value, torch.Tensor):
            try:
                import numpy as np

                if isinstance(value, np.ndarray):
                    continue
            except ImportError:  # pragma: no cover
                pass
            raise TypeError(f"{name} must be a torch.Tensor (N × features); got {type(value).__name__}")
    X, Y = torch.as_tensor(X), torch.as_tensor(Y)
    if Y.ndim == 1 and (Y.is_floating_point() or Y.is_complex()):
        raise ValueError(
            f"Y has shape {tuple(Y.shape)} ({Y.dtype}): the YES bounds need targets as N × m (use "
            "Y.reshape(-1, 1) for one output), or class labels as a 1-D integer tensor for a classifier"
        )
    if X.ndim < 2:
        raise ValueError(f"X has shape {tuple(X.shape)}: expected N samples first (N × features)")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but Y has {Y.shape[0]}; they must be the same samples")
    total = X.shape[0]
    info = {"source": source, "n_samples": total, "of": total, "subset": False, "seed": None}
    if max_samples is not None:
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 2:
            raise ValueError(f"max_samples must be an int ≥ 2 or None; got {max_samples!r}")
        if total > max_samples:
            generator = torch.Generator().manual_seed(seed)
            index = torch.randperm(total, generator=generator)[:max_samples].sort().values
            X, Y = X[index], Y[index]
            info.update(n_samples=max_samples, subset=True, seed=seed)
    return X, Y, info


def describe_certification(info: dict[str, Any]) -> str:
    """One line for the UI: which samples the bounds and the epoch loss use."""
    if info.get("subset"):
        return (f"bounds and epoch loss on a fixed random subset of {info['n_samples']} of the "
                f"{info['of']} training samples (seed {info['seed']})")
    return f"bounds and epoch loss on all {info['n_samples']} training samples"


