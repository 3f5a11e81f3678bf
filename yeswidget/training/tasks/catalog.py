"""The paper's experiments as ready-made teaching tasks (data, model, settings).

Every task is built locally and deterministically: nothing is ever downloaded.
Each one bundles the training data (samples first: ``X`` is ``(N, n)``, ``Y`` is
``(N, m)``, float32), a factory for a fresh fully connected network of five
``Linear`` layers with ReLU between them (as in the YES-bounds paper, see
PAPER-SETUPS.md), and the paper's optimiser settings.

>>> task = get_task("phase-retrieval")
>>> model = task.model(seed=0)          # fresh weights, same for the same seed
>>> task.X_train.shape, task.Y_train.shape
(torch.Size([800, 20]), torch.Size([800, 100]))

Built-in tasks split their samples 80/20 into train/test with one fixed split
seed (:data:`PAPER_SPLIT_SEED`), so the ``seed`` argument changes the generated
data but never how it is split. ``patch_recovery`` needs scikit-image and
``digits`` needs scikit-learn (``pip install "yeswidget[tasks]"``); both are
imported only when those tasks are built.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..recipe import complete_recipe

__all__ = [
    "Task",
    "TASKS",
    "PAPER_SPLIT_SEED",
    "get_task",
    "mlp",
    "phase_retrieval",
    "signal_denoising",
    "patch_recovery",
    "digits",
    "mnist",
    "mnist_targets",
    "decode_nearest",
]

#: Seed of the fixed 80/20 train/test permutation used by every built-in task.
#: The authors' scripts split with ``random_state=2``; keeping it fixed means a
#: task's ``seed`` changes the data (and a model's seed its weights) but a test
#: sample never moves into the training set between runs.
PAPER_SPLIT_SEED = 2

#: Fraction of samples held out for testing in the built-in tasks.
TEST_FRACTION = 0.2

_INSTALL_HINT = 'pip install "yeswidget[tasks]"'



# --------------------------------------------------------------------------- #
# models
# --------------------------------------------------------------------------- #
def mlp(sizes: Sequence[int], *, bias: bool = True) -> nn.Sequential:
    """A fully connected ReLU network: ``Linear(sizes[0], sizes[1])``, ReLU, …, ``Linear`` (no final ReLU).

    ``mlp((20, 100, 100, 100, 100, 100))`` is the paper's phase-retrieval network:
    five ``Linear`` layers, ReLU after every one but the last (the output is
    linear, as the YES bounds assume). Returns an ``nn.Sequential`` so each
    layer can be read in order (``model[0]`` is the first ``Linear``).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(
            f"sizes must list at least an input and an output width, all >= 1; got {sizes}"
        )
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _model_factory(sizes: Sequence[int]) -> Callable[[], nn.Module]:
    # functools.partial of a module-level function (not a lambda) keeps a Task
    # picklable, e.g. for sending it to a worker process.
    return functools.partial(mlp, tuple(int(s) for s in sizes))


# --------------------------------------------------------------------------- #
# the Task record
# --------------------------------------------------------------------------- #
@dataclass(repr=False)
class Task:
    """A teaching task: data, a model factory and training settings.

    ``X_train`` is ``(N, n)`` and ``Y_train`` ``(N, m)``, float32, one row per
    sample; ``X_test``/``Y_test`` are the held-out rows, or both ``None``.
    ``make_model()`` builds a fresh ``nn.Module`` mapping ``n`` inputs to ``m``
    outputs (seed torch first, or use :meth:`model`). ``defaults`` holds the
    recipe: ``lr``, ``batch_size``, ``epochs``, ``optimizer`` (``"adam"``,
    ``"sgd"`` or ``"slimtrain"``), ``schedule`` (``"step"`` = ``StepLR(step_size, gamma)`` stepped
    once per epoch, or ``"constant"``), ``step_size``, ``gamma``. ``extras`` holds
    task-specific helpers (see each task's docstring).
    """

    name: str
    description: str
    make_model: Callable[[], nn.Module]
    X_train: torch.Tensor
    Y_train: torch.Tensor
    X_test: torch.Tensor | None
    Y_test: torch.Tensor | None
    defaults: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Catch an inconsistent hand-built Task here, not deep inside a training loop.
        # An nn.Module is itself callable (it runs forward()), so reject it by type.
        if isinstance(self.make_model, nn.Module) or not callable(self.make_model):
            raise TypeError(_not_callable_message(self.make_model))
        if (self.X_test is None) != (self.Y_test is None):
            raise ValueError(
                "X_test and Y_test must both be tensors or both be None; got "
                f"X_test={_describe(self.X_test)} and Y_test={_describe(self.Y_test)}"
            )
        _check_pair(self.X_train, self.Y_train, "X_train", "Y_train")
        if self.X_test is not None and self.Y_test is not None:  # both or neither (checked above)
            _check_pair(self.X_test, self.Y_test, "X_test", "Y_test")
            for a, b, what in ((self.X_train, self.X_test, "inputs"), (self.Y_train, self.Y_test, "outputs")):
                if a.shape[1] != b.shape[1]:
                    raise ValueError(
                        f"train and test {what} must have the same number of columns; "
                        f"got {tuple(a.shape)} and {tuple(b.shape)}"
                    )

    # -- convenience ------------------------------------------------------- #
    @property
    def n_inputs(self) -> int:
        """Input width ``n`` (columns of ``X``)."""
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Output width ``m`` (columns of ``Y``)."""
        return int(self.Y_train.shape[1])

    @property
    def n_train(self) -> int:
        """Number of training samples ``N``."""
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples (0 when there is no test split)."""
        return 0 if self.X_test is None else int(self.X_test.shape[0])

    def model(self, seed: int = 0) -> nn.Module:
        """A fresh model: ``torch.manual_seed(seed)``, then ``make_model()``.

        The same seed gives identical initial weights. Note this seeds torch's
        global generator, so anything random that follows (e.g. DataLoader
        shuffling) is reproducible as well.
        """
        torch.manual_seed(int(seed))
        model = self.make_model()
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"make_model() must return a torch.nn.Module; it returned {type(model).__name__}"
            )
        return model

    def __repr__(self) -> str:
        # The dataclass default would print whole tensors; a notebook user wants the gist.
        test = "none" if self.X_test is None else f"{self.n_test}"
        return (
            f"Task(name={self.name!r}, inputs={self.n_inputs}, outputs={self.n_outputs}, "
            f"train={self.n_train}, test={test}, defaults={self.defaults!r}, "
            f"extras={sorted(self.extras)!r})"
        )

    # -- user data --------------------------------------------------------- #
    @classmethod
    def from_tensors(
        cls,
        make_model: Callable[[], nn.Module],
        X: Any,
        Y: Any,
        *,
        name: str = "custom",
        description: str = "",
        test_fraction: float = 0.0,
        split_seed: int = 0,
        check_model: bool = True,
        **defaults: Any,
    ) -> Task:
        """Wrap your own data as a Task.

        ``X`` is ``(N, n)`` and ``Y`` ``(N, m)``: torch tensors or numpy arrays,
        floating point, finite, one row per sample (samples first, like PyTorch).
        They are stored as float32. ``test_fraction`` (0 ≤ f < 1) holds out
        ``ceil(f·N)`` rows chosen by a permutation seeded with ``split_seed``;
        0 keeps every row for training. ``**defaults`` override the recipe
        (``lr``, ``batch_size``, ``epochs``, ``optimizer``, ``schedule``,
        ``step_size``, ``gamma``; other keys are kept as given). With
        ``check_model`` (default) one model is built and run on one row, so a
        width mismatch is reported now rather than in the training loop; torch's
        global random state is left as it was.
        """
        if isinstance(make_model, nn.Module) or not callable(make_model):
            raise TypeError(_not_callable_message(make_model))
        Xt, Yt = _paired_rows(X, Y)
        _check_test_fraction(test_fraction)
        recipe = complete_recipe(defaults)
        if check_model:
            _check_model_fits(make_model, Xt, Yt)
        X_tr, Y_tr, X_te, Y_te = _hold_out(Xt, Yt, float(test_fraction), int(split_seed))
        return cls(
            name=str(name),
            description=str(description),
            make_model=make_model,
            X_train=X_tr,
            Y_train=Y_tr,
            X_test=X_te,
            Y_test=Y_te,
            defaults=recipe,
            extras={"split_seed": int(split_seed), "test_fraction": float(test_fraction)},
        )


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _paired_rows(X: Any, Y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` and ``Y`` as float32 tensors with one row per sample each (a clear error otherwise)."""
    Xt = _as_data(X, "X")
    Yt = _as_data(Y, "Y")
    if Xt.shape[0] != Yt.shape[0]:
        hint = ""
        if Yt.shape[1] == Xt.shape[0] or Xt.shape[1] == Yt.shape[0]:
            hint = (
                " yeswidget is samples-first (rows are samples, like PyTorch); "
                "if one array is stored (features, samples), pass its transpose (.T)."
            )
        raise ValueError(
            "X and Y must have the same number of rows (one per sample); got "
            f"X with {Xt.shape[0]} rows (shape {tuple(Xt.shape)}) and Y with "
            f"{Yt.shape[0]} rows (shape {tuple(Yt.shape)}).{hint}"
        )
    return Xt, Yt


def _check_test_fraction(test_fraction: Any) -> None:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not (
        0.0 <= float(test_fraction) < 1.0
    ):
        raise ValueError(f"test_fraction must be a number with 0 <= test_fraction < 1; got {test_fraction!r}")


def _hold_out(X: torch.Tensor, Y: torch.Tensor, test_fraction: float, split_seed: int) -> tuple[Any, ...]:
    """``(X_train, Y_train, X_test, Y_test)``: ``ceil(f·N)`` rows held out (none: the tests are None)."""
    if test_fraction <= 0:
        return X, Y, None, None
    if X.shape[0] < 2:
        raise ValueError(f"test_fraction={test_fraction} needs at least 2 samples to split; X has {X.shape[0]}")
    train_idx, test_idx = _split_indices(X.shape[0], test_fraction, split_seed)
    return X[train_idx], Y[train_idx], X[test_idx], Y[test_idx]


def _positive_int(value: Any, arg: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{arg} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return type(value).__name__


def _not_callable_message(make_model: Any) -> str:
    if isinstance(make_model, nn.Module):
        return (
            "make_model must be a function that builds a fresh torch.nn.Module, not a "
            f"model instance ({type(make_model).__name__}); pass e.g. "
            f"`lambda: {type(make_model).__name__}(...)` so every run starts from new weights"
        )
    return (
        "make_model must be a callable returning a fresh torch.nn.Module "
        f"(e.g. `lambda: nn.Sequential(...)`); got {_describe(make_model)}"
    )


def _as_data(value: Any, arg: str) -> torch.Tensor:
    """Check one data argument and return it as a contiguous float32 CPU tensor ``(N, d)``."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "f":
            raise TypeError(_dtype_message(arg, f"numpy {value.dtype}", is_numpy=True))
        t = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(_dtype_message(arg, str(value.dtype), is_numpy=False))
        t = value.detach()
    else:
        raise TypeError(
            f"{arg} must be a torch.Tensor or numpy array of shape (samples, features); "
            f"got {_describe(value)}. Convert it with torch.as_tensor({arg}, dtype=torch.float32)."
        )
    if t.ndim != 2:
        if t.ndim == 1:
            fix = f"for one feature per sample use {arg}.reshape(-1, 1)"
        elif t.ndim == 0:
            fix = "pass one row per sample"
        else:
            fix = f"flatten each sample, e.g. {arg}.reshape(len({arg}), -1)"
        raise ValueError(
            f"{arg} must be 2-D (samples, features); got shape {tuple(t.shape)}: {fix}"
        )
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{arg} must have at least one row and one column; got shape {tuple(t.shape)}")
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = (~finite).nonzero()
        row = int(bad[0, 0])
        raise ValueError(
            f"{arg} contains {bad.shape[0]} non-finite value(s) (NaN or inf), the first in row {row} "
            f"(shape {tuple(t.shape)}); drop or impute those samples before building the task"
        )
    # float32 everywhere: models are float32 and the bound code expects one dtype.
    return t.to(device="cpu", dtype=torch.float32).contiguous()


def _dtype_message(arg: str, seen: str, *, is_numpy: bool) -> str:
    cast = f"{arg}.astype(np.float32)" if is_numpy else f"{arg}.float()"
    msg = f"{arg} must hold floating-point values; got dtype {seen}. Convert it with {cast}"
    if arg.startswith("Y"):
        msg += (
            "; if Y holds class labels, use one-hot targets instead, e.g. "
            "torch.nn.functional.one_hot(torch.as_tensor(Y).long(), num_classes).float()"
        )
    return msg + "."


def _check_pair(X: Any, Y: Any, xname: str, yname: str) -> None:
    for t, arg in ((X, xname), (Y, yname)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{arg} must be a torch.Tensor; got {_describe(t)} (use Task.from_tensors for numpy data)")
        if t.ndim != 2:
            raise ValueError(f"{arg} must be 2-D (samples, features); got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{arg} must be floating point; got dtype {t.dtype}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"{xname} and {yname} must have the same number of rows; got {tuple(X.shape)} and {tuple(Y.shape)}"
        )


def _check_model_fits(make_model: Callable[[], nn.Module], X: torch.Tensor, Y: torch.Tensor) -> None:
    # fork_rng: checking the model must not shift the user's random stream.
    with torch.random.fork_rng(devices=[]):
        model = make_model()
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"make_model() must return a torch.nn.Module; it returned {type(model).__name__}"
            )
        param = next(model.parameters(), None)
        row = X[:1]
        if param is not None:
            row = row.to(device=param.device, dtype=param.dtype if param.is_floating_point() else row.dtype)
        was_training = model.training
        model.eval()  # a single row would break BatchNorm in training mode
        try:
            with torch.no_grad():
                out = model(row)
        except Exception as err:  # noqa: BLE001 - re-raised with the shapes that matter
            raise ValueError(
                f"the model from make_model() failed on one row of X (shape {tuple(row.shape)}, "
                f"{X.shape[1]} inputs): {type(err).__name__}: {err}. Its first layer must take "
                f"{X.shape[1]} inputs (or pass check_model=False to skip this check)."
            ) from err
        finally:
            model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != Y.shape[1]:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"the model from make_model() maps one row of X to output {got}, but Y has "
            f"{Y.shape[1]} columns (shape {tuple(Y.shape)}); its last layer must have "
            f"{Y.shape[1]} outputs (or pass check_model=False to skip this check)."
        )


def _split_indices(n: int, test_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation; the first ``ceil(f·n)`` indices are the test set."""
    n_test = max(1, math.ceil(test_fraction * n))
    if n_test >= n:
        raise ValueError(f"test_fraction={test_fraction} leaves no training samples out of {n}")
    # RandomState (not default_rng): its permutation is frozen by numpy's
    # stream-compatibility policy, so a split never changes with a numpy upgrade.
    perm = np.random.RandomState(split_seed).permutation(n)
    return perm[n_test:], perm[:n_test]


def _paper_split(X: np.ndarray, Y: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    train, test = _split_indices(X.shape[0], TEST_FRACTION, PAPER_SPLIT_SEED)

    def f32(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    return f32(X[train]), f32(Y[train]), f32(X[test]), f32(Y[test]), train, test


def _paper_defaults(**kw: Any) -> dict[str, Any]:
    return complete_recipe(kw)


def _rng(seed: Any) -> np.random.RandomState:
    # The legacy RandomState stream is frozen by numpy's compatibility policy
    # (Generator streams may change between releases), so a given seed keeps
    # producing the same data after a numpy upgrade and course notes stay valid.
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in 0 .. 2**32 - 1; got {seed!r}")
    return np.random.RandomState(int(seed))


# --------------------------------------------------------------------------- #
# 1. phase retrieval
# --------------------------------------------------------------------------- #
def phase_retrieval(*, n_samples: int = 1000, seed: int = 0) -> Task:
    """Paper Fig. 4: map ``x ~ N(0, I_20)`` to magnitudes ``b = |A x|`` (100).

    ``A`` is a fixed 100×20 matrix with entries ``N(0, 1/100)`` (std 0.1), drawn
    first from ``seed`` (so it does not depend on ``n_samples``). 1000 samples →
    800 train / 200 test. Network ``Linear(20,100)``, ReLU, 3×(``Linear(100,100)``,
    ReLU), ``Linear(100,100)``. Adam, lr 1e-3, StepLR(50, 0.9), batch 50, 800 epochs.
    extras: ``A`` (100, 20) float32 tensor with ``Y == |X @ A.T|``, ``seed``.
    """
    n_samples = _positive_int(n_samples, "n_samples", minimum=2)
    n, m = 20, 100
    rng = _rng(seed)
    A = rng.normal(0.0, math.sqrt(1.0 / m), size=(m, n)).astype(np.float32)
    x = rng.normal(0.0, 1.0, size=(n_samples, n)).astype(np.float32)
    # computed in float64 from the stored float32 values, so a user who
    # recomputes |X Aᵀ| from the task's own tensors gets the same targets
    b = np.abs(x.astype(np.float64) @ A.astype(np.float64).T)
    X_tr, Y_tr, X_te, Y_te, _, _ = _paper_split(x, b)
    return Task(
        name="phase-retrieval",
        description=(
            "Phase retrieval: the network maps a random vector x (20 numbers) to the "
            "magnitudes b = |A x| (100 numbers) for a fixed random matrix A. The targets "
            "are non-negative, inside ReLU's range. In the paper (Fig. 4) lr 1e-3 reaches "
            "the green zone, lr 1e-2 and 1e-4 struggle to, and larger batches reach green "
            "later."
        ),
        make_model=_model_factory((n, m, m, m, m, m)),
        X_train=X_tr,
        Y_train=Y_tr,
        X_test=X_te,
        Y_test=Y_te,
        defaults=_paper_defaults(
            lr=1e-3, batch_size=50, epochs=800, optimizer="adam", schedule="step", step_size=50, gamma=0.9
        ),
        extras={"A": torch.from_numpy(A), "seed": int(seed)},
    )


# --------------------------------------------------------------------------- #
# 2. signal denoising
# --------------------------------------------------------------------------- #
def signal_denoising(
    *, n_signals: int = 50, repeats: int = 20, noise_std: float = 0.2, seed: int = 0
) -> Task:
    """Paper Fig. 5: map a noisy signal (20) back to its clean version (20).

    ``n_signals`` clean signals ``s ~ N(0, I_20)``, each repeated ``repeats``
    times with fresh noise ``N(0, noise_std²)``: input ``s + noise``, target ``s``
    (1000 samples → 800 train / 200 test). Network 5 × ``Linear(20, 20)`` with
    ReLU between. SGD, lr 1e-4, StepLR(50, 0.9), batch 20, 1800 epochs.
    extras: ``clean_signals`` (n_signals, 20), ``signal_train``/``signal_test``
    (LongTensor: which clean signal each row is), ``noise_std``, ``seed``.
    """
    n_signals = _positive_int(n_signals, "n_signals")
    repeats = _positive_int(repeats, "repeats")
    if n_signals * repeats < 2:
        raise ValueError("signal_denoising needs n_signals * repeats >= 2 to make a train/test split")
    if not (isinstance(noise_std, (int, float)) and math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0; got {noise_std!r}")
    d = 20
    rng = _rng(seed)
    clean = rng.normal(0.0, 1.0, size=(n_signals, d)).astype(np.float32)
    # signal-major order (all repeats of signal 0, then signal 1, ...), as in the paper's script
    which = np.repeat(np.arange(n_signals), repeats)
    noisy = (clean[which].astype(np.float64) + rng.normal(0.0, noise_std, size=(which.size, d)))
    X_tr, Y_tr, X_te, Y_te, train, test = _paper_split(noisy, clean[which])
    return Task(
        name="signal-denoising",
        description=(
            "Signal denoising: the network maps a noisy copy of a signal (20 numbers, "
            f"Gaussian noise of std {noise_std:g}) back to the clean signal; {n_signals} clean "
            f"signals are each seen with {repeats} different noise draws. In the paper (Fig. 5) "
            "batch 100 delays the green zone, batch 500 plateaus in yellow, and so does lr 1e-4."
        ),
        make_model=_model_factory((d,) * 6),
        X_train=X_tr,
        Y_train=Y_tr,
        X_test=X_te,
        Y_test=Y_te,
        defaults=_paper_defaults(
            lr=1e-4, batch_size=20, epochs=1800, optimizer="sgd", schedule="step", step_size=50, gamma=0.9
        ),
        extras={
            "clean_signals": torch.from_numpy(clean),
            "signal_train": torch.from_numpy(which[train].astype(np.int64)),
            "signal_test": torch.from_numpy(which[test].astype(np.int64)),
            "noise_std": float(noise_std),
            "seed": int(seed),
        },
    )


# --------------------------------------------------------------------------- #
# 3. image patch recovery
# --------------------------------------------------------------------------- #
def _cameraman(size: int) -> np.ndarray:
    try:
        from skimage import data as skdata
        from skimage.transform import resize
    except ImportError as err:
        raise ImportError(
            f"the patch-recovery task needs scikit-image (for its bundled cameraman image): {_INSTALL_HINT}"
        ) from err
    # scikit-image's functions are unannotated
    img = skdata.camera().astype(np.float64) / 255.0  # type: ignore[no-untyped-call]  # uint8 0..255 -> [0, 1]
    img = resize(img, (size, size), anti_aliasing=True, preserve_range=True)  # type: ignore[no-untyped-call]
    # interpolation can overshoot by round-off; the task promises [0, 1]
    clipped: np.ndarray = np.clip(img, 0.0, 1.0)
    return clipped


def _reconstruct(
    patches: Any,
    *,
    positions: np.ndarray,
    patch: int,
    image_size: int,
    measurements: int,
) -> np.ndarray:
    """Average (overlapping) patches back into an image; see :func:`patch_recovery`."""
    if isinstance(patches, torch.Tensor):
        arr = patches.detach().to("cpu", torch.float64).numpy()
    else:
        arr = np.asarray(patches, dtype=np.float64)
    P = len(positions)
    if arr.ndim == 3 and arr.shape[1:] == (patch, patch):
        arr = arr.reshape(arr.shape[0], patch * patch)
    if arr.ndim != 2 or arr.shape[1] != patch * patch:
        raise ValueError(
            f"patches must be (K, {patch * patch}) (one vectorised {patch}x{patch} patch per row); "
            f"got shape {arr.shape}"
        )
    K = arr.shape[0]
    if K == P * measurements and measurements > 1:
        # training order is patch-major: rows i*M ... i*M+M-1 are patch i
        arr = arr.reshape(P, measurements, -1).mean(axis=1)
    elif K != P:
        raise ValueError(
            f"patches must have one row per patch ({P}) or per measurement ({P * measurements}, "
            f"in training order); got {K} rows"
        )
    total = np.zeros((image_size, image_size))
    count = np.zeros((image_size, image_size))
    tiles = arr.reshape(P, patch, patch)
    for (r, c), tile in zip(positions, tiles):
        total[r : r + patch, c : c + patch] += tile
        count[r : r + patch, c : c + patch] += 1
    # pixels no patch covers (only when the stride does not tile the image) stay 0
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


_PATCH_DESCRIPTION = (
    "Image patch recovery (the paper's 'image denoising'): each {patch}x{patch} patch of the "
    "cameraman photo ({d} pixels) is measured as b = |A p|^2 plus noise, {measurements} noisy "
    "measurements per patch, and the network maps the {d} measurements back to the {d} pixels. "
    "Averaging the predicted overlapping patches shows the recovered image next to the cloud "
    "as training moves from red through yellow to green."
)


def _patch_geometry(image_size: Any, patch: Any, stride: Any, measurements: Any,
                    noise_std: Any) -> tuple[int, int, int, int]:
    """The checked geometry of :func:`patch_recovery` (a clear error for a bad value)."""
    image_size = _positive_int(image_size, "image_size")
    patch = _positive_int(patch, "patch")
    stride = _positive_int(stride, "stride")
    measurements = _positive_int(measurements, "measurements")
    if patch > image_size:
        raise ValueError(f"patch ({patch}) must not be larger than image_size ({image_size})")
    if not (isinstance(noise_std, (int, float)) and math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0; got {noise_std!r}")
    return image_size, patch, stride, measurements


def _patch_measurements(image: np.ndarray, patch: int, stride: int, measurements: int, noise_std: float,
                        seed: Any) -> tuple[np.ndarray, ...]:
    """``(positions, which, A, b, p)``: the patches' top-left corners, the patch of each row, the
    measurement matrix, the noisy measurements ``b = (A p)² + n`` and the clean patches ``p``."""
    size = image.shape[0]
    starts = range(0, size - patch + 1, stride)
    positions = np.array([(r, c) for r in starts for c in starts], dtype=np.int64)
    clean = np.stack([image[r : r + patch, c : c + patch].reshape(-1) for r, c in positions])
    P, d = clean.shape
    rng = _rng(seed)
    A = rng.normal(0.0, math.sqrt(1.0 / d), size=(d, d)).astype(np.float32)
    which = np.repeat(np.arange(P), measurements)
    p = clean[which].astype(np.float32)
    b = (p.astype(np.float64) @ A.astype(np.float64).T) ** 2 + rng.normal(0.0, noise_std, size=(P * measurements, d))
    return positions, which, A, b, p


def patch_recovery(
    *,
    image_size: int = 128,
    patch: int = 8,
    stride: int = 6,
    measurements: int = 10,
    noise_std: float = 0.1,
    seed: int = 0,
) -> Task:
    """The paper's "image denoising": recover 8×8 cameraman patches from ``|A p|² + noise``.

    scikit-image's cameraman (512×512) is resized to ``image_size``² (anti-aliased)
    in [0, 1]; ``patch``×``patch`` patches at ``stride`` (441 for 128/8/6), each
    vectorised row by row to ``p`` (64). Each patch gets ``measurements`` noisy
    measurements ``b = (A p)² + n``, ``A`` 64×64 with entries ``N(0, 1/64)``,
    ``n ~ N(0, noise_std²)``: ``X`` is ``b``, ``Y`` is ``p`` (4410 × 64), patch-major
    order (patch 0's measurements first). All samples are training data
    (``X_test``/``Y_test`` are None). Network 5 × ``Linear(64, 64)`` with ReLU
    between. Adam, lr 1e-3, StepLR(20, 0.9), batch 90, 1000 epochs.

    extras: ``image`` (numpy, image_size², the clean resized image), ``positions``
    (numpy (P, 2) top-left ``(row, col)`` of each patch), ``patch_index`` (LongTensor
    (N,): the patch of each row), ``A``, geometry (``patch``, ``stride``,
    ``image_size``, ``measurements``), ``noise_std``, ``seed``, and
    ``reconstruct(patches) -> np.ndarray (image_size, image_size)``: averages
    overlapping patches; ``patches`` is (N, 64) in training order (repeated
    measurements of a patch are averaged too) or (P, 64), one row per patch.
    Requires scikit-image (``pip install "yeswidget[tasks]"``).
    """
    image_size, patch, stride, measurements = _patch_geometry(image_size, patch, stride, measurements, noise_std)
    image = _cameraman(image_size)
    positions, which, A, b, p = _patch_measurements(image, patch, stride, measurements, noise_std, seed)
    d = p.shape[1]
    reconstruct = functools.partial(
        _reconstruct, positions=positions, patch=patch, image_size=image_size, measurements=measurements
    )
    return Task(
        name="patch-recovery",
        description=_PATCH_DESCRIPTION.format(patch=patch, d=d, measurements=measurements),
        make_model=_model_factory((d,) * 6),
        X_train=torch.from_numpy(b.astype(np.float32)),
        Y_train=torch.from_numpy(p),
        X_test=None,
        Y_test=None,
        defaults=_paper_defaults(lr=1e-3, batch_size=90, epochs=1000, optimizer="adam", schedule="step",
                                 step_size=20, gamma=0.9),
        extras={
            "image": image,
            "positions": positions,
            "patch_index": torch.from_numpy(which.astype(np.int64)),
            "A": torch.from_numpy(A),
            "patch": patch,
            "stride": stride,
            "image_size": image_size,
            "measurements": measurements,
            "noise_std": float(noise_std),
            "seed": int(seed),
            "reconstruct": reconstruct,
        },
    )


# --------------------------------------------------------------------------- #
# 4. digits (offline stand-in for MNIST) and the real-MNIST path
# --------------------------------------------------------------------------- #
def decode_nearest(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Index of the nearest target (squared Euclidean) for each output row.

    ``outputs`` (K, m), ``targets`` (C, m) → LongTensor (K,). For one-hot targets
    this is the argmax; it is how the paper decodes a prediction into a digit.
    """
    out = torch.as_tensor(outputs).detach().to("cpu", torch.float64)
    tgt = torch.as_tensor(targets).to("cpu", torch.float64)
    if out.ndim == 1:
        out = out.unsqueeze(0)
    if out.ndim != 2 or out.shape[1] != tgt.shape[1]:
        raise ValueError(
            f"outputs must be (K, {tgt.shape[1]}); got shape {tuple(out.shape)}"
        )
    # ||o - t||^2 = ||o||^2 - 2 o·t + ||t||^2; ||o||^2 is the same for every target
    score = 2.0 * out @ tgt.T - (tgt * tgt).sum(dim=1)
    return score.argmax(dim=1)


def _decode_onehot(outputs: torch.Tensor) -> torch.Tensor:
    out = torch.as_tensor(outputs).detach()
    if out.ndim == 1:
        out = out.unsqueeze(0)
    return out.argmax(dim=-1).to("cpu", torch.long)


def _accuracy(
    model: nn.Module,
    X: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    *,
    default_X: torch.Tensor,
    default_labels: torch.Tensor,
    decode: Callable[[torch.Tensor], torch.Tensor],
) -> float:
    """Fraction of rows of ``X`` (default: the test split) whose decoded output equals the label."""
    X = default_X if X is None else torch.as_tensor(X, dtype=torch.float32)
    labels = default_labels if labels is None else torch.as_tensor(labels).long()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            pred = decode(model(X.to(device)))
    finally:
        model.train(was_training)  # leave the model as the training loop had it
    return float((pred.cpu() == labels.cpu()).double().mean())


def digits(*, seed: int = 0) -> Task:
    """Offline stand-in for the paper's MNIST task: scikit-learn's bundled 8×8 digits.

    1797 images, 64 pixel inputs scaled to [0, 1] (raw 0..16 / 16), one-hot
    targets (10 outputs); fixed 80/20 split (1437 train / 360 test). Network
    64→64→64→64→64→10 (5 ``Linear``, ReLU between). SGD, lr 1e-4, StepLR(50, 0.7),
    batch 100, 500 epochs. The dataset is fixed, so ``seed`` changes nothing in
    the data (it is accepted for a uniform signature and kept in extras).

    extras: ``decode(outputs) -> LongTensor`` (nearest one-hot target = argmax),
    ``accuracy(model, X=None, labels=None) -> float`` (test accuracy by default),
    ``labels_train``/``labels_test`` (LongTensor), ``images_shape`` (8, 8), ``seed``.
    Requires scikit-learn (``pip install "yeswidget[tasks]"``); nothing is downloaded.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(f"the digits task needs scikit-learn (for its bundled digits): {_INSTALL_HINT}") from err
    bunch = load_digits()  # ships inside scikit-learn: no network access
    X = bunch.data.astype(np.float64) / 16.0
    labels = bunch.target.astype(np.int64)
    Y = np.eye(10)[labels]
    X_tr, Y_tr, X_te, Y_te, train, test = _paper_split(X, Y)
    lab_tr = torch.from_numpy(labels[train])
    lab_te = torch.from_numpy(labels[test])
    return Task(
        name="digits",
        description=(
            "Handwritten digit classification: an 8x8 grey image (64 pixel values in [0, 1]) "
            "maps to 10 scores trained toward a one-hot target, and the predicted digit is the "
            "nearest target, i.e. the largest score. It is the offline stand-in for the paper's "
            "MNIST experiment (20x20 images, a single 1 at (d, d) as the target)."
        ),
        make_model=_model_factory((64, 64, 64, 64, 64, 10)),
        X_train=X_tr,
        Y_train=Y_tr,
        X_test=X_te,
        Y_test=Y_te,
        defaults=_paper_defaults(
            lr=1e-4, batch_size=100, epochs=500, optimizer="sgd", schedule="step", step_size=50, gamma=0.7
        ),
        extras={
            "decode": _decode_onehot,
            "accuracy": functools.partial(
                _accuracy, default_X=X_te, default_labels=lab_te, decode=_decode_onehot
            ),
            "labels_train": lab_tr,
            "labels_test": lab_te,
            "images_shape": (8, 8),
            "seed": int(seed),
        },
    )


def mnist_targets(digits: Any, size: int = 20) -> torch.Tensor:
    """The paper's MNIST targets: for digit ``d``, a ``size``×``size`` image with a single 1 at ``(d, d)``.

    ``digits``: integer labels, shape (K,) (tensor, array or list) with
    ``0 <= d < size``. Returns float32 (K, size*size), each row the image
    flattened row by row (so the 1 sits at index ``d*size + d``).
    """
    size = _positive_int(size, "size")
    d = torch.as_tensor(digits)
    if d.is_floating_point() or d.is_complex() or d.dtype == torch.bool:
        raise TypeError(f"digits must be integer labels; got dtype {d.dtype} (use .long())")
    d = d.to(torch.long).reshape(-1)
    if d.numel() and (int(d.min()) < 0 or int(d.max()) >= size):
        raise ValueError(
            f"digits must lie in 0..{size - 1} to fit a {size}x{size} target; got range "
            f"{int(d.min())}..{int(d.max())}"
        )
    out = torch.zeros(d.numel(), size * size, dtype=torch.float32)
    out[torch.arange(d.numel()), d * size + d] = 1.0
    return out


def _mnist_images(images: Any, size: int, arg: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if t.ndim == 2:
        side = math.isqrt(t.shape[1])
        if side * side != t.shape[1]:
            raise ValueError(f"{arg} rows must be square images flattened; got {t.shape[1]} pixels")
        t = t.reshape(-1, side, side)
    if t.ndim == 4 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 3:
        raise ValueError(f"{arg} must be (K, H, W) grey images (or (K, 1, H, W) / (K, H*W)); "
                         f"got shape {tuple(t.shape)}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{arg} must be numeric grey images; got dtype {t.dtype}")
    was_int = not t.is_floating_point()
    t = t.to(torch.float32)
    if was_int or (t.numel() and float(t.max()) > 1.0):
        t = t / 255.0  # 0..255 pixels -> [0, 1]
    if tuple(t.shape[1:]) != (size, size):
        # nearest-neighbour, as the paper's script resizes 28x28 -> 20x20
        t = torch.nn.functional.interpolate(t.unsqueeze(1), size=(size, size), mode="nearest").squeeze(1)
    return t.reshape(t.shape[0], size * size).contiguous()


def _mnist_digits(imgs: Any, labs: Any, argi: str, argl: str, size: int,
                  limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images resized and flattened, and their digit labels, checked (the first ``limit``)."""
    X = _mnist_images(imgs, size, argi)
    lab = torch.as_tensor(np.asarray(labs) if not isinstance(labs, torch.Tensor) else labs).reshape(-1)
    if lab.is_floating_point() or lab.dtype == torch.bool:
        raise TypeError(f"{argl} must be integer digits 0..9; got dtype {lab.dtype}")
    lab = lab.long()
    if lab.numel() != X.shape[0]:
        raise ValueError(f"{argi} has {X.shape[0]} images but {argl} has {lab.numel()} labels")
    if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) > 9):
        raise ValueError(f"{argl} must be digits 0..9; got range {int(lab.min())}..{int(lab.max())}")
    if limit is not None:
        X, lab = X[:limit], lab[:limit]
    return X, lab


def _mnist_split(images: Any, labels: Any, test_images: Any, test_labels: Any, size: int,
                 limit: int | None) -> tuple[torch.Tensor, ...]:
    """``(X_train, labels_train, X_test, labels_test)``: the given test set, or the fixed 80/20 split."""
    X, lab = _mnist_digits(images, labels, "images", "labels", size, limit)
    if (test_images is None) != (test_labels is None):
        raise ValueError("pass test_images and test_labels together (or neither, for an 80/20 split)")
    if test_images is not None:
        X_te, lab_te = _mnist_digits(test_images, test_labels, "test_images", "test_labels", size, limit)
        return X, lab, X_te, lab_te
    if X.shape[0] < 2:
        raise ValueError(f"images must hold at least 2 samples to split 80/20; got {X.shape[0]}")
    train, test = _split_indices(X.shape[0], TEST_FRACTION, PAPER_SPLIT_SEED)
    train_t, test_t = torch.from_numpy(train), torch.from_numpy(test)
    return X[train_t], lab[train_t], X[test_t], lab[test_t]


def mnist(
    images: Any,
    labels: Any,
    *,
    test_images: Any = None,
    test_labels: Any = None,
    size: int = 20,
    limit: int | None = 5000,
) -> Task:
    """The paper's MNIST task from images you already have (nothing is downloaded).

    ``images``: (K, H, W), (K, 1, H, W) or (K, H·W) grey images, 0..255 or [0, 1];
    ``labels``: (K,) digits 0..9. Images are resized to ``size``² (nearest, as the
    paper) and flattened; targets are :func:`mnist_targets` (a single 1 at (d, d)).
    The first ``limit`` samples are used (the paper: 5000; None = all). With
    ``test_images``/``test_labels`` those form the test set (same ``limit``),
    otherwise a fixed 80/20 split. Network 5 × ``Linear(size², size²)`` with
    ReLU between; SGD, lr 1e-4, StepLR(50, 0.7), batch 100, 500 epochs.
    extras: ``decode(outputs)`` (nearest target image), ``accuracy(model, X=None,
    labels=None)`` (test accuracy), ``labels_train``/``labels_test``, ``size``.
    """
    size = _positive_int(size, "size", minimum=10)  # (d, d) needs room for ten digits

    X_tr, lab_tr, X_te, lab_te = _mnist_split(images, labels, test_images, test_labels, size, limit)
    classes = mnist_targets(torch.arange(10), size)
    decode = functools.partial(decode_nearest, targets=classes)
    m = size * size
    return Task(
        name="mnist",
        description=(
            f"MNIST digit classification as in the paper: a {size}x{size} grey image ({m} inputs) maps "
            f"to a {size}x{size} target image with a single 1 at (d, d) for digit d, and a prediction "
            "is decoded as the digit whose target image is nearest."
        ),
        make_model=_model_factory((m,) * 6),
        X_train=X_tr,
        Y_train=mnist_targets(lab_tr, size),
        X_test=X_te,
        Y_test=mnist_targets(lab_te, size),
        defaults=_paper_defaults(
            lr=1e-4, batch_size=100, epochs=500, optimizer="sgd", schedule="step", step_size=50, gamma=0.7
        ),
        extras={
            "decode": decode,
            "accuracy": functools.partial(_accuracy, default_X=X_te, default_labels=lab_te, decode=decode),
            "labels_train": lab_tr,
            "labels_test": lab_te,
            "size": size,
        },
    )


# --------------------------------------------------------------------------- #
# registry
# --------------------------------------------------------------------------- #
#: The built-in tasks by name; each value builds a :class:`Task` from keyword arguments.
TASKS: dict[str, Callable[..., Task]] = {
    "phase-retrieval": phase_retrieval,
    "signal-denoising": signal_denoising,
    "patch-recovery": patch_recovery,
    "digits": digits,
}


def get_task(name: str, **kwargs: Any) -> Task:
    """Build a built-in task by name (``"phase-retrieval"`` or ``"phase_retrieval"``, any case).

    ``kwargs`` go to the task function (e.g. ``seed=1``). An unknown name
    raises ``ValueError`` listing the available ones.
    """
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    if key not in TASKS:
        raise ValueError(
            f"unknown task {name!r}; available tasks: {', '.join(TASKS)} "
            "(dashes or underscores both work). For your own data use Task.from_tensors(...)."
        )
    return TASKS[key](**kwargs)
