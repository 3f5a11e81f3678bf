"""The LR policy registry (yeswidget.training.schedules, read through the recipe): each LRBench
family's formula against values computed by hand (in the comments) at three epochs; the old names;
the Trainer uses the registry."""
from __future__ import annotations

import pytest

from yeswidget.training import Settings, schedule_factor
from yeswidget.training.schedules import ALIASES, SCHEDULES, ScheduleParams, canonical, describe, factor

#: T = 4 epochs, l = 2, γ = 0.5, c = 1 (the cyclic families use c = 2 where noted)
P = ScheduleParams(epochs=4, step_size=2, gamma=0.5, cycle=1)
P2 = ScheduleParams(epochs=4, step_size=2, gamma=0.5, cycle=2)

CASES = [
    ("fixed", P, (1, 2, 3), (1.0, 1.0, 1.0)),
    ("step", P, (1, 2, 3), (1.0, 0.5, 0.5)),                      # 0.5^⌊t/2⌋
    ("multistep", P, (1, 2, 3), (1.0, 0.5, 0.25)),                # milestones 2 and 3
    ("exp", P, (1, 2, 3), (0.5, 0.25, 0.125)),                    # 0.5^t
    ("inv", P, (1, 2, 3), (0.737788, 0.594604, 0.502973)),        # (1 + t/2)^-0.75
    ("poly", P, (1, 2, 3), (0.5625, 0.25, 0.0625)),               # (1 - t/4)^2
    ("sigmoid", P, (1, 2, 3), (0.622459, 0.5, 0.377541)),         # 1/(1 + e^(0.5(t-2)))
    ("cosine", P, (1, 2, 3), (0.853553, 0.5, 0.146447)),          # (1 + cos(πt/4))/2
    ("triangle", P, (1, 2, 3), (1.0, 0.1, 1.0)),                  # peak at odd t, floor 0.1 at even t
    ("triangle2", P, (1, 2, 3), (1.0, 0.1, 0.55)),                # second cycle: 0.1 + 0.9/2
    ("exp_range", P, (1, 2, 3), (0.55, 0.1, 0.2125)),             # 0.1 + 0.9·0.5^t at the peaks
    ("sin", P2, (1, 2, 3), (0.736396, 1.0, 0.736396)),            # 0.1 + 0.9|sin(πt/4)|
    ("sin2", P2, (2, 5, 6), (1.0, 0.418198, 0.55)),               # cycle 2 from t = 4: amplitude / 2
    ("sin_exp", P2, (1, 2, 3), (0.418198, 0.325, 0.179550)),      # 0.1 + 0.9|sin(πt/4)|·0.5^t
]


def test_every_family_has_a_hand_computed_case():
    families = {canonical(name) for name in SCHEDULES}
    assert families == {name for name, *_ in CASES}


@pytest.mark.parametrize("name, params, epochs, expected", CASES, ids=[c[0] for c in CASES])
def test_family_formula_at_three_epochs(name, params, epochs, expected):
    got = [factor(name, t, params) for t in epochs]
    assert got == pytest.approx(list(expected), abs=1e-6)


def test_old_names_are_the_same_policies():
    assert ALIASES == {"constant": "fixed", "cyclic": "triangle"}
    for old, new in ALIASES.items():
        assert [factor(old, t, P) for t in range(6)] == [factor(new, t, P) for t in range(6)]
    assert SCHEDULES[:4] == ("constant", "step", "cosine", "cyclic")
    assert len({canonical(name) for name in SCHEDULES}) == len(SCHEDULES) == 14  # one name per family listed
    assert Settings(schedule="fixed").schedule == "fixed" and Settings(schedule="triangle").schedule == "triangle"
    assert "step" in describe("step") and "γ" in describe("step")


def test_unknown_schedule_is_a_clear_error():
    with pytest.raises(ValueError, match="schedule must be one of"):
        factor("warmup", 0, P)
    with pytest.raises(ValueError, match="schedule must be one of"):
        Settings(schedule="warmup")
    with pytest.raises(ValueError, match="epoch must be an int"):
        factor("step", -1, P)


def test_the_trainer_reads_the_registry():
    s = Settings(lr=0.1, epochs=4, step_size=2, gamma=0.5, cycle=1, schedule="exp_range")
    assert [schedule_factor(s, t) for t in (1, 2, 3)] == pytest.approx([0.55, 0.1, 0.2125])
