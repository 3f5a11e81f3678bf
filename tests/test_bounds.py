"""yeswidget.engine.bounds: the YES bounds against a float64 least-squares ground truth.

The ground truth below is a direct, unoptimised reading of YES-BOUNDS.md:
``fit`` is ``numpy.linalg.lstsq`` (rcond=None) on ``[Z, 1]``, every anchor set
is run through every layer on its own (no shared prefixes), ReLU after every
layer but the last, and E = Σ‖ŷ − y‖² / N. The engine must agree with it to
1e-6 relative in its default (float64) mode and to 1e-3 in float32 mode, on
cases whose spectrum has a clean gap (``Conditioning``), which every case
asserts before comparing.

Nothing here times anything: the machine is shared and timings are noisy.
"""
from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yeswidget.engine.bounds import YesCloud, anchor_sets, solve_counter, yes0_bound, yes_k_bounds

EXACT_RTOL = 1e-6
FAST_RTOL = 1e-3
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- #
# the ground truth (numpy, float64, lstsq)
# --------------------------------------------------------------------------- #
def as_np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().to(torch.float64).cpu().numpy()
    return np.asarray(t, dtype=np.float64)


class Conditioning:
    """The spectrum seen by the ground truth: over every ``[Z, 1]`` it fitted from,
    the smallest singular value it kept (above 1e-9, relative, columns scaled to
    unit norm) and the largest it treated as round-off (at most 1e-9).

    The spec allows solvers to differ only in the rank decision at round-off
    level. A case whose spectrum has a clean gap (kept ≫ dropped) is one where
    that freedom cannot change the answer, so a 1e-6 (float64) or 1e-3 (float32)
    comparison is meaningful there. Deep random ReLU chains now and then produce
    a state with a genuine direction far weaker than the rest: below ~1e-5 E
    depends on digits float32 cannot resolve, and below the engine's float64
    rank cut-off (√(10·eps·max(N, d)) ≈ 6e-7 here) the engine drops a direction
    that lstsq keeps. So each comparison first asserts the gap (``assert_well_posed``).
    """

    def __init__(self):
        self.kept, self.dropped = 1.0, 0.0

    def see(self, A: np.ndarray) -> None:
        norms = np.linalg.norm(A, axis=0)
        if not (norms > 0).any():
            return
        s = np.linalg.svd(A[:, norms > 0] / norms[norms > 0], compute_uv=False)
        s = s / s[0]
        self.kept = min([self.kept, *s[s > 1e-9]])
        self.dropped = max([self.dropped, *s[s <= 1e-9]])


def gt_fit(T: np.ndarray, Z: np.ndarray, bias: bool, cond: Conditioning | None = None) -> np.ndarray:
    A = np.hstack([Z, np.ones((Z.shape[0], 1))]) if bias else Z
    W, *_ = np.linalg.lstsq(A, T, rcond=None)
    if cond is not None:
        cond.see(A)
    return A @ W


def gt_E(prediction: np.ndarray, Y: np.ndarray) -> float:
    return float(((prediction - Y) ** 2).sum() / Y.shape[0])


def gt_chain(X, Y, layer_targets, bias, act=lambda v: np.maximum(v, 0.0), cond=None) -> list[float]:
    """E(Z_l) after each layer l = 1 … L; layers 1 … L-1 fitted to ``layer_targets``, the last to Y
    (E of a hidden state is reported only where it has Y's shape, i.e. for YES-0)."""
    Z, errors = X, []
    for T in layer_targets:
        Z = act(gt_fit(T, Z, bias, cond))
        errors.append(gt_E(Z, Y) if Z.shape == Y.shape else math.nan)
    errors.append(gt_E(gt_fit(Y, Z, bias, cond), Y))
    return errors


def gt_yes0_layers(X, Y, depth, bias, cond=None) -> list[float]:
    return gt_chain(X, Y, [Y] * (depth - 1), bias, cond=cond)


def gt_anchor_sets(depth: int) -> list[tuple[int, ...]]:
    """Every non-empty subset of {0 … L-2}, from bit masks."""
    sets = []
    for mask in range(1, 2 ** (depth - 1)):
        sets.append(tuple(i for i in range(depth - 1) if mask >> i & 1))
    return sets


def gt_target(anchor_set, layer):
    """The first anchor at or after ``layer``; None means Y."""
    later = [s for s in anchor_set if s >= layer]
    return min(later) if later else None


def gt_yes_k(X, Y, hidden, bias, cond=None) -> dict[tuple[int, ...], float]:
    depth = len(hidden) + 1
    out = {}
    for S in gt_anchor_sets(depth):
        targets = [Y if gt_target(S, l) is None else hidden[gt_target(S, l)] for l in range(depth - 1)]
        out[S] = gt_chain(X, Y, targets, bias, cond=cond)[-1]
    return out


def gt_curves(upper: float, per_epoch: list[dict], depth: int) -> list[list[float]]:
    """YES-k(t) = min(YES-0, min_{t' ≤ t} min_{|S| ≤ k} e_t'(S)), k = 1 … L-1."""
    curves = []
    for k in range(1, depth):
        curve = []
        for t in range(len(per_epoch)):
            seen = [e for epoch in per_epoch[: t + 1] for S, e in epoch.items() if len(S) <= k]
            curve.append(min([upper] + seen))
        curves.append(curve)
    return curves


def assert_close(got, want, rtol, scale, what=""):
    """|got − want| ≤ rtol·|want| (+ a 1e-12·scale floor for values that are ~0)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, what
    assert np.all(np.isfinite(got)), f"{what}: non-finite {got}"
    err = np.abs(got - want)
    ok = err <= rtol * np.abs(want) + 1e-12 * scale
    worst = float(np.max(err / np.maximum(np.abs(want), 1e-300), initial=0.0))
    assert ok.all(), f"{what}: max relative deviation {worst:.3g} > {rtol:g}\n got={got}\nwant={want}"


# --------------------------------------------------------------------------- #
# the cases
# --------------------------------------------------------------------------- #
HIDDEN_WIDTHS = [12, 17, 10, 15, 20, 11, 14]  # none equals m = 5
# Two depth-8 seeds are picked: with the default ones these random ReLU chains
# reach a state whose smallest genuine singular value is 1e-5 / 3e-6 (see Conditioning).
SEEDS = {(8, True, "plain"): 2, (8, True, "degenerate"): 2}
# the spectral gap a comparison needs: kept ≥ KEPT[dtype], dropped ≤ 1e-13
KEPT = {torch.float64: 1e-5, torch.float32: 3e-5}


def relu_np(v):
    return np.maximum(v, 0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@functools.lru_cache(maxsize=None)
def build_case(depth: int, bias: bool, kind: str, epochs: int = 2):
    """Data, ``epochs`` sets of hidden outputs of random ReLU nets, and the ground truth.

    ``kind="degenerate"``: duplicated and scaled-duplicate input columns, a zero
    input column, a constant input column (with bias: a copy of the bias column),
    a dead unit (all-zero column) and a duplicated unit in every hidden layer,
    and targets whose YES-0 hidden units die (a zero target column; with bias a
    constant −3 column, fitted exactly then cut to zero by the ReLU).
    """
    rng = np.random.default_rng(SEEDS.get((depth, bias, kind), 1000 * depth + 10 * bias + (kind == "degenerate")))
    N = 200 if depth >= 6 else 120
    n, m = 6, 5
    X0 = rng.standard_normal((N, n))
    Y = X0 @ rng.standard_normal((n, m)) + 0.7 * np.sin(2.0 * X0 @ rng.standard_normal((n, m))) + 0.2
    X = X0
    if kind == "degenerate":
        extra = [X0[:, :2], 2.0 * X0[:, [0]], np.zeros((N, 1))]
        if bias:
            extra.append(np.full((N, 1), 3.0))
        X = np.hstack([X0] + extra)
        Y[:, -1] = 0.0
        if bias:
            Y[:, -2] = -3.0
    hidden_epochs = []
    for _ in range(epochs):
        H, hidden = X, []
        for w in HIDDEN_WIDTHS[: depth - 1]:
            weights = rng.standard_normal((H.shape[1], w)) * math.sqrt(2.0 / H.shape[1])
            H = relu_np(H @ weights + 0.1 * rng.standard_normal(w))
            if kind == "degenerate":
                H[:, 0] = 0.0  # a dead unit
                H[:, 2] = H[:, 1]  # a duplicated unit
            hidden.append(H)
        hidden_epochs.append(hidden)
    cond = Conditioning()
    truth_layers = gt_yes0_layers(X, Y, depth, bias, cond)
    truth_k = [gt_yes_k(X, Y, h, bias, cond) for h in hidden_epochs]
    return X, Y, hidden_epochs, truth_layers, truth_k, cond


CASES = [(depth, bias, kind) for depth in range(1, 9) for bias in (True, False)
         for kind in ("plain", "degenerate")]


def assert_well_posed(cond: Conditioning, dtype, what):
    assert cond.dropped <= 1e-13 and cond.kept >= KEPT[dtype], (
        f"{what}: the case itself is ill-posed for a {dtype} comparison (smallest kept singular "
        f"value {cond.kept:.1e}, largest dropped {cond.dropped:.1e}); pick another seed")


def check_against_truth(depth, bias, kind, dtype, rtol):
    X, Y, hidden_epochs, truth_layers, truth_k, cond = build_case(depth, bias, kind)
    what = f"depth={depth} bias={bias} {kind} {dtype}"
    assert_well_posed(cond, dtype, what)
    scale = float((Y ** 2).sum() / Y.shape[0])
    t = torch.from_numpy
    X, Y, hidden_epochs = t(X), t(Y), [[t(h) for h in hidden] for hidden in hidden_epochs]

    assert_close(yes0_bound(X, Y, depth, bias=bias, dtype=dtype), truth_layers[-1], rtol, scale, what + " yes0")

    for hidden, truth in zip(hidden_epochs, truth_k):
        got = yes_k_bounds(X, Y, hidden, bias=bias, dtype=dtype)
        assert sorted(got) == sorted(truth), what
        keys = sorted(truth)
        assert_close([got[S] for S in keys], [truth[S] for S in keys], rtol, scale, what + " e(S)")

    cloud = YesCloud(X, Y, depth, bias=bias, dtype=dtype)
    assert_close(cloud.upper, truth_layers[-1], rtol, scale, what + " upper")
    assert_close(cloud.layer_errors, truth_layers, rtol, scale, what + " layer_errors")
    for hidden in hidden_epochs:
        cloud.update(hidden)
    truth_curves = gt_curves(truth_layers[-1], truth_k, depth)
    for k in range(1, depth):
        assert_close(cloud.curve(k), truth_curves[k - 1], rtol, scale, f"{what} curve({k})")
    assert_close(cloud.curve(0), [truth_layers[-1]] * len(hidden_epochs), rtol, scale, what + " curve(0)")
    assert_close(cloud.lower, truth_curves[-1][-1] if depth > 1 else truth_layers[-1], rtol, scale, what + " lower")


# --------------------------------------------------------------------------- #
# 1. exact mode against the ground truth
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("depth,bias,kind", CASES)
def test_float64_matches_lstsq_ground_truth(depth, bias, kind):
    check_against_truth(depth, bias, kind, torch.float64, EXACT_RTOL)


def train_mlp(dtype):
    """A real torch MLP on phase-retrieval data (|A x|): its hidden outputs
    (post-ReLU) at initialisation, after 50 and after 150 Adam steps."""
    torch.manual_seed(0)
    N, n, m, widths = 160, 8, 12, [24, 10, 17]
    X = torch.randn(N, n, dtype=dtype)
    Y = (X @ torch.randn(n, m, dtype=dtype)).abs()
    layers, fan_in = [], n
    for w in widths:
        layers += [torch.nn.Linear(fan_in, w), torch.nn.ReLU()]
        fan_in = w
    net = torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, m)).to(dtype)
    snapshots = [copy.deepcopy(net)]
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(X), Y, reduction="sum") / N
        loss.backward()
        opt.step()
        if step in (49, 149):
            snapshots.append(copy.deepcopy(net))
    return X, Y, snapshots


def hidden_outputs(net, X):
    with torch.no_grad():
        outs, H = [], X
        for module in net:
            H = module(H)
            if isinstance(module, torch.nn.ReLU):
                outs.append(H.clone())
        return outs


def check_mlp(X, Y, epochs, reference_epochs, rtols):
    depth = len(epochs[0]) + 1
    Xn, Yn = as_np(X), as_np(Y)
    scale = float((Yn ** 2).sum() / Yn.shape[0])
    cond = Conditioning()
    truth_layers = gt_yes0_layers(Xn, Yn, depth, True, cond)
    truth_k = [gt_yes_k(Xn, Yn, [as_np(h) for h in hidden], True, cond) for hidden in reference_epochs]
    # training kills units: the dead-unit path is exercised
    assert any(bool((h == 0).all(0).any()) for hidden in reference_epochs for h in hidden)
    for dtype, rtol in rtols.items():
        assert_well_posed(cond, dtype, f"mlp {dtype}")
        cloud = YesCloud(X, Y, depth, dtype=dtype)
        assert_close(cloud.upper, truth_layers[-1], rtol, scale, f"{dtype} upper")
        assert_close(cloud.layer_errors, truth_layers, rtol, scale, f"{dtype} layer_errors")
        for hidden, truth in zip(epochs, truth_k):
            got = cloud.compute(hidden)
            keys = sorted(truth)
            assert_close([got[S] for S in keys], [truth[S] for S in keys], rtol, scale, f"{dtype} e(S)")
            cloud.record(got)
        curves = gt_curves(truth_layers[-1], truth_k, depth)
        for k in range(1, depth):
            assert_close(cloud.curve(k), curves[k - 1], rtol, scale, f"{dtype} curve({k})")


def test_trained_mlp_hidden_outputs_match_ground_truth():
    X, Y, nets = train_mlp(torch.float64)
    epochs = [hidden_outputs(net, X) for net in nets]
    check_mlp(X, Y, epochs, epochs, {torch.float64: EXACT_RTOL, torch.float32: FAST_RTOL})


def test_float32_mlp_hidden_outputs_match_the_networks_exact_outputs():
    """What a user passes: a float32 network's float32 hidden outputs.

    The reference is the ground truth of the same weights evaluated in float64.
    (Not lstsq on the float32 outputs themselves: where a layer's units are
    linear combinations of fewer live units one layer down, float32 rounding
    leaves directions ~1e-8 strong that lstsq with rcond=None keeps and fits
    Y to; on this net that moves some e(S) by ~10%. The engine's rank cut-off
    treats them as the round-off they are.)
    """
    X, Y, nets = train_mlp(torch.float32)
    epochs = [hidden_outputs(net, X) for net in nets]
    X64 = X.double()
    exact = [hidden_outputs(copy.deepcopy(net).double(), X64) for net in nets]
    check_mlp(X, Y, epochs, exact, {torch.float64: 1e-5, torch.float32: FAST_RTOL})


@pytest.mark.parametrize("kind", ["plain", "degenerate"])
def test_cpu_cholesky_route_equals_the_eigh_route(kind, monkeypatch):
    """On CPU, certified states use Cholesky (~d³) instead of eigh (~9d³): same bounds."""
    from yeswidget.engine import _linalg as engine
    X, Y, hidden_epochs, *_ = build_case(5, True, kind)
    X, Y, hidden = torch.from_numpy(X), torch.from_numpy(Y), [torch.from_numpy(h) for h in hidden_epochs[0]]
    fast, fast0 = yes_k_bounds(X, Y, hidden), yes0_bound(X, Y, 5)
    monkeypatch.setattr(engine, "CPU_CHOLESKY", False)
    slow, slow0 = yes_k_bounds(X, Y, hidden), yes0_bound(X, Y, 5)
    keys = sorted(slow)
    assert_close([fast[S] for S in keys], [slow[S] for S in keys], 1e-9, float((Y ** 2).sum()), kind)
    assert_close(fast0, slow0, 1e-9, 1.0, kind)


@pytest.mark.xfail(strict=True, reason=(
    "known limit of float64 mode: one Gram eigen-decomposition cuts the rank at "
    "sqrt(10*eps*max(N, d)) ~ 6e-7 (relative, unit-norm columns), so a genuine direction "
    "weaker than that is dropped where lstsq keeps it. The same cut-off is what keeps the "
    "engine from fitting float32 rounding noise in hidden outputs "
    "(test_float32_mlp_hidden_outputs_match_the_networks_exact_outputs)"))
def test_float64_resolves_near_collinear_inputs():
    """Two inputs 1e-6 apart (relative) span z exactly: lstsq fits Y = z with E ≈ 0."""
    rng = np.random.default_rng(0)
    x, z = rng.standard_normal(200), rng.standard_normal(200)
    X, Y = np.stack([x, x + 1e-6 * z], axis=1), z[:, None]
    truth = gt_E(gt_fit(Y, X, True), Y)
    assert truth < 1e-15
    assert yes0_bound(torch.from_numpy(X), torch.from_numpy(Y), 1) < 1e-12


def wide_case(N=30, n=6, m=4, widths=(50, 64, 45), seed=5):
    """Hidden layers wider than the number of samples (d > N): the dual (N × N) form.
    Each is non-negative of rank 9 < N (so no fit is trivially exact), with a dead unit."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, n))
    Y = np.abs(X @ rng.standard_normal((n, m)))
    hidden = []
    for w in widths:
        H = rng.standard_normal((N, 8)) @ rng.standard_normal((8, w)) + 10.0
        H[:, 3] = 0.0  # a dead unit
        hidden.append(H)
    return X, Y, hidden


def test_wide_layers_use_the_dual_form_and_equal_the_primal(monkeypatch):
    from yeswidget.engine import _linalg as engine
    X, Y, hidden = wide_case()
    Xt, Yt, Ht = torch.from_numpy(X), torch.from_numpy(Y), [torch.from_numpy(h) for h in hidden]
    duals = []
    original = engine._dual_basis
    monkeypatch.setattr(engine, "_dual_basis", lambda A, rtol: duals.append(A.shape) or original(A, rtol))
    dual = yes_k_bounds(Xt, Yt, Ht)
    dual_cloud = YesCloud(Xt, Yt, 4)
    assert duals and all(shape[-1] > shape[-2] for shape in duals)  # only wide states went dual
    monkeypatch.setattr(engine, "BASIS_FORM", "primal")
    primal = yes_k_bounds(Xt, Yt, Ht)
    keys = sorted(primal)
    assert_close([dual[S] for S in keys], [primal[S] for S in keys], 1e-9, 1.0, "dual vs primal")
    truth = gt_yes_k(X, Y, hidden, True)
    assert_close([dual[S] for S in keys], [truth[S] for S in keys], EXACT_RTOL, float((Y ** 2).sum()), "dual vs lstsq")
    assert_close(dual_cloud.upper, YesCloud(Xt, Yt, 4).upper, 1e-9, 1.0, "YES-0")
    assert min(truth.values()) > 1e-3 * float((Y ** 2).sum() / Y.shape[0])  # nothing trivially exact


def test_other_activations_match_ground_truth():
    """tanh and identity go through the same machinery (checked on one case each)."""
    X, Y, hidden_epochs, *_ = build_case(4, True, "plain")
    hidden = hidden_epochs[0]
    scale = float((Y ** 2).sum() / Y.shape[0])
    t = torch.from_numpy
    for name, act in (("tanh", np.tanh), ("identity", lambda v: v)):
        truth0 = gt_chain(X, Y, [Y] * 3, True, act)[-1]
        assert_close(yes0_bound(t(X), t(Y), 4, activation=name), truth0, EXACT_RTOL, scale, name)
        got = yes_k_bounds(t(X), t(Y), [t(h) for h in hidden], activation=name)
        for S, value in got.items():
            targets = [Y if gt_target(S, l) is None else hidden[gt_target(S, l)] for l in range(3)]
            assert_close(value, gt_chain(X, Y, targets, True, act)[-1], EXACT_RTOL, scale, f"{name} {S}")


# --------------------------------------------------------------------------- #
# 2. each distinct prefix once
# --------------------------------------------------------------------------- #
def spec_work(depth: int) -> tuple[int, int, int]:
    """(naive solves, prefix-shared solves, bases) derived from the spec's target rule.

    State after layer l depends on the targets of layers 0 … l. A basis is needed
    per distinct state that something is fitted from: the distinct target
    prefixes of length 0 … L-1 (length 0 is X). A solve per distinct prefix of
    length 1 … L-1, plus the last layer's fit to Y for every set.
    """
    sets = gt_anchor_sets(depth)
    sequences = [tuple(gt_target(S, l) for l in range(depth - 1)) for S in sets]
    prefixes = {length: {seq[:length] for seq in sequences} for length in range(depth)}
    naive = len(sets) * depth
    solves = sum(len(prefixes[length]) for length in range(1, depth)) + len(sets)
    bases = sum(len(prefixes[length]) for length in range(depth))
    return naive, solves, bases


def hidden_for(depth, N=30, widths=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    widths = widths or [6] * (depth - 1)
    X = torch.randn(N, 4, generator=g, dtype=torch.float64)
    Y = torch.randn(N, 3, generator=g, dtype=torch.float64)
    return X, Y, [torch.rand(N, w, generator=g, dtype=torch.float64) for w in widths]


def test_prefix_sharing_counts_for_depth_5():
    naive, solves, bases = spec_work(5)
    assert (naive, solves, bases) == (75, 52, 38)  # 15 × 5; 4+7+11+15 + 15; 1+4+7+11+15
    X, Y, hidden = hidden_for(5)
    with solve_counter() as count:
        yes_k_bounds(X, Y, hidden)
    assert count.solves == solves < naive
    assert count.bases == bases


@pytest.mark.parametrize("depth", [2, 3, 4, 6, 7])
def test_prefix_sharing_counts_other_depths(depth):
    _, solves, bases = spec_work(depth)
    X, Y, hidden = hidden_for(depth)
    with solve_counter() as count:
        yes_k_bounds(X, Y, hidden)
    assert (count.solves, count.bases) == (solves, bases)


def test_cloud_update_counts_and_counters_nest():
    X, Y, hidden = hidden_for(5)
    with solve_counter() as outer:
        cloud = YesCloud(X, Y, 5)
        assert (outer.solves, outer.bases) == (5, 5)  # YES-0: one fit per layer
        with solve_counter() as inner:
            cloud.update(hidden)
        assert (inner.solves, inner.bases) == (52, 38)
    assert (outer.solves, outer.bases) == (57, 43)
    with solve_counter() as after:
        pass
    assert (after.solves, after.bases) == (0, 0)


# --------------------------------------------------------------------------- #
# 3. precision, input dtypes, devices, host round trips
# --------------------------------------------------------------------------- #
def paper_task_states(name: str, checkpoints=(0, 3, 60)):
    """(task, [(epoch, hidden outputs)]) of the task's model trained with its own recipe
    (optimizer, lr, batch size, StepLR) on its training set, at the given epochs."""
    from yeswidget import tasks
    task = getattr(tasks, name)()
    model = task.model(seed=0)
    recipe = task.defaults
    make = torch.optim.Adam if recipe["optimizer"] == "adam" else torch.optim.SGD
    optimizer = make(model.parameters(), lr=recipe["lr"])
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, recipe["step_size"], recipe["gamma"])
    X, Y = task.X_train, task.Y_train
    order = torch.Generator().manual_seed(0)
    states, done = [], 0
    for checkpoint in checkpoints:
        for _ in range(done, checkpoint):
            for batch in torch.randperm(X.shape[0], generator=order).split(recipe["batch_size"]):
                optimizer.zero_grad()
                ((model(X[batch]) - Y[batch]) ** 2).sum(dim=1).mean().backward()
                optimizer.step()
            schedule.step()
        done = checkpoint
        states.append((checkpoint, hidden_outputs(model, X)))
    return task, states


@pytest.mark.parametrize("name", ["phase_retrieval", "signal_denoising"])
def test_float32_mode_within_1e_5_on_the_paper_tasks(name):
    """float32 mode within 1e-5 of float64 (itself ~1e-10 from lstsq) at initial weights,
    after 3 and after 60 epochs: float32 is kept where its conditioning certificate
    holds, and the computation is redone in float64 where it does not (counted)."""
    task, states = paper_task_states(name)
    X, Y = task.X_train, task.Y_train
    exact, fast = YesCloud(X, Y, 5), YesCloud(X, Y, 5, dtype=torch.float32)
    assert abs(fast.upper - exact.upper) <= 1e-5 * exact.upper
    fallbacks = 0
    for epoch, hidden in states:
        want = exact.compute(hidden)
        with solve_counter() as count:
            got = fast.compute(hidden)
        fallbacks += count.float64_fallbacks
        worst = max(abs(got[S] - want[S]) / want[S] for S in want)
        assert worst <= 1e-5, f"{name}, epoch {epoch}: float32 off by {worst:.2e}"
    if name == "phase_retrieval":  # its hidden states are ill-conditioned (cond ~1e4): float32 cannot certify
        assert fallbacks == 1  # the first update; later ones go straight to float64
        assert fast.effective_dtype == torch.float64 and fast.fresh().effective_dtype == torch.float32


def test_float32_is_kept_where_it_is_certified():
    rng = np.random.default_rng(3)
    X = torch.from_numpy(rng.standard_normal((400, 5)))
    Y = X @ torch.from_numpy(rng.standard_normal((5, 3))) + 0.3 * torch.from_numpy(rng.standard_normal((400, 3)))
    with solve_counter() as count:
        fast = yes0_bound(X, Y, 2, dtype=torch.float32)
    assert count.float64_fallbacks == 0 and count.bases == 2
    exact = yes0_bound(X, Y, 2)
    assert abs(fast - exact) <= 1e-5 * exact and fast != exact  # computed in float32, and close


@pytest.mark.parametrize("depth,bias,kind", CASES)
def test_float32_mode_within_1e_3(depth, bias, kind):
    check_against_truth(depth, bias, kind, torch.float32, FAST_RTOL)


@pytest.mark.parametrize("bias", [True, False])
def test_float32_mode_survives_rank_deficient_inputs(bias):
    rng = np.random.default_rng(7)
    N = 150
    X0 = rng.standard_normal((N, 5))
    X = np.hstack([X0, X0, np.zeros((N, 3)), np.full((N, 2), 2.5), X0[:, :1] * 1e3])
    Y = np.abs(X0 @ rng.standard_normal((5, 4)))
    Hs = [relu_np(X0 @ rng.standard_normal((5, 9))), np.zeros((N, 6)),
          np.hstack([relu_np(X0[:, :2]), relu_np(X0[:, :2]), np.zeros((N, 2))])]
    scale = float((Y ** 2).sum() / N)
    t = torch.from_numpy
    truth_layers = gt_yes0_layers(X, Y, 4, bias)
    truth_k = gt_yes_k(X, Y, Hs, bias)
    for dtype in ("float32", torch.float32):
        cloud = YesCloud(t(X), t(Y), 4, bias=bias, dtype=dtype)
        assert_close(cloud.upper, truth_layers[-1], FAST_RTOL, scale, "upper")
        assert_close(cloud.layer_errors, truth_layers, FAST_RTOL, scale, "layer_errors")
        got = yes_k_bounds(t(X), t(Y), [t(h) for h in Hs], bias=bias, dtype=dtype)
        keys = sorted(truth_k)
        assert_close([got[S] for S in keys], [truth_k[S] for S in keys], FAST_RTOL, scale, "e(S)")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_layer_with_every_unit_dead(dtype):
    """No bias and an all-zero hidden layer: the fitted state is all zero, so is
    every later fit, and E is that of the zero prediction (float32 once produced
    NaN here from rsqrt of an underflowed shift, then an eigh failure)."""
    X, Y, hidden = hidden_for(4, N=50)
    hidden[1] = torch.zeros_like(hidden[1])
    got = yes_k_bounds(X, Y, hidden, bias=False, dtype=dtype)
    zero_prediction = float((Y ** 2).sum() / Y.shape[0])
    assert all(math.isfinite(v) for v in got.values())
    for S in [(1,), (0, 1)]:  # the dead layer is the last anchor: layers 0 … 2 end at zero
        assert got[S] == pytest.approx(zero_prediction, rel=1e-12 if dtype == torch.float64 else 1e-6)
    truth = gt_yes_k(as_np(X), as_np(Y), [as_np(h) for h in hidden], False)
    rtol = EXACT_RTOL if dtype == torch.float64 else FAST_RTOL
    assert_close([got[S] for S in sorted(truth)], [truth[S] for S in sorted(truth)], rtol, zero_prediction, "dead layer")


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_input_dtype_is_only_a_cast(low):
    X, Y, hidden_epochs, *_ = build_case(4, True, "plain")
    t = torch.from_numpy
    Xl, Yl = t(X).to(low), t(Y).to(low)
    Hl = [t(h).to(low) for h in hidden_epochs[0]]
    # the same values handed over in float64
    X64, Y64, H64 = Xl.double(), Yl.double(), [h.double() for h in Hl]
    assert yes0_bound(Xl, Yl, 4) == yes0_bound(X64, Y64, 4)
    assert yes_k_bounds(Xl, Yl, Hl) == yes_k_bounds(X64, Y64, H64)
    a, b = YesCloud(Xl, Yl, 4), YesCloud(X64, Y64, 4)
    assert (a.upper, a.layer_errors, a.update(Hl)) == (b.upper, b.layer_errors, b.update(H64))
    # and that is the ground truth of the cast values
    Xn, Yn, Hn = as_np(Xl), as_np(Yl), [as_np(h) for h in Hl]
    scale = float((Yn ** 2).sum() / Yn.shape[0])
    truth = gt_yes_k(Xn, Yn, Hn, True)
    got = yes_k_bounds(Xl, Yl, Hl)
    assert_close([got[S] for S in sorted(truth)], [truth[S] for S in sorted(truth)], EXACT_RTOL, scale, str(low))
    # numpy arrays are accepted as well
    assert yes_k_bounds(Xn, Yn, Hn) == yes_k_bounds(X64, Y64, H64)


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_device_cpu(device):
    X, Y, hidden = hidden_for(4)
    default = YesCloud(X, Y, 4)
    cloud = YesCloud(X, Y, 4, device=device)
    assert cloud.device == torch.device("cpu")
    assert (cloud.upper, cloud.layer_errors) == (default.upper, default.layer_errors)
    assert cloud.update(hidden) == default.update(hidden)
    assert cloud.last_bounds == default.last_bounds


@pytest.fixture
def host_sync_counter(monkeypatch):
    """Counts every Python-level device→host read of a tensor."""
    calls = {"n": 0}
    for name in ("item", "tolist", "numpy", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            calls["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return calls


def test_no_host_round_trip_per_layer(host_sync_counter, monkeypatch):
    """The route CUDA takes (eigh only; on CPU a certificate read per level is free)."""
    from yeswidget.engine import _linalg as engine
    monkeypatch.setattr(engine, "CPU_CHOLESKY", False)
    per_depth = {}
    for depth in (3, 5, 7):
        X, Y, hidden = hidden_for(depth, N=40)
        host_sync_counter["n"] = 0
        yes_k_bounds(X, Y, hidden)
        per_depth[depth] = host_sync_counter["n"]
    # finiteness of X, Y (one read), of the hidden outputs (one read), the results (one read)
    assert per_depth[5] == per_depth[7] == per_depth[3], per_depth
    assert per_depth[5] <= 3, per_depth
    # the cloud: same for update and for YES-0 at construction
    for depth in (3, 7):
        X, Y, hidden = hidden_for(depth, N=40)
        host_sync_counter["n"] = 0
        cloud = YesCloud(X, Y, depth)
        per_depth[("init", depth)] = host_sync_counter["n"]
        host_sync_counter["n"] = 0
        cloud.update(hidden)
        per_depth[("update", depth)] = host_sync_counter["n"]
    assert per_depth[("init", 3)] == per_depth[("init", 7)] <= 2, per_depth
    assert per_depth[("update", 3)] == per_depth[("update", 7)] <= 2, per_depth


# --------------------------------------------------------------------------- #
# 4. bad input
# --------------------------------------------------------------------------- #
def good(N=20, n=3, m=2, depth=3):
    X, Y, hidden = hidden_for(depth, N=N)
    return X[:, :n], Y[:, :m], hidden


def raises(exc, pattern, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    for part in pattern:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def test_mismatched_sample_counts():
    X, Y, hidden = good()
    raises(ValueError, ["Y", "19", "(19, 2)", "20"], yes0_bound, X, Y[:19], 2)
    raises(ValueError, ["Y", "19"], YesCloud, X, Y[:19], 2)
    raises(ValueError, ["hidden[1]", "18", "(18, 6)", "20"], yes_k_bounds, X, Y, [hidden[0], hidden[1][:18]])
    cloud = YesCloud(X, Y, 3)
    raises(ValueError, ["hidden[0]", "(21, 6)"], cloud.update, [torch.rand(21, 6, dtype=torch.float64), hidden[1]])


def test_tensors_that_are_not_2d():
    X, Y, hidden = good()
    raises(ValueError, ["X", "2-D", "(20,)"], yes0_bound, X[:, 0], Y, 2)
    raises(ValueError, ["Y", "2-D", "(20, 2, 1)"], yes0_bound, X, Y[:, :, None], 2)
    raises(ValueError, ["hidden[0]", "2-D", "(20,)"], yes_k_bounds, X, Y, [hidden[0][:, 0], hidden[1]])
    raises(ValueError, ["hidden[1]", "2-D", "(20, 3, 2)"], yes_k_bounds, X, Y, [hidden[0], hidden[1].reshape(20, 3, 2)])
    raises(ValueError, ["X", "empty", "(20, 0)"], yes0_bound, X[:, :0], Y, 2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_named(bad):
    X, Y, _ = good()
    kind = "NaN" if math.isnan(bad) else "inf"
    Xb = X.clone()
    Xb[3, 1] = bad
    raises(ValueError, ["X", kind], yes0_bound, Xb, Y, 2)
    raises(ValueError, ["X", kind], YesCloud, Xb, Y, 2)
    Yb = Y.clone()
    Yb[0, 0] = bad
    raises(ValueError, ["Y", kind], yes0_bound, X, Yb, 2)
    X, Y, hidden = good(depth=4)
    hidden = [h.clone() for h in hidden]
    hidden[2][5, 5] = bad
    raises(ValueError, ["hidden[2]", kind, "1 non-finite"], yes_k_bounds, X, Y, hidden)
    raises(ValueError, ["hidden[2]", kind], YesCloud(X, Y, 4).update, hidden)


@pytest.mark.parametrize("depth,exc", [(0, ValueError), (-2, ValueError), (2.0, TypeError), (2.5, TypeError),
                                       ("3", TypeError), (True, TypeError), (None, TypeError)])
def test_bad_depth(depth, exc):
    X, Y, _ = good()
    raises(exc, ["depth", repr(depth)], yes0_bound, X, Y, depth)
    raises(exc, ["depth", repr(depth)], YesCloud, X, Y, depth)
    raises(exc, ["depth"], anchor_sets, depth)


def test_hidden_of_the_wrong_length_or_type():
    X, Y, hidden = good(depth=4)
    cloud = YesCloud(X, Y, 4)
    raises(ValueError, ["hidden", "2 tensors", "depth-4", "3 hidden layers"], cloud.update, hidden[:2])
    raises(ValueError, ["hidden", "4 tensors"], cloud.update, hidden + [hidden[0]])
    raises(TypeError, ["hidden", "Tensor"], cloud.update, hidden[0])
    raises(TypeError, ["hidden", "Tensor"], yes_k_bounds, X, Y, hidden[0])
    assert cloud.epochs == []  # nothing was recorded by the failed calls


def test_tensors_on_different_devices():
    X, Y, hidden = good()
    meta_hidden = torch.empty(20, 6, device="meta")
    raises(ValueError, ["hidden[1]", "meta", "cpu"], yes_k_bounds, X, Y, [hidden[0], meta_hidden])
    raises(ValueError, ["hidden[0]", "meta"], YesCloud(X, Y, 3).update, [meta_hidden, hidden[1]])
    raises(ValueError, ["Y", "meta", "cpu"], yes0_bound, X, Y.to("meta"), 2)
    raises(ValueError, ["X", "meta", "cpu"], yes_k_bounds, X.to("meta"), Y, hidden)
    raises(ValueError, ["Y", "meta"], YesCloud, X, Y.to("meta"), 3)
    # an explicit device cannot move a tensor that has no data
    raises(ValueError, ["Y", "meta"], YesCloud, X, Y.to("meta"), 3, device="cpu")
    raises(ValueError, ["X", "meta"], YesCloud, X.to("meta"), Y.to("meta"), 3)


def test_integer_and_unsupported_dtypes():
    X, Y, hidden = good()
    raises(TypeError, ["X", "torch.int64"], yes0_bound, X.long(), Y, 2)
    raises(TypeError, ["Y", "torch.int32"], yes0_bound, X, Y.int(), 2)
    raises(TypeError, ["hidden[0]", "torch.bool"], yes_k_bounds, X, Y, [hidden[0] > 0.5, hidden[1]])
    raises(TypeError, ["X", "list"], yes0_bound, X.tolist(), Y, 2)
    raises(ValueError, ["dtype", "float16"], yes0_bound, X, Y, 2, dtype=torch.float16)
    raises(ValueError, ["dtype", "half"], YesCloud, X, Y, 2, dtype="half")


def test_unsupported_activation():
    X, Y, hidden = good()
    raises(ValueError, ["activation", "'swish'", "relu"], yes0_bound, X, Y, 2, activation="swish")
    raises(ValueError, ["activation", "'swish'"], yes_k_bounds, X, Y, hidden, activation="swish")
    raises(ValueError, ["activation", "42"], YesCloud, X, Y, 2, activation=42)
    # names are case-insensitive, callables are accepted
    assert yes0_bound(X, Y, 3, activation="ReLU") == yes0_bound(X, Y, 3, activation=torch.relu)


# --------------------------------------------------------------------------- #
# 5. properties
# --------------------------------------------------------------------------- #
@st.composite
def clouds(draw):
    seed = draw(st.integers(0, 2 ** 32 - 1))
    N = draw(st.integers(4, 60))
    n = draw(st.integers(1, 6))
    m = draw(st.integers(1, 5))
    depth = draw(st.integers(1, 5))
    bias = draw(st.booleans())
    epochs = draw(st.integers(1, 4))
    widths = [draw(st.integers(1, 8)) for _ in range(depth - 1)]
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    Y = torch.randn(N, m, generator=g, dtype=torch.float64) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    if draw(st.booleans()):
        Y = Y.abs()
    cloud = YesCloud(X, Y, depth, bias=bias)
    recorded = []
    for _ in range(epochs):
        hidden = [torch.relu(torch.randn(N, w, generator=g, dtype=torch.float64)) for w in widths]
        cloud.update(hidden)
        recorded.append(dict(cloud.last_bounds))
    return cloud, X, Y, bias, recorded


@PROPERTY_SETTINGS
@given(clouds())
def test_cloud_orders_and_monotonicity(case):
    cloud, X, Y, bias, recorded = case
    depth = cloud.depth
    assert cloud.lower <= cloud.upper
    curves = [cloud.curve(k) for k in range(depth)]
    for curve in curves:
        assert len(curve) == len(cloud.epochs) == len(recorded)
        assert all(b <= a for a, b in zip(curve, curve[1:])), curve  # non-increasing over epochs
    for k in range(1, depth):
        assert all(lo <= hi for lo, hi in zip(curves[k], curves[k - 1])), (k, curves)  # YES-k ≤ YES-(k-1)
        # each YES-k is attained: YES-0 or one recorded e(S) with |S| ≤ k
        attained = {cloud.upper} | {e for epoch in recorded for S, e in epoch.items() if len(S) <= k}
        assert curves[k][-1] in attained
    if depth > 1:
        assert cloud.lower == curves[-1][-1] == min([cloud.upper] + [e for ep in recorded for e in ep.values()])
    assert cloud.yes_k() == [c[-1] for c in curves[1:]]
    assert all(math.isfinite(v) and v >= 0 for v in cloud.layer_errors + [cloud.upper, cloud.lower])


@PROPERTY_SETTINGS
@given(clouds())
def test_yes0_with_bias_is_below_the_variance_of_y(case):
    cloud, X, Y, bias, _ = case
    variance = float(((Y - Y.mean(0)) ** 2).sum() / Y.shape[0])  # E of the constant mean prediction
    scale = float((Y ** 2).sum() / Y.shape[0])
    if bias:
        assert cloud.upper <= variance * (1 + 1e-9) + 1e-12 * scale
    # without a bias the zero prediction is feasible: E ≤ ‖Y‖² / N
    assert cloud.upper <= scale * (1 + 1e-9)


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1), N=st.integers(3, 60), n=st.integers(1, 6), m=st.integers(1, 5),
       bias=st.booleans(), dtype=st.sampled_from([torch.float64, torch.float32]))
def test_yes0_of_an_affine_target_is_zero_at_depth_1(seed, N, n, m, bias, dtype):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    Y = X @ torch.randn(n, m, generator=g, dtype=torch.float64)
    if bias:
        Y = Y + torch.randn(m, generator=g, dtype=torch.float64)
    scale = float((Y ** 2).sum() / N)
    tol = 1e-20 if dtype == torch.float64 else 1e-8
    assert yes0_bound(X, Y, 1, bias=bias, dtype=dtype) <= tol * scale + 1e-300
    cloud = YesCloud(X, Y, 1, bias=bias, dtype=dtype)
    assert cloud.layer_errors[0] <= tol * scale + 1e-300


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2 ** 32 - 1), N=st.integers(3, 60), n=st.integers(1, 6), m=st.integers(1, 5),
       depth=st.integers(2, 6), bias=st.booleans(), margin=st.sampled_from([0.0, 0.1, 2.0]))
def test_yes0_of_a_non_negative_affine_target_is_zero_at_any_depth(seed, N, n, m, depth, bias, margin):
    """ReLU passes a non-negative Y through, so every layer keeps the exact fit (Theorem 1)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    if bias:
        Y = X @ torch.randn(n, m, generator=g, dtype=torch.float64)
        Y = Y - Y.min(0).values + margin
    else:  # no constant available: non-negative inputs and weights
        X = X.abs()
        Y = X @ torch.rand(n, m, generator=g, dtype=torch.float64)
    scale = float((Y ** 2).sum() / N)
    cloud = YesCloud(X, Y, depth, bias=bias)
    assert cloud.upper <= 1e-20 * scale + 1e-300
    assert max(cloud.layer_errors) <= 1e-20 * scale + 1e-300


finite_losses = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


@PROPERTY_SETTINGS
@given(loss=finite_losses, case=clouds())
def test_zone_boundaries(loss, case):
    cloud, *_ = case
    upper, lower = cloud.upper, cloud.lower
    expected = "red" if loss > upper else ("green" if loss <= lower else "yellow")
    assert cloud.zone(loss) == expected
    assert cloud.zone(upper) == ("green" if lower == upper else "yellow")
    assert cloud.zone(lower) == "green"
    assert cloud.zone(math.nextafter(upper, math.inf)) == "red"
    if lower < upper:
        assert cloud.zone(math.nextafter(lower, math.inf)) == "yellow"
        assert cloud.zone((lower + upper) / 2) in ("yellow", "green")  # midpoint may round onto lower
    for bad in (float("nan"), float("inf"), -float("inf")):
        assert cloud.zone(bad) == "red"
    assert cloud.zone(torch.tensor(lower, dtype=torch.float64)) == "green"  # a 0-d tensor is a loss too


# --------------------------------------------------------------------------- #
# 6. per-layer YES-0 errors and Theorem 1
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("depth", [1, 2, 5, 8])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_errors_shape_and_theorem_1(depth, bias):
    rng = np.random.default_rng(depth + 100 * bias)
    N, n, m = 200, 6, 15
    X = rng.standard_normal((N, n))
    Y = np.abs(X @ rng.standard_normal((n, m)))  # phase retrieval: |A x|, non-negative
    cloud = YesCloud(torch.from_numpy(X), torch.from_numpy(Y), depth, bias=bias)
    errors = cloud.layer_errors
    assert len(errors) == depth
    assert errors[-1] == cloud.upper
    scale = float((Y ** 2).sum() / N)
    for before, after in zip(errors, errors[1:]):
        assert after <= before * (1 + 1e-9) + 1e-12 * scale, errors
    assert_close(errors, gt_yes0_layers(X, Y, depth, bias), EXACT_RTOL, scale, "layer_errors")


# --------------------------------------------------------------------------- #
# the rest of the API
# --------------------------------------------------------------------------- #
def test_curves_and_bad_k():
    X, Y, hidden = hidden_for(4)
    cloud = YesCloud(X, Y, 4)
    assert [cloud.curve(k) for k in range(4)] == [[], [], [], []]
    assert cloud.lower == cloud.upper and cloud.yes_k() == [cloud.upper] * 3
    for epoch in range(3):
        returned = cloud.update([h * (1 + epoch) for h in hidden], epoch=10 * epoch)
        assert returned == cloud.lower
    assert cloud.epochs == [0, 10, 20]
    assert all(len(cloud.curve(k)) == 3 for k in range(4))
    assert cloud.curve(0) == [cloud.upper] * 3
    assert cloud.curve(3)[-1] == cloud.lower
    for bad in (-1, 4, 1.0, "1", True, None):
        raises(ValueError, ["k", repr(bad)], cloud.curve, bad)
    assert "YesCloud(" in repr(cloud) and "epochs=3" in repr(cloud)


def test_update_returns_lower_and_keeps_bounds():
    X, Y, hidden = hidden_for(3)
    cloud = YesCloud(X, Y, 3)
    lower = cloud.update(hidden)
    assert lower == cloud.lower == min([cloud.upper] + list(cloud.last_bounds.values()))
    assert set(cloud.last_bounds) == {(0,), (1,), (0, 1)}
    assert cloud.epochs == [1]


@pytest.mark.parametrize("depth", range(1, 9))
def test_anchor_sets(depth):
    sets = anchor_sets(depth)
    assert len(sets) == 2 ** (depth - 1) - 1
    assert sorted(sets) == sorted(gt_anchor_sets(depth))
    assert len(set(sets)) == len(sets)


def test_depth_1_cloud():
    X, Y, _ = hidden_for(1)
    cloud = YesCloud(X, Y, 1)
    assert yes_k_bounds(X, Y, []) == {}
    assert cloud.update([]) == cloud.lower == cloud.upper
    assert cloud.curve(0) == [cloud.upper]
    raises(ValueError, ["k"], cloud.curve, 1)
    assert cloud.zone(cloud.upper) == "green"
    assert cloud.layer_errors == [cloud.upper]
    assert_close(cloud.upper, gt_E(gt_fit(as_np(Y), as_np(X), True), as_np(Y)), EXACT_RTOL, 1.0, "depth 1")



# --------------------------------------------------------------------------- #
# float32's certificate is sound: kept results are within 1e-5 of lstsq, else float64
# --------------------------------------------------------------------------- #
def adam_phase_retrieval_states(checkpoints=(0, 3, 20)):
    """Hidden outputs of the paper's phase-retrieval network (Adam 1e-3, batch 50, summed MSE,
    a shuffled DataLoader) at the given epochs: the states the float32 certificate once passed
    while 2.5e-4 off."""
    from yeswidget import tasks
    task = tasks.phase_retrieval()
    torch.manual_seed(0)
    model = task.model(seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(task.X_train, task.Y_train),
                                         batch_size=50, shuffle=True, generator=torch.Generator().manual_seed(0))
    states, done = [], 0
    for checkpoint in checkpoints:
        for _ in range(done, checkpoint):
            for xb, yb in loader:
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(xb), yb, reduction="sum").backward()
                optimizer.step()
        done = checkpoint
        states.append((f"phase retrieval, epoch {checkpoint}", task.X_train, task.Y_train,
                       hidden_outputs(model, task.X_train)))
    return states


def random_states():
    """Random float32 ReLU chains (well conditioned), and one whose loss is tiny next to ‖Y‖²:
    there the old certificate (conditioning alone) kept a float32 result 3.7e-4 off."""
    gen = torch.Generator().manual_seed(1)
    out = []
    for depth, width, noise in [(3, 12, 1.0), (3, 24, 0.5), (4, 12, 1.0), (5, 8, 1.0), (4, 30, 1e-3)]:
        X = torch.randn(400, 10, generator=gen)
        z, hidden = X, []
        for _ in range(depth - 1):
            weight = torch.randn(z.shape[1], width, generator=gen) / z.shape[1] ** 0.5
            z = torch.relu(z @ weight + 0.1)
            hidden.append(z + noise * torch.randn(z.shape, generator=gen))
        Y = z @ torch.randn(width, 5, generator=gen) + noise * torch.randn(400, 5, generator=gen)
        out.append((f"random depth {depth}, width {width}, noise {noise}", X, Y, hidden))
    X = torch.randn(500, 6, generator=gen)
    V = torch.randn(6, 4, generator=gen)
    hidden = [X @ torch.cat([V, torch.randn(6, 2, generator=gen)], dim=1)]
    Y = torch.relu(X @ V) + 1e-4 * torch.randn(500, 4, generator=gen)
    out.append(("a loss 1e-8 of ‖Y‖²", X, Y, hidden))
    return out


def test_float32_certificate_is_sound_on_trained_and_random_states():
    """Every float32 result is within 1e-5 (relative) of a float64 lstsq ground truth on every
    anchor set, or it was computed in float64 (counted as a fallback, equal to float64 mode)."""
    kept = 0
    for what, X, Y, hidden in [*adam_phase_retrieval_states(), *random_states()]:
        with solve_counter() as count:
            fast = yes_k_bounds(X, Y, hidden, dtype=torch.float32)
        if count.float64_fallbacks:
            assert fast == yes_k_bounds(X, Y, hidden), what  # the inputs are float32: the same numbers
            continue
        kept += 1
        truth = gt_yes_k(as_np(X), as_np(Y), [as_np(h) for h in hidden], True)
        worst = max(abs(fast[S] - truth[S]) / truth[S] for S in truth)
        assert worst <= 1e-5, f"{what}: float32 kept but off by {worst:.2e}"
    assert kept >= 3  # float32 is kept where it can be: the test is not only about fallbacks
