"""Tests for yeswidget.monitor: the Monitor watching a PyTorch training loop.

The acceptance tests of the issue come first (numbered as there); then one
group per requirement. The reference for every number is computed here, by
hand: our own forward pass through the layers (``layer.forward``, no hooks)
and our own :class:`YesCloud`. Nothing asserts on timing: the cadence logic is
tested against a fake clock.
"""
from __future__ import annotations

import gc
import io
import math
import re
import threading
import time
import types
import warnings
import weakref

import numpy as np
import pytest
import torch
from torch import nn

import yeswidget.monitor.certify as certify_module
import yeswidget.monitor.hooks as hooks_module
import yeswidget.monitor.lifecycle as lifecycle_module
import yeswidget.monitor.monitor as monitor_module
from yeswidget.core.run import EpochEvent, StatusEvent, StepEvent, to_db
from yeswidget.engine.bounds import YesCloud
from yeswidget.engine.capture import CaptureError
from yeswidget.engine.cost import CostError
from yeswidget.monitor import Monitor, TextPrinter, UnsupportedModelError
from yeswidget.training.tasks import mlp, phase_retrieval

RTOL = 1e-9


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def task():
    return phase_retrieval()


@pytest.fixture
def data():
    """A tiny regression set: 64 samples, 4 inputs, 3 non-negative outputs."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g)
    Y = (X @ torch.randn(4, 3, generator=g)).abs()
    return X, Y


def tiny(seed: int = 0, **kw) -> nn.Sequential:
    torch.manual_seed(seed)
    return mlp((4, 8, 8, 3), **kw)


def hidden_and_output(model: nn.Module, X: torch.Tensor, acts=(nn.ReLU,)):
    """Our own forward pass (eval, no grad, no hooks): post-activation outputs and the output."""
    was = {m: m.training for m in model.modules()}
    model.eval()
    hidden = []
    try:
        with torch.no_grad():
            x = X
            for layer in model:
                x = layer.forward(x)
                if isinstance(layer, acts):
                    hidden.append(x.clone())
    finally:
        for m, mode in was.items():
            m.training = mode
    return hidden, x


def metric_e(output: torch.Tensor, Y: torch.Tensor) -> float:
    """E = ‖Ŷ − Y‖² / N in float64."""
    return float((output.double() - Y.double()).square().sum() / Y.shape[0])


def train_epoch(model, optimizer, X, Y, monitor=None, batch=16, reduction="sum"):
    for start in range(0, X.shape[0], batch):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(X[start:start + batch]), Y[start:start + batch], reduction=reduction)
        loss.backward()
        optimizer.step()
        if monitor is not None:
            monitor.log(loss)


def assert_no_hooks(model: nn.Module, optimizer=None) -> None:
    for name, module in model.named_modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                     "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs",
                     "_forward_hooks_always_called"):
            assert not getattr(module, attr, {}), f"{name or 'model'}.{attr} = {getattr(module, attr)}"
    if optimizer is not None:
        assert not optimizer._optimizer_step_post_hooks
        assert not optimizer._optimizer_step_pre_hooks


def close(a: float, b: float, rtol: float = RTOL) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)


# --------------------------------------------------------------------------- #
# acceptance 1: the paper's phase retrieval, every epoch against an independent cloud
# --------------------------------------------------------------------------- #
def test_acceptance_1_phase_retrieval_matches_an_independent_cloud(task):
    model = task.model(seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(task.X_train, task.Y_train),
                                         batch_size=50, shuffle=True, generator=torch.Generator().manual_seed(0))
    loss_fn = nn.MSELoss(reduction="sum")
    reference = YesCloud(task.X_train, task.Y_train, 5)
    expected = []
    monitor = Monitor(model, task.X_train, task.Y_train, optimizer=optimizer, every=1)
    assert monitor.depth == 5 and monitor.N == 800
    assert close(monitor.run.upper, reference.upper)
    for epoch in monitor.epochs(6):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            monitor.log(loss)
        hidden, output = hidden_and_output(model, task.X_train)
        assert len(hidden) == 4
        loss_e = metric_e(output, task.Y_train)
        lower = reference.update(hidden)
        expected.append((loss_e, reference.upper, lower, reference.yes_k(), reference.zone(loss_e)))
    monitor.close()
    run = monitor.run
    assert run.status == "finished" and len(run.epochs) == 6
    for record, (loss_e, upper, lower, yes_k, zone) in zip(run.epochs, expected):
        assert record.bounds_updated
        assert close(record.loss, loss_e), (record.epoch, record.loss, loss_e)
        assert close(record.upper, upper)
        assert close(record.lower, lower), (record.epoch, record.lower, lower)
        assert all(close(a, b) for a, b in zip(record.yes_k, yes_k)) and len(record.yes_k) == 4
        assert record.zone == zone
    # the lower edge is a running minimum, below YES-0, and the orders are nested
    lowers = [r.lower for r in run.epochs]
    assert lowers == sorted(lowers, reverse=True)
    for r in run.epochs:
        assert r.lower == r.yes_k[-1] and r.yes_k[0] <= r.upper  # the bottom edge is YES-(L-1)
        assert all(a >= b for a, b in zip(r.yes_k, r.yes_k[1:]))
    assert [r.epoch for r in run.epochs] == [1, 2, 3, 4, 5, 6]
    assert run.epochs[-1].step == 6 * 16 and run.epochs[-1].batch_size == 50
    assert len(run.step_losses) == 6 * 16


# --------------------------------------------------------------------------- #
# acceptance 2: nothing left behind after close()
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("background", [True, False])
def test_acceptance_2_close_removes_hooks_keeps_outputs_and_frees_memory(data, background):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    probe = torch.randn(5, 4)
    with torch.no_grad():
        before = model(probe).clone()
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1, background=background)
    # the pre-hook (batch size) and the optimizer hook (steps); the layers are read in the monitor's own pass
    assert not model[1]._forward_hooks and len(model._forward_pre_hooks) == 1
    assert len(optimizer._optimizer_step_post_hooks) == 1
    with torch.no_grad():
        assert torch.equal(model(probe), before)  # watching does not change the outputs

    refs = []

    def keep_ref(module, inputs, output):
        if not torch.is_grad_enabled():  # the monitor's own certification pass
            refs.append(weakref.ref(output))

    probes = [model[1].register_forward_hook(keep_ref), model[3].register_forward_hook(keep_ref),
              model.register_forward_hook(keep_ref)]
    model.eval()  # no training: the outputs must stay exactly the same
    for _ in monitor.epochs(3):
        pass
    for probe_handle in probes:
        probe_handle.remove()
    monitor_ref = weakref.ref(monitor)
    monitor.close()
    monitor.close()  # twice is fine
    assert_no_hooks(model, optimizer)
    with torch.no_grad():
        assert torch.equal(model(probe), before)
    del keep_ref, probes  # our own references
    gc.collect()
    assert len(refs) == 3 * 3 and all(ref() is None for ref in refs), "hidden outputs are still referenced"
    run = monitor.run
    del monitor
    gc.collect()
    assert monitor_ref() is None, "the model or optimizer still references the monitor"
    assert len(run.epochs) == 3


def test_with_block_removes_every_hook(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters())
    with Monitor(model, X, Y, optimizer=optimizer, every=1) as monitor:
        for _ in range(2):
            train_epoch(model, optimizer, X, Y, monitor)
            monitor.epoch_end()
    assert_no_hooks(model, optimizer)
    assert monitor.run.status == "finished" and len(monitor.run.epochs) == 2
    with pytest.raises(RuntimeError, match="closed"):
        monitor.epoch_end()


def test_closing_waits_for_a_slow_worker_before_judging_the_run(data, monkeypatch):
    X, Y = data
    with Monitor(tiny(), X, Y, every=1, background=True) as monitor:
        real_compute = monitor.cloud.compute

        def slow(hidden):
            time.sleep(0.1)
            return real_compute(hidden)

        monkeypatch.setattr(monitor.cloud, "compute", slow)
        monitor.epoch_end()
        monitor.epoch_end()
    assert monitor.run.status == "finished" and len(monitor.run.epochs) == 2
    assert all(r.bounds_updated for r in monitor.run.epochs)


# --------------------------------------------------------------------------- #
# acceptance 3: a loop with MSELoss(reduction="mean") is still judged on E
# --------------------------------------------------------------------------- #
def test_acceptance_3_mean_loss_loop_is_judged_on_metric_e(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    reference = YesCloud(X, Y, 3)
    logged, expected = [], []
    with Monitor(model, X, Y, optimizer=optimizer, every=1) as monitor:
        for _ in monitor.epochs(4):
            for start in range(0, 64, 16):
                optimizer.zero_grad()
                loss = nn.MSELoss(reduction="mean")(model(X[start:start + 16]), Y[start:start + 16])
                loss.backward()
                optimizer.step()
                monitor.log(loss)
                logged.append(float(loss.detach()))
            hidden, output = hidden_and_output(model, X)
            loss_e = metric_e(output, Y)
            reference.update(hidden)
            expected.append((loss_e, reference.zone(loss_e), float(nn.MSELoss()(output, Y))))
    assert monitor.run.step_losses == pytest.approx(logged)  # minibatch losses: drawn as logged
    for record, (loss_e, zone, mean_loss) in zip(monitor.run.epochs, expected):
        assert close(record.loss, loss_e)
        assert record.zone == zone
        # E is the sum over the 3 outputs: 3 × the mean loss, never the mean itself
        assert record.loss == pytest.approx(3 * mean_loss, rel=1e-5)
        assert not math.isclose(record.loss, mean_loss, rel_tol=0.5)


# --------------------------------------------------------------------------- #
# acceptance 5: bad input fails before training with a message that says what is wrong
# --------------------------------------------------------------------------- #
class Block(nn.Module):
    """A Linear with its activation applied functionally (invisible to hooks)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)

    def forward(self, x):
        return torch.relu(self.lin(x))


class FunctionalNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block1 = Block(4, 8)
        self.block2 = Block(8, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.block2(self.block1(x)))


class Conv1dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3, padding=1)
        self.act = nn.ReLU()
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.act(self.conv(x.unsqueeze(1))).flatten(1))


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Conv1d(1, 1, 1), nn.Linear(8, 3)),
         ["cannot process X", "Conv1d", "predict="]),
        # a LayerNorm MLP is read, with zone none and the reason (issue 19): tests/test_scope.py
        (lambda: nn.Sequential(nn.Linear(4, 8), nn.PReLU(8), nn.Linear(8, 3)), ["prelu", "taps="]),
        (lambda: nn.Sequential(), ["no affine layer", "nn.Linear"]),
    ],
    ids=["conv1d-on-features", "prelu", "empty"],
)
def test_acceptance_5_models_it_cannot_read(data, make, words):
    """What forward executed, in order, and the option that fixes it."""
    X, Y = data
    model = make()
    with pytest.raises(ValueError) as info:
        Monitor(model, X, Y)
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert_no_hooks(model)


def test_models_read_by_what_forward_executes(data):
    """F.relu / torch.relu in forward, a model ending in an activation: read, with a note for the latter."""
    X, Y = data
    with Monitor(FunctionalNet(), X, Y) as monitor:
        assert monitor.depth == 3 and monitor.plan.hidden_widths == [8, 8]
        assert "torch.relu in Block.forward (block1)" in monitor.describe()
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU())
    with pytest.warns(UserWarning, match="output passes through relu") as caught:
        monitor = Monitor(model, X, Y)
    assert len(caught) == 1 and any("reference, not a certificate" in w for w in monitor.run.warnings)
    monitor.close()
    with Monitor(Conv1dNet(), X, Y) as monitor:  # convolutions are part of layer 1 unless include_conv=True
        assert monitor.depth == 1 and "before layer 1" in monitor.describe()


def test_acceptance_5_taps_that_never_fire(data):
    X, Y = data
    model = tiny()
    stray = nn.ReLU()  # not part of the model
    with pytest.raises(UnsupportedModelError, match=r"taps\[1\] \(ReLU\) is not a submodule"):
        Monitor(model, X, Y, taps=[model[1], stray])
    functional = FunctionalNet()
    functional.extra = nn.ReLU()  # registered, never called by forward
    with pytest.raises(UnsupportedModelError, match=r"taps\[1\] = extra \(ReLU\) never ran"):
        Monitor(functional, X, Y, taps=["block1", "extra"])
    assert_no_hooks(functional)
    assert_no_hooks(model)
    assert_no_hooks(stray)


def test_a_module_used_at_two_depths_is_read_by_call_but_refused_as_a_tap(data):
    X, Y = data
    shared = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 8), shared, nn.Linear(8, 8), shared, nn.Linear(8, 3))
    with Monitor(model, X, Y) as monitor:  # discovery tells the two calls apart
        assert monitor.depth == 3 and "call 2" in monitor.describe()
    with pytest.raises(UnsupportedModelError, match="ran 2 times"):
        Monitor(model, X, Y, taps=[shared, model[2]])
    assert_no_hooks(model)


@pytest.mark.parametrize(
    "X_shape, Y_shape, pattern",
    [
        ((64, 5), (64, 3), r"cannot process X \(shape \(64, 5\)\)"),
        ((64, 4), (64, 7), r"output has 3 features per sample but Y has 7"),
        ((64, 4), (60, 3), r"X has 64 samples but Y has 60"),
        ((64, 4), (64,), r"N × m"),
    ],
    ids=["X-width", "Y-width", "sample-count", "Y-1d"],
)
def test_acceptance_5_data_that_does_not_fit_the_model(X_shape, Y_shape, pattern):
    model = tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=pattern):
        Monitor(model, torch.randn(*X_shape), torch.rand(*Y_shape), optimizer=optimizer)
    assert_no_hooks(model, optimizer)  # a monitor that fails to start leaves nothing behind


@pytest.mark.parametrize("bad", ["nan-Y", "optimizer", "cloud"])
def test_failures_after_the_hooks_went_on_remove_them(data, bad):
    X, Y = data
    model = tiny()
    kwargs = {}
    if bad == "nan-Y":
        Y = Y.clone()
        Y[3, 1] = math.nan
        pattern = "non-finite"
    elif bad == "optimizer":
        kwargs["optimizer"] = object()
        pattern = "optimizer"
    else:
        kwargs["cloud"] = YesCloud(X[:10], Y[:10], 3)
        pattern = "cloud was built"
    with pytest.raises((ValueError, TypeError), match=pattern):
        Monitor(model, X, Y, **kwargs)
    assert_no_hooks(model)


def test_other_arguments_are_checked(data):
    X, Y = data
    with pytest.raises(TypeError, match="nn.Module"):
        Monitor(lambda x: x, X, Y)
    with pytest.raises(ValueError, match="every"):
        Monitor(tiny(), X, Y, every=0)
    with pytest.raises(ValueError, match="budget"):
        Monitor(tiny(), X, Y, budget=0)
    with pytest.raises(ValueError, match="max_samples"):
        Monitor(tiny(), X, Y, max_samples=1)
    with pytest.raises(TypeError, match="Dataset"):
        Monitor(tiny(), X)
    with pytest.raises(TypeError, match="taps"):
        Monitor(tiny(), X, Y, taps=[])


# --------------------------------------------------------------------------- #
# acceptance 6: a diverging run
# --------------------------------------------------------------------------- #
def test_acceptance_6_a_diverging_run_is_recorded_not_raised(task):
    model = task.model(seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=10.0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(task.X_train, task.Y_train),
                                         batch_size=50, shuffle=True, generator=torch.Generator().manual_seed(0))
    events = []
    monitor = Monitor(model, task.X_train, task.Y_train, optimizer=optimizer, every=1)
    monitor.subscribe(events.append)
    for _ in monitor.epochs(4):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = nn.MSELoss(reduction="sum")(model(xb), yb)
            loss.backward()
            optimizer.step()
            monitor.log(loss)
    monitor.close()
    run = monitor.run
    assert len(run.epochs) == 4  # every epoch point kept
    assert not all(math.isfinite(v) for v in run.step_losses)
    bad = [r for r in run.epochs if not math.isfinite(r.loss)]
    assert bad, [r.loss for r in run.epochs]
    assert all(r.zone == "red" for r in bad)
    assert run.status == "diverged" and str(bad[0].epoch) in run.message
    statuses = [e.status for e in events if isinstance(e, StatusEvent)]
    assert statuses == ["diverged"]  # and finish() does not overwrite it
    assert [e.record.epoch for e in events if isinstance(e, EpochEvent)] == [1, 2, 3, 4]
    assert math.isfinite(run.epochs[-1].upper)


# --------------------------------------------------------------------------- #
# layer discovery
# --------------------------------------------------------------------------- #
def test_discovers_the_paper_mlp(task):
    model = task.model(seed=0)
    with Monitor(model, task.X_train[:64], task.Y_train[:64], background=False) as monitor:
        plan = monitor.plan
        assert plan.depth == 5 and plan.bias is True and plan.bounds_kwargs()["activation"] == "relu"
        assert plan.hidden_widths == [100, 100, 100, 100] and plan.layers[-1].width == 100
        assert monitor.run.config["activation"] == "relu"


def test_discovers_nested_containers_with_dropout(data):
    X, Y = data
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Sequential(nn.Linear(4, 8), nn.ReLU()),
        nn.Sequential(nn.Dropout(0.1), nn.Linear(8, 8), nn.ReLU(), nn.Identity()),
        nn.Linear(8, 3),
    )
    with Monitor(model, X, Y, every=1, background=False) as monitor:
        assert monitor.plan.hidden_widths == [8, 8] and monitor.depth == 3
        assert "0.1 (ReLU) call 1" in monitor.describe() and "1.2 (ReLU) call 1" in monitor.describe()
        monitor.epoch_end()
    with torch.no_grad():
        model.eval()
        h1 = torch.relu(model[0][0](X))
        h2 = torch.relu(model[1][1](h1))
        out = model[2](h2)
    reference = YesCloud(X, Y, 3)
    reference.update([h1, h2])
    record = monitor.run.epochs[0]
    assert close(record.loss, metric_e(out, Y)) and close(record.lower, reference.lower)


def test_reads_bias_from_the_layers(data):
    X, Y = data
    with Monitor(tiny(bias=False), X, Y) as monitor:
        assert monitor.plan.bias is False and monitor.cloud.bias is False
        assert close(monitor.run.upper, YesCloud(X, Y, 3, bias=False).upper)
        assert monitor.run.config["bias"] is False
    with Monitor(tiny(), X, Y) as monitor:
        assert monitor.plan.bias is True and close(monitor.run.upper, YesCloud(X, Y, 3).upper)


def test_custom_module_with_taps_matches_an_independent_cloud(data):
    X, Y = data
    torch.manual_seed(0)
    model = FunctionalNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    reference = YesCloud(X, Y, 3)
    expected = []
    with Monitor(model, X, Y, taps=[model.block1, model.block2], optimizer=optimizer, every=1) as monitor:
        assert monitor.depth == 3 and monitor.plan.hidden_widths == [8, 8]
        for _ in monitor.epochs(3):
            train_epoch(model, optimizer, X, Y, monitor)
            with torch.no_grad():
                h1 = model.block1(X)
                h2 = model.block2(h1)
                out = model.out(h2)
            reference.update([h1, h2])
            expected.append((metric_e(out, Y), reference.lower))
    for record, (loss, lower) in zip(monitor.run.epochs, expected):
        assert close(record.loss, loss) and close(record.lower, lower)


def test_other_activations_use_the_layers_own_module(data):
    X, Y = data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
    with Monitor(model, X, Y, every=1) as monitor:
        monitor.epoch_end()
    hidden, out = hidden_and_output(model, X, acts=(nn.Tanh,))
    reference = YesCloud(X, Y, 3, activation="tanh")
    reference.update(hidden)
    assert close(monitor.run.upper, reference.upper) and close(monitor.run.epochs[0].lower, reference.lower)
    assert monitor.run.config["activation"] == "tanh"


def test_the_bounds_activation_does_not_fire_the_taps(data):
    # The activation module is also a tap. The worker applies it while the training
    # thread may be capturing hidden outputs: it must not go through the module's hooks.
    X, Y = data
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
    calls = []
    for act in (model[1], model[3]):
        act.register_forward_hook(lambda module, inputs, output: calls.append(module))
    with Monitor(model, X, Y) as monitor:
        calls.clear()
        t = torch.randn(5, 8, dtype=torch.float64)
        assert torch.allclose(monitor.cloud._act(t), torch.tanh(t))
        assert calls == []  # the bounds' activation went around the module's hooks


@pytest.mark.parametrize("use_taps", [False, True])
def test_warns_when_a_hidden_layer_is_narrower_than_the_output(data, use_taps):
    X, Y = data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    kwargs = {"taps": [model[1], model[3]]} if use_taps else {}
    with pytest.warns(UserWarning, match="narrower than the output width 3") as caught:
        monitor = Monitor(model, X, Y, **kwargs)
    assert "reference, not a certificate" in str(caught[0].message)
    assert any("narrower" in w for w in monitor.run.warnings)
    monitor.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Monitor(tiny(), X, Y).close()  # 8 ≥ 3: no warning


# --------------------------------------------------------------------------- #
# the certification set
# --------------------------------------------------------------------------- #
class CountingDataset(torch.utils.data.Dataset):
    def __init__(self, X, Y):
        self.X, self.Y, self.reads = X, Y, 0

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        self.reads += 1
        return self.X[i], self.Y[i]


def test_certification_from_tensors_dataset_and_dataloader(data):
    X, Y = data
    upper = YesCloud(X, Y, 3).upper
    with Monitor(tiny(), X, Y) as m:
        assert m.certification["source"] == "tensors" and m.certification["n_samples"] == 64
        assert not m.certification["subset"] and "all 64" in m.run.certification["text"]
    dataset = CountingDataset(X, Y)
    with Monitor(tiny(), dataset, every=1) as m:
        assert m.certification["source"] == "Dataset"
        assert torch.equal(m.X, X) and torch.equal(m.Y, Y)
        m.epoch_end()
        m.epoch_end()
    assert dataset.reads == 64  # read once
    dataset = CountingDataset(X, Y)
    loader = torch.utils.data.DataLoader(dataset, batch_size=10, shuffle=True)
    with Monitor(tiny(), loader, every=1) as m:
        assert m.certification["source"] == "DataLoader" and m.N == 64
        # the same samples (in the loader's order): the same YES-0
        assert close(m.run.upper, upper, 1e-9)
        assert sorted(m.X[:, 0].tolist()) == sorted(X[:, 0].tolist())
        m.epoch_end()
        m.epoch_end()
    assert dataset.reads == 64


def test_certification_subset_is_fixed_and_seeded(task):
    X, Y = task.X_train, task.Y_train
    model = task.model(seed=0)
    a = Monitor(model, X, Y, max_samples=100)
    b = Monitor(model, X, Y, max_samples=100)
    c = Monitor(model, X, Y, max_samples=100, seed=1)
    try:
        assert a.N == 100 and torch.equal(a.X, b.X) and torch.equal(a.Y, b.Y)
        assert not torch.equal(a.X, c.X)
        assert a.certification == {"source": "tensors", "n_samples": 100, "of": 800, "subset": True, "seed": 0}
        assert "subset of 100 of the 800" in a.run.certification["text"]
        assert a.run.config["n_samples"] == 100
        # the subset really is rows of X, paired with their own targets
        rows = {tuple(r) for r in X.tolist()}
        assert all(tuple(r) in rows for r in a.X.tolist())
        assert torch.allclose(a.Y, (a.X.double() @ task.extras["A"].double().T).abs().float(), atol=1e-5)
        assert close(a.run.upper, YesCloud(a.X, a.Y, 5).upper)
    finally:
        for m in (a, b, c):
            m.close()
    with Monitor(model, X, Y, max_samples=5000) as m:
        assert m.N == 800 and not m.certification["subset"]


# --------------------------------------------------------------------------- #
# steps: log(), no sync per step, the optimizer hook
# --------------------------------------------------------------------------- #
def test_log_accepts_tensors_and_floats(data):
    X, Y = data
    with Monitor(tiny(), X, Y, background=False) as monitor:
        monitor.log(torch.tensor(2.0))
        monitor.log(1.5)
        monitor.log(np.float64(0.5))
        monitor.log(torch.tensor([[0.25]], requires_grad=True) * 1)
        with pytest.raises(ValueError, match="scalar"):
            monitor.log(torch.tensor([1.0, 2.0]))
        monitor.epoch_end()
    assert monitor.run.step_losses == [2.0, 1.5, 0.5, 0.25]
    assert all(type(v) is float for v in monitor.run.step_losses)
    assert monitor.run.epochs[0].step == 5  # without an optimizer every log() is a step (the bad one too)


def test_log_does_not_sync_the_device_per_step(data, monkeypatch):
    X, Y = data
    model = tiny()
    with Monitor(model, X, Y, background=False) as monitor:
        for _ in range(4):
            monitor.log(torch.tensor(1.0))
        monitor.epoch_end()  # now the monitor knows the steps per epoch and streams steps
        calls = {"n": 0}
        for name in ("item", "tolist", "__float__", "__int__", "__bool__", "__index__"):
            real = getattr(torch.Tensor, name)

            def counting(self, *args, _real=real, **kwargs):
                calls["n"] += 1
                return _real(self, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counting)
        losses = [torch.tensor(float(i)) for i in range(100)]
        for loss in losses:
            monitor.log(loss)
        n_calls = calls["n"]
        monkeypatch.undo()
        # the pending losses are sent in batches (one transfer per batch, ≥ 0.25 s apart)
        assert n_calls <= 8, n_calls
        monitor.epoch_end()
    assert monitor.run.step_losses[4:] == [float(i) for i in range(100)]


def test_optimizer_hook_counts_steps_and_reads_the_lr(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model, X, Y, optimizer=optimizer, every=1) as monitor:
        for epoch in monitor.epochs(4):
            if epoch == 2:
                for group in optimizer.param_groups:
                    group["lr"] = 0.005
            train_epoch(model, optimizer, X, Y)  # no log() at all
    run = monitor.run
    assert [r.epoch for r in run.epochs] == [1, 2, 3, 4]
    assert [r.step for r in run.epochs] == [4, 8, 12, 16]
    assert [r.lr for r in run.epochs] == [0.01, 0.01, 0.005, 0.005]
    assert [r.batch_size for r in run.epochs] == [16] * 4
    assert run.config["lr"] == 0.01 and run.config["optimizer"] == "sgd"
    assert run.step_losses == []


def test_evaluation_forwards_do_not_change_the_batch_size(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model, X, Y, optimizer=optimizer, every=1) as monitor:
        for _ in monitor.epochs(2):
            train_epoch(model, optimizer, X, Y)
            with torch.no_grad():
                model(X[:7])  # a test-set evaluation
    assert [r.batch_size for r in monitor.run.epochs] == [16, 16]


def test_epoch_end_restores_train_and_eval_modes(data):
    X, Y = data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 8), nn.ReLU(),
                          nn.Dropout(0.5), nn.Linear(8, 3))
    model.train()
    model[5].eval()  # a mixed state must come back exactly
    modes = {name: m.training for name, m in model.named_modules()}
    with Monitor(model, X, Y, every=1) as monitor:
        monitor.epoch_end()
        assert {name: m.training for name, m in model.named_modules()} == modes
        model.eval()
        monitor.epoch_end()
        assert not any(m.training for m in model.modules())
    model.eval()
    with torch.no_grad():
        out = model(X)
    # the epoch loss is measured without dropout (eval mode)
    assert close(monitor.run.epochs[0].loss, metric_e(out, Y))
    assert close(monitor.run.epochs[1].loss, metric_e(out, Y))


def test_epochs_form(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1, epochs=None)
    seen = []
    for epoch in monitor.epochs(5):
        seen.append(epoch)
        train_epoch(model, optimizer, X, Y, monitor)
    assert seen == [0, 1, 2, 3, 4]
    assert monitor.epochs_total == 5 and monitor.run.config["epochs"] == 5
    assert monitor.run.status == "finished" and len(monitor.run.epochs) == 5
    monitor.close()
    assert monitor.run.status == "finished"


# --------------------------------------------------------------------------- #
# cadence
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("every, pattern", [(1, [1, 2, 3, 4, 5, 6, 7]), (3, [1, 3, 6]), (10, [1])])
def test_every_k_updates_at_epoch_1_and_every_kth(data, every, pattern):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Monitor(model, X, Y, optimizer=optimizer, every=every) as monitor:
        for _ in monitor.epochs(7):
            train_epoch(model, optimizer, X, Y, monitor)
    records = monitor.run.epochs
    assert [r.epoch for r in records if r.bounds_updated] == pattern
    assert len(monitor.cloud.epochs) == len(pattern)
    for previous, record in zip(records, records[1:]):
        if not record.bounds_updated:  # nothing new: the bounds stay, the loss moves on
            assert record.yes_k == previous.yes_k and record.lower == previous.lower
        assert record.lower <= previous.lower


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "train_seconds, bounds_seconds, expect",
    [(1.0, 0.5, "some"), (10.0, 0.5, "all"), (1.0, 100.0, "first")],
    ids=["bounds-half-an-epoch", "bounds-cheap", "bounds-expensive"],
)
def test_time_cadence_keeps_bounds_within_the_budget(data, monkeypatch, train_seconds, bounds_seconds, expect):
    X, Y = data
    clock = FakeClock()
    # the façade, the loop (epochs() starts the wall clock), log() and the certification read the clock
    for module in (monitor_module, lifecycle_module, hooks_module, certify_module):
        monkeypatch.setattr(module, "time",
                            types.SimpleNamespace(perf_counter=clock.perf_counter, monotonic=time.monotonic))
    monitor = Monitor(tiny(), X, Y, every="time", background=False, confirm_green=False)
    monitor.run.timings["yes0_seconds"] = 0.0  # measured on the fake clock: 0 anyway
    n = 100 if expect == "some" else 20
    real_compute = monitor.cloud.compute

    def compute(hidden):
        clock.now += bounds_seconds
        return real_compute(hidden)

    monkeypatch.setattr(monitor.cloud, "compute", compute)
    for _ in monitor.epochs(n):
        clock.now += train_seconds
    monitor.close()
    records = monitor.run.epochs
    assert len(records) == n and records[0].bounds_updated
    budget = monitor.config.budget
    done = 1
    for record in records[1:]:
        # the rule: update when the bounds' time so far plus one more update fits in 20% of the wall time
        fits = bounds_seconds * (done + 1) <= budget * record.wall_time + 1e-9
        assert record.bounds_updated == fits, (record.epoch, done)
        done += record.bounds_updated
    wall = monitor.run.timings["wall_seconds"] + bounds_seconds * records[-1].bounds_updated
    share = monitor.run.timings["bounds_seconds"] / wall
    updates = sum(r.bounds_updated for r in records)
    if expect == "all":
        assert updates == n
    elif expect == "first":
        assert updates == 1
    else:
        assert 0.15 <= share <= budget + 1e-9, share  # uses its budget, and no more
        assert 40 <= updates <= 50


def test_time_cadence_never_queues_work_behind_a_busy_worker(data, monkeypatch):
    X, Y = data
    monitor = Monitor(tiny(), X, Y, every="time", background=True, confirm_green=False)
    release = threading.Event()
    real_compute = monitor.cloud.compute

    def blocked(hidden):
        assert release.wait(30)
        return real_compute(hidden)

    monkeypatch.setattr(monitor.cloud, "compute", blocked)
    for _ in range(5):
        monitor.epoch_end()
    assert not monitor.wait(timeout=0.05)  # still busy with epoch 1
    release.set()
    assert monitor.wait()
    monitor.close()
    assert [r.bounds_updated for r in monitor.run.epochs] == [True, False, False, False, False]


def test_background_results_arrive_in_epoch_order(data, monkeypatch):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1, background=True)
    real_compute = monitor.cloud.compute
    slow = {1, 2}

    def compute(hidden):
        if len(monitor.cloud.epochs) + 1 in slow:
            time.sleep(0.05)  # the first updates are slow: later epochs queue behind them
        return real_compute(hidden)

    monkeypatch.setattr(monitor.cloud, "compute", compute)
    arrived = []
    monitor.subscribe(lambda e: arrived.append(e.record.epoch) if isinstance(e, EpochEvent) else None)
    for _ in range(6):
        train_epoch(model, optimizer, X, Y, monitor)
        monitor.epoch_end()
    assert monitor.wait(timeout=60)
    assert arrived == [1, 2, 3, 4, 5, 6]
    assert [r.epoch for r in monitor.run.epochs] == arrived
    assert monitor.cloud.epochs == arrived
    monitor.close()


# --------------------------------------------------------------------------- #
# events
# --------------------------------------------------------------------------- #
def test_events_carry_the_readings(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    events = []
    with Monitor(model, X, Y, optimizer=optimizer, every=1, run_id="r1") as monitor:
        handle = monitor.subscribe(events.append)
        for _ in monitor.epochs(3):
            train_epoch(model, optimizer, X, Y, monitor)
    handle.remove()
    steps = [e for e in events if isinstance(e, StepEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    statuses = [e for e in events if isinstance(e, StatusEvent)]
    assert {e.run_id for e in events} == {"r1"}
    # each step once, in order; the first epoch's steps are sent again with their final
    # positions when it ends (before that the steps per epoch were an estimate)
    by_index = {}
    for e in steps:
        for i, p in enumerate(e.positions):
            by_index[e.first_step + i] = p
    assert len(by_index) == 12 == len(monitor.run.step_losses)
    assert sum(len(e.losses) for e in steps) <= 12 + 4
    positions = [by_index[i] for i in range(12)]
    assert positions == sorted(positions) and positions[-1] == pytest.approx(3.0)
    assert all(len(e.positions) == len(e.losses) and e.lr == 0.05 and e.batch_size == 16 for e in steps)
    assert [e.epoch for e in epochs] == [1, 2, 3] and all(e.epochs_total == 3 for e in epochs)
    for e, record in zip(epochs, monitor.run.epochs):
        assert e.record is record
        assert (e.loss, e.upper, e.lower, e.zone, e.lr, e.batch_size) == \
            (record.loss, record.upper, record.lower, record.zone, 0.05, 16)
        assert len(e.yes_k) == 2 and e.wall_time > 0
    assert [e.wall_time for e in epochs] == sorted(e.wall_time for e in epochs)
    assert [e.status for e in statuses] == ["finished"] and statuses[0].message == ""


def test_subscription_handles(data):
    X, Y = data
    seen = []
    with Monitor(tiny(), X, Y, background=False) as monitor:
        handle = monitor.subscribe(seen.append)
        monitor.epoch_end()
        monitor.wait()  # delivered on the dispatcher thread
        handle.remove()
        handle.remove()  # safe twice
        assert not handle.active
        monitor.epoch_end()
        monitor.wait()  # delivered on the dispatcher thread
        with monitor.subscribe(seen.append) as inner:
            assert inner.active
            monitor.epoch_end()
            monitor.wait()
        assert not inner.active
        monitor.epoch_end()
        monitor.wait()  # delivered on the dispatcher thread
        with pytest.raises(TypeError, match="callable"):
            monitor.subscribe("not a function")
    assert [e.record.epoch for e in seen if isinstance(e, EpochEvent)] == [1, 3]


def test_a_subscriber_that_raises_does_not_break_training(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    good = []

    def broken(event):
        raise ZeroDivisionError("display went away")

    with Monitor(model, X, Y, optimizer=optimizer, every=1) as monitor:
        monitor.subscribe(broken)
        monitor.subscribe(good.append)
        for _ in monitor.epochs(2):
            train_epoch(model, optimizer, X, Y, monitor)
    assert monitor.run.status == "finished" and len(monitor.run.epochs) == 2
    assert any("ZeroDivisionError" in w and "display went away" in w for w in monitor.run.warnings)
    assert len([e for e in good if isinstance(e, EpochEvent)]) == 2  # the others still get everything


# --------------------------------------------------------------------------- #
# the run record
# --------------------------------------------------------------------------- #
def test_run_record_holds_config_losses_epochs_timings(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Monitor(model, X, Y, optimizer=optimizer, every=2, labels={"batch_size": 16, "note": "x"}) as monitor:
        assert monitor.run.status == "running"
        for _ in monitor.epochs(3):
            train_epoch(model, optimizer, X, Y, monitor)
    run = monitor.run
    assert run.config["depth"] == 3 and run.config["widths"] == [8, 8] and run.config["every"] == 2
    assert run.config["note"] == "x" and run.label == "lr 1e-02 · batch 16 · adam"
    assert run.depth == 3 and close(run.upper, YesCloud(X, Y, 3).upper)
    assert len(run.layer_errors) == 3 and close(run.layer_errors[-1], run.upper)
    assert len(run.step_losses) == len(run.step_positions) == 12
    assert all(isinstance(r.loss, float) and r.zone in ("red", "yellow", "green") for r in run.epochs)
    assert set(run.timings) >= {"yes0_seconds", "bounds_seconds", "certify_seconds", "wall_seconds"}
    assert all(v >= 0 for v in run.timings.values())
    assert run.status == "finished" and monitor.zone == run.final_zone
    monitor.mark("batch_size", 32)
    assert run.marks[-1]["kind"] == "batch_size" and run.marks[-1]["value"] == 32


# --------------------------------------------------------------------------- #
# text output
# --------------------------------------------------------------------------- #
def test_text_printer_prints_one_line_per_epoch(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    stream = io.StringIO()
    with Monitor(model, X, Y, optimizer=optimizer, every=1) as monitor:
        monitor.subscribe(TextPrinter(stream))
        for _ in monitor.epochs(3):
            train_epoch(model, optimizer, X, Y, monitor)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1] == "run finished"
    pattern = re.compile(r"epoch\s+(\d+)/3\s+loss\s+(\S+) dB\s+YES-0\s+(\S+) dB\s+lower\s+(\S+) dB\s+(red|yellow|green)")
    for line, record in zip(lines, monitor.run.epochs):
        match = pattern.match(line)
        assert match, line
        epoch, loss, upper, lower, zone = match.groups()
        assert int(epoch) == record.epoch and zone == record.zone
        for text, value in ((loss, record.loss), (upper, record.upper), (lower, record.lower)):
            assert float(text) == pytest.approx(to_db(value), abs=0.006)


def test_verbose_prints_to_stdout(data, capsys):
    X, Y = data
    with Monitor(tiny(), X, Y, verbose=True, background=False) as monitor:
        monitor.epoch_end()
    out = capsys.readouterr().out
    assert out.startswith("epoch    1  loss") and "YES-0" in out and "run finished" in out


def test_text_printer_survives_a_nan_loss():
    from yeswidget.core.run import EpochRecord

    line = TextPrinter.format(EpochRecord(epoch=3, loss=math.nan, upper=1.0, lower=0.5, zone="red"), 10)
    assert line.startswith("epoch    3/10  loss      nan dB") and "red" in line


# --------------------------------------------------------------------------- #
# the user's loop raises
# --------------------------------------------------------------------------- #
def _loop_that_raises(monitor, model, optimizer, X, Y, at_epoch=2):
    for epoch in monitor.epochs(5):
        train_epoch(model, optimizer, X, Y, monitor)
        if epoch == at_epoch:
            raise RuntimeError("boom in the loop")


@pytest.mark.parametrize("where", ["same-frame", "helper-function"])
def test_an_exception_in_a_bare_epochs_loop_keeps_the_record_and_is_reraised(data, where):
    """Without ``with monitor:`` the generator only sees that the loop was left: the run
    ends "stopped" (with a note), every point is kept, and the user's exception propagates."""
    X, Y = data
    model = tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1)
    with pytest.raises(RuntimeError, match="boom in the loop"):
        if where == "helper-function":
            _loop_that_raises(monitor, model, optimizer, X, Y)
        else:
            for epoch in monitor.epochs(5):
                train_epoch(model, optimizer, X, Y, monitor)
                if epoch == 2:
                    raise RuntimeError("boom in the loop")
    run = monitor.run
    assert run.status == "stopped"
    assert any("left after epoch 2 of 5" in w for w in run.warnings)
    assert len(run.epochs) == 2  # the record is kept
    monitor.close()
    assert len(run.step_losses) == 3 * 4  # and so is every logged step, the last epoch's too
    assert_no_hooks(model, optimizer)


@pytest.mark.parametrize("form", ["epochs", "epoch_end"])
def test_an_exception_inside_with_monitor_fails_the_run_with_its_message(data, form):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(KeyError, match="missing column"):
        with Monitor(model, X, Y, optimizer=optimizer, every=1) as monitor:
            if form == "epochs":
                for epoch in monitor.epochs(5):
                    train_epoch(model, optimizer, X, Y, monitor)
                    if epoch == 1:
                        raise KeyError("missing column")
            else:
                for epoch in range(5):
                    train_epoch(model, optimizer, X, Y, monitor)
                    if epoch == 1:
                        raise KeyError("missing column")
                    monitor.epoch_end()
    run = monitor.run
    assert run.status == "failed" and run.message == "KeyError: 'missing column'"
    assert "KeyError" in run.traceback and "missing column" in run.traceback
    assert len(run.epochs) == 1  # epoch 0 closed; epoch 1 raised before its epoch_end
    assert_no_hooks(model, optimizer)


def test_leaving_the_loop_on_purpose_is_stopped_not_failed(data):
    X, Y = data
    model = tiny()
    m1 = Monitor(model, X, Y, every=1)
    for epoch in m1.epochs(5):
        if epoch == 1:
            break
    assert m1.run.status == "stopped" and len(m1.run.epochs) == 1
    m1.close()

    m2 = Monitor(model, X, Y, every=1)
    for epoch in m2.epochs(5):
        if epoch == 2:
            m2.stop()
    assert m2.run.status == "stopped" and len(m2.run.epochs) == 3
    m2.close()

    m3 = Monitor(model, X, Y, every=1)
    kept = m3.epochs(5)
    for epoch in kept:
        if epoch == 0:
            break
    del kept  # closing a kept iterator later is not a failure either
    assert m3.run.status == "stopped"
    m3.close()

    with pytest.raises(KeyboardInterrupt):
        with Monitor(model, X, Y, every=1) as m4:
            for epoch in m4.epochs(5):
                if epoch == 1:
                    raise KeyboardInterrupt  # the stop button of a notebook
    assert m4.run.status == "stopped" and len(m4.run.epochs) == 1
    assert_no_hooks(model)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_logged_minibatch_losses_are_drawn_in_the_metric_E(data, reduction):
    """A loop logging MSELoss(mean) or MSELoss(sum) gets its step line on the cloud's scale."""
    X, Y = data
    model = tiny()
    monitor = Monitor(model, X, Y, loss_reduction=reduction, every=1)
    xb, yb = X[:8], Y[:8]
    model.train()
    loss = torch.nn.functional.mse_loss(model(xb), yb, reduction=reduction)
    monitor.log(loss)
    monitor.epoch_end()
    monitor.close()
    with torch.no_grad():
        expected = float(((model(xb) - yb) ** 2).sum() / xb.shape[0])
    assert monitor.run.step_losses[0] == pytest.approx(expected, rel=1e-5)


def test_an_unknown_loss_reduction_is_refused(data):
    X, Y = data
    with pytest.raises(ValueError, match="loss_reduction"):
        Monitor(tiny(), X, Y, loss_reduction="batchmean")


def test_a_slow_worker_makes_the_loop_wait_instead_of_hoarding_activations(data, monkeypatch):
    """every=1 on a loop faster than the bounds: at most two epochs' hidden outputs wait."""
    X, Y = data
    monitor = Monitor(tiny(), X, Y, every=1, background=True)
    release = threading.Event()
    real_compute = monitor.cloud.compute

    def blocked(hidden):
        assert release.wait(30)
        return real_compute(hidden)

    monkeypatch.setattr(monitor.cloud, "compute", blocked)
    done = []
    loop = threading.Thread(target=lambda: [monitor.epoch_end() or done.append(1) for _ in range(6)])
    loop.start()
    time.sleep(0.3)
    assert len(done) == 2  # epochs 1 and 2 queued (epoch 1 in the worker); epoch 3 waits
    release.set()
    loop.join(30)
    assert len(done) == 6 and monitor.wait(30)
    monitor.close()
    assert [r.bounds_updated for r in monitor.run.epochs] == [True] * 6


def test_auto_cadence_judges_a_move_into_green_against_a_fresh_edge(data):
    """A stale lower edge sits higher than a fresh one; the epoch that turns green recomputes it."""
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    monitor = Monitor(model, X, Y, optimizer=optimizer, every="auto", budget=1e-9, background=False,
                      confirm_green=True)
    for _ in monitor.epochs(40):
        train_epoch(model, optimizer, X, Y, monitor)
    monitor.close()
    epochs = monitor.run.epochs
    for previous, record in zip(epochs, epochs[1:]):
        if record.zone == "green" and previous.zone != "green":
            assert record.bounds_updated
    assert any(r.zone == "green" for r in epochs), "the tiny task should reach green in 40 epochs"


# --------------------------------------------------------------------------- #
# findings of the code review
# --------------------------------------------------------------------------- #
def test_a_subscriber_may_close_the_monitor_without_deadlocking(data):
    """A "stop when green" callback closes the monitor from the worker thread."""
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1)
    monitor.subscribe(lambda e: monitor.close() if isinstance(e, EpochEvent) and e.record.epoch == 2 else None)
    finished = threading.Event()

    def loop():
        try:
            for _ in range(6):
                train_epoch(model, optimizer, X, Y, monitor)
                monitor.epoch_end()
        except RuntimeError:  # epoch_end on a closed monitor says so
            pass
        finished.set()

    threading.Thread(target=loop, daemon=True).start()
    assert finished.wait(30), "the training loop hung"
    deadline = time.monotonic() + 30  # the subscriber runs on the dispatcher, moments after epoch 2
    while not monitor.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert monitor.run.status != "running" and len(monitor.run.epochs) >= 2
    assert_no_hooks(model, optimizer)


def test_no_green_before_any_lower_edge_was_computed(data):
    X, Y = data
    monitor = Monitor(tiny(), X, Y, every=1)
    assert monitor.cloud.zone(monitor.cloud.upper * 0.5) == "yellow"  # below YES-0, nothing certifies green
    assert monitor.cloud.zone(monitor.cloud.upper * 2) == "red"
    monitor.close()


def test_a_given_cloud_follows_the_model_device_and_keeps_yes0(data):
    X, Y = data
    cloud = YesCloud(X, Y, 3)
    moved = cloud.to("cpu")
    assert moved is not cloud and moved.upper == cloud.upper and moved.device == torch.device("cpu")
    monitor = Monitor(tiny(), X, Y, every=1, cloud=cloud.fresh())
    assert monitor.cloud.upper == cloud.upper
    monitor.close()


def test_a_bfloat16_model_is_judged_on_the_data_as_given(data):
    X, Y = data
    model = tiny().to(torch.bfloat16)
    monitor = Monitor(model, X, Y, every=1)
    assert monitor.cloud.upper == pytest.approx(YesCloud(X, Y, 3).upper, rel=1e-12)  # not a bf16 copy of Y
    monitor.epoch_end()
    monitor.close()
    with torch.no_grad():
        expected = float(((model(X.to(torch.bfloat16)).double() - Y.double()) ** 2).sum() / X.shape[0])
    assert monitor.run.epochs[0].loss == pytest.approx(expected, rel=1e-9)


def test_tanh_taps_are_read_as_tanh_and_a_cnn_works_through_taps():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 1, 6, 6, generator=g)
    Y = torch.randn(40, 3, generator=g)

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.act1 = nn.Tanh()
            self.fc = nn.Linear(2 * 4 * 4, 8)
            self.act2 = nn.Tanh()
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            h = self.act1(self.conv(x)).flatten(1)
            return self.out(self.act2(self.fc(h)))

    model = Small()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # activation modules as taps: nothing is guessed
        monitor = Monitor(model, X, Y, taps=[model.act1, model.act2], every=1)
    assert monitor.depth == 3 and monitor.run.config["activation"] == "tanh"
    expected = YesCloud(X.flatten(1), Y, 3, activation="tanh").upper
    assert monitor.cloud.upper == pytest.approx(expected, rel=1e-12)
    monitor.epoch_end()
    monitor.close()
    assert monitor.run.epochs[0].bounds_updated


# --------------------------------------------------------------------------- #
# the runtime: interrupts, threads, first-epoch steps, reproducible verdicts
# --------------------------------------------------------------------------- #
def yeswidget_threads(before=()) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("yeswidget") and t.is_alive() and t not in before]


def test_one_ctrl_c_while_epoch_end_waits_on_the_worker_stops_at_once(data, monkeypatch):
    import os
    import signal

    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1, background=True)  # (a tiny step: auto is inline)
    real_compute = monitor.cloud.compute

    def slow(hidden):
        time.sleep(0.4)  # slow bounds: the loop outruns the worker and waits for a slot
        return real_compute(hidden)

    monkeypatch.setattr(monitor.cloud, "compute", slow)
    sent = []
    before = set(threading.enumerate())

    def interrupt_when_waiting():
        while monitor.epoch < 4:
            time.sleep(0.01)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_waiting, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        for _ in monitor.epochs(1000):
            train_epoch(model, optimizer, X, Y, monitor)
    returned = time.perf_counter()
    assert sent and returned - sent[0] < 2.0
    assert monitor.run.status == "stopped" and "interrupted" in monitor.run.message
    finished = monitor.epoch
    assert 3 <= finished <= 6
    # every finished epoch is kept (the ones whose update was dropped have no fresh edge)
    assert [r.epoch for r in monitor.run.epochs] == list(range(1, finished + 1))
    assert all(r.zone != "green" for r in monitor.run.epochs if not r.bounds_updated)
    assert yeswidget_threads(before) == []
    monitor.close()
    assert_no_hooks(model, optimizer)


def test_minibatch_losses_arrive_during_the_first_epoch(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1)
    monitor.steps.flush_every = 0.0  # send every step (the default batches them every 0.25 s)
    steps = []
    monitor.subscribe(lambda e: steps.extend(e.positions) if isinstance(e, StepEvent) else None)
    for step in range(100):  # a long first epoch: 100 steps of 4 samples
        xb, yb = X[step % 16 * 4:][:4], Y[step % 16 * 4:][:4]
        optimizer.zero_grad()
        nn.functional.mse_loss(model(xb), yb, reduction="sum").backward()
        optimizer.step()
        monitor.log(1.0)
        if step == 49:
            assert monitor.wait(5)
            assert len(steps) == 50  # on the chart before the epoch ends
            assert all(0 < p < 1 for p in steps) and steps == sorted(steps)
    monitor.epoch_end()
    monitor.close()
    assert len(monitor.run.step_losses) == 100 and monitor.steps_per_epoch == 100


def seeded_run(X, Y, epochs=40):
    torch.manual_seed(3)
    model = mlp((4, 16, 16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    with Monitor(model, X, Y, optimizer=optimizer) as monitor:  # default settings
        for _ in monitor.epochs(epochs):
            train_epoch(model, optimizer, X, Y, monitor)
    return monitor.run


def test_the_same_seeded_run_gets_the_same_verdicts_under_load(data):
    X, Y = data
    quiet = seeded_run(X, Y)
    stop = threading.Event()

    def burn(seed):
        # its own generator: a draw from torch's global one could land between the run's
        # manual_seed and its model's initialisation, which would make it another run
        a = torch.randn(200, 200, generator=torch.Generator().manual_seed(seed))
        while not stop.is_set():
            a = torch.tanh(a @ a)  # other work competing for the CPU (and the GIL)
            sum(i * i for i in range(2000))

    burners = [threading.Thread(target=burn, args=(seed,), daemon=True) for seed in range(3)]
    for t in burners:
        t.start()
    try:
        loaded = seeded_run(X, Y)
    finally:
        stop.set()
        for t in burners:
            t.join()
    assert [r.loss for r in loaded.epochs] == [r.loss for r in quiet.epochs]  # the same training
    assert [r.zone for r in loaded.epochs] == [r.zone for r in quiet.epochs]
    assert [r.bounds_updated for r in loaded.epochs] == [r.bounds_updated for r in quiet.epochs]
    assert loaded.epochs_to_green == quiet.epochs_to_green is not None
    assert [r.edge_epoch for r in loaded.epochs] == [r.edge_epoch for r in quiet.epochs]
    # green against an edge computed at that very epoch, or said to be an earlier epoch's (the
    # cost budget counts the confirmations); a move into green always has a fresh edge
    for previous, r in zip([None, *quiet.epochs], quiet.epochs):
        if r.zone == "green" and not r.bounds_updated:
            assert previous is not None and previous.zone == "green"
            assert r.edge_epoch < r.epoch and f"against the edge of epoch {r.edge_epoch}" in r.reason
        elif r.zone == "green":
            assert r.edge_epoch == r.epoch


def digits_classifier_run(epochs: int, **options):
    """The digits task's 64-wide MLP as a cross-entropy classifier (Adam 1e-2, batch 100)."""
    from yeswidget.training.tasks import digits

    task = digits()
    X, labels = task.X_train, task.extras["labels_train"]
    torch.manual_seed(0)
    model = task.make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    with Monitor(model, X, labels, optimizer=optimizer, loss=loss_fn, runs_dir=None, **options) as monitor:
        for _ in monitor.epochs(epochs):
            for start in range(0, X.shape[0], 100):
                optimizer.zero_grad()
                loss = loss_fn(model(X[start:start + 100]), labels[start:start + 100])
                loss.backward()
                optimizer.step()
                monitor.log(loss)
    return monitor.run


def test_a_first_update_beyond_the_runs_budget_waits_and_the_run_says_so():
    """Issue 20: a small classifier's first YES-k update in cross-entropy (cold Newton solves on 15
    anchor sets) costs many times the 20 % budget of a short run: at the default cadence none is
    computed, the epochs have no lower edge (NaN, no band) and a loss below YES-0 is yellow with the
    reason, never green; every=1 computes the edge at epoch 1."""
    from yeswidget.core.run import Run

    run = digits_classifier_run(16)
    assert not any(r.bounds_updated for r in run.epochs)
    assert all(math.isnan(r.lower) and r.zone in ("red", "yellow") for r in run.epochs), \
        [(r.epoch, r.zone, r.lower) for r in run.epochs]
    below = [r for r in run.epochs if r.loss <= r.upper]
    assert below, [(r.epoch, r.loss, r.upper) for r in run.epochs]
    for r in below:
        assert "no lower edge yet" in r.reason and "every=1" in r.reason and "cost budget" in r.reason, r.reason
    again = Run.from_json(run.to_json())  # the run log keeps "no edge" as such
    assert all(math.isnan(r.lower) for r in again.epochs)
    paper = digits_classifier_run(1, every=1)
    assert paper.epochs[0].bounds_updated and math.isfinite(paper.epochs[0].lower)


def test_auto_cadence_is_fixed_from_shapes(data):
    X, Y = data
    run = seeded_run(X, Y, epochs=12)
    updated = [r.epoch for r in run.epochs if r.bounds_updated]
    assert updated[0] == 1
    assert run.config["every"] == "auto"


def test_a_second_monitor_on_the_same_model_closes_the_first(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters())
    first = Monitor(model, X, Y, optimizer=optimizer, every=1)
    first.epoch_end()
    with pytest.warns(UserWarning, match="already watched") as caught:
        second = Monitor(model, X, Y, optimizer=optimizer, every=1)
    assert len(caught) == 1
    assert first.closed and not second.closed
    assert len(model._forward_pre_hooks) == 1 and len(optimizer._optimizer_step_post_hooks) == 1
    assert not model[1]._forward_hooks
    assert first.run.status == "finished" and len(first.run.epochs) == 1  # its record is kept
    ref = weakref.ref(first)
    del first
    gc.collect()
    assert ref() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second.close()
        third = Monitor(model, X, Y)  # after a close: no warning
    third.close()


def test_a_monitor_closed_before_any_epoch_is_stopped_and_refuses_more_work(data):
    X, Y = data
    monitor = Monitor(tiny(), X, Y)
    monitor.close()
    assert monitor.run.status == "stopped"
    for call in (monitor.epoch_end, lambda: monitor.log(1.0), lambda: next(iter(monitor.epochs(3)))):
        with pytest.raises(RuntimeError, match="closed; create a new one"):
            call()


def test_epochs_after_a_finished_run_continues_it_or_says_why(data):
    X, Y = data
    model = tiny()
    optimizer = torch.optim.Adam(model.parameters())
    monitor = Monitor(model, X, Y, optimizer=optimizer, every=1)
    for _ in monitor.epochs(2):
        train_epoch(model, optimizer, X, Y, monitor)
    assert monitor.run.status == "finished"
    for _ in monitor.epochs(4):  # more epochs: the same run goes on
        train_epoch(model, optimizer, X, Y, monitor)
    assert [r.epoch for r in monitor.run.epochs] == [1, 2, 3, 4] and monitor.run.status == "finished"
    with pytest.raises(RuntimeError, match="finished after 4 epochs.*more epochs than that"):
        next(iter(monitor.epochs(4)))
    monitor.close()


# --------------------------------------------------------------------------- #
# a bare `for epoch in monitor.epochs(n)` loop left by an uncaught exception is "failed"
# --------------------------------------------------------------------------- #
@pytest.fixture
def shell():
    """An IPython shell (no kernel needed): its cells run as a notebook's do."""
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    shell = interactiveshell.InteractiveShell.instance()
    yield shell
    interactiveshell.InteractiveShell.clear_instance()


def _watch_callbacks(shell) -> list:
    return [c for c in shell.events.callbacks["post_run_cell"] if "UncaughtWatch" in repr(c)]


def test_a_notebook_cell_whose_loop_raises_fails_the_run(data, shell, capsys):
    X, Y = data
    monitor = Monitor(tiny(), X, Y, every=1)
    shell.user_ns["monitor"] = monitor
    result = shell.run_cell("for epoch in monitor.epochs(5):\n"
                            "    if epoch == 2:\n"
                            "        raise RuntimeError('boom in the cell')\n")
    assert isinstance(result.error_in_exec, RuntimeError)
    run = monitor.run
    assert run.status == "failed" and run.message == "RuntimeError: boom in the cell"
    assert "boom in the cell" in run.traceback and len(run.epochs) == 2  # the record is kept
    assert _watch_callbacks(shell) == []  # unregistered after the cell
    monitor.close()
    assert monitor.run.status == "failed"


def test_a_notebook_loop_left_on_purpose_stays_stopped(data, shell, capsys):
    X, Y = data
    monitor = Monitor(tiny(), X, Y, every=1)
    shell.user_ns["monitor"] = monitor
    shell.run_cell("for epoch in monitor.epochs(5):\n    if epoch == 1:\n        break\n")
    assert monitor.run.status == "stopped" and _watch_callbacks(shell) == []
    result = shell.run_cell("1 / 0")  # a later cell's error is not the loop's
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert monitor.run.status == "stopped"
    monitor.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_loop_in_a_thread_that_raises_fails_the_run(data):
    X, Y = data
    monitor = Monitor(tiny(), X, Y, every=1)

    def loop():
        for epoch in monitor.epochs(5):
            if epoch == 1:
                raise ValueError("boom in the thread")

    thread = threading.Thread(target=loop)
    thread.start()
    thread.join()
    assert monitor.run.status == "failed" and "boom in the thread" in monitor.run.traceback
    monitor.close()
    import sys
    assert threading.excepthook is threading.__excepthook__ or "uncaught" not in repr(threading.excepthook)
    assert "uncaught" not in getattr(sys.excepthook, "__module__", "")


def test_a_script_whose_loop_raises_fails_the_run(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(
        "import sys, torch\n"
        "from yeswidget.monitor import Monitor\n"
        "from yeswidget.training.tasks import mlp\n"
        "def report(kind, value, tb):\n"
        "    run = monitor.run\n"
        "    print('STATUS', run.status, '|', run.message, '|', 'boom' in run.traceback, len(run.epochs))\n"
        "sys.excepthook = report  # runs after yeswidget's chained hook\n"
        "X, Y = torch.randn(32, 4), torch.rand(32, 3)\n"
        "monitor = Monitor(mlp((4, 8, 3)), X, Y, every=1, runs_dir=None)\n"
        "for epoch in monitor.epochs(5):\n"
        "    if epoch == 2:\n"
        "        raise RuntimeError('boom in the script')\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert "STATUS failed | RuntimeError: boom in the script | True 2" in done.stdout, done.stdout + done.stderr


# --------------------------------------------------------------------------- #
# issue 11, acceptance 1: models written the way tutorials write them, attached unedited;
# every epoch record equals a YesCloud fed the post-activation tensors computed by hand
# --------------------------------------------------------------------------- #
F = nn.functional


class ReusedReLU(nn.Module):  # (a) one nn.ReLU called twice
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.relu = nn.Linear(6, 16), nn.Linear(16, 12), nn.Linear(12, 3), nn.ReLU()

    def forward(self, x):
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))

    def by_hand(self, x):
        h1 = torch.relu(self.fc1(x))
        h2 = torch.relu(self.fc2(h1))
        return [h1, h2], self.fc3(h2)


class FunctionalReLU(nn.Module):  # (b) F.relu in forward
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(6, 10), nn.Linear(10, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))

    def by_hand(self, x):
        h1 = F.relu(self.fc1(x))
        h2 = F.relu(self.fc2(h1))
        return [h1, h2], self.out(h2)


class BatchNormClassifier(nn.Module):  # (c) BatchNorm1d + F.relu, returns (logits, probas)
    def __init__(self):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(6, 16, bias=False), nn.BatchNorm1d(16)
        self.fc2, self.bn2, self.drop = nn.Linear(16, 12), nn.BatchNorm1d(12), nn.Dropout(0.2)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        x = F.relu(self.bn1(self.fc1(x)))
        x = self.drop(F.relu(self.bn2(self.fc2(x))))
        logits = self.head(x)
        return logits, F.softmax(logits, dim=1)

    def by_hand(self, x):
        h1 = F.relu(self.bn1(self.fc1(x)))
        h2 = F.relu(self.bn2(self.fc2(h1)))
        return [h1, h2], self.head(h2)


class QuickstartNetwork(nn.Module):  # (e) Flatten + Sequential classifier (the PyTorch quickstart)
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(nn.Linear(36, 20), nn.ReLU(), nn.Linear(20, 16), nn.ReLU(),
                                               nn.Linear(16, 3))

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))

    def by_hand(self, x):
        stack = self.linear_relu_stack
        h1 = torch.relu(stack[0](x.flatten(1)))
        h2 = torch.relu(stack[2](h1))
        return [h1, h2], stack[4](h2)


class SmallCNN(nn.Module):  # (f) two conv layers, then a 3-layer MLP head
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.pool = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1), nn.MaxPool2d(2)
        self.fc1, self.fc2, self.fc3 = nn.Linear(8 * 2 * 2, 16), nn.Linear(16, 12), nn.Linear(12, 3)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    def by_hand(self, x):
        features = self.pool(F.relu(self.conv2(self.pool(F.relu(self.conv1(x)))))).flatten(1)
        h1 = F.relu(self.fc1(features))
        h2 = F.relu(self.fc2(h1))
        return [h1, h2], self.fc3(h2)


def _by_hand(model, X):
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            return model.by_hand(X)
    finally:
        for m, mode in modes.items():
            m.training = mode


def _tutorial_data(shape, labels: bool, n: int = 48):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, *shape, generator=g)
    Y = torch.randint(0, 3, (n,), generator=g) if labels else torch.rand(n, 3, generator=g)
    return X, Y


@pytest.mark.parametrize(
    "make, shape, labels, options",
    [
        (ReusedReLU, (6,), False, {}),
        (FunctionalReLU, (6,), False, {}),
        (BatchNormClassifier, (6,), True, {"output": 0}),
        (QuickstartNetwork, (6, 6), True, {}),
        (SmallCNN, (1, 8, 8), False, {}),
    ],
    ids=["a-reused-relu", "b-functional-relu", "c-batchnorm-tuple-output", "e-flatten-sequential", "f-cnn-head"],
)
def test_issue11_acceptance_1_tutorial_models_match_a_cloud_fed_by_hand(make, shape, labels, options):
    torch.manual_seed(0)
    model = make()
    X, Y = _tutorial_data(shape, labels)
    targets = F.one_hot(Y, 3).double() if labels else Y
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    reference = YesCloud(X.reshape(X.shape[0], -1), targets, 3)
    expected = []
    if labels:  # compared with a squared-error cloud fed by hand: the Brier score (judge="probabilities")
        options = dict(options, judge="probabilities")
    with Monitor(model, X, Y, optimizer=optimizer, every=1, background=False, **options) as monitor:
        assert monitor.depth == 3 and monitor.bias and str(monitor.plan.activation) == "relu"
        assert monitor.run.upper == pytest.approx(reference.upper, rel=RTOL)
        for _ in monitor.epochs(3):
            for xb, yb in zip(X.split(16), Y.split(16)):
                optimizer.zero_grad()
                out = model(xb)
                out = out[0] if isinstance(out, tuple) else out
                (F.cross_entropy(out, yb) if labels else F.mse_loss(out, yb)).backward()
                optimizer.step()
                monitor.log(None)
            hidden, output = _by_hand(model, X)
            lower = reference.update(hidden)
            scored = torch.softmax(output.double(), 1) if labels else output.double()
            expected.append((float((scored - targets.double()).square().sum() / X.shape[0]), lower,
                             reference.yes_k()))
    assert len(monitor.run.epochs) == 3
    for record, (loss, lower, yes_k) in zip(monitor.run.epochs, expected):
        assert record.bounds_updated and close(record.loss, loss) and close(record.lower, lower)
        assert all(close(a, b) for a, b in zip(record.yes_k, yes_k))
    assert_no_hooks(model, optimizer)


def test_issue11_acceptance_1_describe_says_what_is_certified_in_forward_order():
    torch.manual_seed(0)
    X, Y = _tutorial_data((6,), labels=True)
    with Monitor(BatchNormClassifier(), X, Y, output=0) as monitor:
        text = monitor.describe()
    order = ["fc1 (Linear)", "batch_norm", "F.relu in BatchNormClassifier.forward", "fc2 (Linear)", "head (Linear)",
             "output=0", "Hidden widths: 16, 12", "activation: relu", "bias: yes", "Tapped",
             "Certification set: bounds and epoch loss on all 48", "Judged: cross-entropy", "Cost: cost estimate on 48"]
    positions = [text.find(word) for word in order]
    assert -1 not in positions and positions == sorted(positions), text
    assert "describe()" in repr(monitor)
    with pytest.raises(CaptureError, match=r"output=0") as info:  # the tuple, said in the error
        Monitor(BatchNormClassifier(), X, Y)
    assert "tuple of 2" in str(info.value)


def test_issue11_acceptance_2_a_costly_conv_tap_is_refused_before_training_within_seconds():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 32 * 32, 10))
    X = torch.randn(2000, 3, 32, 32)
    Y = torch.randint(0, 10, (2000,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    started = time.perf_counter()
    with pytest.raises(CostError) as info:
        Monitor(model, X, Y, optimizer=optimizer, include_conv=True)
    assert time.perf_counter() - started < 30  # loose: a shared CI core; the point is "not minutes"
    message = str(info.value)
    for words in ("refusing to start", "one YES-k update", "cost estimate on 2000 samples", "65536",
                  "max_samples", "narrower taps", "every=k", "allow_expensive=True"):
        assert words in message, message
    assert_no_hooks(model, optimizer)
    # without include_conv the convolution is part of layer 1: cheap, and said so
    with Monitor(model, X[:200], Y[:200], max_samples=100) as monitor:
        assert monitor.depth == 1 and "before layer 1" in monitor.describe()


def test_a_hidden_layer_as_wide_as_the_samples_is_called_degenerate():
    X, Y = torch.randn(20, 4), torch.rand(20, 3)
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="degenerate") as caught:
        monitor = Monitor(mlp((4, 32, 3)), X, Y)
    assert any("max_samples" in str(w.message) for w in caught)
    assert any("degenerate" in w for w in monitor.run.warnings) and "degenerate" in monitor.describe()
    monitor.close()


def test_issue11_acceptance_1d_lightning_autoencoder_with_predict_and_the_callback():
    """(d) The autoencoder LightningModule of Lightning's README, class unedited: its forward returns the
    embedding; the trained map decoder(encoder(x)) is given as predict=, attached with YesCallback."""
    lightning = pytest.importorskip("lightning")
    from yeswidget.integrations.lightning import YesCallback

    class LitAutoEncoder(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
            self.decoder = nn.Sequential(nn.Linear(3, 12), nn.ReLU(), nn.Linear(12, 16))

        def forward(self, x):
            embedding = self.encoder(x)
            return embedding

        def training_step(self, batch, batch_idx):
            x, _ = batch
            x = x.view(x.size(0), -1)
            z = self.encoder(x)
            x_hat = self.decoder(z)
            loss = F.mse_loss(x_hat, x)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    def reconstruct(module, x):
        return module.decoder(module.encoder(x.view(x.size(0), -1)))

    class ByHand(lightning.Callback):  # runs after YesCallback: the epoch's tensors, by hand
        def __init__(self):
            self.reference = YesCloud(X, X, 3)
            self.expected = []

        def on_train_epoch_end(self, trainer, module):
            with torch.no_grad():
                h1 = torch.relu(module.encoder[0](X))
                h2 = torch.relu(module.decoder[0](module.encoder[2](h1)))  # the linear bottleneck: one layer
                out = module.decoder[2](h2)
            self.expected.append((metric_e(out, X), self.reference.update([h1, h2])))

    torch.manual_seed(0)
    X = torch.rand(64, 16)
    module = LitAutoEncoder()
    callback, by_hand = YesCallback(X, X, predict=reconstruct, every=1, runs_dir=None), ByHand()
    trainer = lightning.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, callbacks=[callback, by_hand])
    trainer.fit(module, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, X), batch_size=16))
    run = callback.run
    assert run.status == "finished" and [r.epoch for r in run.epochs] == [1, 2, 3]
    assert run.config["widths"] == [12, 12] and run.upper == pytest.approx(by_hand.reference.upper, rel=RTOL)
    for record, (loss, lower) in zip(run.epochs, by_hand.expected):
        assert record.bounds_updated and close(record.loss, loss) and close(record.lower, lower)


def test_the_cost_limit_is_an_option_and_allow_expensive_overrides_it(data):
    X, Y = data
    model = tiny()
    with pytest.raises(CostError, match=r"limit 0 ms"):
        Monitor(model, X, Y, max_update_seconds=1e-9)
    assert_no_hooks(model)
    with Monitor(model, X, Y, max_update_seconds=1e-9, allow_expensive=True, every=1) as monitor:
        monitor.epoch_end()
    assert monitor.run.epochs[0].bounds_updated
    with pytest.raises(ValueError, match="max_update_seconds"):
        Monitor(model, X, Y, max_update_seconds=0)
