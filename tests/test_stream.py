"""Streamed bounds (``chunk_size=``, chunk lists, loaders, callables) equal the in-memory engine.

Acceptance: YES-0, every anchor set and the cloud's curves agree to 1e-9 relative
at several chunk sizes, including chunks that do not divide N and a chunk of 1.
"""
from __future__ import annotations

import math

import pytest
import torch

from yeswidget.engine import bounds
from yeswidget.engine.bounds import YesCloud, anchor_sets, yes0_bound, yes_k_bounds

RTOL = 1e-9


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_case(N=61, n=6, m=5, widths=(9, 7, 8, 6), seed=0, degenerate=False, net_seed=None):
    """Phase-retrieval-like data and the hidden outputs of a random ReLU net (float64);
    ``net_seed`` draws another net on the same data."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    Y = (X @ torch.randn(n, m, generator=g, dtype=torch.float64)).abs() + 0.1
    if degenerate:  # a duplicated and a zero input column, a constant target column
        X = torch.cat([X, X[:, :1], torch.zeros(N, 1, dtype=torch.float64)], dim=1)
        Y[:, -1] = 2.0
    if net_seed is not None:
        g = torch.Generator().manual_seed(net_seed)
    hidden, H = [], X
    for w in widths:
        H = torch.relu(H @ torch.randn(H.shape[1], w, generator=g, dtype=torch.float64) / math.sqrt(H.shape[1])
                       + 0.1)
        if degenerate:
            H[:, 0] = 0.0
            H[:, 2] = H[:, 1]
        hidden.append(H)
    return X, Y, hidden


def assert_rel(got, want, what=""):
    assert math.isfinite(got), what
    off = abs(got - want) / abs(want) if want else abs(got - want)
    assert abs(got - want) <= RTOL * abs(want) + 1e-14, f"{what}: {got!r} vs {want!r} ({off:.2e})"


def assert_bounds(got: dict, want: dict, what=""):
    assert got.keys() == want.keys()
    for s in want:
        assert_rel(got[s], want[s], f"{what} S={s}")


CHUNKS = [1, 7, 16, 60, 61, 500]  # 7 and 16 do not divide N = 61


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("bias", [True, False])
def test_yes0_streamed_equals_in_memory(chunk, bias):
    X, Y, _ = make_case()
    for depth in (1, 2, 4):
        assert_rel(yes0_bound(X, Y, depth, bias=bias, chunk_size=chunk),
                   yes0_bound(X, Y, depth, bias=bias), f"depth {depth}")


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("degenerate", [False, True])
def test_every_anchor_set_streamed_equals_in_memory(chunk, degenerate):
    X, Y, hidden = make_case(degenerate=degenerate)
    want = yes_k_bounds(X, Y, hidden)
    got = yes_k_bounds(X, Y, hidden, chunk_size=chunk)
    assert len(got) == len(anchor_sets(5)) == 15
    assert_bounds(got, want, f"chunk {chunk}")


@pytest.mark.parametrize("chunk", [1, 13, 61])
def test_cloud_curves_streamed_equal_in_memory(chunk):
    X, Y, _ = make_case(widths=(9, 7, 8))
    epochs = [make_case(widths=(9, 7, 8), net_seed=s)[2] for s in (1, 2, 3)]
    memory, streamed = YesCloud(X, Y, 4), YesCloud(X, Y, 4, chunk_size=chunk)
    assert streamed.streamed and not memory.streamed
    assert streamed.N == memory.N == 61
    assert_rel(streamed.upper, memory.upper, "YES-0")
    for got, want in zip(streamed.layer_errors, memory.layer_errors):
        assert_rel(got, want, "layer error")
    for hidden in epochs:
        assert_rel(streamed.update(hidden), memory.update(hidden), "lower edge")
        assert_bounds(streamed.last_bounds, memory.last_bounds)
    for k in range(4):
        for got, want in zip(streamed.curve(k), memory.curve(k)):
            assert_rel(got, want, f"YES-{k}")
    loss = (memory.upper + memory.lower) / 2
    assert streamed.zone(loss) == memory.zone(loss) == "yellow"


def test_chunk_lists_with_different_boundaries():
    X, Y, hidden = make_case()
    want0, want = yes0_bound(X, Y, 5), yes_k_bounds(X, Y, hidden)
    xs = list(torch.split(X, 10))
    ys = list(torch.split(Y, 25))  # Y's chunks need not line up with X's
    hs = [list(torch.split(h, s)) for h, s in zip(hidden, (3, 61, 20, 9))]
    assert_rel(yes0_bound(xs, ys, 5), want0)
    assert_bounds(yes_k_bounds(xs, ys, hs), want)
    assert_bounds(yes_k_bounds(xs, ys, hidden, chunk_size=4), want)  # whole hidden tensors with chunked X


def test_dataloader_and_model_callable():
    X, Y, _ = make_case(widths=(9, 7))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.ReLU(), torch.nn.Linear(9, 7), torch.nn.ReLU(),
                                torch.nn.Linear(7, 5)).double()

    def hidden_of(x):
        h0 = model[1](model[0](x))
        return [h0, model[3](model[2](h0))]

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=8, shuffle=False)
    memory = YesCloud(X, Y, 3)
    streamed = YesCloud(loader, None, 3)
    assert streamed.streamed and streamed.N == 61
    assert_rel(streamed.upper, memory.upper)
    with torch.no_grad():
        want = memory.compute(hidden_of(X))
    assert_bounds(streamed.compute(hidden_of), want)
    assert_bounds(memory.compute(hidden_of), want)  # an in-memory cloud streams a callable too
    assert_rel(yes0_bound(loader, None, 3), memory.upper)


def test_streaming_is_chosen_when_the_data_would_not_fit(monkeypatch):
    X, Y, hidden = make_case()
    want0, want = YesCloud(X, Y, 5).upper, yes_k_bounds(X, Y, hidden)
    monkeypatch.setattr(bounds, "_available_bytes", lambda device: 10_000)  # "10 kB free"
    cloud = YesCloud(X, Y, 5)
    assert cloud.streamed and cloud._source.chunk_size is not None
    assert_rel(cloud.upper, want0)
    assert_bounds(cloud.compute(hidden), want)
    assert_bounds(yes_k_bounds(X, Y, hidden), want)


def test_float32_inputs_are_streamed_in_float64():
    X, Y, hidden = make_case()
    got = yes_k_bounds(X.float(), Y.float(), [h.float() for h in hidden], chunk_size=10)
    want = yes_k_bounds(X.float().double(), Y.float().double(), [h.float().double() for h in hidden])
    assert_bounds(got, want)


def test_streaming_counts_each_prefix_once():
    X, Y, hidden = make_case()
    with bounds.solve_counter() as memory:
        yes_k_bounds(X, Y, hidden)
    with bounds.solve_counter() as streamed:
        yes_k_bounds(X, Y, hidden, chunk_size=9)
    assert streamed.solves == memory.solves


def test_bad_streaming_input():
    X, Y, hidden = make_case()
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        yes0_bound(X, Y, 2, chunk_size=0)
    with pytest.raises(TypeError, match="one-shot iterator"):
        yes0_bound((pair for pair in [(X, Y)]), None, 2)
    with pytest.raises(ValueError, match="Y has 60 samples but X has 61"):
        yes0_bound(list(torch.split(X, 10)), list(torch.split(Y[:60], 10)), 2)
    with pytest.raises(ValueError, match=r"hidden\[1\] has 50 samples but X has"):
        yes_k_bounds(X, Y, [hidden[0], [hidden[1][:50]], hidden[2], hidden[3]], chunk_size=10)
    with pytest.raises(ValueError, match="hidden has 3 entries"):
        YesCloud(X, Y, 5, chunk_size=10).compute([[h] for h in hidden[:3]])
    bad = hidden[2].clone()
    bad[40, 1] = math.nan
    with pytest.raises(ValueError, match=r"hidden\[2\].*NaN"):
        yes_k_bounds(X, Y, [hidden[0], hidden[1], bad, hidden[3]], chunk_size=16)


# --------------------------------------------------------------------------- #
# the last layer in the user's own loss, streamed (engine.summed_loss)
# --------------------------------------------------------------------------- #
OWN_RTOL = 1e-6


def own_case(kind, N=83, n=6):
    """Data, targets and the loss module of a classifier (CE), a multi-label (BCE) or a robust
    regression (Huber) task."""
    from torch import nn

    g = torch.Generator().manual_seed(3)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    if kind == "cross_entropy":
        logits = X @ torch.randn(n, 4, generator=g, dtype=torch.float64)
        labels = torch.distributions.Categorical(logits=logits).sample()
        return X, nn.functional.one_hot(labels, 4).double(), labels, nn.CrossEntropyLoss()
    if kind == "bce":
        Y = (torch.rand(N, 3, generator=g, dtype=torch.float64) < torch.sigmoid(X[:, :3] - X[:, 3:])).double()
        return X, Y, Y, nn.BCEWithLogitsLoss()
    Y = X @ torch.randn(n, 2, generator=g, dtype=torch.float64) + 0.3 * torch.randn(N, 2, generator=g,
                                                                                   dtype=torch.float64)
    Y[:8] += 6.0  # outliers: Huber's linear pieces are reached
    return X, Y, Y, nn.HuberLoss(delta=0.5)


def own_cloud(X, Y, given, loss, **kwargs):
    from yeswidget.engine.losses import last_layer_loss

    return YesCloud(X, Y, 4, loss=last_layer_loss(loss, given), **kwargs)


def hidden_of_net(X, seed, widths=(9, 7, 8)):
    g = torch.Generator().manual_seed(seed)
    hidden, H = [], X
    for w in widths:
        H = torch.relu(H @ torch.randn(H.shape[1], w, generator=g, dtype=torch.float64) / math.sqrt(H.shape[1])
                       + 0.1)
        hidden.append(H)
    return hidden


def assert_own(got, want, what):
    assert math.isfinite(got) and abs(got - want) <= OWN_RTOL * abs(want), f"{what}: {got!r} vs {want!r}"


@pytest.mark.parametrize("kind", ["cross_entropy", "bce", "huber"])
@pytest.mark.parametrize("chunk", [7, 83])
def test_cloud_in_own_loss_streamed_equals_in_memory(kind, chunk):
    X, Y, given, loss = own_case(kind)
    memory, streamed = own_cloud(X, Y, given, loss), own_cloud(X, Y, given, loss, chunk_size=chunk)
    assert streamed.streamed and not memory.streamed
    assert streamed.loss.report.converged and memory.loss.report.converged
    assert_own(streamed.upper, memory.upper, "YES-0")
    for got, want in zip(streamed.layer_errors, memory.layer_errors):
        assert_own(got, want, "layer error")
    for seed in (1, 2):  # the second epoch starts from the first one's solutions
        hidden = hidden_of_net(X, seed)
        assert_own(streamed.update(hidden), memory.update(hidden), "lower edge")
        assert streamed.loss.report.converged
        assert streamed.last_bounds.keys() == memory.last_bounds.keys()
        for s, want in memory.last_bounds.items():
            assert_own(streamed.last_bounds[s], want, f"S={s}")
    for k in range(4):
        for got, want in zip(streamed.curve(k), memory.curve(k)):
            assert_own(got, want, f"YES-{k}")
    for loss, zone in ((memory.upper * 1.01, "red"), (memory.lower * 0.99, "green")):
        assert streamed.zone(loss) == memory.zone(loss) == zone


def test_streamed_cross_entropy_yes0_is_the_logistic_regression_optimum():
    """Independent baseline: a depth-1 network in cross-entropy is multinomial logistic regression."""
    import warnings

    from sklearn.linear_model import LogisticRegression
    from torch import nn

    X, Y, labels, loss = own_case("cross_entropy", N=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(C=math.inf, tol=1e-12, max_iter=20000).fit(X.numpy(), labels.numpy())
    expected = nn.functional.cross_entropy(torch.tensor(model.decision_function(X.numpy())), labels).item()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=32, shuffle=False)
    from yeswidget.engine.losses import last_layer_loss

    streamed = YesCloud(loader, None, 1, loss=last_layer_loss(loss, labels))
    assert streamed.streamed and streamed.N == 300
    assert streamed.upper == pytest.approx(expected, rel=1e-5)


def test_streamed_own_loss_with_a_model_callable_and_separable_classes():
    from torch import nn

    X, _, _, _ = own_case("cross_entropy")
    labels = X[:, :3].argmax(1)  # linearly separable in X: no minimiser, the ridge-fitted layer
    Y = nn.functional.one_hot(labels, 3).double()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 3)).double()

    def hidden_of(x):
        h0 = model[1](model[0](x))
        return [h0, model[3](model[2](h0))]

    from yeswidget.engine.losses import last_layer_loss

    memory = YesCloud(X, Y, 3, loss=last_layer_loss(nn.CrossEntropyLoss(), labels))
    streamed = YesCloud(list(torch.split(X, 20)), list(torch.split(Y, 20)), 3,
                        loss=last_layer_loss(nn.CrossEntropyLoss(), labels))
    assert memory.loss.report.ridge_limited and streamed.loss.report.ridge_limited
    assert_own(streamed.upper, memory.upper, "YES-0")
    with torch.no_grad():
        want = memory.compute(hidden_of(X))
    got = streamed.compute(hidden_of)
    for s in want:
        assert_own(got[s], want[s], f"S={s}")


def test_an_unconverged_streamed_solve_says_so(monkeypatch):
    from yeswidget.engine import summed_loss

    X, Y, given, loss = own_case("cross_entropy")
    monkeypatch.setattr(summed_loss, "MAX_NEWTON", 1)  # one Newton step from zero logits: short of the minimum
    streamed = own_cloud(X, Y, given, loss, chunk_size=10)
    assert not streamed.loss.report.converged
    monkeypatch.undo()
    assert own_cloud(X, Y, given, loss, chunk_size=10).loss.report.converged


def test_a_custom_loss_is_refused_when_streamed():
    from yeswidget.engine.losses import last_layer_loss

    X, Y, _, _ = own_case("huber")
    custom = last_layer_loss(lambda prediction, target: (prediction - target).abs().mean(), Y)
    with pytest.raises(ValueError, match="computed in memory only.*max_samples="):
        YesCloud(X, Y, 3, loss=custom, chunk_size=10)
