"""The certification set through the Monitor: what is read, from what, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from yeswidget.engine.bounds import YesCloud
from yeswidget.monitor import Monitor
from yeswidget.training.tasks import mlp

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CountingDataset(torch.utils.data.Dataset):
    """A map-style dataset that counts its reads (``reads``: calls to ``__getitem__``)."""

    def __init__(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        self.X, self.Y, self.reads = X, Y, 0

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int):
        self.reads += 1
        return self.X[i], self.Y[i]


class Stream(torch.utils.data.IterableDataset):
    def __init__(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        self.X, self.Y = X, Y

    def __iter__(self):
        return iter(zip(self.X, self.Y))


def model() -> nn.Module:
    torch.manual_seed(0)
    return mlp((4, 8, 8, 3))


@pytest.fixture(scope="module")
def big():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50_000, 4, generator=g)
    return X, (X[:, :3] * 2).abs()


def test_acceptance_5_max_samples_reads_only_the_chosen_items(big):
    X, Y = big
    dataset = CountingDataset(X, Y)
    with Monitor(model(), dataset, max_samples=500) as monitor:
        assert monitor.N == 500
        assert monitor.certification == {"source": "Dataset", "n_samples": 500, "of": 50_000, "subset": True,
                                         "seed": 0}
        from_dataset = monitor.X.clone()
    assert dataset.reads <= 500
    # the same seeded subset as from tensors
    with Monitor(model(), X, Y, max_samples=500) as monitor:
        assert torch.equal(monitor.X, from_dataset)


def test_max_samples_reads_only_the_chosen_items_of_a_dataloaders_dataset(big):
    X, Y = big
    dataset = CountingDataset(X, Y)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)
    with Monitor(model(), loader, max_samples=300, seed=3) as monitor:
        assert monitor.N == 300 and monitor.certification["of"] == 50_000
        assert monitor.certification["subset"] and monitor.certification["source"] == "DataLoader"
        chosen = monitor.X.clone()
    assert dataset.reads <= 300
    with Monitor(model(), X, Y, max_samples=300, seed=3) as monitor:
        assert torch.equal(monitor.X, chosen)


def test_an_iterable_dataset_is_read_through_its_loader_then_subset():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(120, 4, generator=g)
    Y = torch.rand(120, 3, generator=g)
    loader = torch.utils.data.DataLoader(Stream(X, Y), batch_size=32)
    with Monitor(model(), loader, max_samples=50) as monitor:
        assert monitor.N == 50
        rows = {tuple(r) for r in X.tolist()}
        assert all(tuple(r) in rows for r in monitor.X.tolist())
    with pytest.raises(TypeError, match="IterableDataset"):
        Monitor(model(), Stream(X, Y))


def test_numpy_arrays_and_pandas_dataframes_are_accepted():
    pd = pytest.importorskip("pandas")
    g = torch.Generator().manual_seed(2)
    X = torch.randn(60, 4, generator=g, dtype=torch.float64)
    Y = torch.rand(60, 3, generator=g, dtype=torch.float64)
    expected = YesCloud(X, Y, 3).upper
    frames = (pd.DataFrame(X.numpy(), columns=list("abcd")), pd.DataFrame(Y.numpy()))
    for given in ((X.numpy(), Y.numpy()), frames):
        with Monitor(model(), *given, every=1) as monitor:
            assert monitor.run.upper == pytest.approx(expected, rel=1e-12)
            monitor.epoch_end()
            monitor.wait()
            assert monitor.run.epochs[0].bounds_updated
    labels = pd.Series(np.arange(60) % 3)  # a classifier's labels as a pandas Series
    with Monitor(model(), pd.DataFrame(X.numpy()), labels) as monitor:
        assert monitor.judge.kind == "classification"


@pytest.mark.parametrize(
    "X, Y, pattern",
    [
        (torch.empty(0, 4), torch.empty(0, 3), "holds no samples"),
        (torch.randn(1, 4), torch.randn(1, 3), "single sample"),
        (torch.empty(8, 4, device="meta"), torch.randn(8, 3), "meta device"),
        (torch.randn(8, 4), torch.empty(8, 3, device="meta"), "Y is on the meta device"),
        (np.array([[object()]] * 4), np.zeros((4, 3)), "Python objects"),
        ([[1.0, 2.0]], [[1.0]], "numpy array or a pandas DataFrame"),
    ],
    ids=["empty", "single", "meta-X", "meta-Y", "object-array", "list"],
)
def test_data_that_cannot_certify_gets_a_clear_error(X, Y, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        Monitor(model(), X, Y)


def test_an_empty_dataset_is_refused():
    dataset = CountingDataset(torch.empty(0, 4), torch.empty(0, 3))
    with pytest.raises(ValueError, match="empty"):
        Monitor(model(), dataset)
