"""Tests for yeswidget.training.tasks: the paper's experiments as built-in teaching tasks."""
from __future__ import annotations

import json
import pathlib
import pickle
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from yeswidget import tasks as T
from yeswidget.training.tasks import Task, get_task, mnist, mnist_targets

TASK_NAMES = ["phase-retrieval", "signal-denoising", "patch-recovery", "digits"]


@pytest.fixture(scope="module")
def built():
    """Each built-in task once (building them is the slow part of this file)."""
    return {name: get_task(name) for name in TASK_NAMES}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tasks must never touch the network: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("yeswidget.training.tasks tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


# --------------------------------------------------------------------------- #
# things every built-in task promises
# --------------------------------------------------------------------------- #
EXPECTED = {
    # name: (n, m, n_train, n_test, defaults)
    "phase-retrieval": (20, 100, 800, 200, dict(optimizer="adam", lr=1e-3, schedule="step", step_size=50, gamma=0.9, batch_size=50, epochs=800)),
    "signal-denoising": (20, 20, 800, 200, dict(optimizer="sgd", lr=1e-4, schedule="step", step_size=50, gamma=0.9, batch_size=20, epochs=1800)),
    "patch-recovery": (64, 64, 4410, 0, dict(optimizer="adam", lr=1e-3, schedule="step", step_size=20, gamma=0.9, batch_size=90, epochs=1000)),
    "digits": (64, 10, 1437, 360, dict(optimizer="sgd", lr=1e-4, schedule="step", step_size=50, gamma=0.7, batch_size=100, epochs=500)),
}


@pytest.mark.parametrize("name", TASK_NAMES)
def test_shapes_split_and_defaults(built, name):
    task = built[name]
    n, m, n_train, n_test, defaults = EXPECTED[name]
    assert task.name == name
    assert task.X_train.shape == (n_train, n) and task.Y_train.shape == (n_train, m)
    assert task.X_train.dtype == torch.float32 and task.Y_train.dtype == torch.float32
    if n_test:
        assert task.X_test.shape == (n_test, n) and task.Y_test.shape == (n_test, m)
        assert task.X_test.dtype == torch.float32 and task.Y_test.dtype == torch.float32
    else:
        assert task.X_test is None and task.Y_test is None
    assert (task.n_inputs, task.n_outputs, task.n_train, task.n_test) == (n, m, n_train, n_test)
    for key, value in defaults.items():
        assert task.defaults[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    # a teacher-facing description of 2-3 sentences
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", task.description.strip()) if s]
    assert 2 <= len(sentences) <= 4, task.description
    # the repr is a summary, not a dump of tensors
    assert len(repr(task)) < 600 and name in repr(task)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_model_is_five_linear_layers_with_relu_between(built, name):
    task = built[name]
    model = task.model(seed=0)
    layers = linear_layers(model)
    assert len(layers) == 5
    assert layers[0].in_features == task.n_inputs and layers[-1].out_features == task.n_outputs
    assert all(layer.bias is not None for layer in layers)
    kinds = [type(mod) for mod in model.children()]
    assert kinds == [nn.Linear, nn.ReLU] * 4 + [nn.Linear]  # no ReLU after the last layer
    with torch.no_grad():
        out = model(task.X_train[:7])
    assert out.shape == (7, task.n_outputs)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_same_seed_same_weights_different_seed_different(built, name):
    task = built[name]
    a, b, c = task.model(seed=3), task.model(seed=3), task.model(seed=4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    # make_model builds a fresh, independent model each time
    assert a is not b and a[0].weight.data_ptr() != b[0].weight.data_ptr()


@pytest.mark.parametrize("name", ["phase-retrieval", "signal-denoising"])
def test_data_deterministic_given_seed(built, name):
    again = get_task(name, seed=0)
    other = get_task(name, seed=1)
    task = built[name]
    for field in ("X_train", "Y_train", "X_test", "Y_test"):
        assert torch.equal(getattr(task, field), getattr(again, field))
        assert not torch.equal(getattr(task, field), getattr(other, field))


def test_patch_recovery_deterministic_given_seed():
    a = T.patch_recovery(image_size=32, seed=5)
    b = T.patch_recovery(image_size=32, seed=5)
    c = T.patch_recovery(image_size=32, seed=6)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.Y_train, b.Y_train)
    assert not torch.equal(a.X_train, c.X_train)
    assert torch.equal(a.Y_train, c.Y_train)  # same image, same patches; only A and noise change


def test_builtin_tasks_pickle(built):
    # a Task can be sent to another process (no lambdas or closures inside)
    for name in ("phase-retrieval", "digits"):
        clone = pickle.loads(pickle.dumps(built[name]))
        assert torch.equal(clone.X_train, built[name].X_train)
        assert clone.extras.keys() == built[name].extras.keys()


# --------------------------------------------------------------------------- #
# phase retrieval
# --------------------------------------------------------------------------- #
def test_phase_retrieval_targets_are_magnitudes(built):
    task = built["phase-retrieval"]
    A = task.extras["A"]
    assert A.shape == (100, 20)
    assert float(A.std()) == pytest.approx(0.1, rel=0.1)  # entries N(0, 1/100)
    for X, Y in ((task.X_train, task.Y_train), (task.X_test, task.Y_test)):
        assert (Y >= 0).all()
        recomputed = (X.double() @ A.double().T).abs()
        torch.testing.assert_close(Y.double(), recomputed, rtol=1e-6, atol=1e-6)
    assert float(task.X_train.std()) == pytest.approx(1.0, rel=0.05)  # x ~ N(0, I)


def test_phase_retrieval_sample_count_and_fixed_matrix():
    small = T.phase_retrieval(n_samples=50, seed=0)
    assert small.n_train + small.n_test == 50 and small.n_test == 10
    big = T.phase_retrieval(n_samples=60, seed=0)
    assert torch.equal(small.extras["A"], big.extras["A"])  # A depends on the seed only
    with pytest.raises(ValueError, match="n_samples"):
        T.phase_retrieval(n_samples=0)
    with pytest.raises(ValueError, match="seed"):
        T.phase_retrieval(seed=-1)


# --------------------------------------------------------------------------- #
# signal denoising
# --------------------------------------------------------------------------- #
def test_signal_denoising_pairs_noisy_with_clean(built):
    task = built["signal-denoising"]
    clean = task.extras["clean_signals"]
    assert clean.shape == (50, 20)
    idx_tr, idx_te = task.extras["signal_train"], task.extras["signal_test"]
    assert torch.equal(task.Y_train, clean[idx_tr]) and torch.equal(task.Y_test, clean[idx_te])
    counts = torch.bincount(torch.cat([idx_tr, idx_te]), minlength=50)
    assert (counts == 20).all()  # every clean signal seen with 20 noise draws
    noise = torch.cat([task.X_train - task.Y_train, task.X_test - task.Y_test])
    assert float(noise.std()) == pytest.approx(0.2, rel=0.05)
    assert abs(float(noise.mean())) < 0.02


def test_split_does_not_depend_on_seed(built):
    # the 80/20 split uses one fixed split seed: the same rows are held out for every data seed
    other = T.signal_denoising(seed=7)
    assert torch.equal(other.extras["signal_test"], built["signal-denoising"].extras["signal_test"])


def test_split_matches_the_paper_scripts(built):
    # the authors split with scikit-learn's train_test_split(test_size=0.2, random_state=2)
    from sklearn.model_selection import train_test_split

    order = np.repeat(np.arange(50), 20)  # signal-major sample order, as generated
    train, test = train_test_split(order, test_size=0.2, random_state=2)
    task = built["signal-denoising"]
    assert task.extras["signal_train"].tolist() == train.tolist()
    assert task.extras["signal_test"].tolist() == test.tolist()


def test_signal_denoising_options():
    task = T.signal_denoising(n_signals=5, repeats=4, noise_std=0.0, seed=2)
    assert task.n_train + task.n_test == 20 and task.n_test == 4
    assert torch.equal(task.X_train, task.Y_train)  # no noise: input equals target
    with pytest.raises(ValueError, match="noise_std"):
        T.signal_denoising(noise_std=-1.0)


# --------------------------------------------------------------------------- #
# patch recovery
# --------------------------------------------------------------------------- #
def test_patch_recovery_data(built):
    task = built["patch-recovery"]
    ex = task.extras
    assert len(ex["positions"]) == 441 and ex["measurements"] == 10
    assert task.X_train.shape == (4410, 64)
    image = ex["image"]
    assert isinstance(image, np.ndarray) and image.shape == (128, 128)
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.8
    # the image is the cameraman resized (anti-aliased) from scikit-image's copy
    from skimage import data as skdata
    from skimage.transform import resize

    ref = resize(skdata.camera() / 255.0, (128, 128), anti_aliasing=True)
    np.testing.assert_allclose(image, ref, atol=1e-6)
    # patch-major training order: rows 10*i .. 10*i+9 are patch i, top-left at positions[i]
    r, c = ex["positions"][22]
    expected = image[r : r + 8, c : c + 8].reshape(-1)
    for row in range(220, 230):
        np.testing.assert_allclose(task.Y_train[row].numpy(), expected, atol=1e-6)
    assert torch.equal(ex["patch_index"][220:230], torch.full((10,), 22))
    # measurements: b = (A p)^2 + noise with noise std 0.1
    A = ex["A"]
    assert A.shape == (64, 64) and float(A.std()) == pytest.approx(1 / 8, rel=0.05)
    resid = task.X_train.double() - (task.Y_train.double() @ A.double().T) ** 2
    assert float(resid.std()) == pytest.approx(0.1, rel=0.05)


def test_patch_recovery_reconstruct_returns_the_image(built):
    task = built["patch-recovery"]
    rec = task.extras["reconstruct"]
    image = task.extras["image"]
    out = rec(task.Y_train)  # every measurement row, training order
    assert isinstance(out, np.ndarray) and out.shape == (128, 128)
    np.testing.assert_allclose(out, image, atol=1e-6)
    one_per_patch = task.Y_train[::10]
    np.testing.assert_allclose(rec(one_per_patch), image, atol=1e-6)
    # repeated measurements of a patch are averaged
    noisy = task.Y_train.clone()
    noisy[0::2] += 0.05
    noisy[1::2] -= 0.05
    np.testing.assert_allclose(rec(noisy), image, atol=1e-5)
    # works on a model's output directly (grad-tracking tensor)
    model_out = task.model(0)(task.X_train)
    assert rec(model_out).shape == (128, 128)
    with pytest.raises(ValueError, match="441"):
        rec(task.Y_train[:100])


def test_patch_recovery_other_geometry():
    task = T.patch_recovery(image_size=32, patch=8, stride=8, measurements=2, seed=0)
    assert len(task.extras["positions"]) == 16 and task.n_train == 32
    np.testing.assert_allclose(task.extras["reconstruct"](task.Y_train), task.extras["image"], atol=1e-6)
    with pytest.raises(ValueError, match="patch"):
        T.patch_recovery(image_size=4, patch=8)


def test_patch_recovery_without_scikit_image(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # makes `import skimage...` fail
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    monkeypatch.setitem(sys.modules, "skimage.transform", None)
    with pytest.raises(ImportError, match=re.escape('pip install "yeswidget[tasks]"')):
        T.patch_recovery(image_size=16)


# --------------------------------------------------------------------------- #
# digits and the MNIST path
# --------------------------------------------------------------------------- #
def test_digits_one_hot_and_decode(built):
    task = built["digits"]
    assert task.n_train + task.n_test == 1797
    X = torch.cat([task.X_train, task.X_test])
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    for Y, labels in ((task.Y_train, task.extras["labels_train"]), (task.Y_test, task.extras["labels_test"])):
        assert set(torch.unique(Y).tolist()) == {0.0, 1.0}
        assert (Y.sum(dim=1) == 1).all()
        decoded = task.extras["decode"](Y)
        assert decoded.dtype == torch.long and torch.equal(decoded, labels)
    assert torch.equal(task.extras["decode"](torch.tensor([[0.1, 0.9, 0.3] + [0.0] * 7])), torch.tensor([1]))
    # the data is fixed: the seed does not change it
    assert torch.equal(T.digits(seed=9).X_test, task.X_test)


def test_digits_accuracy(built):
    task = built["digits"]
    always_three = nn.Linear(64, 10)
    with torch.no_grad():
        always_three.weight.zero_()
        always_three.bias.copy_(torch.eye(10)[3])
    always_three.train()
    acc = task.extras["accuracy"](always_three)
    assert acc == pytest.approx(float((task.extras["labels_test"] == 3).double().mean()))
    assert always_three.training  # left in the mode it was in
    assert 0.0 <= task.extras["accuracy"](task.model(0)) <= 1.0
    # the same helper on the training split
    acc_tr = task.extras["accuracy"](always_three, task.X_train, task.extras["labels_train"])
    assert acc_tr == pytest.approx(float((task.extras["labels_train"] == 3).double().mean()))


def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=re.escape('pip install "yeswidget[tasks]"')):
        T.digits()


def test_mnist_targets_shape_and_placement():
    digits = torch.tensor([0, 3, 9, 3])
    Y = mnist_targets(digits)
    assert Y.shape == (4, 400) and Y.dtype == torch.float32
    assert (Y.sum(dim=1) == 1).all()
    images = Y.reshape(4, 20, 20)
    for k, d in enumerate(digits.tolist()):
        assert images[k, d, d] == 1.0
    assert torch.equal(images[1], images[3])
    assert mnist_targets(np.array([2]), size=5).reshape(5, 5)[2, 2] == 1.0
    with pytest.raises(ValueError, match="0..19"):
        mnist_targets(torch.tensor([20]))
    with pytest.raises(TypeError, match="digits"):
        mnist_targets(torch.tensor([1.0]))


def test_mnist_task_on_small_made_up_data():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.arange(30) % 10
    task = mnist(images, labels)
    assert task.X_train.shape == (24, 400) and task.X_test.shape == (6, 400)
    assert 0.0 <= float(task.X_train.min()) and float(task.X_train.max()) <= 1.0
    assert torch.equal(task.extras["decode"](task.Y_train), task.extras["labels_train"])
    assert torch.equal(task.Y_test, mnist_targets(task.extras["labels_test"]))
    assert [l.in_features for l in linear_layers(task.model(0))] == [400] * 5
    assert 0.0 <= task.extras["accuracy"](task.model(0)) <= 1.0
    # an explicit test set and a sample limit
    task2 = mnist(images, labels, test_images=images[:5].numpy(), test_labels=labels[:5].numpy(), limit=20)
    assert task2.n_train == 20 and task2.n_test == 5
    with pytest.raises(ValueError, match="labels"):
        mnist(images, labels[:10])


def test_decode_nearest():
    targets = torch.tensor([[0.0, 0.0], [1.0, 1.0], [4.0, 0.0]])
    outputs = torch.tensor([[0.1, -0.2], [0.9, 1.3], [3.0, 0.2]])
    assert torch.equal(T.decode_nearest(outputs, targets), torch.tensor([0, 1, 2]))


# --------------------------------------------------------------------------- #
# registry
# --------------------------------------------------------------------------- #
def test_get_task_accepts_dashes_underscores_and_kwargs():
    assert set(T.TASKS) == set(TASK_NAMES)
    a = get_task("phase_retrieval", n_samples=20, seed=1)
    b = get_task("Phase-Retrieval", n_samples=20, seed=1)
    assert a.name == "phase-retrieval" and torch.equal(a.X_train, b.X_train)


def test_get_task_unknown_name_lists_the_names():
    with pytest.raises(ValueError) as err:
        get_task("mnistt")
    msg = str(err.value)
    assert "mnistt" in msg
    for name in TASK_NAMES:
        assert name in msg


def test_tasks_module_imports_no_ui_libraries():
    # A fresh interpreter (earlier tests may have imported anything) imports the tasks and
    # the rooms below them (core, engine, monitor, training) and nothing else.
    code = (
        "import sys\n"
        f"import {T.__name__}\n"
        "import json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=pathlib.Path(T.__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "torch" in loaded  # the probe really ran the module
    assert not loaded & {"ipywidgets", "bqplot", "anywidget", "traitlets", "IPython"}
    assert not loaded & {"skimage", "sklearn"}  # optional extras, imported only when a task needs them


# --------------------------------------------------------------------------- #
# Task.from_tensors
# --------------------------------------------------------------------------- #
def make_net():
    return T.mlp((3, 8, 2))


def test_from_tensors_accepts_numpy_and_fills_defaults():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))  # float64
    Y = rng.normal(size=(40, 2)).astype(np.float32)
    task = Task.from_tensors(make_net, X, Y, name="mine", lr=0.01, optimizer="SGD", epochs=5)
    assert task.name == "mine" and task.X_train.dtype == torch.float32
    assert task.X_test is None and task.n_train == 40
    np.testing.assert_allclose(task.X_train.numpy(), X.astype(np.float32))
    assert task.defaults["lr"] == 0.01 and task.defaults["optimizer"] == "sgd" and task.defaults["epochs"] == 5
    assert {"batch_size", "schedule", "step_size", "gamma"} <= set(task.defaults)
    assert linear_layers(task.model(0))[0].in_features == 3


def test_from_tensors_split():
    X = torch.arange(100, dtype=torch.float32).reshape(50, 2)
    Y = X.sum(dim=1, keepdim=True)
    task = Task.from_tensors(lambda: nn.Linear(2, 1), X, Y, test_fraction=0.2, split_seed=3)
    assert task.n_train == 40 and task.n_test == 10
    rows = torch.cat([task.X_train, task.X_test])[:, 0].tolist()
    assert sorted(rows) == X[:, 0].tolist()  # disjoint, nothing lost
    torch.testing.assert_close(task.Y_test, task.X_test.sum(dim=1, keepdim=True))  # rows stay paired
    again = Task.from_tensors(lambda: nn.Linear(2, 1), X, Y, test_fraction=0.2, split_seed=3)
    other = Task.from_tensors(lambda: nn.Linear(2, 1), X, Y, test_fraction=0.2, split_seed=4)
    assert torch.equal(again.X_test, task.X_test) and not torch.equal(other.X_test, task.X_test)
    with pytest.raises(ValueError, match="test_fraction"):
        Task.from_tensors(lambda: nn.Linear(2, 1), X, Y, test_fraction=1.0)


GOOD_X = torch.zeros(10, 3)
GOOD_Y = torch.zeros(10, 2)


@pytest.mark.parametrize(
    "X, Y, exc, needles",
    [
        (torch.zeros(10, 3), torch.zeros(9, 2), ValueError, ["X", "Y", "10", "9", "rows"]),
        (torch.zeros(10), GOOD_Y, ValueError, ["X", "2-D", "(10,)", "reshape"]),
        (GOOD_X, torch.zeros(10, 2, 1), ValueError, ["Y", "2-D", "(10, 2, 1)"]),
        (GOOD_X, torch.tensor([[0.0, float("nan")]] * 10), ValueError, ["Y", "NaN", "row 0"]),
        (np.full((10, 3), np.inf), GOOD_Y, ValueError, ["X", "non-finite"]),
        (torch.zeros(10, 3, dtype=torch.int64), GOOD_Y, TypeError, ["X", "int64", ".float()"]),
        (GOOD_X, np.zeros((10, 2), dtype=np.int32), TypeError, ["Y", "int32", "one_hot"]),
        ([[0.0] * 3] * 10, GOOD_Y, TypeError, ["X", "list", "torch.as_tensor"]),
    ],
)
def test_from_tensors_validation_names_the_argument(X, Y, exc, needles):
    with pytest.raises(exc) as err:
        Task.from_tensors(make_net, X, Y)
    msg = str(err.value)
    assert re.search(rf"\b{needles[0]}\b", msg), msg
    for needle in needles[1:]:
        assert needle in msg, msg


def test_from_tensors_transposed_hint_and_model_checks():
    with pytest.raises(ValueError, match="transpose"):
        Task.from_tensors(make_net, torch.zeros(3, 10), torch.zeros(10, 2))
    with pytest.raises(TypeError, match="make_model"):
        Task.from_tensors(make_net(), GOOD_X, GOOD_Y)  # a model instance, not a factory
    with pytest.raises(TypeError, match="make_model"):
        Task.from_tensors("net", GOOD_X, GOOD_Y)
    with pytest.raises(ValueError, match="3 inputs"):
        Task.from_tensors(lambda: T.mlp((4, 2)), GOOD_X, GOOD_Y)
    with pytest.raises(ValueError, match="2 columns"):
        Task.from_tensors(lambda: T.mlp((3, 5)), GOOD_X, GOOD_Y)
    # checking the model leaves torch's random stream alone
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    Task.from_tensors(make_net, GOOD_X, GOOD_Y)
    assert torch.equal(torch.rand(3), expected)
    # the check can be skipped
    Task.from_tensors(lambda: T.mlp((4, 2)), GOOD_X, GOOD_Y, check_model=False)


def test_from_tensors_rejects_bad_recipe():
    with pytest.raises(ValueError, match="optimizer"):
        Task.from_tensors(make_net, GOOD_X, GOOD_Y, optimizer="rmsprop")
    with pytest.raises(ValueError, match="lr"):
        Task.from_tensors(make_net, GOOD_X, GOOD_Y, lr=-1)
    with pytest.raises(ValueError, match="batch_size"):
        Task.from_tensors(make_net, GOOD_X, GOOD_Y, batch_size=0)
