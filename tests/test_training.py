"""The training engine (``yeswidget.training``): Settings, schedules, batch-size
options, and the background :class:`Trainer` with its live controls.

Everything runs on tiny data (a few dozen samples, a 3-layer MLP), so each test
takes well under a second of CPU. Nothing asserts on timing: the live controls
are driven from inside the training thread through optimizer step hooks, which
makes "at the next step" and "within one step" exact, checkable statements.
"""
from __future__ import annotations

import math
import threading

import pytest
import torch

import yeswidget.training.tasks as tasks
from yeswidget.core.run import StatusEvent
from yeswidget.engine.bounds import YesCloud
from yeswidget.training import (
    OPTIMIZERS,
    SCHEDULES,
    Settings,
    Trainer,
    batch_size_options,
    schedule_factor,
)

N_SAMPLES = 64


def _data(seed: int = 0, n: int = N_SAMPLES) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    Y = torch.relu(X @ torch.randn(4, 3, generator=g)) + 0.1 * torch.randn(n, 3, generator=g)
    return X, Y


def tiny_task(make_model=None, **kw) -> tasks.Task:
    X, Y = _data()
    return tasks.Task.from_tensors(make_model or (lambda: tasks.mlp([4, 8, 8, 3])), X, Y, name="tiny", **kw)


from helpers import AlwaysFails, FailsOnThirdStep, HookedTrainer  # noqa: E402


def _settings(**kw) -> Settings:
    base = dict(lr=1e-2, batch_size=16, epochs=3, optimizer="adam", schedule="constant", seed=0, every=1)
    base.update(kw)
    return Settings(**base)


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    "field, value",
    [
        ("lr", 0), ("lr", -1e-3), ("lr", math.nan), ("lr", math.inf), ("lr", "1e-3"),
        ("batch_size", 0), ("batch_size", 1.5), ("batch_size", True),
        ("epochs", 0), ("epochs", -3), ("step_size", 0), ("cycle", 0),
        ("seed", -1), ("seed", True), ("seed", 1.0),
        ("optimizer", "rmsprop"), ("optimizer", "Adam"),
        ("schedule", "linear"),
        ("gamma", 0.0), ("gamma", 1.5),
    ],
)
def test_settings_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        Settings(**{field: value})


def test_settings_defaults_are_the_papers_recipe_and_as_dict_round_trips():
    s = Settings()
    assert (s.lr, s.batch_size, s.optimizer, s.schedule, s.step_size, s.gamma) == (1e-3, 50, "adam", "step", 50, 0.9)
    assert Settings(**s.as_dict()) == s
    assert set(s.as_dict()) >= {"lr", "batch_size", "epochs", "optimizer", "schedule", "seed"}
    assert OPTIMIZERS == ("adam", "sgd", "slimtrain")
    assert SCHEDULES[:4] == ("constant", "step", "cosine", "cyclic") and len(SCHEDULES) == 14  # old names first


def test_validate_catches_a_value_changed_after_construction():
    s = Settings()
    s.lr = -1.0
    with pytest.raises(ValueError, match="lr"):
        s.validate()


# --------------------------------------------------------------------------- schedules
def test_schedule_constant_is_one_everywhere():
    s = Settings(schedule="constant", epochs=10)
    assert [schedule_factor(s, e) for e in range(0, 30, 7)] == [1.0] * 5


def test_schedule_step_is_steplr():
    s = Settings(schedule="step", step_size=50, gamma=0.9, epochs=200)
    assert schedule_factor(s, 0) == 1.0
    assert schedule_factor(s, 49) == 1.0
    assert schedule_factor(s, 50) == pytest.approx(0.9)
    assert schedule_factor(s, 99) == pytest.approx(0.9)
    assert schedule_factor(s, 100) == pytest.approx(0.81)
    assert schedule_factor(s, 175) == pytest.approx(0.9 ** 3)


def test_schedule_cosine_goes_from_one_to_zero_over_the_run():
    s = Settings(schedule="cosine", epochs=100)
    assert schedule_factor(s, 0) == pytest.approx(1.0)
    assert schedule_factor(s, 50) == pytest.approx(0.5)
    assert schedule_factor(s, 25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert schedule_factor(s, 100) == pytest.approx(0.0, abs=1e-12)
    assert schedule_factor(s, 150) == pytest.approx(0.0, abs=1e-12)  # stays at 0 past the end
    values = [schedule_factor(s, e) for e in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_schedule_cyclic_is_triangular_between_a_tenth_and_one():
    s = Settings(schedule="cyclic", cycle=10, epochs=100)
    assert schedule_factor(s, 0) == pytest.approx(0.1)
    assert schedule_factor(s, 5) == pytest.approx(0.55)
    assert schedule_factor(s, 10) == pytest.approx(1.0)
    assert schedule_factor(s, 15) == pytest.approx(0.55)
    assert schedule_factor(s, 20) == pytest.approx(0.1)  # period 2·cycle
    assert schedule_factor(s, 30) == pytest.approx(1.0)
    values = [schedule_factor(s, e) for e in range(100)]
    assert min(values) == pytest.approx(0.1) and max(values) == pytest.approx(1.0)


# --------------------------------------------------------------------------- batch sizes
def test_batch_size_options_powers_of_two_and_the_papers_sizes_clamped_to_n():
    assert batch_size_options(800) == [1, 2, 4, 8, 16, 20, 32, 50, 64, 100, 128, 256, 500, 512, 800]
    assert batch_size_options(30) == [1, 2, 4, 8, 16, 20, 30]
    assert batch_size_options(64) == [1, 2, 4, 8, 16, 20, 32, 50, 64]  # N itself, once
    assert batch_size_options(1) == [1]
    big = batch_size_options(100_000)
    assert big[-1] == 100_000 and 32768 in big and 500 in big
    assert big == sorted(set(big))


# --------------------------------------------------------------------------- the trainer
def test_same_seed_gives_identical_weights_and_identical_curves():
    task = tiny_task()
    runs = [Trainer(task, _settings(seed=3, epochs=4)).start(background=False) for _ in range(2)]
    a, b = runs
    assert a.run.status == b.run.status == "finished"
    for key, value in a.initial_state.items():
        assert torch.equal(value, b.initial_state[key])
    assert [r.loss for r in a.run.epochs] == [r.loss for r in b.run.epochs]
    assert a.run.step_losses == b.run.step_losses
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key])
    # another seed: other initial weights, another curve
    c = Trainer(task, _settings(seed=4, epochs=4)).start(background=False)
    assert not torch.equal(c.initial_state["0.weight"], a.initial_state["0.weight"])
    assert [r.loss for r in c.run.epochs] != [r.loss for r in a.run.epochs]


def test_initial_state_is_the_seeds_model_before_training():
    task = tiny_task()
    t = Trainer(task, _settings(seed=7, epochs=2)).start(background=False)
    fresh = task.model(7).state_dict()
    for key, value in fresh.items():
        assert torch.equal(t.initial_state[key], value)
    assert not torch.equal(t.model.state_dict()["0.weight"], fresh["0.weight"])  # it did train


def test_run_records_epochs_config_and_the_epoch_loss_in_the_cloud_metric():
    task = tiny_task()
    t = Trainer(task, _settings(epochs=3, batch_size=16), run_id="r1").start(background=False)
    run = t.run
    assert run.run_id == "r1" and run.status == "finished"
    assert [r.epoch for r in run.epochs] == [1, 2, 3]
    for key in ("lr", "batch_size", "epochs", "optimizer", "schedule", "seed"):
        assert key in run.config
    assert run.config["task"] == "tiny"
    assert t.monitor.step == 3 * (N_SAMPLES // 16)
    with torch.no_grad():
        loss = ((t.model(task.X_train) - task.Y_train) ** 2).sum().item() / N_SAMPLES
    assert run.epochs[-1].loss == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)])
def test_optimizer_choice(name, cls):
    t = Trainer(tiny_task(), _settings(optimizer=name, epochs=1)).start(background=False)
    assert type(t.optimizer) is cls
    assert t.run.config["optimizer"] == name


def test_slimtrain_choice_solves_the_last_layer_and_records_lambda_per_epoch():
    from yeswidget import SlimTrain

    t = HookedTrainer(tiny_task(), _settings(optimizer="slimtrain", lr=0.01, schedule="step", step_size=1,
                                             gamma=0.5, epochs=2, batch_size=32))
    t.start(background=False)
    assert isinstance(t.optimizer, SlimTrain) and isinstance(t.optimizer.optimizer, torch.optim.Adam)
    assert t.run.status == "finished" and t.run.config["optimizer"] == "slimtrain"
    per_epoch = N_SAMPLES // 32
    assert t.lrs == pytest.approx([0.01] * per_epoch + [0.005] * per_epoch)  # the schedule reaches Adam
    assert t.monitor.step == 2 * per_epoch
    assert [r.extra["regularization"] > 0 for r in t.run.epochs] == [True, True]
    trained = {id(p) for group in t.optimizer.param_groups for p in group["params"]}
    assert not trained & {id(p) for p in t.optimizer.layer.parameters()}  # Adam trains the features only


def test_schedule_reaches_the_optimizer_as_base_times_factor():
    t = HookedTrainer(tiny_task(), _settings(lr=0.01, schedule="step", step_size=2, gamma=0.5, epochs=5,
                                             batch_size=32))
    t.start(background=False)
    per_epoch = N_SAMPLES // 32
    assert t.lrs == pytest.approx([0.01] * 2 * per_epoch + [0.005] * 2 * per_epoch + [0.0025] * per_epoch)
    assert [r.lr for r in t.run.epochs] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])


def test_a_shared_cloud_is_reused_not_mutated():
    task = tiny_task()
    cloud = YesCloud(task.X_train, task.Y_train, 3)
    a = Trainer(task, _settings(epochs=2), cloud=cloud).start(background=False)
    Trainer(task, _settings(epochs=3), cloud=cloud).start(background=False)
    assert cloud.epochs == []  # each run works on cloud.fresh()
    assert a.run.upper == cloud.upper


# --------------------------------------------------------------------------- live controls
def test_set_lr_and_set_batch_size_validate():
    t = Trainer(tiny_task(), _settings())
    for bad in (0, -1.0, math.nan, math.inf, "0.1"):
        with pytest.raises(ValueError, match="lr"):
            t.set_lr(bad)
    for bad in (0, -2, 2.0, True):
        with pytest.raises(ValueError, match="batch_size"):
            t.set_batch_size(bad)


def test_lr_change_reaches_the_optimizer_at_the_next_step():
    new_lr = 3e-4

    def post(trainer, step):
        if step == 5:
            trainer.set_lr(new_lr)  # between step 5 and step 6

    t = HookedTrainer(tiny_task(), _settings(lr=1e-2, batch_size=8, epochs=2), on_post=post)
    t.start(background=False)
    assert t.lrs[:5] == [1e-2] * 5
    assert t.lrs[5:] == [new_lr] * (len(t.lrs) - 5)
    assert t.monitor.lr == new_lr
    assert t.run.epochs[-1].lr == new_lr


def test_batch_size_change_applies_at_the_next_epoch_and_is_marked():
    def post(trainer, step):
        if step == 2:  # mid-epoch 1 (4 steps of 16)
            trainer.set_batch_size(8)

    t = HookedTrainer(tiny_task(), _settings(batch_size=16, epochs=3), on_post=post)
    t.start(background=False)
    run = t.run
    assert [r.batch_size for r in run.epochs] == [16, 8, 8]
    assert [r.step for r in run.epochs] == [4, 4 + 8, 4 + 16]
    assert run.marks == [{"position": 1.0, "kind": "batch_size", "value": 8, "previous": 16}]


def test_batch_size_records_the_setting_not_a_short_last_minibatch():
    # 64 samples in batches of 20: 20, 20, 20, 4
    t = Trainer(tiny_task(), _settings(batch_size=20, epochs=2)).start(background=False)
    assert [r.batch_size for r in t.run.epochs] == [20, 20]


def test_batch_size_above_n_is_clamped_and_marked_once():
    def post(trainer, step):
        if step == 1:
            trainer.set_batch_size(10_000)

    t = HookedTrainer(tiny_task(), _settings(batch_size=32, epochs=4), on_post=post)
    t.start(background=False)
    assert t.run.marks == [{"position": 1.0, "kind": "batch_size", "value": N_SAMPLES, "previous": 32}]
    assert [r.batch_size for r in t.run.epochs] == [32, N_SAMPLES, N_SAMPLES, N_SAMPLES]


def test_stop_takes_effect_within_one_step():
    started_after_stop = []

    def pre(trainer, step):
        if trainer.stop_requested:
            started_after_stop.append(step)

    def post(trainer, step):
        if step == 7:
            trainer.stop()

    t = HookedTrainer(tiny_task(), _settings(batch_size=4, epochs=50), on_pre=pre, on_post=post)
    t.start(background=False)
    assert started_after_stop == []  # requested between steps: not one more step
    assert t.steps == 7 and t.monitor.step == 7
    assert t.run.status == "stopped"
    # the epoch in progress was cut short: not certified as if whole, its steps kept
    assert len(t.run.epochs) == 0 and len(t.run.step_losses) == 7


def test_stop_from_another_thread_lets_at_most_one_step_finish():
    reached = threading.Event()
    started_after_stop = []

    def pre(trainer, step):
        if trainer.stop_requested:
            started_after_stop.append(step)

    def post(trainer, step):
        if step >= 3:
            reached.set()

    t = HookedTrainer(tiny_task(), _settings(batch_size=1, epochs=10_000), on_pre=pre, on_post=post)
    t.start()
    try:
        assert reached.wait(60)
        t.stop()
        assert t.wait(60)
    finally:
        t.stop()
        t.wait(60)
    assert len(started_after_stop) <= 1
    assert t.run.status == "stopped"
    assert t.thread is not None and not t.thread.is_alive()
    steps = t.monitor.step
    assert t.wait(0) and t.monitor.step == steps


def test_pause_blocks_steps_and_resume_continues():
    paused = threading.Event()

    def post(trainer, step):
        if step == 3:
            trainer.pause()
            paused.set()

    t = HookedTrainer(tiny_task(), _settings(batch_size=16, epochs=3), on_post=post)
    t.start()
    try:
        assert paused.wait(60)
        assert t.paused and t.alive
        assert not t.wait(0.3)  # blocked, not finished
        assert t.steps == 3
        t.resume()
        assert t.wait(60)
    finally:
        t.stop()
        t.wait(60)
    assert not t.paused
    assert t.run.status == "finished" and t.steps == 3 * 4


def test_stop_wakes_a_paused_run():
    paused = threading.Event()

    def post(trainer, step):
        if step == 2:
            trainer.pause()
            paused.set()

    t = HookedTrainer(tiny_task(), _settings(batch_size=16, epochs=5), on_post=post)
    t.start()
    assert paused.wait(60)
    t.stop()
    assert t.wait(60)
    assert t.steps == 2 and t.run.status == "stopped"


# --------------------------------------------------------------------------- failures
def test_exception_in_forward_fails_the_run_and_keeps_it():
    events = []
    t = Trainer(tiny_task(FailsOnThirdStep), _settings(batch_size=32, epochs=5), subscribers=(events.append,))
    t.start()
    assert t.wait(60)
    run = t.run
    assert run.status == "failed"
    assert "RuntimeError" in run.message and "boom at step 3" in run.message
    assert "forward" in run.traceback and "boom at step 3" in run.traceback
    assert isinstance(t.error, RuntimeError)
    assert [r.epoch for r in run.epochs] == [1]  # the first epoch (2 steps) is kept
    assert any(isinstance(e, StatusEvent) and e.status == "failed" for e in events)
    assert t.monitor.closed and not any(m._forward_hooks or m._forward_pre_hooks for m in t.monitor.model.modules())


def test_exception_while_building_fails_the_run_with_traceback():
    task = tiny_task(AlwaysFails, check_model=False)  # fails when the Monitor first runs it
    events = []
    t = Trainer(task, _settings(), run_id="broken", subscribers=(events.append,))
    t.start()
    assert t.wait(60)
    assert t.run.status == "failed" and t.run.run_id == "broken"
    assert "never works" in t.run.message
    assert "never works" in t.run.traceback
    failed = [e for e in events if isinstance(e, StatusEvent)]
    assert failed and failed[0].status == "failed" and failed[0].traceback


def test_divergence_is_detected_and_stops_the_run():
    task = tasks.phase_retrieval(n_samples=125)  # 100 training samples
    t = Trainer(task, Settings(lr=10.0, batch_size=50, epochs=40, optimizer="sgd", schedule="constant", every=1))
    t.start(background=False)
    run = t.run
    assert run.status == "diverged"
    assert "loss became" in run.message
    assert run.epochs and len(run.epochs) < 40  # stopped early, the record kept
    assert not all(math.isfinite(r.loss) for r in run.epochs)


def test_a_float64_model_trains_in_its_own_dtype():
    """The Trainer feeds the model in the model's dtype (review finding: float64 models failed)."""
    task = tiny_task(make_model=lambda: tasks.mlp([4, 8, 8, 3]).double())
    trainer = Trainer(task, _settings(epochs=2)).start(background=False)
    assert trainer.run.status == "finished" and len(trainer.run.epochs) == 2
