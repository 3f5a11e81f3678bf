"""backend="ray": the same grid as Ray Tune trials on a local Ray, pruned by YesStopper; the
same rows as the process backend."""
from __future__ import annotations

import pytest
from tuning_tasks import tiny_abs

import yeswidget

pytest.importorskip("ray.tune", reason='Ray Tune is an optional extra: pip install "yeswidget[ray]"')

#: what differs between two runs of the same configuration: time and where files are
_TIMING = {"wall_seconds", "seconds_to_green", "run_log", "worker_seconds", "status"}


@pytest.fixture(scope="module")
def local_ray():
    """A lean local Ray (2 CPUs, no dashboard, no usage report, no log forwarding), started once;
    the sweep uses an initialised Ray as it is, as it would a cluster's."""
    import ray

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            yield ray
        finally:
            ray.shutdown()


def _same_rows(mine, theirs):
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        assert {k: v for k, v in a.items() if k not in _TIMING} == {k: v for k, v in b.items() if k not in _TIMING}


def test_ray_tune_runs_the_same_grid_with_the_same_rows(tmp_path, local_ray):
    kwargs = dict(lr=(0.03, 0.5), epochs=12, workers=2, prune="red")  # the fewest epochs that reach green
    local = yeswidget.sweep(tiny_abs, **kwargs, folder=tmp_path / "processes")
    tuned = yeswidget.sweep(tiny_abs, **kwargs, backend="ray", folder=tmp_path / "ray")
    assert len(tuned.results) == 2
    _same_rows(local.results, tuned.results)
    good, bad = tuned.results
    assert bad["pruned"] and bad["prune_reason"] == "red after 5 epochs" and bad["status"] == "pruned"
    assert bad["epochs_run"] == 5 < kwargs["epochs"]
    assert not good["pruned"] and good["first_green"] is not None and good["epochs_run"] == 12


def test_ray_trials_train_and_judge_in_the_loss_asked_for(tmp_path, local_ray):
    kwargs = dict(lr=(0.03,), epochs=2, workers=1, loss="l1")
    here = yeswidget.sweep(tiny_abs, **kwargs, backend="inline", folder=tmp_path / "inline")
    tuned = yeswidget.sweep(tiny_abs, **kwargs, backend="ray", folder=tmp_path / "ray")
    _same_rows(here.results, tuned.results)
    (row,) = tuned.results
    assert row["loss"] == "l1" and tuned.run(row).config["loss"] == "L1Loss"
