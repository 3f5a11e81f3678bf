"""SlimTrain: the last layer solved in closed form, checked against least squares computed here
(numpy on the augmented system), and the feature extractor's gradient against the reduced
(variable-projection) objective differentiated independently."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from yeswidget import Monitor, SlimTrain
from yeswidget.core.run import Run
from yeswidget.training.slimtrain import SlimTrainConfig, feature_parameters


def data(n: int = 120, d: int = 6, m: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.tanh(X[:, :m] * 2) + 0.1 * torch.randn(n, m, generator=g, dtype=torch.float64)
    return X, Y


def net(d: int = 6, width: int = 16, m: int = 2, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, width), nn.ReLU(), nn.Linear(width, m)).double()


def ridge(Z: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """argmin (1/n)‖[Z 1]·W − Y‖² + λ‖W‖², by lstsq on the stacked system [A/√n; √λ I]·W = [Y/√n; 0]."""
    n = Z.shape[0]
    A = np.hstack([Z, np.ones((n, 1))])
    p = A.shape[1]
    big_A = np.vstack([A / np.sqrt(n), np.sqrt(lam) * np.eye(p)])
    big_Y = np.vstack([Y / np.sqrt(n), np.zeros((p, Y.shape[1]))])
    return np.linalg.lstsq(big_A, big_Y, rcond=None)[0]  # (p+1, m): weights then bias


def layer_solution(model: nn.Sequential) -> np.ndarray:
    last = model[-1]
    return np.vstack([last.weight.detach().numpy().T, last.bias.detach().numpy()[None, :]])


def features(model: nn.Sequential, X: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model[:-1](X).numpy()


@pytest.mark.parametrize("regularization", [1e-3, 0.5, "gcv"])
def test_frozen_features_last_layer_is_the_regularized_least_squares_solution_on_the_memory(regularization):
    X, Y = data()
    model = net()
    slim = SlimTrain(model, torch.optim.Adam(feature_parameters(model), lr=0.0), memory=3,
                     regularization=regularization)
    batches = [(X[i:i + 20], Y[i:i + 20]) for i in range(0, 120, 20)]
    for xb, yb in batches:
        slim.step(xb, yb)
    memory_X = torch.cat([x for x, _ in batches[-3:]])  # the last three minibatches
    memory_Y = torch.cat([y for _, y in batches[-3:]]).numpy()
    lam = slim.regularization
    assert lam is not None and lam > 0
    if regularization != "gcv":
        assert lam == regularization
    expected = ridge(features(model, memory_X), memory_Y, lam)
    np.testing.assert_allclose(layer_solution(model), expected, rtol=0, atol=1e-6)
    assert np.abs(expected).max() > 1e-2  # not a trivially zero layer


def test_gcv_picks_the_minimiser_of_generalized_cross_validation_on_the_memory():
    X, Y = data(n=60)
    model = net()
    slim = SlimTrain(model, torch.optim.SGD(feature_parameters(model), lr=0.0), memory=3)
    for i in range(0, 60, 20):
        slim.step(X[i:i + 20], Y[i:i + 20])
    Z = features(model, X)
    A = np.hstack([Z, np.ones((60, 1))])
    Yn = Y.numpy()

    def gcv(lam: float) -> float:  # with the explicit influence matrix
        H = A @ np.linalg.solve(A.T @ A + 60 * lam * np.eye(A.shape[1]), A.T)
        return float(np.sum(((np.eye(60) - H) @ Yn) ** 2) / np.trace(np.eye(60) - H) ** 2)

    grid = np.logspace(-9, 2, 400)
    best = min(gcv(lam) for lam in grid)
    assert gcv(slim.regularization) <= best * (1 + 1e-3)


def test_lambda_zero_with_a_full_data_memory_is_the_least_squares_solution():
    X, Y = data()
    model = net()
    slim = SlimTrain(model, torch.optim.Adam(feature_parameters(model), lr=0.0), memory=6, regularization=0.0)
    for i in range(0, 120, 20):
        slim.step(X[i:i + 20], Y[i:i + 20])
    A = np.hstack([features(model, X), np.ones((120, 1))])
    expected = np.linalg.lstsq(A, Y.numpy(), rcond=None)[0]
    np.testing.assert_allclose(layer_solution(model), expected, rtol=0, atol=1e-6)
    # and a tiny λ is the same solution (λ → 0 is continuous here: A has full column rank)
    tiny = SlimTrain(net(), torch.optim.Adam(feature_parameters(model), lr=0.0), memory=6, regularization=1e-12)
    for i in range(0, 120, 20):
        tiny.step(X[i:i + 20], Y[i:i + 20])
    np.testing.assert_allclose(layer_solution(tiny.model), expected, rtol=0, atol=1e-6)


def test_feature_gradient_is_the_gradient_of_the_variable_projection_objective():
    """memory 1, fixed λ: d/dθ of min_W [(1/n)‖A(θ)W − Y‖² + λ‖W‖²] is the loss's gradient at the
    solved W (the envelope theorem); here the reduced objective is differentiated through the solve."""
    X, Y = data(n=40)
    lam = 0.05
    model = net()
    slim = SlimTrain(model, torch.optim.SGD(feature_parameters(model), lr=0.0), memory=1, regularization=lam)
    slim.zero_grad()
    loss = slim.loss(X, Y)
    loss.backward()
    assert model[-1].weight.grad is None and model[-1].bias.grad is None  # the solved layer gets no gradient
    got = [p.grad.clone() for p in feature_parameters(model)]

    twin = net()  # same initial weights
    Z = twin[:-1](X)
    A = torch.cat([Z, torch.ones(40, 1, dtype=Z.dtype)], 1)
    W = torch.linalg.solve(A.T @ A + 40 * lam * torch.eye(A.shape[1], dtype=A.dtype), A.T @ Y)
    reduced = ((A @ W - Y).square().sum() / 40 + lam * W.square().sum()) * 40 / Y.numel()  # loss's scale: mean
    reduced.backward()
    want = [p.grad for p in feature_parameters(twin)]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-10)
    assert float(loss.detach()) == pytest.approx(float((A @ W - Y).square().mean()), rel=1e-10)


def test_training_moves_the_features_and_lowers_the_loss_and_the_closure_form_matches():
    X, Y = data(n=200)
    losses = []
    a = net()
    slim = SlimTrain(a, torch.optim.Adam(feature_parameters(a), lr=1e-2), memory=4)
    b = net()
    twin = SlimTrain(b, torch.optim.Adam(feature_parameters(b), lr=1e-2), memory=4)
    for _ in range(15):
        for i in range(0, 200, 40):
            xb, yb = X[i:i + 40], Y[i:i + 40]
            losses.append(float(slim.step(xb, yb)))

            def closure(xb: torch.Tensor = xb, yb: torch.Tensor = yb) -> torch.Tensor:
                twin.zero_grad()
                loss = twin.loss(xb, yb)
                loss.backward()
                return loss

            assert float(twin.step(closure)) == pytest.approx(losses[-1], rel=1e-9)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
    assert slim.steps == 75 and len(slim.memory_batches) == 4


def test_a_monitor_counts_the_steps_reads_lr_and_keeps_the_regularization_per_epoch(tmp_path):
    X, Y = data(n=100)
    model = net()
    slim = SlimTrain(model, torch.optim.Adam(feature_parameters(model), lr=3e-3), memory=2)
    with Monitor(model, X, Y, optimizer=slim.optimizer, every=1, background=False) as monitor:
        for _ in monitor.epochs(3):
            for i in range(0, 100, 25):
                monitor.log(slim.step(X[i:i + 25], Y[i:i + 25]))
            monitor.note("regularization", slim.regularization)
    run = monitor.run
    assert monitor.step == 12 and [r.lr for r in run.epochs] == [3e-3] * 3
    assert [r.extra["regularization"] for r in run.epochs][-1] == pytest.approx(slim.regularization)
    assert all(r.extra["regularization"] > 0 for r in run.epochs)
    # the record's loss is that of the model with the solved layer in it
    with torch.no_grad():
        assert run.final.loss == pytest.approx(float((model(X) - Y).square().sum(1).mean()), rel=1e-6)
    again = Run.from_json(run.to_json(tmp_path / "run.json"))
    assert [r.extra for r in again.epochs] == [r.extra for r in run.epochs]


def test_models_that_cannot_be_separated_get_a_clear_error():
    X, Y = data(n=20)
    with pytest.raises(TypeError, match="has no nn.Linear"):
        SlimTrain(nn.Sequential(nn.Tanh()), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1))
    squashed = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2), nn.Sigmoid()).double()
    slim = SlimTrain(squashed, torch.optim.SGD(feature_parameters(squashed), lr=0.1))
    with pytest.raises(ValueError, match="must be the output of its last nn.Linear.*Move that into the loss"):
        slim.step(X, Y)
    model = net()
    with pytest.raises(ValueError, match="targets of shape"):
        SlimTrain(model, torch.optim.SGD(feature_parameters(model), lr=0.1)).step(X, Y[:, :1])
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        SlimTrain(model, "adam")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="slim.loss"):
        SlimTrain(model, torch.optim.SGD(feature_parameters(model), lr=0.1)).step()
    for bad in ({"memory": 0}, {"regularization": -1.0}, {"regularization": "auto"}, {"reduction": "none"}):
        with pytest.raises(ValueError):
            SlimTrainConfig(**bad)


def test_float32_model_on_its_own_device_and_the_layer_without_bias():
    X, Y = data(n=64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 2, bias=False))
    slim = SlimTrain(model, torch.optim.Adam(feature_parameters(model), lr=0.0), memory=2, regularization=1e-2)
    for i in range(0, 64, 16):
        slim.step(X[i:i + 16].float(), Y[i:i + 16].float())
    Z = features(model, X[32:].float()).astype(np.float64)
    n = Z.shape[0]
    expected = np.linalg.solve(Z.T @ Z + n * 1e-2 * np.eye(12), Z.T @ Y[32:].numpy())
    assert model[-1].weight.dtype == torch.float32
    np.testing.assert_allclose(model[-1].weight.detach().numpy().T, expected, rtol=1e-5, atol=1e-5)
