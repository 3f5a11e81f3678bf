"""Verdicts users can trust: classifiers, degenerate bounds, validation, the paper's protocol."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from yeswidget.cli import main as cli_main
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
    # judged in the loss it trains with: the cross-entropy of the whole set, as torch computes it
    cross_entropy = nn.functional.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).double().mean().item()
    assert final.loss == pytest.approx(cross_entropy, rel=1e-6) and final.accuracy == pytest.approx(accuracy, abs=1e-9)
    config = monitor.run.config
    assert config["task_kind"] == "classification" and config["loss"] == "CrossEntropyLoss"
    assert config["step_loss"] == {"name": "CrossEntropyLoss", "metric": True}  # the cloud's own unit


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


# ---------------------------------------------------------------- judged in the loss you train with
def fit(model, loss_fn, X, Y, epochs, lr, *, batch=64, seed=0, **options):
    """A tutorial loop (Adam, shuffled minibatches) under a Monitor judging in ``loss_fn``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    options.setdefault("every", 5)
    with Monitor(model, X, Y, optimizer=optimizer, loss=loss_fn, runs_dir=None, **options) as monitor:
        for _ in monitor.epochs(epochs):
            train(model, optimizer, loss_fn, X, Y, monitor, batch=batch, generator=g)
    return monitor.run


def logistic_logits(X, y, C=np.inf):
    """A logistic regression on the same inputs (sklearn; no penalty unless ``C``): its logits."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(C=C, max_iter=5000).fit(X.numpy(), y.numpy())
    return torch.tensor(model.decision_function(X.numpy()))


def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(data.target, dtype=torch.float32)[:, None]


def test_a_one_logit_bce_classifier_better_than_logistic_regression_is_not_red():
    X, y = breast_cancer()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1))
    run = fit(model, nn.BCEWithLogitsLoss(), X, y, 25, 1e-2)
    with torch.no_grad():
        logits = model(X).double()
    bce = nn.functional.binary_cross_entropy_with_logits(logits, y.double()).item()
    # sklearn's default logistic regression (C=1: without a penalty these classes are separable)
    logistic = logistic_logits(X, y[:, 0], C=1.0)
    baseline = nn.functional.binary_cross_entropy_with_logits(logistic, y[:, 0].double()).item()
    accuracy = ((logits > 0).double() == y.double()).double().mean().item()
    assert accuracy >= 0.98 and bce < baseline, (accuracy, bce, baseline)
    assert run.final.loss == pytest.approx(bce, rel=1e-6) and run.final.accuracy == pytest.approx(accuracy)
    assert run.final.zone != "red", (run.final.zone, run.final.loss, run.final.upper)
    assert run.config["loss"] == "BCEWithLogitsLoss" and run.config["task_kind"] == "classification"


def multilabel_data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 8, generator=g)
    W = torch.randn(8, 4, generator=g)
    Y = ((X @ W).square() > 1.0).float()  # not linear in X: a logistic regression cannot follow it
    return X, Y


def test_a_multilabel_bce_model_below_half_of_per_label_logistic_regression_is_not_red():
    X, Y = multilabel_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
    run = fit(model, nn.BCEWithLogitsLoss(), X, Y, 40, 1e-2)
    with torch.no_grad():
        bce = nn.functional.binary_cross_entropy_with_logits(model(X).double(), Y.double()).item()
    per_label = torch.stack([logistic_logits(X, Y[:, j]) for j in range(4)], dim=1)
    baseline = nn.functional.binary_cross_entropy_with_logits(per_label, Y.double()).item()
    assert bce < 0.5 * baseline, (bce, baseline)
    assert run.final.zone != "red", (run.final.zone, run.final.loss, run.final.upper)
    assert 0.9 <= run.final.accuracy <= 1.0  # hamming accuracy of the thresholded logits


def test_a_huber_regression_better_than_huber_regressor_is_not_red():
    from sklearn.linear_model import HuberRegressor

    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 3, generator=g)
    y = (torch.sin(2 * X[:, :1]) + X[:, 1:2] * X[:, 2:3] + 0.1 * torch.randn(400, 1, generator=g))
    y[:40] += 8.0 * torch.sign(torch.randn(40, 1, generator=g))  # 10% outliers
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    loss_fn = nn.HuberLoss(delta=1.0)
    run = fit(model, loss_fn, X, y, 60, 5e-3)
    reference = HuberRegressor(alpha=0.0, epsilon=1.35, max_iter=2000).fit(X.numpy(), y[:, 0].numpy())
    theirs = loss_fn(torch.tensor(reference.predict(X.numpy()))[:, None], y.double()).item()
    with torch.no_grad():
        ours = loss_fn(model(X).double(), y.double()).item()
    assert ours < theirs, (ours, theirs)
    assert run.final.zone != "red", (run.final.zone, run.final.loss, run.final.upper)


def robust_regression_data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 3, generator=g)
    y = (torch.sin(2 * X[:, :1]) + X[:, 1:2] * X[:, 2:3] + 0.1 * torch.randn(400, 1, generator=g))
    y[:40] += 8.0 * torch.sign(torch.randn(40, 1, generator=g))  # 10% outliers
    return X, y


def test_an_l1_regression_better_than_quantile_regressor_is_not_red():
    from sklearn.linear_model import QuantileRegressor

    X, y = robust_regression_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    loss_fn = nn.L1Loss()
    run = fit(model, loss_fn, X, y, 60, 5e-3)
    reference = QuantileRegressor(alpha=0.0, quantile=0.5, solver="highs").fit(X.numpy(), y[:, 0].numpy())
    theirs = loss_fn(torch.tensor(reference.predict(X.numpy()))[:, None], y.double()).item()
    with torch.no_grad():
        ours = loss_fn(model(X).double(), y.double()).item()
    assert ours < theirs, (ours, theirs)
    assert run.final.zone != "red", (run.final.zone, run.final.loss, run.final.upper)
    assert run.final.loss == pytest.approx(ours, rel=1e-6)  # judged in mean |r|, as torch computes it
    assert run.config["loss"] == "L1Loss" and "mean absolute error" in run.config["judged"]


def test_a_broken_l1_regression_is_red():
    X, y = robust_regression_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    run = fit(model, nn.L1Loss(), X, y, 6, 1e-7)
    assert run.final.zone == "red", (run.final.zone, run.final.loss, run.final.upper)


def test_a_softmax_classifier_stopped_far_above_logistic_regression_is_not_green():
    X, labels = digits()
    torch.manual_seed(0)
    model = mlp((64, 64, 64, 10))
    run = fit(model, nn.CrossEntropyLoss(), X, labels, 3, 1e-3, every=1)
    baseline = nn.functional.cross_entropy(logistic_logits(X, labels), labels).item()
    assert run.final.loss >= 2 * baseline, (run.final.loss, baseline)
    assert all(r.zone != "green" for r in run.epochs)


@pytest.mark.parametrize("breakage", ["lr=10", "lr=1e-7", "dead ReLUs"])
def test_deliberately_broken_bce_runs_are_red(breakage):
    X, y = breast_cancer()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1))
    lr = {"lr=10": 10.0, "lr=1e-7": 1e-7}.get(breakage, 1e-2)
    if breakage == "dead ReLUs":
        with torch.no_grad():
            model[0].bias.fill_(-50.0)  # every unit of layer 1 is negative on every sample
    run = fit(model, nn.BCEWithLogitsLoss(), X, y, 6, lr)
    assert run.final.zone == "red", (breakage, run.final.zone, run.final.loss, run.final.upper)


def test_constant_targets_get_no_verdict_and_certify_says_so(tmp_path):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(120, 4, generator=g)
    Y = torch.full((120, 2), 3.0)
    torch.manual_seed(0)
    model = mlp((4, 16, 2))
    run = fit(model, nn.MSELoss(), X, Y, 4, 1e-2)
    assert {r.zone for r in run.epochs} == {"none"} and "constant" in run.final.reason
    path = tmp_path / "run.json"
    run.to_json(path)
    assert cli_main(["certify", str(path)]) == 5
    # the same in cross-entropy: every sample of one class
    run = fit(mlp((4, 16, 3)), nn.CrossEntropyLoss(), X, torch.zeros(120, dtype=torch.long), 2, 1e-2)
    assert {r.zone for r in run.epochs} == {"none"}


def test_0_1_targets_without_a_loss_ask_which_loss_is_meant():
    X, Y = multilabel_data()
    with pytest.raises(ValueError, match="BCEWithLogitsLoss.*MSELoss"):
        Monitor(mlp((8, 16, 4)), X, Y, runs_dir=None)


def test_a_poisson_model_at_the_poisson_regression_optimum_is_green_although_its_loss_is_negative():
    from sklearn.linear_model import PoissonRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4)).astype(np.float32)
    y = rng.poisson(np.exp(0.5 * X[:, 0] + 2.0)).astype(np.float32)  # counts near 7: the loss is below 0
    fitted = PoissonRegressor(alpha=0.0, tol=1e-10, max_iter=3000).fit(X, y)
    model = nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(fitted.coef_).reshape(1, -1))
        model.bias.fill_(float(fitted.intercept_))
    X_t, Y_t = torch.tensor(X), torch.tensor(y)[:, None]
    with Monitor(model, X_t, Y_t, loss=nn.PoissonNLLLoss(), runs_dir=None) as monitor:
        for _ in monitor.epochs(1):
            pass
    final = monitor.run.final
    assert final.loss < 0 and final.zone == "green", (final.loss, final.zone, final.reason)


def test_a_separable_classifier_is_never_green_against_a_ridge_fitted_edge():
    """Breast cancer, a tutorial BCE MLP stopped early: the YES network separates the classes, so its
    lower edge is a ridge-fitted last layer's loss, which the construction itself gets below. A loss
    under that edge is not green (a logistic regression on the same inputs does better still)."""
    X, y = breast_cancer()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))
    run = fit(model, nn.BCEWithLogitsLoss(), X, y, 30, 1e-3, batch=32, every="auto")
    with torch.no_grad():
        final = float(nn.functional.binary_cross_entropy_with_logits(model(X), y))
    logits = logistic_logits(X, y.ravel(), C=1e6).double()
    baseline = float(nn.functional.binary_cross_entropy_with_logits(logits, y.double().ravel()))
    assert baseline < final  # the independent baseline: a linear model beats this run
    assert all(r.zone != "green" for r in run.epochs), [(r.epoch, r.zone) for r in run.epochs]
    under = [r for r in run.epochs if r.loss <= r.lower]
    assert under and all(r.zone == "yellow" for r in under), [(r.epoch, r.zone, r.loss, r.lower) for r in run.epochs]
    checked = [r for r in under if r.bounds_updated]  # against a fresh edge: what stops green is said
    assert checked and all("separable in the constructed features" in r.reason
                           and "no lower edge certifies green" in r.reason for r in checked)


def test_red_and_yellow_epochs_in_the_users_loss_say_what_they_were_compared_with(tmp_path, capsys):
    X, y = breast_cancer()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1))
    red = fit(model, nn.BCEWithLogitsLoss(), X, y, 2, 1e-7)  # the weights barely move
    assert [r.zone for r in red.epochs] == ["red", "red"]
    assert all(r.reason == "above YES-0 in BCEWithLogitsLoss, the loss a layer-wise least-squares network with "
               "its last layer fitted in BCEWithLogitsLoss reaches from the data alone" for r in red.epochs)
    X, y = robust_regression_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    yellow = fit(model, nn.HuberLoss(), X, y, 3, 5e-3, every=1)
    final = yellow.final
    assert final.zone == "yellow" and final.lower < final.loss <= final.upper
    assert final.reason.startswith("inside the cloud in HuberLoss(delta=1): at or below YES-0, above the lower "
                                   "edge, the best loss a layer-wise least-squares network with its last layer "
                                   "fitted in HuberLoss(delta=1) reaches from the model's own hidden layers")
    path = tmp_path / "run.json"
    yellow.to_json(path)
    assert cli_main(["certify", str(path)]) == 3
    assert f"final zone: yellow ({final.reason})" in capsys.readouterr().out
    # squared error keeps the paper's words: no reason where the rule needs none
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    paper = fit(model, nn.MSELoss(), X, y, 2, 5e-3)
    assert {r.zone for r in paper.epochs} == {"yellow"} and {r.reason for r in paper.epochs} == {""}


def bce_by_hand(out, target):
    """Binary cross-entropy on logits as a plain function: the monitor cannot see that it takes logits."""
    return nn.functional.binary_cross_entropy_with_logits(out, target)


def probability_bce(out, target):
    return nn.functional.binary_cross_entropy(out, target)


@pytest.mark.parametrize("case", ["weighted BCEWithLogitsLoss", "plain function after a sigmoid",
                                  "plain function on raw outputs"])
def test_a_custom_loss_on_0_1_targets_records_accuracy_only_where_the_outputs_say_what_they_are(case):
    X, y = breast_cancer()
    torch.manual_seed(0)
    head = [nn.Sigmoid()] if case == "plain function after a sigmoid" else []
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1), *head)
    loss_fn = {"weighted BCEWithLogitsLoss": nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0])),
               "plain function after a sigmoid": probability_bce}.get(case, bce_by_hand)
    run = fit(model, loss_fn, X, y, 2, 1e-2)
    with torch.no_grad():
        out = model(X)
    if case == "plain function on raw outputs":  # logits (above 0) or outputs trained towards 0/1 (above ½)?
        assert all(r.accuracy is None for r in run.epochs) and run.config["task_kind"] == "regression"
        assert "no accuracy: a plain loss function does not say whether the outputs are logits" in run.config["judged"]
        return
    threshold = 0.5 if head else 0.0  # probabilities from the model's sigmoid; logits for BCEWithLogitsLoss
    accuracy = ((out > threshold) == (y > 0.5)).double().mean().item()
    assert accuracy > 0.9 and run.final.accuracy == pytest.approx(accuracy)
    assert run.config["task_kind"] == "classification" and run.config["judged"].endswith(", and accuracy")
