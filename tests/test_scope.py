"""What a monitor certifies (yeswidget.monitor.scope, read by yeswidget.engine.capture): the whole network,
the head given its current features (``certify_from=``), or nothing, with the reason.

Models are written the way tutorials write them; every number a verdict is checked against is
computed here, by least squares on features built by hand.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from yeswidget.monitor import Monitor

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]


def least_squares_error(Z: torch.Tensor, Y: torch.Tensor) -> float:
    """E of the best affine map from Z to Y: (1/N) Σ ‖ŷ − y‖², by numpy in float64."""
    A = np.hstack([Z.detach().double().numpy().reshape(Z.shape[0], -1), np.ones((Z.shape[0], 1))])
    T = Y.detach().double().numpy().reshape(Y.shape[0], -1)
    W = np.linalg.lstsq(A, T, rcond=None)[0]
    return float(((A @ W - T) ** 2).sum() / Z.shape[0])


# --------------------------------------------------------------------------- an LSTM regressor
class NextValueLSTM(nn.Module):
    """The usual next-value regressor: an LSTM over the window, a Linear on its last hidden state."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


def ar2_windows(n: int = 240, window: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of an AR(2) series (x_t = 1.2 x_{t-1} − 0.5 x_{t-2} + 0.3 e_t) and the next value."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n + window + 50, generator=g)
    series = torch.zeros(n + window + 50)
    for t in range(2, len(series)):
        series[t] = 1.2 * series[t - 1] - 0.5 * series[t - 2] + 0.3 * noise[t]
    series = series[50:]
    X = torch.stack([series[i:i + window] for i in range(n)]).unsqueeze(-1)
    Y = torch.stack([series[i + window] for i in range(n)]).unsqueeze(-1)
    return X, Y


@pytest.fixture(scope="module")
def trained_lstm():
    """An LSTM trained to near the best causal linear predictor (least squares on the lags)."""
    X, Y = ar2_windows()
    torch.manual_seed(0)
    model = NextValueLSTM()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(250):
        optimizer.zero_grad()
        loss = F.mse_loss(model(X), Y)
        loss.backward()
        optimizer.step()
    return model, X, Y


def test_an_lstm_regressor_at_the_best_causal_predictor_gets_no_verdict_with_the_reason(trained_lstm):
    model, X, Y = trained_lstm
    best_causal = least_squares_error(X.squeeze(-1), Y)  # the best linear predictor from the past values
    with torch.no_grad():
        reached = float(((model(X) - Y) ** 2).sum() / X.shape[0])
    assert reached <= 1.15 * best_causal  # the setup: the LSTM is near the best causal linear predictor
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    with Monitor(model, X, Y, optimizer=optimizer, background=False, every=1, runs_dir=None) as monitor:
        for _ in monitor.epochs(3):
            optimizer.zero_grad()
            F.mse_loss(model(X), Y).backward()
            optimizer.step()
        records = monitor.run.epochs
        text = monitor.describe()
    assert [r.zone for r in records] == ["none"] * 3  # never red
    for record in records:
        assert "recurrent" in record.reason and "certify_from='lstm'" in record.reason
    assert math.isnan(monitor.run.upper)  # no YES-0 is claimed
    assert "lstm (LSTM)" in text and "Not covered" in text and "certify_from='lstm'" in text
    assert "1 affine layer fitted from the raw input" not in text


def test_certify_from_judges_the_head_against_least_squares_on_its_current_features(trained_lstm):
    model, X, Y = trained_lstm
    model = NextValueLSTM()
    model.load_state_dict(trained_lstm[0].state_dict())

    def features() -> torch.Tensor:
        with torch.no_grad():
            return model.lstm(X)[0][:, -1, :]

    with Monitor(model, X, Y, certify_from=model.lstm, background=False, runs_dir=None) as monitor:
        # epoch 1: the head refitted by least squares on today's features → at the optimum
        Z = features()
        A = torch.cat([Z, torch.ones(Z.shape[0], 1)], 1).double()
        W = torch.linalg.lstsq(A, Y.double()).solution
        with torch.no_grad():
            model.fc.weight.copy_(W[:-1].T.float())
            model.fc.bias.copy_(W[-1].float())
        monitor.epoch_end()
        # epoch 2: the head moved off it (its bias by 0.5): worse than least squares on the same features
        with torch.no_grad():
            model.fc.bias.add_(0.5)
        monitor.epoch_end()
        # epoch 3: the features change (the LSTM's input weights scaled); the bounds follow them
        with torch.no_grad():
            model.lstm.weight_ih_l0.mul_(0.5)
        monitor.epoch_end()
        records = monitor.run.epochs
        text = monitor.describe()
        certified = monitor.run.config["certified"]
    first, scaled = least_squares_error(Z, Y), least_squares_error(features(), Y)
    expected_upper = [first, first, scaled]
    for record, upper in zip(records, expected_upper):
        assert math.isclose(record.upper, upper, rel_tol=1e-6), (record.upper, upper)
        assert "head given current features" in record.reason
        # depth 1: the verdict is "at the least-squares optimum" (within 5%) or not
        expected = "green" if record.loss <= 1.05 * upper else "red"
        assert record.zone == expected
    assert [r.zone for r in records[:2]] == ["green", "red"]
    assert certified == "head given current features (certify_from='lstm')"
    assert "head given current features" in text and "certify_from='lstm'" in text


def test_certify_from_a_dotted_name_and_bad_names():
    X, Y = ar2_windows(n=32)
    torch.manual_seed(0)
    model = NextValueLSTM(hidden=4)
    with Monitor(model, X, Y, certify_from="lstm", runs_dir=None) as monitor:
        assert monitor.plan.head and monitor.plan.input_features == 4
    with pytest.raises(ValueError, match="certify_from.*not a submodule"):
        Monitor(model, X, Y, certify_from="encoder", runs_dir=None)
    with pytest.raises(TypeError, match="certify_from must be a submodule"):
        Monitor(model, X, Y, certify_from=3, runs_dir=None)


# --------------------------------------------------------------------------- models that do not fold
class ResidualMLP(nn.Module):
    def __init__(self, n: int = 5, h: int = 16) -> None:
        super().__init__()
        self.inp = nn.Linear(n, h)
        self.block = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h))
        self.out = nn.Linear(h, 1)

    def forward(self, x):
        h = F.relu(self.inp(x))
        h = h + self.block(h)  # the residual sum
        return self.out(h)


def layernorm_mlp(n: int = 5, h: int = 16) -> nn.Module:
    return nn.Sequential(nn.Linear(n, h), nn.LayerNorm(h), nn.GELU(), nn.Linear(h, 1))


def input_layernorm_mlp(n: int = 5, h: int = 16) -> nn.Module:
    return nn.Sequential(nn.LayerNorm(n), nn.Linear(n, h), nn.GELU(), nn.Linear(h, 1))


@pytest.mark.parametrize("make, words", [
    (ResidualMLP, ["residual sum", "add"]),
    (layernorm_mlp, ["layer_norm", "1 (LayerNorm)", "per-sample normalisation"]),
    (lambda: nn.Sequential(nn.Linear(5, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 1)), ["layer_norm"]),
    (input_layernorm_mlp, ["layer_norm", "0 (LayerNorm)"]),
], ids=["residual", "layernorm", "layernorm-relu", "layernorm-on-the-input"])
def test_residual_and_layernorm_mlps_get_no_verdict_not_a_yes0_above_least_squares(make, words):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(96, 5, generator=g)
    Y = torch.sin(X @ torch.randn(5, 1, generator=g))
    torch.manual_seed(0)
    model = make()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Monitor(model, X, Y, optimizer=optimizer, background=False, every=1, runs_dir=None) as monitor:
        for _ in monitor.epochs(3):
            optimizer.zero_grad()
            F.mse_loss(model(X), Y).backward()
            optimizer.step()
        records = monitor.run.epochs
        text = monitor.describe()
    assert [r.zone for r in records] == ["none"] * 3
    assert math.isnan(monitor.run.upper) and all(math.isnan(r.upper) for r in records)
    for word in words:
        assert word in records[-1].reason, records[-1].reason
    assert "certify_from" in records[-1].reason and "Not covered" in text
    assert any("no verdict" in w for w in monitor.run.warnings)


def test_a_plain_gelu_mlp_is_still_certified():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(64, 5, generator=g)
    Y = X @ torch.randn(5, 2, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.GELU(), nn.Linear(16, 2))
    with Monitor(model, X, Y, runs_dir=None) as monitor:
        assert monitor.plan.certified and math.isfinite(monitor.cloud.upper)
        assert monitor.run.config["certified"] == "network"


# --------------------------------------------------------------------------- embeddings
class BagOfCharacters(nn.Module):
    """An embedding read straight by a linear head (depth 1)."""

    def __init__(self, vocab: int = 7, dim: int = 8, context: int = 3) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.fc = nn.Linear(context * dim, 2)

    def forward(self, idx):
        return self.fc(self.emb(idx).view(idx.shape[0], -1))


class Makemore(nn.Module):
    """Karpathy's makemore MLP: C[idx] → flatten → tanh hidden layer → logits."""

    def __init__(self, vocab: int = 27, dim: int = 10, context: int = 3, hidden: int = 64) -> None:
        super().__init__()
        self.C = nn.Embedding(vocab, dim)
        self.W1 = nn.Linear(context * dim, hidden)
        self.W2 = nn.Linear(hidden, vocab)

    def forward(self, idx):
        emb = self.C(idx)
        h = torch.tanh(self.W1(emb.view(emb.shape[0], -1)))
        return self.W2(h)


def test_an_embedding_layer_reads_the_one_hot_ids():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 7, (120, 3), generator=g)
    Y = torch.randn(120, 2, generator=g) + ids[:, :1].float()
    torch.manual_seed(0)
    with Monitor(BagOfCharacters(), ids, Y, runs_dir=None) as monitor:
        one_hot = F.one_hot(ids, 7).reshape(120, -1)  # by hand: 3 positions × 7 ids
        assert math.isclose(monitor.cloud.upper, least_squares_error(one_hot, Y), rel_tol=1e-8)
        assert least_squares_error(ids.float(), Y) > 1.01 * monitor.cloud.upper  # raw ids are not the features
        text = monitor.describe()
        assert not any("narrower than the expansion" in w for w in monitor.run.warnings)  # 8 ≥ 7 ids
    assert "emb (Embedding)" in text and "one-hot" in text and "21 features" in text


def test_a_narrow_embedding_makes_yes0_a_reference():
    ids = torch.randint(0, 27, (100, 3), generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 27, (100,), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    with Monitor(Makemore(), ids, labels, runs_dir=None) as monitor:
        assert monitor.plan.input_features == 81
        assert any("narrower than the expansion" in w and "reference, not a certificate" in w
                   for w in monitor.run.warnings)


# --------------------------------------------------------------------------- describe()
class TinyTransformer(nn.Module):
    """Tokens → embedding → one encoder layer → mean over positions → a linear head."""

    def __init__(self, vocab: int = 11, d: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d_model=d, nhead=2, dim_feedforward=32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1)
        self.head = nn.Linear(d, 1)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


def _describe(model: nn.Module, X: torch.Tensor, Y: torch.Tensor, **options) -> str:
    with Monitor(model, X, Y, runs_dir=None, **options) as monitor:
        return monitor.describe()


def test_describe_names_the_embedding_the_activation_and_what_is_not_covered():
    ids = torch.randint(0, 27, (40, 3), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    text = _describe(Makemore(), ids, torch.randint(0, 27, (40,)))
    assert "C (Embedding)" in text and "one-hot" in text and "tanh" in text and "Not covered: nothing" in text

    X, Y = torch.randn(40, 5), torch.randn(40, 1)
    gelu = nn.Sequential(nn.Linear(5, 16), nn.GELU(), nn.Linear(16, 1))
    for options in ({}, {"taps": [gelu[1]]}):  # read by discovery, or named as a tap
        text = _describe(gelu, X, Y, **options)
        assert "GELU" in text and "<function" not in text and "Not covered" in text

    windows, next_values = ar2_windows(n=40)
    text = _describe(NextValueLSTM(), windows, next_values)
    assert "lstm (LSTM): lstm" in text and "fc (Linear)" in text  # every operation, in forward order
    assert text.find("lstm (LSTM)") < text.find("fc (Linear)")
    assert "Not covered: everything: lstm in lstm (LSTM)" in text and "recurrent" in text
    assert "certify_from='lstm'" in text

    tokens = torch.randint(0, 11, (40, 5), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    model = TinyTransformer()
    text = _describe(model, tokens, torch.randn(40, 1))
    for words in ("embed (Embedding)", "MultiheadAttention", "LayerNorm", "residual sum", "Not covered",
                  "certify_from='encoder'", "head (Linear)"):
        assert words in text, (words, text)
    text = _describe(model, tokens, torch.randn(40, 1), certify_from="encoder")
    assert "head given current features" in text and "MultiheadAttention" in text and "mean" in text
    assert "X: the head's input at each epoch, 16 per sample" in text


def test_an_embedding_bag_classifier_gets_no_verdict_and_its_head_is_judged_against_logistic_regression():
    import warnings

    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 30, (300, 8), generator=g)
    labels = (ids < 10).sum(dim=1).clamp(max=2)  # how many "topic" words: 0, 1 or ≥ 2
    flip = torch.rand(300, generator=g) < 0.2  # label noise: the classes overlap, the optimum is finite
    labels = torch.where(flip, torch.randint(0, 3, (300,), generator=g), labels)
    torch.manual_seed(0)
    model = nn.Sequential(nn.EmbeddingBag(30, 6, mode="mean"), nn.Linear(6, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for head in (None, "0"):
        with Monitor(model, ids, labels, optimizer=optimizer, runs_dir=None, verbose=False,
                     certify_from=head) as monitor:
            for _ in monitor.epochs(30 if head else 1):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(ids), labels)
                loss.backward()
                optimizer.step()
                monitor.log(loss)
        final = monitor.run.final
        if head is None:  # integer ids pooled by a bag: no certificate, and the way to one
            assert final.zone == "none" and "embedding_bag" in final.reason and "certify_from='0'" in final.reason
    with torch.no_grad():
        features = model[0](ids).double().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = LogisticRegression(C=np.inf, max_iter=5000).fit(features, labels.numpy())
    optimum = nn.functional.cross_entropy(torch.tensor(fitted.decision_function(features)), labels).item()
    assert final.upper == pytest.approx(optimum, rel=1e-4)  # the head's YES-0: the best head on these features
    assert "head given current features" in final.reason


class MeanOfEmbeddings(nn.Module):
    """A bag of words written by hand: the tokens' embeddings averaged, then a linear head."""

    def __init__(self, vocab: int = 20, d: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.head = nn.Linear(d, 1)

    def forward(self, tokens):
        return self.head(self.embed(tokens).mean(1))


def test_a_hand_written_bag_of_embeddings_gets_no_verdict_and_its_head_is_judged_against_least_squares():
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 20, (200, 6), generator=g)
    target = (tokens[:, :1] < 10).double() + 0.1 * torch.randn(200, 1, generator=g, dtype=torch.float64)
    # why no verdict: a least-squares layer on the one-hot tokens sees the position the bag averages away
    one_hot = F.one_hot(tokens, 20).double().reshape(200, -1)
    assert least_squares_error(one_hot, target) < 0.5 * least_squares_error(one_hot.reshape(200, 6, 20).mean(1),
                                                                             target)
    torch.manual_seed(0)
    model = MeanOfEmbeddings()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for head in (None, "embed"):
        with Monitor(model, tokens, target.float(), optimizer=optimizer, runs_dir=None, verbose=False,
                     certify_from=head) as monitor:
            for _ in monitor.epochs(3):
                optimizer.zero_grad()
                loss = F.mse_loss(model(tokens), target.float())
                loss.backward()
                optimizer.step()
                monitor.log(loss)
        final = monitor.run.final
        if head is None:  # not red against a bound the bag cannot reach: none, and the way to a verdict
            assert final.zone == "none" and "`mean`" in final.reason and "certify_from='embed'" in final.reason
    with torch.no_grad():
        features = model.embed(tokens).mean(1)
    assert final.upper == pytest.approx(least_squares_error(features, target), rel=1e-4)
    assert "head given current features" in final.reason
