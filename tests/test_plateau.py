"""The yellow-plateau rule: a pure function over epoch records, noted once per stall."""
from __future__ import annotations

import numpy as np
import pytest

from yeswidget.core.plateau import descending_steadily, find_plateau, plateau_note, plateau_starts
from yeswidget.core.run import EpochRecord
from yeswidget.core.zones import to_db


def records(losses_db, zones=None):
    """Epoch records with these losses (dB), YES-0 at +10 dB and the lower edge at -10 dB."""
    zones = zones or ["yellow"] * len(losses_db)
    return [EpochRecord(epoch=i + 1, loss=10 ** (db / 10), upper=10.0, lower=0.1, zone=zone)
            for i, (db, zone) in enumerate(zip(losses_db, zones, strict=True))]


def test_a_stall_in_yellow_is_a_plateau_and_progress_is_not():
    stalled = records([0.0, -0.1, -0.2, -0.3, -0.2])
    found = find_plateau(stalled, epochs=5, min_improvement_db=0.5)
    assert (found.first, found.last) == (1, 5) and found.improvement_db == pytest.approx(0.3)
    assert "stayed in yellow for 5 epochs (1–5)" in found.text and "learning rate or batch size" in found.text
    assert find_plateau(records([0.0, -0.2, -0.4, -0.6, -0.8]), epochs=5, min_improvement_db=0.5) is None
    assert find_plateau(stalled[:4], epochs=5) is None  # not yet k epochs


def test_only_yellow_epochs_count():
    zones = ["red", "yellow", "yellow", "yellow", "yellow"]
    assert find_plateau(records([0.0] * 5, zones), epochs=5) is None
    assert find_plateau(records([0.0] * 5, zones), epochs=4) is not None
    assert find_plateau(records([-11.0] * 5, ["green"] * 5), epochs=5) is None  # green is never a plateau


def test_one_long_stall_is_noted_once_then_again_after_a_gap():
    flat = records([0.0] * 12)
    notes = [i + 1 for i in range(len(flat)) if plateau_starts(flat[:i + 1], epochs=4) is not None]
    assert notes == [4]
    # progress for 4 epochs, then another stall: a second note
    series = records([0.0] * 4 + [-1.0, -2.0, -3.0, -4.0] + [-4.0] * 4)
    notes = [i + 1 for i in range(len(series)) if plateau_note(series[:i + 1], epochs=4) is not None]
    assert notes == [4, 11]  # epochs 8–11 sat at -4 dB


def test_bad_thresholds_say_what_is_expected():
    with pytest.raises(ValueError, match="epochs must be an int ≥ 2"):
        find_plateau([], epochs=1)
    with pytest.raises(ValueError, match="positive number of dB"):
        find_plateau([], min_improvement_db=0)


def _paper_good_run():
    """The paper's good run (phase retrieval, Adam 1e-3, batch 50, the step schedule, seed 0), trained here."""
    from yeswidget import tasks
    from yeswidget.training import Settings, Trainer
    task = tasks.phase_retrieval()
    settings = Settings.for_task(task, {"optimizer": "adam", "lr": 1e-3, "epochs": 100}, seed=0, every=1)
    return Trainer(task, settings).start(background=False).run


def test_the_papers_good_run_is_never_a_plateau():
    run = _paper_good_run()
    zones = [r.zone for r in run.epochs]
    # the baseline: the run descends on its way to green (more than the rule's 0.5 dB per window)
    assert zones[0] == "red" and "yellow" in zones and zones[-1] == "green"
    yellow = [r for r in run.epochs if r.zone == "yellow"]
    assert len(yellow) >= 10 and to_db(yellow[0].loss) - to_db(yellow[9].loss) < 0.5, \
        "the first 10 yellow epochs improve by < 0.5 dB: the old rule would have called them a plateau"
    assert not any(w.startswith("plateau:") for w in run.warnings), run.warnings
    assert all(find_plateau(run.epochs[:i]) is None for i in range(1, len(run.epochs) + 1))


def test_a_flat_run_in_yellow_gets_the_note_after_ten_epochs():
    rng = np.random.default_rng(0)
    flat = records(list(-1.0 + 0.03 * rng.standard_normal(14)))
    firsts = [i + 1 for i in range(len(flat)) if plateau_note(flat[:i + 1]) is not None]
    assert firsts == [10]
    assert "stayed in yellow for 10 epochs (1–10)" in plateau_note(flat[:10])


def test_a_descent_that_flattens_out_is_a_plateau_and_a_steady_one_is_not():
    steady = [-0.04 * i + 0.01 * (-1) ** i for i in range(10)]  # 0.36 dB in 10 epochs, every epoch lower
    flattening = [-0.4 * (1 - 0.5 ** i) for i in range(10)]     # 0.4 dB, almost all of it in the first epochs
    assert descending_steadily(steady) and not descending_steadily(flattening)
    assert find_plateau(records(steady)) is None
    assert find_plateau(records(flattening)) is not None
    assert not descending_steadily([0.0, 0.01, -0.01, 0.0, 0.02, -0.02])  # noise around a level
