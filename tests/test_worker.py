"""Where the bounds run (yeswidget.monitor.worker): ``background="auto"`` keeps them on the training
thread for steps too small to share the interpreter with a worker, and in a worker thread beside
larger steps; the verdicts are the same either way.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from yeswidget.monitor import Monitor
from yeswidget.monitor.worker import INLINE_STEP_FLOPS

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]


def _train(widths: list[int], *, epochs: int = 3, **options):
    """A seeded squared-error run; returns (records, records present when each epoch_end returned,
    forward calls on the training model after the trace)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, widths[0], generator=g)
    Y = torch.tanh(X[:, :1]) + 0.1 * torch.randn(200, 1, generator=g)
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    model = nn.Sequential(*layers[:-1])
    calls = [0]
    model.register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seen = []
    with Monitor(model, X, Y, optimizer=optimizer, runs_dir=None, verbose=False, **options) as monitor:
        calls[0] = 0
        for epoch in monitor.epochs(epochs):
            if epoch:
                seen.append(len(monitor.run.epochs))  # right after the last epoch_end returned
                monitor.wait()
            for start in range(0, 200, 100):
                optimizer.zero_grad()
                loss = (model(X[start:start + 100]) - Y[start:start + 100]).square().mean()
                loss.backward()
                optimizer.step()
                monitor.log(loss)
    return [(r.loss, r.zone, r.upper, r.lower) for r in monitor.run.epochs], seen, calls[0]


def test_small_steps_keep_the_bounds_on_the_training_thread():
    step_flops = 3 * 2 * (6 * 16 + 16 * 1) * 100
    assert step_flops < INLINE_STEP_FLOPS
    records, seen, calls = _train([6, 16, 1])
    assert seen == [1, 2]  # each epoch's record was there when epoch_end returned: judged inline
    assert calls == 3 * 3  # two batches and the certification pass, every epoch, on this thread
    assert records == _train([6, 16, 1], background=False)[0]


def test_large_steps_get_a_worker_alongside_with_the_same_verdicts():
    step_flops = 3 * 2 * (64 * 512 + 512 * 256 + 256) * 100
    assert step_flops > INLINE_STEP_FLOPS
    records, _, calls = _train([64, 512, 256, 1])
    assert calls == 3 * 2 + 1  # after epoch 1 the certification passes ran on the worker, on the model's copy
    assert records == _train([64, 512, 256, 1], background=False)[0]


def test_background_takes_true_false_or_auto():
    with pytest.raises(ValueError, match="background must be True"):
        Monitor(nn.Linear(2, 1), torch.randn(10, 2), torch.randn(10, 1), background="yes", runs_dir=None)
