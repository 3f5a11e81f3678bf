"""The certification pass on the model's copy (yeswidget.monitor.shadow): off the training thread
once the bounds worker is idle, with the same losses and zones as the pass on the training thread.

Every epoch loss is checked against the squared error of the model computed here, in float64.
"""
from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from yeswidget.monitor import Monitor

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 6, generator=g)
    return X, torch.tanh(X[:, :2].sum(1, keepdim=True)) + 0.1 * torch.randn(200, 1, generator=g)


class LockedNet(nn.Module):
    """A model holding a lock (deepcopy cannot copy it): no copy, passes on the training thread."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))
        self.lock = threading.Lock()

    def forward(self, x):
        return self.body(x)


def _train(model: nn.Module, *, background: bool, epochs: int = 6, swap_at: int | None = None):
    """A seeded run; returns (the records, the squared error of the model after each epoch, in float64,
    and the number of forward calls the user's hook saw on the training thread)."""
    X, Y = _data()
    calls = [0]
    model.register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    expected = []
    with Monitor(model, X, Y, optimizer=optimizer, background=background, every=2, runs_dir=None,
                 verbose=False) as monitor:
        calls[0] = 0  # (the monitor's own trace of the model)
        for epoch in monitor.epochs(epochs):
            for start in range(0, 200, 50):
                optimizer.zero_grad()
                loss = (model(X[start:start + 50]) - Y[start:start + 50]).square().mean()
                loss.backward()
                optimizer.step()
                monitor.log(loss)
            if epoch + 1 == swap_at:  # a new last layer (new tensors, same names and shapes)
                last = model.body[2] if isinstance(model, LockedNet) else model[2]
                replacement = nn.Linear(16, 1)
                if isinstance(model, LockedNet):
                    model.body[2] = replacement
                else:
                    model[2] = replacement
                optimizer.add_param_group({"params": replacement.parameters()})
                del last
            with torch.no_grad():
                expected.append(float((model(X).double() - Y.double()).square().sum(1).mean()))
            calls[0] -= 1  # (that pass was the test's)
            monitor.wait()  # the worker idle at every epoch end: every pass after the first may leave
    return monitor.run.epochs, expected, calls[0]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))


def test_passes_on_the_copy_leave_the_training_thread_with_the_losses_and_zones_of_passes_on_it():
    off, expected, calls_off = _train(_net(), background=True)
    on, _, calls_on = _train(_net(), background=False)
    assert [r.loss for r in off] == pytest.approx(expected, rel=1e-6)
    assert [(r.loss, r.zone, r.upper, r.lower) for r in off] == [(r.loss, r.zone, r.upper, r.lower) for r in on]
    # inline: 4 batches and 1 certification pass an epoch; off the thread: the pass of epoch 1 only
    assert calls_on == 6 * 5 and calls_off == 6 * 4 + 1


def test_a_layer_replaced_mid_run_is_judged_with_its_new_weights():
    records, expected, _ = _train(_net(), background=True, swap_at=3)
    assert [r.loss for r in records] == pytest.approx(expected, rel=1e-6)
    assert expected[2] > 1.5 * expected[1]  # the new layer is untrained: the loss the records show jumps


def test_a_model_that_cannot_be_copied_is_certified_on_the_training_thread():
    torch.manual_seed(0)
    records, expected, calls = _train(LockedNet(), background=True, swap_at=3)
    assert [r.loss for r in records] == pytest.approx(expected, rel=1e-6)
    assert calls == 6 * 5  # every pass ran on the training thread
