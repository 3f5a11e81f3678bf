"""What a sweep runs: the configurations of a grid, or random samples of ranges.

A value given as a list or tuple is a grid axis; a :class:`LogUniform` / :class:`Uniform`
range is sampled ``samples`` times (seeded, so the same call gives the same configurations).
"""
from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Config", "LogUniform", "Uniform", "expand", "AXES"]

#: the settings a sweep varies, in the order rows list them
AXES = ("lr", "batch_size", "schedule", "optimizer", "seed")


@dataclass(frozen=True)
class LogUniform:
    """A range sampled uniformly in log space (learning rates): ``low`` < ``high``, both > 0."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (0 < self.low < self.high and math.isfinite(self.high)):
            raise ValueError(f"LogUniform needs 0 < low < high; got low={self.low!r}, high={self.high!r}")

    def sample(self, rng: random.Random) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class Uniform:
    """A range sampled uniformly; ``integer=True`` rounds (batch sizes)."""

    low: float
    high: float
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"Uniform needs low < high; got low={self.low!r}, high={self.high!r}")

    def sample(self, rng: random.Random) -> float | int:
        value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.integer else float(value)


@dataclass(frozen=True)
class Config:
    """One run of a sweep: the settings it varies (the rest are the task's recipe)."""

    lr: float
    batch_size: int
    schedule: str
    optimizer: str
    seed: int
    epochs: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def key(self) -> tuple[Any, ...]:
        """The settings without the seed: runs with the same key differ only by seed."""
        return (self.lr, self.batch_size, self.schedule, self.optimizer, self.epochs)


def _axis(name: str, value: Any) -> list[Any] | LogUniform | Uniform:
    if isinstance(value, (LogUniform, Uniform)):
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value]
    if len(value) == 0:
        raise ValueError(f"{name} lists no values; give at least one (or a LogUniform/Uniform range)")
    return list(value)


def expand(axes: dict[str, Any], epochs: int, *, samples: int | None = None, sample_seed: int = 0) -> list[Config]:
    """The configurations: every combination of the listed values, repeated for each seed; with
    ranges, ``samples`` random draws (each combined with every listed value and seed)."""
    resolved = {name: _axis(name, axes[name]) for name in AXES}
    ranges = [name for name, value in resolved.items() if not isinstance(value, list)]
    if ranges and (samples is None or samples < 1):
        raise ValueError(f"{', '.join(ranges)} {'is a range' if len(ranges) == 1 else 'are ranges'}: "
                         "pass samples=<number of random draws> to sample it")
    if "seed" in ranges:
        raise ValueError("seeds must be listed (e.g. seeds=(0, 1, 2)), not a range")
    rng = random.Random(sample_seed)
    draws: list[dict[str, Any]] = [{}]
    if ranges:
        assert samples is not None
        draws = [{name: resolved[name].sample(rng) for name in ranges}  # type: ignore[union-attr]
                 for _ in range(samples)]
    listed = [name for name in AXES if name not in ranges]
    configs = []
    for draw in draws:
        values = [resolved[name] for name in listed]
        for combination in itertools.product(*values):  # type: ignore[arg-type]
            chosen = dict(zip(listed, combination), **draw)
            configs.append(Config(lr=float(chosen["lr"]), batch_size=int(chosen["batch_size"]),
                                  schedule=str(chosen["schedule"]), optimizer=str(chosen["optimizer"]),
                                  seed=int(chosen["seed"]), epochs=int(epochs)))
    return configs
