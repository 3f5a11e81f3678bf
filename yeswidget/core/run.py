"""The run record and the events a monitor streams: plain data, no torch, no UI.

One :class:`Run` holds everything a training run produced (the *store*); charts,
tables and printers subscribe to :class:`StepEvent` / :class:`EpochEvent` /
:class:`StatusEvent` and never own the data (the *displays*).

Units: every loss and bound is the metric E of YES-BOUNDS.md, squared error
summed over outputs and averaged over samples (``MSELoss(reduction="sum") / N``).
Minibatch losses in ``Run.step_losses`` are in whatever unit the user's loop
logged them (they are drawn, never judged).
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any

from .formats import lr_change_text, lr_text
from .persist import decode, encode, is_run_log, read_log
from .schema import MAX_NESTING, RUN_STATUSES, SchemaError, check_run_fields, nesting_depth
from .zones import ZONES, to_db

__all__ = [
    "EpochRecord",
    "Run",
    "StepEvent",
    "EpochEvent",
    "EpochPending",
    "StatusEvent",
    "RUN_STATUSES",
    "ZONES",
    "to_db",
    "change_text",
    "SchemaError",
]

#: the largest ``Run.to_json`` text :meth:`Run.from_json` reads (characters)
MAX_RUN_JSON = 256 * 2**20


@dataclass
class EpochRecord:
    """One epoch of a run: the epoch loss, the cloud edges and the verdict.

    ``epoch`` counts completed epochs (1 after the first). ``loss``, ``upper``
    (YES-0), ``lower`` (the lower edge, YES-(L-1) so far) and ``yes_k``
    (YES-1 … YES-(L-1) so far) are in the metric E. ``bounds_updated`` says
    whether the YES-k bounds were recomputed at this epoch (see ``every``).
    ``accuracy``: classification accuracy on the certification set (classifiers only);
    ``val_loss`` / ``val_accuracy``: the same on held-out data (never judged);
    ``reason``: why the zone says what it says when the plain rule would mislead
    (no verdict, at the optimum, an edge from an earlier epoch). ``extra``: the loop's own readings noted
    during the epoch (``Monitor.note``), e.g. ``{"regularization": λ}`` of slimTrain's last layer.
    ``edge_epoch``: the epoch whose YES-k edge judged this one (``epoch`` itself when the
    bounds were recomputed here; earlier when the cadence or the cost budget kept an older
    edge; None before the first update).
    """

    epoch: int
    loss: float
    upper: float
    lower: float
    zone: str
    yes_k: list[float] = field(default_factory=list)
    bounds_updated: bool = True
    lr: float | None = None
    batch_size: int | None = None
    step: int = 0
    wall_time: float = 0.0
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    reason: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    edge_epoch: int | None = None

    @property
    def margin(self) -> float:
        """Distance in dB from the loss to the next better zone's edge (positive: above it)."""
        edge = self.upper if self.zone == "red" else self.lower
        return to_db(self.loss) - to_db(edge)


@dataclass(frozen=True)
class StepEvent:
    """One or more optimizer steps (batched so the training loop never waits).

    ``positions`` are fractional epochs (0.5 = half-way through the first epoch),
    ``losses`` the minibatch losses as logged (NaN where a step logged none).
    """

    run_id: str
    first_step: int
    positions: tuple[float, ...]
    losses: tuple[float, ...]
    lr: float | None = None
    batch_size: int | None = None


@dataclass(frozen=True)
class EpochEvent:
    """An epoch finished and its bounds are known (events arrive in epoch order)."""

    run_id: str
    record: EpochRecord
    epochs_total: int | None = None

    def __getattr__(self, name: str) -> Any:
        # epoch, loss, upper, lower, zone, yes_k, lr, batch_size, wall_time
        # read straight through to the record
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.record, name)


@dataclass(frozen=True)
class EpochPending:
    """An epoch ended (``epoch_end()`` ran) and its bounds are being computed: its loss and
    settings (``record``: EpochRecord fields without ``upper``/``lower``/``zone``). Given to the
    run store's durable sinks (the run log) only, never published to subscribers."""

    run_id: str
    record: dict[str, Any]


@dataclass(frozen=True)
class StatusEvent:
    """The run's status changed (``running`` → ``finished`` / ``stopped`` / ``diverged`` / ``failed``).

    ``message`` is a one-line reason; ``traceback`` the last frames for a failure.
    """

    run_id: str
    status: str
    message: str = ""
    traceback: str = ""


def change_text(mark: dict[str, Any]) -> str:
    """Words for a ``Run.marks`` entry, short enough for a run's name in a table:
    ``lr 1e-03→3e-02 @ 47`` (what, from → to, after how many whole epochs)."""
    kind = str(mark.get("kind", "mark"))
    name = {"lr": "lr", "batch_size": "batch"}.get(kind, kind.replace("_", " "))

    def shown(value: Any) -> str:
        return lr_change_text(value) if kind == "lr" else str(value)

    value, previous = mark.get("value"), mark.get("previous")
    text = f"{name} {shown(previous)}→{shown(value)}" if previous is not None else f"{name} → {shown(value)}"
    position = mark.get("position")
    if isinstance(position, numbers.Real) and math.isfinite(position):
        text += f" @ {int(float(position))}"
    return text


@dataclass
class Run:
    """Everything one training run produced.

    ``config`` holds the settings (lr, batch_size, epochs, optimizer, …);
    ``epochs`` the :class:`EpochRecord` list; ``step_losses`` and
    ``step_positions`` every logged minibatch loss at its fractional epoch;
    ``marks`` things that happened mid-run (``{"position", "kind", "value"}``,
    e.g. a batch-size change); ``certification`` which samples the bounds and
    the epoch loss were computed on; ``layer_errors`` the per-layer YES-0 errors.
    """

    run_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    depth: int = 0
    upper: float = math.nan
    layer_errors: list[float] = field(default_factory=list)
    certification: dict[str, Any] = field(default_factory=dict)
    epochs: list[EpochRecord] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    step_positions: list[float] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    status: str = "running"
    message: str = ""
    traceback: str = ""
    warnings: list[str] = field(default_factory=list)

    # ---- derived readings -------------------------------------------------
    @property
    def final(self) -> EpochRecord | None:
        """The last epoch record, or None before the first epoch."""
        return self.epochs[-1] if self.epochs else None

    @property
    def final_zone(self) -> str | None:
        return self.epochs[-1].zone if self.epochs else None

    @property
    def epochs_to_green(self) -> int | None:
        """The first epoch whose zone is green, or None if it never was."""
        for record in self.epochs:
            if record.zone == "green":
                return record.epoch
        return None

    @property
    def label(self) -> str:
        """Short human label from the config, e.g. ``lr 1e-03 · batch 50 · adam`` (``run 3 · lr …`` with a ``name``)."""
        parts = []
        if self.config.get("name"):  # a name given by whoever made the run, e.g. the Playground's "run 3"
            parts.append(str(self.config["name"]))
        # a monitor's config holds None for what it does not know (no optimizer given)
        if isinstance(self.config.get("lr"), numbers.Real):
            parts.append(f"lr {lr_text(self.config['lr'])}")
        if self.config.get("batch_size") is not None:
            parts.append(f"batch {self.config['batch_size']}")
        if self.config.get("optimizer") is not None:
            parts.append(str(self.config["optimizer"]))
        # live changes are part of the run: "lr 1.0e-03 → 6.6e-03 @ 1.50"
        parts.extend(change_text(m) for m in self.marks if m.get("kind") in ("lr", "batch_size"))
        return " · ".join(parts) or self.run_id

    # ---- serialisation ----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return dict(encode(data))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        """A run from :meth:`to_dict`'s form; every field is type-checked (:mod:`.schema`): a wrong
        value is a :class:`SchemaError` (a ValueError) naming the field."""
        if not isinstance(data, dict):
            raise SchemaError(f"not a yeswidget run record: expected an object; got {type(data).__name__}")
        if nesting_depth(data) > MAX_NESTING:
            raise SchemaError(f"not a yeswidget run record: it nests deeper than {MAX_NESTING} levels")
        checked = check_run_fields(decode(dict(data)))
        if "epochs" in checked:
            checked["epochs"] = [EpochRecord(**record) for record in checked["epochs"]]
        return cls(**checked)

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the run as strict JSON (no NaN literals) to ``path``; return the text."""
        text = json.dumps(self.to_dict(), allow_nan=False, indent=1)
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str | os.PathLike[str]) -> Run:
        """Read a run written by :meth:`to_json` (a path, or the JSON text itself) or a run log's path."""
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            with open(path_or_text, "rb") as handle:
                if is_run_log(handle.read(64), path_or_text):  # a run log (JSON lines), read line by line
                    run: Run = read_log(path_or_text)
                    return run
                handle.seek(0)
                raw = handle.read(MAX_RUN_JSON + 1)
            text = raw.decode("utf-8")
        if len(text) > MAX_RUN_JSON:
            raise ValueError(f"not a yeswidget run record: {len(text)} characters, more than the limit of "
                             f"{MAX_RUN_JSON} (a long run belongs in a run log, which is read line by line)")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a yeswidget run record (invalid JSON: {exc})") from None
        except RecursionError:
            raise ValueError("not a yeswidget run record: it nests too deeply to read") from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise ValueError(f"not a yeswidget run record: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("not a yeswidget run record: expected a JSON object")
        return cls.from_dict(data)
