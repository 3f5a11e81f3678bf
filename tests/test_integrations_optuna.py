"""YesPruner in a real Optuna study (in-memory storage): trials are pruned by their zone."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from tuning_tasks import tiny_abs

from yeswidget import Monitor

optuna = pytest.importorskip("optuna", reason='Optuna is an optional extra: pip install "yeswidget[optuna]"')
from yeswidget.integrations.optuna import YesPruner, report  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EPOCHS = 30
LRS = [0.03, 0.5, 0.02, 1.0, 0.05, 0.7]  # Adam on tiny_abs: ≤ 0.05 leave red in a few epochs, ≥ 0.5 stay red


def objective(trial: optuna.trial.Trial) -> float:
    """A user's own loop: Adam, minibatches of 16 in order, a Monitor, one report per epoch."""
    task = tiny_abs()
    model = task.model(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=trial.suggest_categorical("lr", LRS))
    monitor = Monitor(model, task.X_train, task.Y_train, optimizer=optimizer, every=1, background=False,
                      runs_dir=None)
    loss_fn = nn.MSELoss(reduction="sum")
    try:
        for _ in range(EPOCHS):
            for start in range(0, task.n_train, 16):
                optimizer.zero_grad()
                loss = loss_fn(model(task.X_train[start:start + 16]), task.Y_train[start:start + 16])
                loss.backward()
                optimizer.step()
            monitor.epoch_end()
            record = monitor.run.final
            trial.set_user_attr("zones", "".join(r.zone[0] for r in monitor.run.epochs))
            if report(trial, record):
                raise optuna.TrialPruned(trial.study.pruner.reason(trial))
        return float(monitor.run.final.loss)
    finally:
        monitor.close()


def test_yes_pruner_prunes_red_trials_in_a_real_study():
    study = optuna.create_study(pruner=YesPruner(epochs=EPOCHS), sampler=optuna.samplers.GridSampler({"lr": LRS}))
    study.optimize(objective, n_trials=len(LRS))
    by_lr = {t.params["lr"]: t for t in study.trials}
    assert len(by_lr) == 6
    for lr in (0.5, 1.0, 0.7):
        trial = by_lr[lr]
        assert trial.state == optuna.trial.TrialState.PRUNED, (lr, trial.user_attrs["zones"])
        assert trial.user_attrs["zones"].endswith("r") and len(trial.user_attrs["zones"]) < EPOCHS
    for lr in (0.03, 0.02, 0.05):
        trial = by_lr[lr]
        assert trial.state == optuna.trial.TrialState.COMPLETE, (lr, trial.user_attrs["zones"])
        assert "g" in trial.user_attrs["zones"]  # a trial that reaches green is never pruned
    assert study.best_params["lr"] in (0.03, 0.02, 0.05)


def test_yes_pruner_checks_its_budget():
    with pytest.raises(ValueError, match="epochs must be an int"):
        YesPruner(epochs=0)
