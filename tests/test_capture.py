"""Discovery and capture by what forward executes, on models written the way tutorials write them.

For each model the captured hidden outputs must equal the post-activation tensors
computed by hand, and YesCloud fed the captured tensors must give the values it
gives on the hand-computed ones.
"""
from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yeswidget.engine.bounds import YesCloud, yes_k_bounds
from yeswidget.engine.capture import CaptureError, capture, trace

torch.manual_seed(0)


def _data(n: int = 40, features: int = 6, outputs: int = 3, shape: tuple[int, ...] | None = None):
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(n, *(shape or (features,)), generator=generator)
    Y = torch.randn(n, outputs, generator=generator)
    return X, Y


def _assert_same_bounds(X, Y, plan, captured, by_hand):
    """The cloud built from the plan gives on the captured tensors what it gives on the hand-computed ones."""
    assert len(captured) == len(by_hand) == plan.depth - 1
    for got, want in zip(captured, by_hand):
        assert got.shape == want.reshape(want.shape[0], -1).shape
        torch.testing.assert_close(got, want.reshape(want.shape[0], -1), rtol=0, atol=0)
    kwargs = plan.bounds_kwargs()
    cloud = YesCloud(X.reshape(X.shape[0], -1).double(), Y.double(), **kwargs)
    got = cloud.compute([h.double() for h in captured])
    want = yes_k_bounds(X.reshape(X.shape[0], -1).double(), Y.double(), [h.double() for h in by_hand],
                        bias=kwargs["bias"], activation=kwargs["activation"])
    assert got.keys() == want.keys() and len(got) == 2 ** (plan.depth - 1) - 1
    for anchor_set in got:
        assert got[anchor_set] == pytest.approx(want[anchor_set], rel=1e-9, abs=1e-12)
    cloud.update(captured)
    assert cloud.lower <= cloud.upper


# --------------------------------------------------------------------------- #
# (a) one nn.ReLU module reused in forward
# --------------------------------------------------------------------------- #
class ReusedReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 12)
        self.fc3 = nn.Linear(12, 3)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def test_a_one_relu_module_called_twice_gives_two_hidden_layers():
    model, (X, Y) = ReusedReLU(), _data()
    plan = trace(model, X[:4])
    assert (plan.depth, plan.hidden_widths, plan.bias, str(plan.activation)) == (3, [16, 12], True, "relu")
    assert "relu (ReLU) call 2" in plan.describe()
    hidden, output = capture(model, X, plan)
    with torch.no_grad():
        h1 = torch.relu(model.fc1(X))
        h2 = torch.relu(model.fc2(h1))
        torch.testing.assert_close(output, model.fc3(h2), rtol=0, atol=0)
    _assert_same_bounds(X, Y, plan, hidden, [h1, h2])


# --------------------------------------------------------------------------- #
# (b) F.relu in forward
# --------------------------------------------------------------------------- #
class FunctionalReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.fc2 = nn.Linear(10, 10)
        self.fc3 = nn.Linear(10, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = F.relu(self.fc3(x))
        return self.out(x)


def test_b_functional_relu_is_seen():
    model, (X, Y) = FunctionalReLU(), _data()
    plan = trace(model, X[:4])
    assert plan.depth == 4 and plan.hidden_widths == [10, 10, 8]
    assert "F.relu in FunctionalReLU.forward" in plan.describe()
    hidden, _ = capture(model, X, plan, chunk_size=7)  # chunked: 40 samples in 6 passes
    by_hand: list[list[torch.Tensor]] = [[], [], []]
    with torch.no_grad():
        for x in X.split(7):  # the same chunks (a GEMM's rounding depends on the batch)
            h1 = F.relu(model.fc1(x))
            h2 = F.relu(model.fc2(h1))
            h3 = F.relu(model.fc3(h2))
            for chunks, h in zip(by_hand, (h1, h2, h3)):
                chunks.append(h)
    _assert_same_bounds(X, Y, plan, hidden, [torch.cat(chunks) for chunks in by_hand])


# --------------------------------------------------------------------------- #
# (c) BatchNorm1d + F.relu, returning (logits, probas), attached with output=0
# --------------------------------------------------------------------------- #
class BatchNormClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 32, bias=False)
        self.bn1 = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 16)
        self.bn2 = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(self.bn1(self.fc1(x)))
        x = self.drop(F.relu(self.bn2(self.fc2(x))))
        logits = self.head(x)
        return logits, F.softmax(logits, dim=1)


def _train_a_little(model, X, Y_classes):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):  # moves the BatchNorm running statistics away from (0, 1)
        optimizer.zero_grad()
        F.cross_entropy(model(X)[0], Y_classes).backward()
        optimizer.step()


def test_c_batchnorm_tuple_output_with_output_index():
    model, (X, Y) = BatchNormClassifier(), _data()
    _train_a_little(model, X, Y.argmax(1))
    with pytest.raises(CaptureError, match=r"output=0"):
        trace(model, X[:4])
    plan = trace(model, X[:4], output=0)
    assert plan.depth == 3 and plan.hidden_widths == [32, 16] and plan.output_features == 3
    # fc1 has no bias, but BatchNorm's shift is one: the layer is affine with a bias
    assert plan.layers[0].bias and "batch_norm" in plan.layers[0].before_activation
    assert model.training  # the traced pass ran in eval mode and restored the mode
    hidden, output = capture(model, X, plan)
    assert model.training
    model.eval()
    with torch.no_grad():
        h1 = F.relu(model.bn1(model.fc1(X)))
        h2 = F.relu(model.bn2(model.fc2(h1)))
        torch.testing.assert_close(output, model.head(h2), rtol=0, atol=0)
    _assert_same_bounds(X, Y, plan, hidden, [h1, h2])


def test_c_dict_output_chosen_by_key():
    class DictOut(BatchNormClassifier):
        def forward(self, x):
            logits, probas = super().forward(x)
            return {"logits": logits, "probas": probas}

    model, (X, _) = DictOut(), _data()
    with pytest.raises(CaptureError, match="output='logits'"):
        trace(model, X[:4])
    plan = trace(model, X[:4], output="logits")
    _, output = capture(model, X, plan)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(output, model(X)["logits"], rtol=0, atol=0)
    picked = trace(model, X[:4], output=lambda result: result["logits"])
    assert picked.depth == 3


# --------------------------------------------------------------------------- #
# (d) an autoencoder LightningModule (as in Lightning's README), attached with predict=
# --------------------------------------------------------------------------- #
class LitAutoEncoder(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(8 * 8, 24), nn.ReLU(), nn.Linear(24, 3))
        self.decoder = nn.Sequential(nn.Linear(3, 24), nn.ReLU(), nn.Linear(24, 8 * 8))

    def forward(self, x):
        # in lightning, forward defines the prediction/inference actions
        embedding = self.encoder(x)
        return embedding

    def training_step(self, batch, batch_idx):
        x, _ = batch
        x = x.view(x.size(0), -1)
        z = self.encoder(x)
        x_hat = self.decoder(z)
        loss = F.mse_loss(x_hat, x)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def reconstruct(model, x):
    return model.decoder(model.encoder(x.view(x.size(0), -1)))


def test_d_lightning_autoencoder_with_predict():
    model = LitAutoEncoder()
    X, _ = _data(shape=(1, 8, 8))
    Y = X.reshape(X.shape[0], -1)  # an autoencoder's targets are its inputs
    plan = trace(model, X[:4], predict=reconstruct)
    # encoder.2 and decoder.0 have no activation between them: one affine layer (rank ≤ 3)
    assert plan.depth == 3 and plan.hidden_widths == [24, 24] and plan.output_features == 64
    assert len(plan.layers[1].affine) == 2 and "linear bottleneck" in plan.describe()
    hidden, output = capture(model, X, plan)
    with torch.no_grad():
        h1 = torch.relu(model.encoder[0](Y))
        h2 = torch.relu(model.decoder[0](model.encoder[2](h1)))
        torch.testing.assert_close(output, model.decoder[2](h2), rtol=0, atol=0)
    _assert_same_bounds(X, Y, plan, hidden, [h1, h2])
    # forward alone is the encoder: the embedding, 3 features
    assert trace(model, Y[:4]).output_features == 3


# --------------------------------------------------------------------------- #
# (e) Flatten + Sequential classifier (the PyTorch quickstart)
# --------------------------------------------------------------------------- #
class QuickstartNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(6 * 6, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 4),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def test_e_flatten_sequential_classifier():
    model = QuickstartNetwork()
    X, Y = _data(shape=(6, 6), outputs=4)
    plan = trace(model, X[:4])
    assert plan.depth == 3 and plan.input_features == 36 and plan.input_shape == (6, 6)
    hidden, _ = capture(model, X, plan)
    stack = model.linear_relu_stack
    with torch.no_grad():
        h1 = stack[1](stack[0](X.flatten(1)))
        h2 = stack[3](stack[2](h1))
    _assert_same_bounds(X, Y, plan, hidden, [h1, h2])


# --------------------------------------------------------------------------- #
# (f) two conv layers then a 3-layer MLP head
# --------------------------------------------------------------------------- #
class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * 2 * 2, 16)
        self.fc2 = nn.Linear(16, 12)
        self.fc3 = nn.Linear(12, 3)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def test_f_cnn_head_certified_from_the_raw_input():
    model = SmallCNN()
    X, Y = _data(shape=(1, 8, 8))
    plan = trace(model, X[:4])
    # default: the L affine layers are the head's Linear layers, the convolutions belong to layer 1
    assert plan.depth == 3 and plan.hidden_widths == [16, 12] and plan.input_features == 64
    assert plan.prelude[:3] == ["conv2d", "relu", "max_pool2d"]
    assert "layer 1 is fitted from the raw input" in plan.describe()
    hidden, _ = capture(model, X, plan)
    with torch.no_grad():
        features = model.pool(F.relu(model.conv2(model.pool(F.relu(model.conv1(X)))))).flatten(1)
        h1 = F.relu(model.fc1(features))
        h2 = F.relu(model.fc2(h1))
    _assert_same_bounds(X, Y, plan, hidden, [h1, h2])


def test_f_cnn_with_conv_layers_included():
    model = SmallCNN()
    X, _ = _data(n=12, shape=(1, 8, 8))
    plan = trace(model, X[:4], include_conv=True)
    assert plan.depth == 5 and plan.hidden_widths == [4 * 8 * 8, 8 * 4 * 4, 16, 12]
    hidden, _ = capture(model, X, plan)
    with torch.no_grad():
        c1 = F.relu(model.conv1(X))
        c2 = F.relu(model.conv2(model.pool(c1)))
        h1 = F.relu(model.fc1(model.pool(c2).flatten(1)))
        h2 = F.relu(model.fc2(h1))
    for got, want in zip(hidden, [c1, c2, h1, h2]):
        torch.testing.assert_close(got, want.flatten(1), rtol=0, atol=0)


# --------------------------------------------------------------------------- #
# functional activations, in-place activations, hand-written layers
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("apply, expected", [
    (lambda t: F.gelu(t), "gelu"),
    (lambda t: F.gelu(t, approximate="tanh"), "gelu(approximate='tanh')"),
    (lambda t: torch.tanh(t), "tanh"),
    (lambda t: torch.sigmoid(t), "sigmoid"),
    (lambda t: F.leaky_relu(t, 0.2), "leaky_relu(negative_slope=0.2)"),
    (lambda t: F.silu(t), "silu"),
    (lambda t: t.relu(), "relu"),
    (lambda t: F.elu(t), "elu"),
    (lambda t: nn.ReLU(inplace=True)(t), "relu"),
])
def test_functional_activations(apply, expected):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(6, 9), nn.Linear(9, 7), nn.Linear(7, 3)

        def forward(self, x):
            return self.fc3(apply(self.fc2(apply(self.fc1(x)))))

    model, (X, Y) = Net(), _data()
    plan = trace(model, X[:4])
    assert str(plan.activation) == expected and plan.depth == 3
    hidden, _ = capture(model, X, plan)
    with torch.no_grad():
        h1 = apply(model.fc1(X))
        h2 = apply(model.fc2(h1))
        # the plan's activation is the function forward applied, with its parameters
        torch.testing.assert_close(plan.activation(model.fc1(X)), h1, rtol=0, atol=0)
    _assert_same_bounds(X, Y, plan, hidden, [h1, h2])


def test_inplace_op_after_the_activation_does_not_change_the_capture():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(6, 9), nn.Linear(9, 3)

        def forward(self, x):
            h = F.relu(self.fc1(x))
            h.mul_(2.0)  # a hand-written per-feature scale, in place
            return self.fc2(h)

    model, (X, _) = Net(), _data()
    hidden, _ = capture(model, X, trace(model, X[:4]))
    with torch.no_grad():
        torch.testing.assert_close(hidden[0], F.relu(model.fc1(X)), rtol=0, atol=0)


def test_hand_written_matmul_layers():
    class Raw(nn.Module):
        def __init__(self):
            super().__init__()
            self.W1, self.b1 = nn.Parameter(torch.randn(6, 10)), nn.Parameter(torch.zeros(10))
            self.W2 = nn.Parameter(torch.randn(10, 3))

        def forward(self, x):
            return torch.tanh(x @ self.W1 + self.b1) @ self.W2

    model, (X, Y) = Raw(), _data()
    plan = trace(model, X[:4])
    assert plan.depth == 2 and plan.hidden_widths == [10] and plan.layers[0].bias and not plan.layers[1].bias
    hidden, _ = capture(model, X, plan)
    with torch.no_grad():
        _assert_same_bounds(X, Y, plan, hidden, [torch.tanh(X @ model.W1 + model.b1)])


# --------------------------------------------------------------------------- #
# errors say what was found and what fixes it
# --------------------------------------------------------------------------- #
def test_residual_connection_is_refused_with_what_forward_ran():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 3)

        def forward(self, x):
            h = F.relu(self.fc1(x))
            h = h + F.relu(self.fc2(h))
            return self.fc3(h)

    X, _ = _data()
    with pytest.raises(CaptureError, match=r"(?s)residual.*linear, relu.*predict="):
        trace(Residual(), X[:4])


def test_no_linear_layer_is_refused():
    X, _ = _data(shape=(1, 8, 8))
    with pytest.raises(CaptureError, match="include_conv=True"):
        trace(nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten()), X[:4])


def test_output_that_does_not_depend_on_the_input():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, x):
            return self.fc(x), torch.zeros(x.shape[0], 3)

    X, _ = _data()
    with pytest.raises(CaptureError, match="does not depend on the input"):
        trace(Constant(), X[:4], output=1)


def test_bad_arguments():
    model, (X, _) = ReusedReLU(), _data()
    with pytest.raises(TypeError, match="predict must be a callable"):
        trace(model, X[:4], predict="decoder")
    with pytest.raises(ValueError, match="at least one sample"):
        trace(model, X[:0])
    with pytest.raises(ValueError, match="meta device"):
        trace(model, torch.empty(4, 6, device="meta"))
    with pytest.raises(TypeError, match="output must be"):
        trace(model, X[:4], output=1.5)


# --------------------------------------------------------------------------- #
# explicit taps= (a residual network, or a choice of layers)
# --------------------------------------------------------------------------- #
class ResidualMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act1 = nn.Linear(6, 12), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(12, 12), nn.ReLU()
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        h = self.act1(self.fc1(x))
        h = h + self.act2(self.fc2(h))
        return self.out(h)


def test_explicit_taps_certify_a_residual_network():
    model, (X, Y) = ResidualMLP(), _data()
    plan = trace(model, X[:4], taps=["act1", model.act2])
    assert plan.depth == 3 and plan.hidden_widths == [12, 12] and str(plan.activation) == "relu"
    assert "taps[1] = act2 (ReLU)" in plan.describe()
    hidden, _ = capture(model, X, plan, chunk_size=16)
    by_hand: list[list[torch.Tensor]] = [[], []]
    with torch.no_grad():
        for x in X.split(16):
            h1 = model.act1(model.fc1(x))
            by_hand[0].append(h1)
            by_hand[1].append(model.act2(model.fc2(h1)))
    _assert_same_bounds(X, Y, plan, hidden, [torch.cat(chunks) for chunks in by_hand])


def test_a_reused_module_cannot_be_a_tap():
    model, (X, _) = ReusedReLU(), _data()
    with pytest.raises(CaptureError, match=r"taps\[0\] = relu \(ReLU\) ran 2 times.*taps=None"):
        trace(model, X[:4], taps=[model.relu])


def test_taps_that_are_not_activations_use_the_activation_given():
    model, (X, _) = ReusedReLU(), _data()
    plan = trace(model, X[:4], taps=["fc1", "fc2"])
    assert str(plan.activation) == "relu" and any("not the output of an activation" in n for n in plan.notes)
    tanh_plan = trace(model, X[:4], taps=["fc1", "fc2"], activation="tanh")
    assert tanh_plan.bounds_kwargs()["activation"] == "tanh" and not tanh_plan.notes
    with pytest.raises(CaptureError, match="not a submodule"):
        trace(model, X[:4], taps=["fc9"])


def test_a_forward_in_another_thread_is_neither_traced_nor_tapped():
    """The recorder and the taps' hooks see only the certification pass's own thread:
    a training step running meanwhile keeps its graph and fires no tap."""
    import threading

    model, (X, _) = ResidualMLP(), _data()
    outside: list[torch.Tensor] = []

    def predict(m, x):
        worker = threading.Thread(target=lambda: outside.append(m(torch.randn(3, 6))))
        worker.start()
        worker.join()
        return m(x)

    plan = trace(model, X[:4], predict=predict, taps=[model.act1, model.act2])  # each tap fired once
    hidden, _ = capture(model, X, plan)
    assert len(hidden) == 2 and len(outside) == 2
    assert all(t.grad_fn is not None for t in outside)  # the other thread was not under no_grad
    assert not model._forward_hooks and not model.act1._forward_hooks  # no hook left behind


def test_an_output_activation_is_reported():
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 6), nn.Sigmoid())
    X, _ = _data()
    plan = trace(model, X[:4])
    assert plan.depth == 2 and plan.hidden_widths == [8]
    assert any("passes through sigmoid after the last affine layer" in note for note in plan.notes)
    assert "→ sigmoid → output, 6 features" in plan.describe()
    hidden, output = capture(model, X, plan)
    with torch.no_grad():
        torch.testing.assert_close(output, model(X), rtol=0, atol=0)
        torch.testing.assert_close(hidden[0], model[1](model[0](X)), rtol=0, atol=0)
