"""The last layer in the user's own loss: each convex solve equals the loss's own minimiser."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from torch import nn

from yeswidget.engine.bounds import YesCloud
from yeswidget.engine.losses import LossQuestion, QuantileLoss, last_layer_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def features(n=400, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), g


def depth1_yes0(X, Y, loss):
    """YES-0 of a depth-1 network (one affine layer) judged in ``loss``: the loss's minimum over it."""
    targets = nn.functional.one_hot(Y).double() if Y.ndim == 1 else Y  # class labels: one-hot rows
    return YesCloud(X, targets, 1, loss=last_layer_loss(loss, Y)).upper


def sklearn_logistic(X, y):
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(C=np.inf, tol=1e-12, max_iter=20000).fit(X, y)


def test_cross_entropy_yes0_is_the_multinomial_logistic_regression_optimum():
    X, g = features()
    labels = torch.distributions.Categorical(logits=X @ torch.randn(5, 4, generator=g, dtype=torch.float64)).sample()
    model = sklearn_logistic(X.numpy(), labels.numpy())
    logits = torch.tensor(model.decision_function(X.numpy()))
    expected = nn.functional.cross_entropy(logits, labels).item()
    assert depth1_yes0(X, labels, nn.CrossEntropyLoss()) == pytest.approx(expected, rel=1e-5)
    # not given: integer labels are judged in cross-entropy
    assert depth1_yes0(X, labels, None) == pytest.approx(expected, rel=1e-5)


def test_bce_yes0_is_the_binary_logistic_regression_optimum():
    X, g = features(seed=1)
    y = (torch.rand(400, generator=g, dtype=torch.float64) < torch.sigmoid(X[:, 0] - X[:, 1])).double()
    model = sklearn_logistic(X.numpy(), y.numpy())
    logits = torch.tensor(model.decision_function(X.numpy()))
    expected = nn.functional.binary_cross_entropy_with_logits(logits, y).item()
    assert depth1_yes0(X, y[:, None], nn.BCEWithLogitsLoss()) == pytest.approx(expected, rel=1e-5)


def test_huber_and_smooth_l1_yes0_are_their_own_minimisers():
    X, g = features(seed=2)
    y = X @ torch.randn(5, generator=g, dtype=torch.float64) + 0.2 * torch.randn(400, generator=g, dtype=torch.float64)
    y[:40] += 15.0  # 10% outliers
    A = np.hstack([X.numpy(), np.ones((400, 1))])
    for loss in (nn.HuberLoss(delta=1.35), nn.SmoothL1Loss(beta=0.5)):
        def objective(w, loss=loss):
            return loss(torch.tensor(A @ w), y).item()
        best = minimize(objective, np.zeros(6), method="Nelder-Mead",
                        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 40000, "maxfev": 40000})
        best = minimize(objective, best.x, method="BFGS", options={"gtol": 1e-12})
        assert depth1_yes0(X, y[:, None], loss) == pytest.approx(best.fun, rel=1e-5)


def test_huber_yes0_is_at_most_the_huber_loss_of_sklearns_huber_regressor():
    from sklearn.linear_model import HuberRegressor

    X, g = features(seed=3)
    y = X @ torch.randn(5, generator=g, dtype=torch.float64) + 0.2 * torch.randn(400, generator=g, dtype=torch.float64)
    y[:40] -= 10.0
    fit = HuberRegressor(alpha=0.0, epsilon=1.35, max_iter=5000).fit(X.numpy(), y.numpy())
    theirs = nn.HuberLoss(delta=1.35)(torch.tensor(fit.predict(X.numpy())), y).item()
    # HuberRegressor also fits a scale, so its weights minimise another objective: ours is the minimum
    assert depth1_yes0(X, y[:, None], nn.HuberLoss(delta=1.35)) <= theirs * (1 + 1e-9)


def test_poisson_yes0_is_the_poisson_regression_optimum():
    from sklearn.linear_model import PoissonRegressor

    X, g = features(seed=4)
    rate = torch.exp(0.4 * X[:, 0] - 0.3 * X[:, 2])
    y = torch.poisson(rate, generator=g)
    fit = PoissonRegressor(alpha=0.0, tol=1e-12, max_iter=10000).fit(X.numpy(), y.numpy())
    log_rate = torch.log(torch.tensor(fit.predict(X.numpy())))
    expected = nn.PoissonNLLLoss()(log_rate, y).item()
    assert depth1_yes0(X, y[:, None], nn.PoissonNLLLoss()) == pytest.approx(expected, rel=1e-5)


def test_squared_error_keeps_the_papers_construction():
    X, g = features(seed=5)
    Y = torch.randn(400, 2, generator=g, dtype=torch.float64)
    assert last_layer_loss(nn.MSELoss(), Y) is None and last_layer_loss("mse", Y) is None
    plain = YesCloud(X, Y, 3)
    assert YesCloud(X, Y, 3, loss=last_layer_loss(nn.MSELoss(), Y)).upper == plain.upper  # bit for bit


def test_separable_classes_get_a_ridge_fitted_last_layer_never_the_infimum():
    X, _ = features(seed=6)
    y = (X[:, 0] > 0).double()[:, None]  # linearly separable: BCE tends to 0 and is never reached
    own = last_layer_loss(nn.BCEWithLogitsLoss(), y)
    value = YesCloud(X, y, 1, loss=own).upper
    assert 0 < value < 0.1 and own.report.converged and own.report.ridge_limited


def test_0_1_targets_without_a_loss_are_a_question_and_odd_targets_are_errors():
    X, _ = features()
    with pytest.raises(LossQuestion, match="BCEWithLogitsLoss.*MSELoss"):
        last_layer_loss(None, (X[:, :2] > 0).double())
    with pytest.raises(ValueError, match="unknown loss name"):
        last_layer_loss("hinge-ish", X)
    with pytest.raises(TypeError, match="loss module"):
        last_layer_loss(3, X)


def test_a_custom_loss_gets_an_achieved_top_edge_and_no_certified_lower_edge():
    X, g = features(seed=7)
    y = X @ torch.randn(5, 1, generator=g, dtype=torch.float64)

    def log_cosh(prediction, target):
        return torch.log(torch.cosh(prediction - target)).mean()

    own = last_layer_loss(log_cosh, y)
    value = YesCloud(X, y + 0.1 * torch.randn(400, 1, generator=g, dtype=torch.float64), 1, loss=own).upper
    assert not own.certifies_lower and np.isfinite(value) and value > 0


def sklearn_quantile_loss(X, y, quantile):
    """The pinball loss (mean) of sklearn's exact linear quantile regression (HiGHS) on X."""
    from sklearn.linear_model import QuantileRegressor

    fit = QuantileRegressor(alpha=0.0, quantile=quantile, solver="highs").fit(X.numpy(), y.numpy())
    residual = y.numpy() - fit.predict(X.numpy())
    return float(np.mean(np.maximum(quantile * residual, (quantile - 1) * residual)))


@pytest.mark.parametrize("quantile", [0.5, 0.9])
def test_quantile_yes0_is_the_linear_quantile_regression_optimum(quantile):
    X, g = features(seed=8)
    # heavy-tailed, heteroscedastic noise: the quantiles differ from the mean fit
    noise = torch.randn(400, generator=g, dtype=torch.float64) ** 3 * (1 + X[:, 1].abs())
    y = X @ torch.randn(5, generator=g, dtype=torch.float64) + noise
    expected = sklearn_quantile_loss(X, y, quantile)
    own = last_layer_loss(QuantileLoss(quantile=quantile), y[:, None])
    assert own.certifies_lower and own.kind == "quantile"
    assert YesCloud(X, y[:, None], 1, loss=own).upper == pytest.approx(expected, rel=1e-5)
    assert own.report.converged  # the duality gap certified the minimum
    # the module users train with computes the same mean
    assert QuantileLoss(quantile)(torch.zeros(400), y).item() == pytest.approx(
        np.mean(np.maximum(quantile * y.numpy(), (quantile - 1) * y.numpy())), rel=1e-12)


def test_l1_yes0_is_twice_the_median_regression_optimum_and_certified():
    X, g = features(seed=9)
    uniform = torch.rand(400, 2, generator=g, dtype=torch.float64) - 0.5
    laplace = -torch.sign(uniform) * torch.log1p(-2 * uniform.abs())
    y = X @ torch.randn(5, 2, generator=g, dtype=torch.float64) + laplace
    y[:30] += 25.0  # gross outliers: the L1 fit ignores them, least squares does not
    # mean |r| over both columns = 2 × the mean pinball loss at ½, column by column
    expected = np.mean([2 * sklearn_quantile_loss(X, y[:, j], 0.5) for j in range(2)])
    for loss in (nn.L1Loss(), "l1", "mae"):
        own = last_layer_loss(loss, y)
        assert own.kind == "l1" and own.certifies_lower
        assert YesCloud(X, y, 1, loss=own).upper == pytest.approx(expected, rel=1e-5)
        assert own.report.converged
    least_squares = torch.linalg.lstsq(torch.cat([X, torch.ones(400, 1, dtype=X.dtype)], 1), y).solution
    ls_l1 = (torch.cat([X, torch.ones(400, 1, dtype=X.dtype)], 1) @ least_squares - y).abs().mean().item()
    assert expected < ls_l1  # the check has teeth: least squares is not the L1 minimiser


def test_an_unconverged_quantile_solve_says_so(monkeypatch):
    from yeswidget.engine import _quantile

    X, g = features(seed=10)
    y = X @ torch.randn(5, 1, generator=g, dtype=torch.float64) + torch.randn(400, 1, generator=g, dtype=torch.float64)
    own = last_layer_loss(QuantileLoss(0.9), y)
    monkeypatch.setattr(_quantile, "MAX_IPM", 2)  # far too few interior point steps to close the duality gap
    value = YesCloud(X, y, 1, loss=own).upper
    assert not own.report.converged
    assert value >= sklearn_quantile_loss(X, y[:, 0], 0.9) * (1 - 1e-9)  # still an achieved value


def test_quantile_loss_rejects_quantiles_outside_0_1():
    for bad in (0, 1, 1.5, -0.1, "0.9", True):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            QuantileLoss(bad)


def test_a_log_link_loss_given_as_a_plain_function_starts_where_it_is_lower():
    """Poisson NLL as a callable (no exact solve): on counts near 7 the least-squares fit is a
    terrible start in log-rate space (exp of counts); the descent starts from zero outputs
    instead and its top edge lands near the exact optimum, never below it."""
    X, g = features(seed=6)
    y = torch.poisson(torch.exp(0.5 * X[:, 0] + 2.0), generator=g)[:, None]
    exact = depth1_yes0(X, y, nn.PoissonNLLLoss())

    def poisson_nll(log_rate, target):
        return (torch.exp(log_rate) - target * log_rate).mean()

    achieved = depth1_yes0(X, y, poisson_nll)
    assert exact < 0 and exact - 1e-9 * abs(exact) <= achieved <= exact + 1e-3 * abs(exact), (achieved, exact)


def test_a_solve_reports_the_work_it_took_so_the_budget_charges_what_was_spent():
    """The FLOPs a solve reports come from the work done: a warm start on the same features costs less
    than the cold solve, and the FLOPs budget charges an update that count in place of its estimate."""
    from yeswidget.monitor.cadence import Ledger

    X, g = features(seed=7)
    y = (X[:, :1] + 0.5 * torch.randn(400, 1, generator=g, dtype=torch.float64) > 0).double()
    hidden = [torch.relu(X @ torch.randn(5, 8, generator=g, dtype=torch.float64))]
    own = last_layer_loss(nn.BCEWithLogitsLoss(), y)
    cloud = YesCloud(X, y, 2, loss=own)
    cloud.compute(hidden)
    cold = own.report.flops
    cloud.compute(hidden)  # the same features again: warm from the previous solution
    assert own.report.converged and 0 < own.report.flops < cold
    ledger = Ledger(0.2, update_cost=1000.0, estimated_solve=600.0)
    ledger.charge(cold)
    assert ledger.spent == 400.0 + cold
    ledger.charge()  # not counted (e.g. a streamed solve): the estimate
    assert ledger.spent == 1400.0 + cold


@pytest.mark.parametrize("kind", ["cross_entropy", "bce"])
def test_separated_classes_go_straight_to_the_ridge_fit_with_the_same_value(kind, monkeypatch):
    """Classes a linear map separates have no minimiser: once a Newton iterate classifies every sample
    correctly the solve stops chasing the infimum and refits with the fixed ridge. The value is the
    ridge fit's (the same as after the long way round), flagged ridge-limited, for fewer FLOPs."""
    from yeswidget.engine.losses import LastLayerLoss

    g = torch.Generator().manual_seed(4)
    Z = torch.randn(3, 600, 8, generator=g, dtype=torch.float64)
    Z = torch.cat([Z, torch.ones(3, 600, 1, dtype=torch.float64)], -1)  # the bias column
    scores = Z[0] @ torch.randn(9, 4, generator=g, dtype=torch.float64)
    top = scores.topk(2, dim=-1).values
    wide = top[:, 0] - top[:, 1] > 1.0 if kind == "cross_entropy" else (scores[:, :2].abs() > 1.0).all(-1)  # margin
    Z, scores = Z[:, wide], scores[wide]
    T = (nn.functional.one_hot(scores.argmax(-1), 4).double() if kind == "cross_entropy"
         else (scores[:, :2] > 0).double())  # separable in problem 0's features
    quick = LastLayerLoss(kind, kind)
    values = quick.solve(Z, T)
    assert quick.report.ridge_limited and quick.report.converged
    slow = LastLayerLoss(kind, kind)
    monkeypatch.setattr(slow, "_separates", lambda T: None)
    expected = slow.solve(Z, T)
    assert slow.report.ridge_limited
    # (the certificate bounds the penalised objective, to 1e-9; the unpenalised loss reported trades off
    # against the penalty along the flat valley, so two certified fits agree on it to ~1e-4 only)
    assert torch.allclose(values, expected, rtol=1e-3, atol=0), (values, expected)
    assert quick.report.flops < slow.report.flops
    assert float(values[0]) > 0  # the ridge fit's loss, never the infimum 0


@pytest.mark.parametrize("kind", ["cross_entropy", "bce"])
def test_more_features_than_samples_solve_in_sample_space_with_the_same_value(kind):
    """A wide input certified on few samples (d > N): the Gram's eigenpairs come from the thin SVD
    (N²·d, not d³). The same data with every sample twice (N > d, the d × d route) is the same mean
    loss, so both solves must agree; the wide one costs far fewer FLOPs."""
    from yeswidget.engine.losses import LastLayerLoss

    g = torch.Generator().manual_seed(7)
    Z = torch.randn(2, 60, 149, generator=g, dtype=torch.float64)
    Z = torch.cat([Z, torch.ones(2, 60, 1, dtype=torch.float64)], -1)  # d = 150 > N = 60
    T = (nn.functional.one_hot(torch.randint(0, 3, (60,), generator=g), 3).double() if kind == "cross_entropy"
         else (torch.rand(60, 2, generator=g) > 0.5).double())
    wide = LastLayerLoss(kind, kind)
    values = wide.solve(Z, T)
    twice = LastLayerLoss(kind, kind)
    expected = twice.solve(Z.repeat(1, 3, 1), T.repeat(3, 1))  # N = 180 > d: the d × d eigendecomposition
    assert wide.report.converged and twice.report.converged
    assert torch.allclose(values, expected, rtol=1e-3, atol=1e-9), (values, expected)
    assert wide.report.flops < twice.report.flops / 2


@pytest.mark.parametrize("n_features", [6, 40])  # 7·4 unknowns: the Hessian factorised; 41·4: conjugate gradients
def test_cross_entropy_solve_is_the_logistic_regression_optimum_on_both_newton_paths(n_features):
    from yeswidget.engine import _newton

    X, g = features(n=1500, d=n_features, seed=5)
    labels = torch.distributions.Categorical(
        logits=X @ torch.randn(n_features, 4, generator=g, dtype=torch.float64) / 2).sample()
    unknowns = (n_features + 1) * 4
    assert (unknowns <= _newton.DIRECT_UNKNOWNS) == (n_features == 6)
    model = sklearn_logistic(X.numpy(), labels.numpy())
    expected = nn.functional.cross_entropy(torch.tensor(model.decision_function(X.numpy())), labels).item()
    assert depth1_yes0(X, labels, nn.CrossEntropyLoss()) == pytest.approx(expected, rel=1e-6)
