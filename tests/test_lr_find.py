"""yeswidget.lr_find: the zone-aware learning-rate range test, checked against a small grid of
short constant-lr runs trained here in a plain torch loop (the independent reasoning)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

import yeswidget  # noqa: E402
from yeswidget.engine.bounds import yes0_bound  # noqa: E402
from yeswidget.training import tasks  # noqa: E402

#: half a decade apart, the range the Playground's slider offers around the paper's 1e-3
GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


@pytest.fixture(scope="module")
def phase():
    task = tasks.phase_retrieval()
    return task, yeswidget.lr_find(task)


def _steps_to_leave_red(task, lr, steps, yes0):
    """Plain Adam at a constant lr from the task's seed-0 weights: the first step whose training-set
    loss E is below YES-0 (None: still red after ``steps``), and the loss then."""
    model = task.model(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    X, Y = task.X_train, task.Y_train
    generator = torch.Generator().manual_seed(1)
    for step in range(1, steps + 1):
        index = torch.randperm(X.shape[0], generator=generator)[:50]
        optimizer.zero_grad()
        (model(X[index]) - Y[index]).square().sum().backward()
        optimizer.step()
        with torch.no_grad():
            loss = float((model(X) - Y).square().sum() / X.shape[0])
        if loss < yes0:
            return step, loss
    return None, loss


def test_the_suggested_range_brackets_the_lr_a_grid_of_short_runs_finds_fastest_to_leave_red(phase):
    task, result = phase
    yes0 = yes0_bound(task.X_train, task.Y_train, depth=5)  # 4 hidden ReLU layers, then Linear
    assert result.upper == pytest.approx(yes0, rel=1e-9)
    assert result.initial_loss > yes0 and result.zones()[0] == "red"
    steps = len(result.lrs)  # the grid's runs are as long as the range test
    outcome = {lr: _steps_to_leave_red(task, lr, steps, yes0) for lr in GRID}
    left = {lr: s for lr, (s, _) in outcome.items() if s is not None}
    assert left, outcome  # some constant lr leaves red within the test's length
    fastest = min(left, key=lambda lr: (left[lr], outcome[lr][1]))
    lo, hi = result.range
    print(f"range {lo:.2e} … {hi:.2e}, suggested {result.suggested:.2e}; grid steps to leave red: {outcome}")
    assert lo <= fastest <= hi and lo <= result.suggested <= hi
    assert hi / lo < 10  # a range, not the whole sweep
    slowest = [lr for lr in GRID if lr not in left or left[lr] > 1.5 * left[fastest]]
    assert slowest and not any(lo <= lr <= hi for lr in slowest)  # the clearly slower ones are outside


def test_a_model_is_copied_not_trained_and_the_drawing_shows_the_cloud(phase):
    task, _ = phase
    model = task.model(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = yeswidget.lr_find(model, task.X_train, task.Y_train, steps=20, lr_min=1e-4, lr_max=1e-2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(result.lrs) == 20 and result.lrs[0] == pytest.approx(1e-4) and result.lrs[-1] == pytest.approx(1e-2)
    assert result.config["optimizer"] == "adam" and result.config["batch_size"] == 50
    ax = result.plot()
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate"
    labels = ax.get_legend_handles_labels()[1]
    assert "red: above YES-0" in labels and "leaves red fastest" in labels
    assert ax.get_ylim()[0] < 10 * torch.log10(torch.tensor(result.upper)).item() < ax.get_ylim()[1]


def test_bad_input_says_what_to_give(phase):
    task, _ = phase
    model = task.model(0)
    with pytest.raises(ValueError, match="give the training inputs X and targets Y"):
        yeswidget.lr_find(model)
    with pytest.raises(ValueError, match="lr_min < lr_max"):
        yeswidget.lr_find(task, lr_min=1e-1, lr_max=1e-3)
    with pytest.raises(ValueError, match="steps must be an int"):
        yeswidget.lr_find(task, steps=2)
    with pytest.raises(TypeError, match="needs a Task or an nn.Module"):
        yeswidget.lr_find("phase retrieval")
