"""Models whose forward ends in the loss's own output function (sigmoid + BCELoss,
log_softmax + NLLLoss), label smoothing, and losses called the way the user calls them."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from yeswidget.monitor import Monitor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fit(model, loss_fn, X, Y, epochs, lr, *, batch=64, seed=0, **options):
    """A tutorial loop (Adam, shuffled minibatches) under a Monitor judging in ``loss_fn``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    options.setdefault("every", 5)
    with Monitor(model, X, Y, optimizer=optimizer, loss=loss_fn, runs_dir=None, **options) as monitor:
        for _ in monitor.epochs(epochs):
            order = torch.randperm(X.shape[0], generator=g)
            for start in range(0, X.shape[0], batch):
                index = order[start:start + batch]
                optimizer.zero_grad()
                loss = loss_fn(model(X[index]), Y[index])
                loss.backward()
                optimizer.step()
                monitor.log(loss)
    return monitor


def logistic(X, y, C=np.inf):
    """sklearn's logistic regression on the same inputs (no penalty unless ``C``): its logits."""
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = LogisticRegression(C=C, max_iter=5000).fit(X.numpy(), y.numpy())
    return torch.tensor(fitted.decision_function(X.numpy()))


def noisy_binary(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    p = torch.sigmoid(2 * torch.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2])
    return X, torch.bernoulli(p, generator=g)[:, None]


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.data / 16.0, dtype=torch.float32), torch.tensor(data.target, dtype=torch.long)


def test_a_sigmoid_output_trained_with_bce_loss_is_judged_in_bce_and_not_red():
    X, y = noisy_binary()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor = fit(model, nn.BCELoss(), X, y, 60, 1e-2)
    run = monitor.run
    with torch.no_grad():
        ours = nn.functional.binary_cross_entropy(model(X).double(), y.double()).item()
    baseline = nn.functional.binary_cross_entropy_with_logits(logistic(X, y[:, 0]), y[:, 0].double()).item()
    assert ours < baseline, (ours, baseline)
    assert run.final.loss == pytest.approx(ours, rel=1e-6)  # the user's BCELoss on the user's outputs
    assert run.final.zone != "red", (run.final.zone, run.final.reason)
    assert not any("reference, not a certificate" in str(w.message) for w in caught)
    assert "sigmoid" in monitor.describe() and run.config["loss"].startswith("BCELoss")
    with torch.no_grad():
        accuracy = ((model(X) > 0.5).double() == y.double()).double().mean().item()
    assert run.final.accuracy == pytest.approx(accuracy)


def test_a_sigmoid_bce_run_with_a_tiny_learning_rate_is_red():
    X, y = noisy_binary()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
    run = fit(model, nn.BCELoss(), X, y, 10, 1e-7).run
    assert run.final.zone == "red", (run.final.zone, run.final.reason)


def test_a_log_softmax_model_trained_with_nll_loss_is_judged_in_cross_entropy():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(600, 4, generator=g)
    scores = torch.stack([torch.sin(2 * X[:, 0]), X[:, 1] * X[:, 2], X[:, 3].abs() - 0.8], dim=1)
    labels = (3 * scores + 0.7 * torch.randn(600, 3, generator=g)).argmax(dim=1)  # overlapping, not linear
    baseline = nn.functional.cross_entropy(logistic(X, labels), labels).item()

    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3),
                             nn.LogSoftmax(dim=1))

    early = fit(make(), nn.NLLLoss(), X, labels, 1, 1e-4, every=1).run
    assert early.final.loss > baseline and all(r.zone != "green" for r in early.epochs)
    model = make()
    trained = fit(model, nn.NLLLoss(), X, labels, 60, 1e-2, every=10).run
    with torch.no_grad():
        nll = nn.functional.nll_loss(model(X).double(), labels).item()
    assert trained.final.loss == pytest.approx(nll, rel=1e-6)
    assert nll < baseline and trained.final.zone != "red", (nll, baseline, trained.final.zone)

def test_cross_entropy_on_log_softmax_outputs_is_exact_and_asks_for_no_reference_note():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(300, 5, generator=g)
    labels = (X[:, :3] + 0.5 * torch.randn(300, 3, generator=g)).argmax(dim=1)  # overlapping classes
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.LogSoftmax(dim=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = fit(model, nn.CrossEntropyLoss(), X, labels, 2, 1e-2, every=1).run
    assert not any("reference, not a certificate" in str(w.message) for w in caught)
    baseline = nn.functional.cross_entropy(logistic(X, labels), labels).item()
    assert run.final.upper == pytest.approx(baseline, rel=1e-5)  # depth 1: YES-0 is the optimum


def smoothed_minimum(X, labels, eps):
    """The minimum over affine maps of label-smoothed cross-entropy (scipy L-BFGS, float64)."""
    from scipy.optimize import minimize

    A = np.hstack([X.double().numpy(), np.ones((X.shape[0], 1))])
    T = np.eye(int(labels.max()) + 1)[labels.numpy()] * (1 - eps) + eps / (int(labels.max()) + 1)

    def objective(w):
        U = A @ w.reshape(A.shape[1], T.shape[1])
        U = U - U.max(axis=1, keepdims=True)
        logp = U - np.log(np.exp(U).sum(axis=1, keepdims=True))
        grad = A.T @ (np.exp(logp) - T) / A.shape[0]
        return -(T * logp).sum(axis=1).mean(), grad.ravel()

    start = np.zeros(A.shape[1] * T.shape[1])
    return minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-12}).fun


def test_label_smoothing_is_judged_in_the_smoothed_cross_entropy_it_minimises():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(300, 5, generator=g)
    labels = (X[:, :3] + 0.5 * torch.randn(300, 3, generator=g)).argmax(dim=1)
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    monitor = fit(model, loss, X, labels, 3, 1e-2, every=1)
    run = monitor.run
    with torch.no_grad():
        ours = loss(model(X).double(), labels).item()
    assert run.final.loss == pytest.approx(ours, rel=1e-6)
    assert run.final.upper == pytest.approx(smoothed_minimum(X, labels, 0.1), rel=1e-5)
    assert run.config["loss"] == "CrossEntropyLoss(label_smoothing=0.1)"


def test_a_loss_on_softmax_outputs_is_called_with_labels_and_never_green():
    X, labels = digits()
    X, labels = X[:400], labels[:400]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.Softmax(dim=1))
    run = fit(model, nn.CrossEntropyLoss(), X, labels, 6, 1e-2, every=2).run  # a double softmax: no exact solve
    with torch.no_grad():
        ours = nn.functional.cross_entropy(model(X).double(), labels).item()
    assert run.final.loss == pytest.approx(ours, rel=1e-6)
    assert all(r.zone != "green" for r in run.epochs) and run.final.zone in ("red", "yellow")


def test_a_loss_that_cannot_take_the_yes_networks_outputs_says_so_before_training():
    X = torch.linspace(-3, 3, 100)[:, None]
    y = (X > 0).float()  # the least-squares line leaves [0, 1] at both ends
    model = nn.Linear(1, 1)  # logits, but BCELoss wants probabilities
    with pytest.raises(ValueError, match="BCELoss failed on the YES network's outputs.*BCEWithLogitsLoss"):
        Monitor(model, X, y, loss=nn.BCELoss(), runs_dir=None)


def test_kl_divergence_on_log_softmax_outputs_is_solved_exactly():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(300, 5, generator=g)
    teacher = torch.softmax(X[:, :3] * 2 + 0.3 * torch.randn(300, 3, generator=g), dim=1)  # soft targets
    loss = nn.KLDivLoss(reduction="batchmean")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.LogSoftmax(dim=1))
    run = fit(model, loss, X, teacher, 3, 1e-2, every=1).run
    with torch.no_grad():
        ours = loss(model(X).double(), teacher.double()).item()
    assert run.final.loss == pytest.approx(ours, rel=1e-6)
    # the minimum of KL over affine maps: scipy on cross-entropy with soft targets, less their entropy
    from scipy.optimize import minimize

    A = np.hstack([X.double().numpy(), np.ones((300, 1))])
    T = teacher.double().numpy()

    def objective(w):
        U = A @ w.reshape(6, 3)
        U = U - U.max(axis=1, keepdims=True)
        logp = U - np.log(np.exp(U).sum(axis=1, keepdims=True))
        return (T * (np.log(T) - logp)).sum(axis=1).mean(), (A.T @ (np.exp(logp) - T) / 300).ravel()

    minimum = minimize(objective, np.zeros(18), jac=True, method="L-BFGS-B",
                       options={"maxiter": 5000, "gtol": 1e-12}).fun
    assert run.final.upper == pytest.approx(minimum, rel=1e-5)
    assert run.config["loss"].startswith("KLDivLoss")



def test_what_the_loss_absorbed_is_described_as_it_is():
    """BCELoss after a sigmoid is BCE with logits; a plain function after a sigmoid is not."""
    from yeswidget.engine.links import resolve_loss

    y = (torch.arange(8.0) % 2)[:, None]
    assert "BCEWithLogitsLoss on z" in resolve_loss(nn.BCELoss(), y, "sigmoid").describe()
    custom = resolve_loss(lambda out, t: (out - t).square().mean(), y, "sigmoid").describe()
    assert "pass through the model's sigmoid" in custom and "BCEWithLogitsLoss" not in custom
