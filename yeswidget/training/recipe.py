"""One recipe for a training run: the settings a person chooses, their defaults, their checks,
and the optimizer and learning-rate schedule registries. No UI.

The CLI's choices, the Playground's controls, the tasks' defaults and the JS front end (through
:func:`recipe_definitions`) all read these; nothing else lists an optimizer or a schedule.

Schedules are multipliers of the *base* learning rate, so a live change of the base (a slider)
composes with the schedule at the next step: ``lr(epoch) = base_lr × factor(epoch)``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from .schedules import SCHEDULES, ScheduleParams, canonical, factor
from .slimtrain import SlimTrain, feature_parameters

__all__ = ["Settings", "OPTIMIZERS", "SCHEDULES", "SETTINGS_KEYS", "RECIPE_KEYS", "RECIPE_DEFAULTS", "LR_RANGE",
           "check_lr", "make_optimizer", "schedule_factor", "batch_size_options", "recipe_definitions"]

def _slimtrain(model: nn.Module, lr: float) -> SlimTrain:
    # Adam on the feature extractor, the last layer solved in closed form; the loss is the
    # Trainer's summed squared error, as for adam and sgd
    return SlimTrain(model, torch.optim.Adam(feature_parameters(model), lr=lr), reduction="sum")


#: optimizer name → how it is built over a model at learning rate ``lr``
_OPTIMIZER_FACTORIES: dict[str, Callable[[nn.Module, float], torch.optim.Optimizer | SlimTrain]] = {
    "adam": lambda model, lr: torch.optim.Adam(model.parameters(), lr=lr),
    "sgd": lambda model, lr: torch.optim.SGD(model.parameters(), lr=lr),
    "slimtrain": _slimtrain,
}
#: the optimizers a run can use, in the order the controls show them
OPTIMIZERS: tuple[str, ...] = tuple(_OPTIMIZER_FACTORIES)


#: the settings a person sets for a run (the Playground's controls, a row of the runs table, the CLI)
SETTINGS_KEYS = ("lr", "batch_size", "epochs", "optimizer", "schedule", "seed")
#: the keys of a task's recipe (``Task.defaults``): what a trainer reads from a task
RECIPE_KEYS = ("lr", "batch_size", "epochs", "optimizer", "schedule", "step_size", "gamma")
#: the learning rates the sliders offer by default (they widen for a value outside)
LR_RANGE = (1e-5, 1.0)


def check_lr(lr: Any) -> float:
    """``lr`` as a float, or a ``ValueError`` saying what a learning rate must be."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(float(lr)) and float(lr) > 0):
        raise ValueError(f"lr must be a positive finite number; got {lr!r}")
    return float(lr)


@dataclass
class Settings:
    """One run's recipe. ``schedule``: one of :data:`SCHEDULES` (the LRBench families, formulas in
    :mod:`.schedules`), e.g. constant, step (×gamma every ``step_size`` epochs, the paper's StepLR),
    cosine (to 0 over the run) or cyclic (triangular between 0.1× and 1× the base, period
    ``2·cycle`` epochs). ``shuffle``: reshuffle the minibatches every epoch (False:
    the published scripts' protocol). :meth:`for_task` fills it from a task's own recipe."""

    lr: float = 1e-3
    batch_size: int = 50
    epochs: int = 200
    optimizer: str = "adam"
    schedule: str = "step"
    seed: int = 0
    step_size: int = 50
    gamma: float = 0.9
    cycle: int = 10
    every: Any = "auto"
    shuffle: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_lr(self.lr)
        for name in ("batch_size", "epochs", "step_size", "cycle"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int ≥ 1; got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int ≥ 0; got {self.seed!r}")
        if not isinstance(self.shuffle, bool):
            raise ValueError(f"shuffle must be True or False; got {self.shuffle!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {self.optimizer!r}")
        canonical(self.schedule)  # a clear error naming SCHEDULES for an unknown one
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1]; got {self.gamma!r}")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def for_task(cls, task: Any, given: Mapping[str, Any] | None = None, **extra: Any) -> Settings:
        """The task's own recipe (``task.defaults``), ``given`` values (None: not given) overriding,
        ``extra`` (``seed``, ``every``, ``shuffle``, …) added."""
        recipe = complete_recipe(getattr(task, "defaults", None) or {})
        recipe.update({k: v for k, v in (given or {}).items() if v is not None})
        return cls(**{k: recipe[k] for k in RECIPE_KEYS}, **extra)


#: a task's recipe where it says nothing (the defaults of :class:`Settings`)
RECIPE_DEFAULTS: dict[str, Any] = {k: getattr(Settings(), k) for k in RECIPE_KEYS}


def complete_recipe(given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` (a task's recipe, maybe partial) with every :data:`RECIPE_KEYS` filled and checked."""
    unknown = set(given) - set(RECIPE_KEYS) - {"cycle", "seed", "shuffle", "every"}
    recipe = {**RECIPE_DEFAULTS, **dict(given)}
    for key in ("batch_size", "epochs", "step_size"):
        value = recipe[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{key} must be a positive integer; got {value!r}")
        recipe[key] = int(value)
    recipe["lr"] = check_lr(recipe["lr"])
    recipe["optimizer"] = str(recipe["optimizer"]).lower()
    recipe["schedule"] = str(recipe["schedule"]).lower()
    if recipe["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {given.get('optimizer')!r}")
    canonical(recipe["schedule"])  # a clear error naming SCHEDULES for an unknown one
    recipe["gamma"] = float(recipe["gamma"])
    if unknown:
        recipe.update({k: given[k] for k in unknown})  # a task may carry more (kept, not read)
    return recipe


def schedule_factor(settings: Settings, epoch: int) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch`` (the formulas: :mod:`.schedules`)."""
    params = ScheduleParams(settings.epochs, settings.step_size, settings.gamma, settings.cycle)
    return factor(settings.schedule, epoch, params)


def make_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer | SlimTrain:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) over ``model``'s parameters at learning rate
    ``lr``; ``"slimtrain"`` is a :class:`~yeswidget.training.slimtrain.SlimTrain` (its ``optimizer``: Adam)."""
    if name not in _OPTIMIZER_FACTORIES:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {name!r}")
    return _OPTIMIZER_FACTORIES[name](model, lr)


def batch_size_options(n_samples: int) -> list[int]:
    """Powers of two and the paper's 20/50/100/500, clamped to the number of samples."""
    sizes = {2 ** k for k in range(0, 16)} | {20, 50, 100, 500}
    options = sorted(s for s in sizes if s <= n_samples)
    if n_samples not in options:
        options.append(n_samples)
    return options


def recipe_definitions() -> dict[str, Any]:
    """The recipe's names as plain JSON (what a front end is sent): optimizers, schedules, the
    settings keys, the defaults and the learning-rate range."""
    return {"optimizers": list(OPTIMIZERS), "schedules": list(SCHEDULES), "settings_keys": list(SETTINGS_KEYS),
            "defaults": dict(RECIPE_DEFAULTS), "lr_range": list(LR_RANGE)}
