"""backend="ray": the same grid as Ray Tune trials on a local Ray, pruned by YesStopper; the
same rows as the process backend."""
from __future__ import annotations

import pytest
from tuning_tasks import tiny_abs

import yeswidget

pytest.importorskip("ray.tune", reason='Ray Tune is an optional extra: pip install "yeswidget[ray]"')

#: what differs between two runs of the same configuration: time and where files are
_TIMING = {"wall_seconds", "seconds_to_green", "run_log", "worker_seconds", "status"}


def test_ray_tune_runs_the_same_grid_with_the_same_rows(tmp_path):
    import ray

    kwargs = dict(lr=(0.03, 0.5), epochs=30, workers=2, prune="red")
    local = yeswidget.sweep(tiny_abs, **kwargs, folder=tmp_path / "processes")
    try:
        tuned = yeswidget.sweep(tiny_abs, **kwargs, backend="ray", folder=tmp_path / "ray")
    finally:
        ray.shutdown()
    assert len(tuned.results) == 2
    for mine, theirs in zip(local.results, tuned.results):
        assert {k: v for k, v in mine.items() if k not in _TIMING} == {
            k: v for k, v in theirs.items() if k not in _TIMING}
    good, bad = tuned.results
    assert bad["pruned"] and bad["prune_reason"] == "red after 8 epochs" and bad["status"] == "pruned"
    assert not good["pruned"] and good["first_green"] is not None
