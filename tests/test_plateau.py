"""The yellow-plateau rule: a pure function over epoch records, noted once per stall."""
from __future__ import annotations

import pytest

from yeswidget.core.plateau import find_plateau, plateau_note, plateau_starts
from yeswidget.core.run import EpochRecord


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
