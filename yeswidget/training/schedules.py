"""Learning-rate policies: the LRBench families as one registry of multipliers of the base lr.

Every schedule is a factor of the *base* learning rate for a 0-based epoch ``t`` (so a live
change of the base, the Playground's slider, composes with it): ``lr(t) = base × factor(t)``.
The recipe (:mod:`yeswidget.training.recipe`) re-exports :data:`SCHEDULES`; the Trainer, the
Playground's dropdown, the command line, sweeps and the JS all read it there.

Parameters (from the run's settings): ``T`` = epochs, ``l`` = ``step_size``, ``γ`` = ``gamma``,
``c`` = ``cycle`` (half a period of the cyclic policies), and the fixed constants below
(``LOW``: the cyclic policies' floor as a fraction of the base; ``INV_POWER``, ``POLY_POWER``).

========== ===================================================================================
fixed      1                                   (``constant`` is its old name)
step       γ^⌊t/l⌋                              (PyTorch StepLR stepped once per epoch)
multistep  γ^(number of milestones ≤ t), milestones ⌊T/2⌋ and ⌊3T/4⌋
exp        γ^t
inv        (1 + γ·t)^(−INV_POWER)
poly       (1 − t/T)^POLY_POWER                 (0 from epoch T on)
sigmoid    1 / (1 + e^(γ·(t − l)))              (half the base at epoch l)
cosine     ½·(1 + cos(π·min(t, T)/T))           (to 0 over the run)
triangle   LOW + (1 − LOW)·max(0, 1 − x),  x = |t/c − 2·k + 1|,  cycle k = ⌊1 + t/(2c)⌋
triangle2  LOW + (1 − LOW)·max(0, 1 − x) / 2^(k−1)         (amplitude halved every cycle)
exp_range  LOW + (1 − LOW)·max(0, 1 − x)·γ^t
sin        LOW + (1 − LOW)·|sin(π·t/(2c))|       (period 2c, like triangle)
sin2       LOW + (1 − LOW)·|sin(π·t/(2c))| / 2^(k−1)
sin_exp    LOW + (1 − LOW)·|sin(π·t/(2c))|·γ^t
========== ===================================================================================

``cyclic`` (the old name) is ``triangle``. References: Wu et al., "Demystifying learning rate
policies for high accuracy training of deep neural networks" (LRBench, 2019); Smith, "Cyclical
learning rates for training neural networks" (2017).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SCHEDULES", "ALIASES", "ScheduleParams", "Schedule", "factor", "canonical", "describe",
           "LOW", "INV_POWER", "POLY_POWER"]

#: the cyclic policies' lowest learning rate, as a fraction of the base
LOW = 0.1
#: ``inv``'s power p in (1 + γ·t)^(−p) (Caffe's default)
INV_POWER = 0.75
#: ``poly``'s power p in (1 − t/T)^p
POLY_POWER = 2.0


@dataclass(frozen=True)
class ScheduleParams:
    """What a schedule reads from a run's settings: ``epochs`` T, ``step_size`` l, ``gamma`` γ,
    ``cycle`` c (epochs from the low to the high learning rate)."""

    epochs: int
    step_size: int = 50
    gamma: float = 0.9
    cycle: int = 10


@dataclass(frozen=True)
class Schedule:
    """One family: its ``name``, the ``formula`` in words and ``factor(t, params)``."""

    name: str
    formula: str
    compute: Callable[[int, ScheduleParams], float]

    def factor(self, epoch: int, params: ScheduleParams) -> float:
        return float(self.compute(epoch, params))


def _cycle(t: int, c: int) -> tuple[int, float]:
    """(cycle number k ≥ 1, triangle height 0 … 1) at epoch t for half-period c."""
    k = math.floor(1 + t / (2 * c))
    x = abs(t / c - 2 * k + 1)
    return k, max(0.0, 1.0 - x)


def _sine(t: int, c: int) -> float:
    return abs(math.sin(math.pi * t / (2 * c)))


def _multistep(t: int, p: ScheduleParams) -> float:
    milestones = (p.epochs // 2, (3 * p.epochs) // 4)
    return p.gamma ** sum(1 for m in milestones if t >= m)


def _sigmoid(t: int, p: ScheduleParams) -> float:
    z = p.gamma * (t - p.step_size)
    return 0.0 if z > 700 else 1.0 / (1.0 + math.exp(z))  # e^700 is near float's limit


_FAMILIES = (
    Schedule("fixed", "1", lambda t, p: 1.0),
    Schedule("step", "γ^⌊t/l⌋", lambda t, p: p.gamma ** (t // p.step_size)),
    Schedule("multistep", "γ^(milestones ⌊T/2⌋, ⌊3T/4⌋ passed)", _multistep),
    Schedule("exp", "γ^t", lambda t, p: p.gamma ** t),
    Schedule("inv", f"(1 + γt)^-{INV_POWER:g}", lambda t, p: (1.0 + p.gamma * t) ** -INV_POWER),
    Schedule("poly", f"(1 - t/T)^{POLY_POWER:g}", lambda t, p: max(0.0, 1.0 - t / p.epochs) ** POLY_POWER),
    Schedule("sigmoid", "1 / (1 + e^(γ(t - l)))", _sigmoid),
    Schedule("cosine", "(1 + cos(π min(t, T)/T)) / 2",
             lambda t, p: 0.5 * (1.0 + math.cos(math.pi * min(t, p.epochs) / p.epochs))),
    Schedule("triangle", "triangle between LOW and 1, half-period c",
             lambda t, p: LOW + (1 - LOW) * _cycle(t, p.cycle)[1]),
    Schedule("triangle2", "triangle, amplitude halved every cycle",
             lambda t, p: LOW + (1 - LOW) * _cycle(t, p.cycle)[1] / 2 ** (_cycle(t, p.cycle)[0] - 1)),
    Schedule("exp_range", "triangle, amplitude × γ^t",
             lambda t, p: LOW + (1 - LOW) * _cycle(t, p.cycle)[1] * p.gamma ** t),
    Schedule("sin", "|sin(πt/2c)| between LOW and 1", lambda t, p: LOW + (1 - LOW) * _sine(t, p.cycle)),
    Schedule("sin2", "sine, amplitude halved every cycle",
             lambda t, p: LOW + (1 - LOW) * _sine(t, p.cycle) / 2 ** (_cycle(t, p.cycle)[0] - 1)),
    Schedule("sin_exp", "sine, amplitude × γ^t", lambda t, p: LOW + (1 - LOW) * _sine(t, p.cycle) * p.gamma ** t),
)

#: old names that keep working: they are the same policy as the family they point to
ALIASES: dict[str, str] = {"constant": "fixed", "cyclic": "triangle"}
_BY_NAME: dict[str, Schedule] = {s.name: s for s in _FAMILIES}
#: the schedules the controls offer, one name per family, the old four first (the default stays in
#: view); the LRBench names of the renamed two (``fixed``, ``triangle``) are accepted as well
SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine", "cyclic",
                              *(s.name for s in _FAMILIES if s.name not in ("step", "cosine", *ALIASES.values())))


def canonical(name: str) -> str:
    """The family a schedule name means (``"constant"`` → ``"fixed"``); a clear error if unknown."""
    key = str(name).strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in _BY_NAME:
        raise ValueError(f"schedule must be one of {SCHEDULES}; got {name!r}")
    return key


def factor(name: str, epoch: int, params: ScheduleParams) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch`` under schedule ``name``."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be an int ≥ 0; got {epoch!r}")
    return _BY_NAME[canonical(name)].factor(epoch, params)


def describe(name: str) -> str:
    """``"step: γ^⌊t/l⌋"``: the family's formula in words (for help texts and tooltips)."""
    family = _BY_NAME[canonical(name)]
    return f"{family.name}: {family.formula}"
