"""Sweeps (yeswidget.tuning): rows equal single in-process runs, pruning by verdict, the selection
metrics, the sweep folder. Small tasks and few epochs; two worker processes at most."""
from __future__ import annotations

import math

import pytest
import torch
from tuning_tasks import tiny_abs

import yeswidget
from yeswidget import tasks
from yeswidget.core.run import EpochRecord
from yeswidget.integrations.runlog import load_run
from yeswidget.training import Settings, Trainer
from yeswidget.tuning import LogUniform, PruneRule, Sweep, selection_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GOOD_LR, BAD_LR = 0.03, 0.5  # tiny_abs with Adam: green from epoch 11 / red from epoch 5 on (measured)


def _single(task, **settings) -> yeswidget.Run:
    """One plain in-process Trainer run, the settings written out by hand."""
    trainer = Trainer(task, Settings(**settings))
    trainer.start(background=False)
    return trainer.run


@pytest.fixture(scope="module")
def pruned_sweep(tmp_path_factory):
    """tiny_abs, a good and a diverging lr, 30 epochs, pruning on red, 2 worker processes."""
    return yeswidget.sweep(tiny_abs, lr=(GOOD_LR, BAD_LR), epochs=30, workers=2, prune="red",
                           folder=tmp_path_factory.mktemp("sweep-pruned"))


def test_phase_retrieval_rows_equal_single_in_process_runs(tmp_path):
    """Acceptance 1: 2 lrs × 2 batch sizes in 2 worker processes; each row is the run a single
    in-process Trainer makes with the same settings and seed."""
    result = yeswidget.sweep("phase-retrieval", lr=(1e-3, 3e-3), batch_size=(50, 100), epochs=4, workers=2,
                             prune=None, folder=tmp_path)
    rows = result.results
    assert len(rows) == 4 and {(r["lr"], r["batch_size"]) for r in rows} == {
        (1e-3, 50), (1e-3, 100), (3e-3, 50), (3e-3, 100)}
    task = tasks.phase_retrieval()
    for row in rows:
        # the task's recipe: Adam, StepLR(50, 0.9), seed 0
        run = _single(task, lr=row["lr"], batch_size=row["batch_size"], epochs=4, optimizer="adam",
                      schedule="step", step_size=50, gamma=0.9, seed=0)
        assert row["final_loss"] == pytest.approx(run.final.loss, rel=1e-5)
        logged = load_run(row["run_log"])  # every run has its own run log
        assert [r.zone for r in logged.epochs] == [r.zone for r in run.epochs]
        assert row["final_zone"] == run.final_zone and row["epochs_run"] == 4 and not row["pruned"]
        assert row["first_green"] == run.epochs_to_green
        edge = run.final.upper if run.final.zone == "red" else run.final.lower
        assert (row["margin_upper_db"] if run.final.zone == "red" else row["margin_lower_db"]) == pytest.approx(
            10 * math.log10(run.final.loss / edge), abs=1e-6)
    frame = result.to_pandas()
    assert len(frame) == 4 and list(frame["final_zone"]) == [r["final_zone"] for r in rows]
    again = Sweep.load(tmp_path)
    assert again.results == rows and again.done


def test_diverging_configuration_pruned_green_one_never(pruned_sweep):
    """Acceptance 2: lr 0.5 is stopped before its last epoch, "red after k epochs"; lr 0.03 reaches
    green and runs all 30 epochs. The pruned run is the same run up to where it stopped."""
    good, bad = pruned_sweep.results
    assert bad["lr"] == BAD_LR and bad["pruned"] and bad["epochs_run"] < 30
    k = PruneRule().red_patience(30, 1.0)
    assert bad["prune_reason"] == f"red after {k} epochs" and bad["epochs_run"] == k == 8
    assert bad["final_zone"] == "red" and bad["status"] == "pruned"
    assert good["lr"] == GOOD_LR and not good["pruned"] and good["epochs_run"] == 30
    assert good["first_green"] is not None and good["prune_reason"] == ""
    full = _single(tiny_abs(), lr=BAD_LR, batch_size=16, epochs=30, optimizer="adam", schedule="constant")
    assert [r.zone for r in full.epochs[:k]] == [r.zone for r in load_run(bad["run_log"]).epochs]
    assert bad["final_loss"] == pytest.approx(full.epochs[k - 1].loss, rel=1e-5)
    assert any("pruned by the sweep: red after 8 epochs" in w for w in load_run(bad["run_log"]).warnings)
    assert pruned_sweep.best()["lr"] == GOOD_LR and pruned_sweep.best("cost")["lr"] == GOOD_LR


def _records(zones: str, losses: list[float]) -> list[EpochRecord]:
    return [EpochRecord(epoch=i + 1, loss=loss, upper=10.0, lower=1.0, zone={"r": "red", "y": "yellow",
            "g": "green", "n": "none"}[z]) for i, (z, loss) in enumerate(zip(zones, losses))]


def test_prune_rule_words_and_limits():
    rule = PruneRule("verdict")
    flat = _records("y" * 12, [5.0] * 12)
    assert rule.decide(flat, 100, 1.0).startswith("plateau:")  # the plateau rule's own words
    assert rule.decide(_records("g" * 12, [0.5] * 12), 100, 1.0) is None  # green: never
    assert rule.decide(_records("n" * 40, [50.0] * 40), 100, 1.0) is None  # no verdict: never
    assert PruneRule("red").decide(flat, 100, 1.0) is None  # "red" leaves yellow plateaus alone
    falling = _records("r" * 30, [100.0 * 0.8 ** i for i in range(30)])  # red but falling ≥ 1 dB
    assert rule.decide(falling, 100, 1.0) is None
    assert rule.decide(_records("r" * 25, [50.0] * 25), 100, 1.0) == "red after 25 epochs"
    assert PruneRule().red_patience(3, 1.0) is None  # too short a budget to prune on red
    assert PruneRule().red_patience(100, 40.2) == 41  # a costly restart buys patience
    with pytest.raises(ValueError, match="prune must be one of"):
        PruneRule.of("median")


def test_selection_metrics_sort_by_utility_cost_robustness():
    def row(lr, seed, zone, loss_db, green):
        return {"lr": lr, "batch_size": 16, "schedule": "fixed", "optimizer": "adam", "epochs": 30, "seed": seed,
                "final_zone": zone, "final_loss_db": loss_db, "first_green": green, "seconds_to_green": green}
    rows = [row(1, 0, "green", -3.0, 20), row(1, 1, "green", -9.0, 22),    # best loss, spread 3 dB, slow
            row(2, 0, "green", -4.0, 5), row(2, 1, "green", -4.2, 6),      # fast, steady
            row(3, 0, "green", -1.0, 9), row(3, 1, "yellow", 2.0, None)]   # one seed fails
    assert [r["lr"] for r in selection_table(rows, "utility")] == [1, 2, 3]
    assert [r["lr"] for r in selection_table(rows, "cost")] == [2, 1, 3]
    assert [r["lr"] for r in selection_table(rows, "robustness")] == [2, 1, 3]
    table = {r["lr"]: r for r in selection_table(rows)}
    assert table[1]["robustness_db"] == pytest.approx(3.0) and table[3]["green_fraction"] == 0.5
    assert table[3]["cost_epochs"] == math.inf and table[2]["cost_epochs"] == pytest.approx(5.5)


def test_a_sweep_in_huber_trains_and_judges_every_run_in_huber(tmp_path):
    """loss="huber" reaches the worker processes: each run is trained in Huber and its final loss is
    the Huber loss of the trained model, as torch computes it; the rows and sweep.json say so."""
    result = yeswidget.sweep(tiny_abs, lr=(GOOD_LR,), epochs=3, workers=1, prune=None, loss="huber",
                             folder=tmp_path / "huber")
    (row,) = result.results
    assert row["loss"] == "huber" and Sweep.load(tmp_path / "huber").spec["loss"] == "huber"
    logged = load_run(row["run_log"])
    assert logged.config["loss"] == "HuberLoss(delta=1)" and logged.config["step_loss"]["name"] == "HuberLoss"
    task = tiny_abs()
    trainer = Trainer(task, Settings(lr=GOOD_LR, batch_size=16, epochs=3, optimizer="adam", schedule="constant"),
                      loss="huber")  # the same run here, where its model can be read
    trainer.start(background=False)
    with torch.no_grad():
        huber = torch.nn.HuberLoss()(trainer.model(task.X_train).double(), task.Y_train.double()).item()
    assert trainer.run.final.loss == pytest.approx(huber, rel=1e-6)
    assert row["final_loss"] == pytest.approx(huber, rel=1e-5)
    (squared,) = yeswidget.sweep(tiny_abs, lr=(GOOD_LR,), epochs=3, backend="inline", prune=None,
                                 folder=tmp_path / "mse").results
    assert squared["loss"] == "mse" and load_run(squared["run_log"]).config["loss"] == "squared error"
    assert squared["final_loss"] != pytest.approx(row["final_loss"], rel=1e-2)
    with pytest.raises(ValueError, match="loss must be one of mse, huber, smooth_l1, l1; got 'hinge'"):
        yeswidget.sweep(tiny_abs, loss="hinge", folder=tmp_path / "bad")
    with pytest.raises(ValueError, match="slimtrain solves the last layer in squared error"):
        yeswidget.sweep(tiny_abs, optimizer="slimtrain", loss="l1", folder=tmp_path / "bad")


def test_random_samples_are_reproducible_and_bad_input_is_clear(tmp_path):
    first = yeswidget.sweep(tiny_abs, lr=LogUniform(1e-3, 1e-1), samples=3, epochs=1, backend="inline",
                            folder=tmp_path / "a")
    second = yeswidget.sweep(tiny_abs, lr=LogUniform(1e-3, 1e-1), samples=3, epochs=1, backend="inline",
                             folder=tmp_path / "b")
    lrs = [r["lr"] for r in first.results]
    assert lrs == [r["lr"] for r in second.results] and len(set(lrs)) == 3 and all(1e-3 <= v <= 1e-1 for v in lrs)
    with pytest.raises(ValueError, match="pass samples="):
        yeswidget.sweep(tiny_abs, lr=LogUniform(1e-3, 1e-1), folder=tmp_path / "c")
    with pytest.raises(ValueError, match="backend must be one of"):
        yeswidget.sweep(tiny_abs, backend="slurm", folder=tmp_path / "c")
    with pytest.raises(ValueError, match="schedule must be one of"):
        yeswidget.sweep(tiny_abs, schedule="warmup", folder=tmp_path / "c")
    local = tasks.Task.from_tensors(lambda: tasks.mlp((4, 3)), torch.randn(8, 4), torch.randn(8, 3))
    with pytest.raises(TypeError, match="does not pickle"):
        yeswidget.sweep(local, folder=tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="not a sweep folder"):
        Sweep.load(tmp_path / "nowhere")
