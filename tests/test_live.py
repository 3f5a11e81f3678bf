"""``LiveCloud``: a Monitor and its chart for a user's own training loop, with a
learning-rate slider acting on the user's optimizer and ``train_in_background``.

Tiny data (64 samples, a 3-layer MLP); nothing asserts on timing. Where a loop
must be caught mid-run, it waits on an Event at a chosen step, so "the next
step" is exact.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

import yeswidget.training.tasks as tasks
from yeswidget.core.run import to_db
from yeswidget.widgets.live import LiveCloud

N = 64
BATCH = 16


def data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, 4, generator=g)
    Y = torch.relu(X @ torch.randn(4, 3, generator=g))
    return X, Y


def model_and_optimizer(lr: float = 1e-2, seed: int = 0):
    torch.manual_seed(seed)
    model = tasks.mlp([4, 8, 8, 3])
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def one_epoch(live, model, opt, X, Y, before_step=None):
    loss_fn = nn.MSELoss(reduction="sum")
    for i, start in enumerate(range(0, N, BATCH)):
        if before_step is not None:
            before_step(i)
        xb, yb = X[start:start + BATCH], Y[start:start + BATCH]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        live.log(loss.detach() / xb.shape[0])


def record_lrs(opt) -> list[float]:
    lrs: list[float] = []
    opt.register_step_pre_hook(lambda o, a, k: lrs.append(float(o.param_groups[0]["lr"])))
    return lrs


def new_threads(before) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before]


@pytest.fixture
def lives():
    made: list[LiveCloud] = []
    yield made
    for live in made:
        live.close()


# --------------------------------------------------------------------------- the loop API
def test_epochs_and_log_fill_the_run_and_the_chart(lives):
    X, Y = data()
    model, opt = model_and_optimizer()
    live = LiveCloud(model, X, Y, optimizer=opt, every=1)
    lives.append(live)
    for epoch in live.epochs(3):
        one_epoch(live, model, opt, X, Y)
    assert live.wait(60)
    run = live.run
    assert run is live.monitor.run and live.chart.run is run
    assert run.status == "finished"
    assert [r.epoch for r in run.epochs] == [1, 2, 3]
    assert live.monitor.step == 3 * (N // BATCH)
    assert len(run.step_losses) == 3 * (N // BATCH)
    with torch.no_grad():
        final = ((model(X) - Y) ** 2).sum().item() / N
    assert run.epochs[-1].loss == pytest.approx(final, rel=1e-5)
    np.testing.assert_allclose(live.chart.loss_line.x, [1, 2, 3])
    np.testing.assert_allclose(live.chart.loss_line.y, [to_db(r.loss) for r in run.epochs], rtol=1e-5)
    assert live.chart in live.children and live.lr_slider in live.children


def test_epoch_end_by_hand_without_an_optimizer(lives):
    X, Y = data()
    model, opt = model_and_optimizer()
    live = LiveCloud(model, X, Y)
    lives.append(live)
    assert live.lr_slider is None and live.children == (live.chart,)
    with pytest.raises(ValueError, match="optimizer"):
        live.set_lr(1e-3)
    for _ in range(2):
        one_epoch(live, model, opt, X, Y)
        live.epoch_end()
    live.monitor.finish()
    assert live.wait(60)
    assert [r.epoch for r in live.run.epochs] == [1, 2]
    assert live.monitor.step == 2 * (N // BATCH)  # without an optimizer each log() is a step
    assert live.run.status == "finished"


# --------------------------------------------------------------------------- the lr slider
def test_lr_slider_sets_the_users_optimizer_for_the_next_step(lives):
    X, Y = data()
    torch.manual_seed(0)
    model = tasks.mlp([4, 8, 8, 3])
    params = list(model.parameters())
    opt = torch.optim.SGD([{"params": params[:2]}, {"params": params[2:], "lr": 0.02}], lr=1e-2)
    lrs = record_lrs(opt)
    live = LiveCloud(model, X, Y, optimizer=opt)
    lives.append(live)
    slider = live.lr_slider
    assert type(slider).__name__ == "FloatLogSlider" and slider.description == "learning rate"
    assert slider.value == 1e-2
    one_epoch(live, model, opt, X, Y)
    slider.value = 1e-3
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-3]  # every parameter group
    one_epoch(live, model, opt, X, Y)
    assert lrs == [1e-2] * 4 + [1e-3] * 4
    assert live.monitor.lr == 1e-3
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="lr"):
            live.set_lr(bad)


def test_a_users_scheduler_moves_the_slider_without_feedback(lives):
    X, Y = data()
    model, opt = model_and_optimizer(lr=0.04)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    live = LiveCloud(model, X, Y, optimizer=opt)
    lives.append(live)
    for epoch in live.epochs(2):
        one_epoch(live, model, opt, X, Y)
        scheduler.step()
    assert live.wait(60)
    assert [r.lr for r in live.run.epochs] == pytest.approx([0.04, 0.02])
    # the slider shows what the next step will use: the scheduler's value, not overwritten
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    assert live.lr_slider.value == pytest.approx(0.01)


# --------------------------------------------------------------------------- background loops
def test_train_in_background_takes_slider_moves_at_the_next_step(lives):
    X, Y = data()
    model, opt = model_and_optimizer(lr=1e-2)
    lrs = record_lrs(opt)
    live = LiveCloud(model, X, Y, optimizer=opt)
    lives.append(live)
    at_gate, gate = threading.Event(), threading.Event()

    def hold(i, epoch):
        if epoch == 1 and i == 0:
            at_gate.set()
            assert gate.wait(60)

    def loop(epochs):
        for epoch in live.epochs(epochs):
            one_epoch(live, model, opt, X, Y, before_step=lambda i: hold(i, epoch))

    thread = live.train_in_background(loop, 3)
    assert thread.name == "yeswidget-user-loop" and thread.daemon
    assert at_gate.wait(60)
    live.lr_slider.value = 1e-3  # the kernel is free while the loop trains
    gate.set()
    assert live.wait(60)
    assert lrs == [1e-2] * 4 + [1e-3] * 8
    assert live.run.status == "finished" and len(live.run.epochs) == 3
    assert not thread.is_alive()


def test_train_in_background_twice_at_once_is_refused(lives):
    X, Y = data()
    model, opt = model_and_optimizer()
    live = LiveCloud(model, X, Y, optimizer=opt)
    lives.append(live)
    release = threading.Event()
    live.train_in_background(release.wait, 60)
    try:
        with pytest.raises(RuntimeError, match="already running"):
            live.train_in_background(lambda: None)
    finally:
        release.set()
    assert live.wait(60)
    assert live.run.status == "finished"  # a loop that returns normally finishes the run


@pytest.mark.parametrize("with_epochs", [True, False])
def test_an_exception_in_the_background_loop_fails_the_run(lives, with_epochs):
    X, Y = data()
    model, opt = model_and_optimizer()
    live = LiveCloud(model, X, Y, optimizer=opt, every=1)
    lives.append(live)

    def loop():
        if with_epochs:
            for epoch in live.epochs(5):
                one_epoch(live, model, opt, X, Y)
                if epoch == 1:
                    raise ZeroDivisionError("lost my data loader")
        else:
            one_epoch(live, model, opt, X, Y)
            live.epoch_end()
            raise ZeroDivisionError("lost my data loader")

    thread = live.train_in_background(loop)
    assert live.wait(60)
    assert not thread.is_alive()
    run = live.run
    assert run.status == "failed"
    assert "ZeroDivisionError" in run.message and "lost my data loader" in run.message
    assert "lost my data loader" in run.traceback and "loop" in run.traceback
    assert len(run.epochs) == 1  # the epoch closed before the exception is kept
    assert "failed" in live.chart.status.value and "lost my data loader" in live.chart.status.value


def test_stop_ends_a_background_loop_after_its_epoch(lives):
    X, Y = data()
    model, opt = model_and_optimizer()
    live = LiveCloud(model, X, Y, optimizer=opt)
    lives.append(live)
    started = threading.Event()

    def loop():
        for epoch in live.epochs(100_000):
            one_epoch(live, model, opt, X, Y)
            if epoch == 2:
                started.set()

    live.train_in_background(loop)
    assert started.wait(60)
    live.stop()
    assert live.wait(60)
    assert live.run.status == "stopped"
    assert 3 <= len(live.run.epochs) < 100_000


# --------------------------------------------------------------------------- no thread left
def test_close_stops_the_loop_and_leaves_no_thread():
    before = set(threading.enumerate())
    X, Y = data()
    model, opt = model_and_optimizer()
    live = LiveCloud(model, X, Y, optimizer=opt, every=1)
    started = threading.Event()

    def loop():
        for epoch in live.epochs(100_000):
            one_epoch(live, model, opt, X, Y)
            if epoch == 5:
                started.set()

    live.train_in_background(loop)
    assert started.wait(60)
    live.close()
    assert new_threads(before) == []
    assert live.run.status == "stopped"
    modules = live.monitor.model.modules()
    assert live.monitor.closed and not any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def test_close_after_a_finished_run_leaves_no_thread():
    before = set(threading.enumerate())
    X, Y = data()
    model, opt = model_and_optimizer()
    live = LiveCloud(model, X, Y, optimizer=opt)
    live.train_in_background(lambda: [one_epoch(live, model, opt, X, Y) or live.epoch_end() for _ in range(3)])
    assert live.wait(60)
    live.close()
    assert new_threads(before) == []
    assert live.run.status == "finished" and len(live.run.epochs) == 3


def test_building_livecloud_twice_on_one_model_keeps_one_set_of_hooks():
    import gc
    import weakref

    X, Y = data()
    model, opt = model_and_optimizer()
    first = LiveCloud(model, X, Y, optimizer=opt, every=1)
    first.epoch_end()
    first_monitor = weakref.ref(first.monitor)
    with pytest.warns(UserWarning, match="already watched"):
        second = LiveCloud(model, X, Y, optimizer=opt, every=1)  # the same cell, run again
    try:
        assert first.closed and not second.closed
        assert len(model._forward_pre_hooks) == 1
        assert len(opt._optimizer_step_post_hooks) == 1
        del first
        gc.collect()
        assert first_monitor() is None, "the first LiveCloud's monitor (and its tensors) is still alive"
    finally:
        second.close()


def test_a_failing_constructor_shows_one_error_and_nothing_from_del():
    import gc
    import sys

    X, Y = data()
    model, opt = model_and_optimizer()
    unraisable = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with pytest.raises(ValueError, match="Y must be the targets"):
            LiveCloud(model, X, Y[:, :2], optimizer=opt)  # the wrong targets: one clear error
        gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    assert unraisable == []
    assert not model._forward_pre_hooks and not opt._optimizer_step_post_hooks


def test_an_lr_slider_move_mid_run_is_recorded_in_the_run(lives):
    X, Y = data()
    model, opt = model_and_optimizer(lr=1e-2)
    live = LiveCloud(model, X, Y, optimizer=opt, every=1)
    lives.append(live)
    for epoch in live.epochs(3):
        one_epoch(live, model, opt, X, Y)
        if epoch == 0:
            live.lr_slider.value = 3e-2  # the slider, between epochs 1 and 2
    assert [(m["kind"], m["value"], m["previous"]) for m in live.run.marks] == [("lr", 3e-2, 1e-2)]
    assert live.run.marks[0]["position"] == pytest.approx(1.0, abs=1e-2)  # at the end of epoch 1
    assert "lr 1e-02→3e-02 @" in live.run.label


def test_close_leaves_no_widget_model():
    import ipywidgets

    before = set(ipywidgets.Widget.widgets)
    X, Y = data()
    model, opt = model_and_optimizer()
    live = LiveCloud(model, X, Y, optimizer=opt, every=1)
    for _ in live.epochs(2):
        one_epoch(live, model, opt, X, Y)
    live.wait()
    live.close()
    left = {k: type(ipywidgets.Widget.widgets[k]).__name__ for k in set(ipywidgets.Widget.widgets) - before}
    assert left == {}, f"widget models still open after close(): {sorted(left.values())}"


# --------------------------------------------------------------------------- certify_from= (issue 19)
class _NextValueLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, 8, batch_first=True)
        self.fc = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc(self.lstm(x)[0][:, -1])


@pytest.mark.parametrize("options, zone_words", [
    ({}, ("no verdict", "recurrent")),
    ({"certify_from": "lstm"}, ("head given current features",)),
])
def test_an_lstm_in_the_chart_says_no_verdict_or_head_given_current_features(lives, options, zone_words):
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(N, 5, 1, generator=g), torch.randn(N, 1, generator=g)
    torch.manual_seed(0)
    model = _NextValueLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    live = LiveCloud(model, X, Y, optimizer=opt, every=1, **options)
    lives.append(live)
    for _ in live.epochs(2):
        opt.zero_grad()
        loss = ((model(X) - Y) ** 2).sum() / N
        loss.backward()
        opt.step()
        live.log(loss.detach())
    assert live.wait(60)
    text = live.chart.status.value + " ".join(live.run.warnings)
    for words in zone_words:
        assert words in text, text
    assert (live.run.epochs[-1].zone == "none") == (not options)
