"""Verdicts users can trust: classifiers, degenerate bounds, validation, the paper's protocol."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from yeswidget.cli import main as cli_main
from yeswidget.engine.bounds import YesCloud
from yeswidget.monitor import Monitor
from yeswidget.training.tasks import mlp

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    X = torch.tensor(data.data / 16.0, dtype=torch.float32)
    return X, torch.tensor(data.target, dtype=torch.long)


def train(model, optimizer, loss_fn, X, Y, monitor, batch=64, generator=None):
    order = torch.randperm(X.shape[0], generator=generator)
    for start in range(0, X.shape[0], batch):
        index = order[start:start + batch]
        optimizer.zero_grad()
        loss = loss_fn(model(X[index]), Y[index])
        loss.backward()
        optimizer.step()
        monitor.log(loss)


def test_a_cross_entropy_classifier_at_high_accuracy_is_not_red():
    X, labels = digits()
    torch.manual_seed(0)
    model = mlp((64, 64, 64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    with Monitor(model, X, labels, optimizer=optimizer, loss=loss_fn, every=5) as monitor:
        for _ in monitor.epochs(25):
            train(model, optimizer, loss_fn, X, labels, monitor, generator=g)
    final = monitor.run.final
    assert final.accuracy >= 0.95
    assert final.zone != "red", (final.zone, final.loss, final.upper)
    # recorded accuracy and judged loss equal an independent computation
    with torch.no_grad():
        logits = model(X).double()
    onehot = nn.functional.one_hot(labels, 10).double()
    brier = (torch.softmax(logits, 1) - onehot).square().sum().item() / X.shape[0]
    accuracy = (logits.argmax(1) == labels).double().mean().item()
    assert final.loss == pytest.approx(brier, rel=1e-6) and final.accuracy == pytest.approx(accuracy, abs=1e-9)
    # the bounds are those of one-hot targets
    assert monitor.run.upper == pytest.approx(YesCloud(X, onehot, 3).upper, rel=1e-9)
    config = monitor.run.config
    assert config["task_kind"] == "classification"
    assert config["step_loss"] == {"name": "CrossEntropyLoss", "metric": False}  # drawn on its own axis


def test_judge_outputs_scores_raw_outputs_and_labels_must_fit_the_outputs():
    X, labels = digits()
    model = mlp((64, 16, 10))
    with Monitor(model, X[:200], labels[:200], judge="outputs", every=1) as monitor:
        monitor.epoch_end()
    with torch.no_grad():
        raw = model(X[:200]).double()
    expected = (raw - nn.functional.one_hot(labels[:200], 10).double()).square().sum().item() / 200
    monitor.wait()
    assert monitor.run.final.loss == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="class labels 0 … 9 but the model has 5 outputs"):
        Monitor(mlp((64, 16, 5)), X[:50], labels[:50])
    with pytest.raises(ValueError, match="1-D integer tensor"):
        Monitor(mlp((64, 16, 1)), X[:50], labels[:50].float())


def linear_data():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(128, 4, generator=g)
    Y = X @ torch.randn(4, 3, generator=g) + 0.3 * torch.randn(128, 3, generator=g)
    return X, Y


def test_a_linear_model_at_the_least_squares_optimum_is_green_at_the_optimum():
    X, Y = linear_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-2)
    with Monitor(model, X, Y, optimizer=optimizer, every=1) as monitor:
        for _ in monitor.epochs(150):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(X), Y, reduction="sum").backward()
            optimizer.step()
    final = monitor.run.final
    assert final.loss <= final.upper * 1.005  # within 0.5% of the optimum
    assert final.zone == "green" and "optimum" in final.reason
    assert monitor.run.epochs[0].zone == "red"  # the initial weights are far from it


def test_an_autoencoder_whose_data_is_reached_in_closed_form_gets_no_verdict(tmp_path):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(100, 8, generator=g)  # non-negative: relu(fit(X, X)) = X, so YES-0 = 0
    torch.manual_seed(0)
    model = mlp((8, 4, 8))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with pytest.warns(UserWarning, match="narrower than the output"):
        monitor = Monitor(model, X, X, optimizer=optimizer, every=1)
    with monitor:
        for _ in monitor.epochs(5):
            train(model, optimizer, nn.MSELoss(), X, X, monitor, batch=25)
    assert monitor.run.upper < 1e-9
    assert {r.zone for r in monitor.run.epochs} == {"none"}
    assert "YES-0 is 0" in monitor.run.final.reason
    path = tmp_path / "run.json"
    monitor.run.to_json(path)
    assert cli_main(["certify", str(path)]) == 5


def test_a_tap_wider_than_the_certification_set_gets_no_verdict(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 6, generator=g)
    Y = torch.randn(40, 2, generator=g)
    torch.manual_seed(0)
    model = mlp((6, 64, 2))  # 64 hidden units ≥ 40 samples: the hidden layer interpolates any target
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Monitor(model, X, Y, optimizer=optimizer, every=1) as monitor:
        for _ in monitor.epochs(5):
            train(model, optimizer, nn.MSELoss(reduction="sum"), X, Y, monitor, batch=10)
    final = monitor.run.final
    assert final.zone == "none" and "at least as wide as the certification set" in final.reason
    path = tmp_path / "run.json"
    monitor.run.to_json(path)
    assert cli_main(["certify", str(path)]) == 5
    out = capsys.readouterr().out
    assert "-inf" not in out and "at least as wide" in out


def regression_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    Y = (X @ torch.randn(4, 3, generator=g)).abs()
    return X, Y


def seeded(X, Y, validation, epochs=40):
    torch.manual_seed(3)
    model = mlp((4, 16, 16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    val = validation(model) if callable(validation) else validation
    with Monitor(model, X, Y, optimizer=optimizer, validation=val) as monitor:
        for _ in monitor.epochs(epochs):
            train(model, optimizer, nn.MSELoss(reduction="sum"), X, Y, monitor, batch=16,
                  generator=torch.Generator().manual_seed(monitor.epoch))
    return monitor, model


def test_validation_records_equal_an_independent_computation():
    X, Y = regression_data()
    Xv, Yv = regression_data(32, seed=5)
    monitor, model = seeded(X, Y, (Xv, Yv), epochs=4)
    with torch.no_grad():
        expected = (model(Xv).double() - Yv.double()).square().sum().item() / 32
    final = monitor.run.final
    assert final.val_loss == pytest.approx(expected, rel=1e-9)
    assert final.val_accuracy is None and final.accuracy is None
    assert monitor.run.config["validation"] == 32
    assert json.loads(monitor.run.to_json())["epochs"][-1]["val_loss"] == pytest.approx(expected)


def test_the_overfitting_note_fires_when_validation_rises_while_training_is_green():
    X, Y = regression_data()

    def drifting(model):
        # held-out targets the network moves away from as it learns: its initial outputs
        with torch.no_grad():
            return X, model(X).detach().clone()

    overfit, _ = seeded(X, Y, drifting)
    assert overfit.run.epochs_to_green is not None
    notes = [w for w in overfit.run.warnings if w.startswith("overfitting")]
    assert len(notes) == 1 and "while the training loss is green" in notes[0]

    healthy, _ = seeded(X, Y, (X, Y))  # validation = the training task itself: it falls with training
    assert not any(w.startswith("overfitting") for w in healthy.run.warnings)


def test_integer_labels_from_a_dataset_make_a_classifier():
    X, labels = digits()
    dataset = torch.utils.data.TensorDataset(X[:100], labels[:100])
    with Monitor(mlp((64, 16, 10)), dataset, every=1) as monitor:
        monitor.epoch_end()
    monitor.wait()
    assert monitor.run.config["task_kind"] == "classification"
    assert 0.0 <= monitor.run.final.accuracy <= 1.0
    assert np.isfinite(monitor.run.final.loss)
