"""The certification set: the samples the bounds and the judged epoch loss are computed on.

X and Y may be tensors, numpy arrays or pandas objects; or X a ``Dataset`` / ``DataLoader``
of (input, target) pairs. With ``max_samples``, a fixed seeded subset is chosen *before*
reading: only those items of a map-style Dataset (or a DataLoader's dataset) are read.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

__all__ = ["certification_set", "describe_certification", "choose_subset"]

_READ_CHUNK = 1024  # items collated at once when reading a DataLoader's dataset by index


def choose_subset(total: int, max_samples: int | None, seed: int) -> torch.Tensor | None:
    """The sorted indices of a fixed seeded subset of ``max_samples`` of ``total`` items (None: all)."""
    if max_samples is None or total <= max_samples:
        return None
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:max_samples].sort().values


def _pair(item: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise TypeError(f"{what} must yield (input, target) pairs; got an item of type {type(item).__name__}")
    return torch.as_tensor(_array(item[0])), torch.as_tensor(_array(item[1]))


def _stack_items(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Single samples → N × … inputs and N × m targets (integer scalars: N class labels)."""
    if not pairs:
        raise ValueError(f"{what} is empty: the certification set needs samples")
    xs, ys = zip(*pairs)
    labels = all(y.ndim == 0 and not y.is_floating_point() for y in ys)
    return torch.stack(xs), torch.stack(ys) if labels else torch.stack([y.reshape(-1) for y in ys])


def _cat_batches(batches: Iterable[Any], what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Batches (samples first) → N × … inputs and N × m targets (1-D integer batches: class labels)."""
    xs, ys = [], []
    for batch in batches:
        x, y = _pair(batch, what)
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError(f"{what} is empty: the certification set needs samples")
    labels = all(y.ndim == 1 and not y.is_floating_point() for y in ys)
    return torch.cat(xs), torch.cat(ys) if labels else torch.cat([y.reshape(y.shape[0], -1) for y in ys])


def _indexable(dataset: Any) -> bool:
    if isinstance(dataset, IterableDataset):
        return False
    try:
        len(dataset)
    except TypeError:
        return False
    return hasattr(dataset, "__getitem__")


def _from_dataset(dataset: Any, index: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    chosen = range(len(dataset)) if index is None else index.tolist()
    return _stack_items([_pair(dataset[i], "the Dataset") for i in chosen], "the Dataset")


def _from_loader(loader: DataLoader[Any], max_samples: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = loader.dataset
    if not _indexable(dataset):  # an iterable dataset: read what it yields, then choose
        X, Y = _cat_batches(loader, "the DataLoader")
        index = choose_subset(int(X.shape[0]), max_samples, seed)
        return (X, Y) if index is None else (X[index], Y[index])
    index = choose_subset(len(dataset), max_samples, seed)  # type: ignore[arg-type]  # checked: _indexable
    if index is None:
        return _cat_batches(loader, "the DataLoader")  # every batch, as the loader makes them
    chosen = index.tolist()  # only these items are read, collated as the loader would
    batches = (loader.collate_fn([dataset[i] for i in chosen[start:start + _READ_CHUNK]])
               for start in range(0, len(chosen), _READ_CHUNK))
    return _cat_batches(batches, "the DataLoader")


def _array(value: Any) -> Any:
    """A pandas DataFrame/Series as its numpy array; anything else unchanged."""
    module = type(value).__module__ or ""
    if module.startswith("pandas") and hasattr(value, "to_numpy"):
        return value.to_numpy()
    return value


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    value = _array(value)
    if isinstance(value, torch.Tensor):
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        if value.dtype == object:
            raise TypeError(f"{name} is a numpy array of Python objects; give numbers (N × features)")
        # a read-only array (pandas' copy-on-write) is copied: the tensor must not alias it
        return torch.as_tensor(value if value.flags.writeable else value.copy())
    raise TypeError(f"{name} must be a torch.Tensor, a numpy array or a pandas DataFrame (N × features); "
                    f"got {type(value).__name__}")


def _size(data: Any) -> int:
    dataset = data.dataset if isinstance(data, DataLoader) else data
    return len(dataset) if _indexable(dataset) else -1  # type: ignore[arg-type]  # checked: _indexable


def _read(X: Any, max_samples: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor, str, int]:
    """(X, Y, source, how many samples there were) from a Dataset or DataLoader."""
    if isinstance(X, DataLoader):
        total = _size(X)
        inputs, targets = _from_loader(X, max_samples, seed)
        return inputs, targets, "DataLoader", total if total >= 0 else int(inputs.shape[0])
    if not _indexable(X):
        raise TypeError("an IterableDataset cannot be indexed: wrap it in a DataLoader, or give tensors X, Y")
    inputs, targets = _from_dataset(X, choose_subset(len(X), max_samples, seed))
    return inputs, targets, "Dataset", len(X)


def _check(X: torch.Tensor, Y: torch.Tensor, what: str = "") -> None:
    for name, value in ((f"{what}X", X), (f"{what}Y", Y)):
        if value.layout != torch.strided:
            raise TypeError(f"{name} is a sparse tensor ({value.layout}); the bounds need dense data: pass "
                            f"{name}.to_dense()")
        if value.device.type == "meta":
            raise ValueError(f"{name} is on the meta device, which holds no values: give the real data "
                             "(e.g. load it, or build the tensors without device='meta')")
    if X.ndim < 2:
        raise ValueError(f"X has shape {tuple(X.shape)}: expected N samples first (N × features; "
                         "X.reshape(-1, 1) for one feature)")
    if X.shape[0] == 0:
        raise ValueError(f"X has shape {tuple(X.shape)}: it holds no samples; the bounds need certification data")
    if X[0].numel() == 0:
        raise ValueError(f"X has shape {tuple(X.shape)}: each sample has no input values; give at least one "
                         "feature per sample (N × features)")
    if X.shape[0] == 1:
        raise ValueError(f"X holds a single sample (shape {tuple(X.shape)}): the bounds are least-squares fits "
                         "over samples and need at least 2 (more samples than the widest layer to mean much)")
    if Y.ndim == 1 and (Y.is_floating_point() or Y.is_complex()):
        raise ValueError(
            f"Y has shape {tuple(Y.shape)} ({Y.dtype}): the YES bounds need targets as N × m (use "
            "Y.reshape(-1, 1) for one output), or class labels as a 1-D integer tensor for a classifier"
        )
    if Y.ndim == 0 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but Y has {Y.shape[0] if Y.ndim else 0}; they must be "
                         "the same samples")


def certification_set(X: Any, Y: Any, max_samples: int | None,
                      seed: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(X, Y, info): the samples to certify on, a fixed seeded subset when ``max_samples`` is smaller."""
    if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, int)
                                    or max_samples < 2):
        raise ValueError(f"max_samples must be an int ≥ 2 or None; got {max_samples!r}")
    if Y is None:
        if not isinstance(X, (DataLoader, Dataset)):
            raise TypeError(
                "give the certification data as Monitor(model, X, Y) with tensors (or numpy arrays, pandas "
                "DataFrames), or Monitor(model, dataset) with a Dataset/DataLoader of (input, target) pairs; "
                f"got X of type {type(X).__name__} and no Y")
        X, Y, source, total = _read(X, max_samples, seed)
        _check(X, Y)
        subset = int(X.shape[0]) < total
        info = {"source": source, "n_samples": int(X.shape[0]), "of": total, "subset": subset,
                "seed": seed if subset else None}
        return X, Y, info
    X, Y = _as_tensor("X", X), _as_tensor("Y", Y)
    _check(X, Y)
    # the data is read, never trained: a graph attached to it (requires_grad) is dropped
    X, Y = X.detach(), Y.detach()
    total = int(X.shape[0])
    info = {"source": "tensors", "n_samples": total, "of": total, "subset": False, "seed": None}
    index = choose_subset(total, max_samples, seed)
    if index is not None:
        X, Y = X[index], Y[index]
        info.update(n_samples=int(index.numel()), subset=True, seed=seed)
    return X, Y, info


def describe_certification(info: dict[str, Any]) -> str:
    """One line for the UI: which samples the bounds and the epoch loss use."""
    if info.get("subset"):
        return (f"bounds and epoch loss on a fixed random subset of {info['n_samples']} of the "
                f"{info['of']} training samples (seed {info['seed']})")
    return f"bounds and epoch loss on all {info['n_samples']} training samples"
