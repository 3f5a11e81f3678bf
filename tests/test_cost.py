"""The cost estimate refuses, before any bound is computed, configurations that would take minutes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yeswidget.engine import cost
from yeswidget.engine.capture import trace


class MnistCNN(nn.Module):
    """The classic MNIST example: two 3×3 convolutions, then a 3-layer head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 14 * 14, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def test_conv_taps_whose_update_takes_minutes_are_refused_with_the_estimate():
    model, X = MnistCNN(), torch.randn(2, 1, 28, 28)
    plan = trace(model, X, include_conv=True)
    assert plan.hidden_widths == [32 * 28 * 28, 32 * 28 * 28, 64, 32]
    estimate = cost.estimate_for_plan(plan, 2000)
    assert estimate.update_seconds > 120  # minutes at least, on any machine this suite runs on
    with pytest.raises(cost.CostError) as refused:
        cost.check(estimate)
    message = str(refused.value)
    assert "one YES-k update" in message and cost._seconds(estimate.update_seconds) in message
    for way_out in ("max_samples", "include_conv=True", "every=k", "allow_expensive=True"):
        assert way_out in message
    # the default plan of the same model (the Linear head, X the raw image) is affordable
    default = cost.estimate_for_plan(trace(model, X), 2000)
    assert default.hidden_widths == [64, 32] and cost.check(default) is default


def test_allow_expensive_skips_the_limit():
    estimate = cost.estimate(2000, 784, [25088, 64], 10)
    assert cost.check(estimate, allow_expensive=True) is estimate


def test_too_many_samples_suggests_a_max_samples_that_fits():
    estimate = cost.estimate(400_000, 200, [512, 512], 10)
    # a limit that a small subset meets on this machine (the width-only part, the factorisations,
    # does not shrink with N and its seconds depend on the machine's measured speed)
    limit = max(5.0, 4 * max(cost.estimate(64, 200, [512, 512], 10).update_seconds,
                             cost.estimate(64, 200, [512, 512], 10).yes0_seconds))
    assert estimate.update_seconds > limit  # the whole set really is over it
    with pytest.raises(cost.CostError, match=r"max_samples=(\d+)") as refused:
        cost.check(estimate, max_seconds=limit)
    suggested = int(refused.value.args[0].split("max_samples=")[1].split(" ")[0])
    assert 2 <= suggested < 400_000
    smaller = cost.estimate(suggested, 200, [512, 512], 10)
    assert cost.check(smaller, max_seconds=limit) is smaller


def test_memory_limit():
    estimate = cost.estimate(5000, 100, [300, 300], 10)
    assert estimate.update_bytes > 5000 * 600 * 8  # at least the float64 copies of the hidden outputs
    with pytest.raises(cost.CostError, match="memory"):
        cost.check(estimate, max_bytes=1e6)


def test_hidden_width_at_least_the_sample_count_is_flagged_degenerate():
    wide = cost.estimate(500, 20, [1024, 64], 10)
    assert any("hidden layer 1 (width 1024)" in note and "interpolates" in note for note in wide.notes)
    assert "interpolates" in wide.describe()
    image = cost.estimate(500, 784, [64], 10)
    assert any("the input has 784 features" in note for note in image.notes)
    assert cost.estimate(5000, 20, [64, 64], 10).notes == []


def test_estimate_scales_with_the_work():
    small = cost.estimate(1000, 50, [100, 100], 10)
    more_samples = cost.estimate(4000, 50, [100, 100], 10)
    wider = cost.estimate(1000, 50, [800, 100], 10)
    deeper = cost.estimate(1000, 50, [100, 100, 100, 100], 10)
    assert small.update_seconds < more_samples.update_seconds and small.update_bytes < more_samples.update_bytes
    assert small.update_seconds < wider.update_seconds and small.update_bytes < wider.update_bytes
    # 2 hidden layers: 3 anchor sets; 4 hidden layers: 15, more bases
    assert small.bases_per_update < deeper.bases_per_update


def test_bad_shapes():
    with pytest.raises(ValueError, match="n_samples"):
        cost.estimate(0, 10, [5], 2)
    with pytest.raises(ValueError, match="hidden width"):
        cost.estimate(10, 10, [0], 2)


def test_measuring_the_rates_leaves_the_random_state_alone():
    """Calibrating must not change what the user's seeded training draws."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    cost._rates_cache.clear()
    measured = cost.rates("cpu")
    assert measured.gemm > 0 and measured.eigh3 > 0 and measured.stream > 0
    assert torch.equal(torch.rand(3), expected)
    assert cost.rates("cpu") is measured  # measured once per process
