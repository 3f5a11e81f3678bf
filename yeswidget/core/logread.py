"""Reading a run log back: streaming, linear in its length, tolerant of damage, strict on values.

The file is read one line at a time (never whole), so memory follows the run, not the
file. A line that is not JSON (torn by a crash or a full disk, garbage, NUL bytes from a
crash before the file system wrote the data) or longer than :data:`MAX_LINE_BYTES` is
*damage*: it is skipped, and the loaded run gets a note and a :class:`RunLogWarning`
naming it; everything else is recovered. A line that is JSON but holds a wrong value
(a type, a range, nesting beyond :data:`~yeswidget.core.schema.MAX_NESTING` levels, an
integer of more than 4300 digits) is not damage but a bad file: a ``ValueError`` naming
the line and the field.

The public reader is ``yeswidget.load_run`` (and :func:`yeswidget.core.persist.read_log`, which
``Run.from_json`` uses on a run log); ``import yeswidget`` plugs this module in there.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .persist import LOG_FORMAT, LOG_VERSION, READABLE_VERSIONS, RunLogWarning, decode, is_run_log
from .run import EpochRecord, Run
from .schema import SchemaError, check_record, check_run_fields, check_value

__all__ = ["load_run", "load_runs", "read_with_damage", "RunLogWarning", "LOG_FORMAT", "LOG_VERSION",
           "READABLE_VERSIONS", "MAX_LINE_BYTES", "PENDING_REASON"]

#: a longer line is skipped as damage (memory stays bounded whatever the file holds)
MAX_LINE_BYTES = 16 * 2**20
#: the reason of an epoch whose bounds never reached the log
PENDING_REASON = "no verdict: the log ends before this epoch's bounds were written (the process ended first)"
_LISTED = 5  # damaged lines named one by one in the note


def _lines(path: Path) -> Iterator[tuple[int, bytes | None, bool]]:
    """``(number, line, ends with a newline)``; ``None`` for a line longer than the limit (skipped unread)."""
    with open(path, "rb") as handle:
        number = 0
        while True:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # the rest of the over-long line, in bounded pieces
                    raw = handle.readline(2**20)
                yield number, None, True
                continue
            yield number, raw, raw.endswith(b"\n")


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.run: Run | None = None
        self.header_damaged = False
        self.version = 1
        self.pending: dict[int, dict[str, Any]] = {}
        self.damaged: list[str] = []
        self.entries = 0

    def damage(self, number: int, why: str) -> None:
        self.damaged.append(f"line {number}: {why}")
        if number == 1:
            self.header_damaged = True

    def line(self, number: int, raw: bytes | None, complete: bool) -> None:
        if raw is None:
            return self.damage(number, f"longer than {MAX_LINE_BYTES // 2**20} MiB")
        text = raw.strip(b"\x00 \t\r\n")
        if not text:
            if b"\x00" in raw:
                self.damage(number, "NUL bytes only (a crash before the file system wrote the data)")
            return None
        try:
            entry = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self.damage(number, "cut short (the process ended mid-write)" if not complete
                               else "not JSON (torn by a crash or a full disk, or not written by yeswidget)")
        except RecursionError:
            raise ValueError(f"line {number}: nests too deeply to read (a run log nests a few levels)") from None
        except ValueError as exc:  # an integer of more than 4300 digits
            raise ValueError(f"line {number}: {exc}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            return self.damage(number, "not a run-log entry (an object with a 'kind')")
        if b"\x00" in raw:
            self.damage(number, "NUL bytes before the entry (ignored; the entry was read)")
        try:
            self.entry(number, entry, tagged=b"$float" in text)
        except (SchemaError, KeyError, TypeError) as exc:
            detail = f"lacks {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"line {number} ({entry.get('kind')!r} entry): {detail}") from None
        return None

    def entry(self, number: int, entry: dict[str, Any], tagged: bool = True) -> None:
        kind = entry["kind"]
        if self.run is None:
            self.begin(number, entry)
            if kind == "header":
                return
        self.entries += 1
        if tagged:  # a non-finite float somewhere in the line (most lines have none)
            entry = decode(entry)
        run = self.run
        assert run is not None
        if kind == "steps":
            first = check_value("count", "first", entry["first"])
            losses = check_value("numbers", "losses", entry["losses"])
            positions = check_value("numbers", "positions", entry["positions"])
            if len(losses) != len(positions):
                raise SchemaError(f"{len(losses)} losses but {len(positions)} positions")
            del run.step_losses[first:], run.step_positions[first:]
            run.step_losses.extend(losses)
            run.step_positions.extend(positions)
        elif kind == "pending":
            given = entry["record"]
            if not isinstance(given, dict):
                raise SchemaError("field 'record' must be an object")
            # the verdict's fields come with the bounds; until then the epoch has no verdict
            record = check_record({"upper": math.nan, "lower": math.nan, "zone": "none", **given}, "record")
            self.pending[record["epoch"]] = record
        elif kind == "epoch":
            finished = EpochRecord(**check_record(entry["record"], "record"))
            while run.epochs and run.epochs[-1].epoch >= finished.epoch:  # a record replaced (amortised O(1))
                run.epochs.pop()
            run.epochs.append(finished)
            self.pending.pop(finished.epoch, None)
        elif kind == "update":
            fields = entry["fields"]
            if not isinstance(fields, dict):
                raise SchemaError("field 'fields' must be an object of run fields")
            fresh = Run.from_dict(fields)
            for name in fields:
                setattr(run, name, getattr(fresh, name))
        elif kind == "status":
            checked = check_run_fields({"status": entry["status"], "message": entry.get("message", ""),
                                        "traceback": entry.get("traceback", "")})
            run.status, run.message, run.traceback = checked["status"], checked["message"], checked["traceback"]
        elif kind == "header":
            self.damage(number, "a second header (two runs in one file?); skipped")
        else:
            self.damage(number, f"unknown entry kind {kind!r} (written by a newer yeswidget?); skipped")

    def begin(self, number: int, entry: dict[str, Any]) -> None:
        """The first readable line: the header, or (header damaged) the run rebuilt from what follows."""
        if entry["kind"] == "header":
            if entry.get("format") != LOG_FORMAT:
                raise ValueError(f"not a yeswidget run log (line {number} is a header of format "
                                 f"{entry.get('format')!r}, expected {LOG_FORMAT!r})")
            version = entry.get("version")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise ValueError(f"line {number}: the header's version must be an int ≥ 1; got {version!r}")
            if version not in READABLE_VERSIONS:
                raise ValueError(f"written by a newer yeswidget (log version {version}; this one reads "
                                 f"{list(READABLE_VERSIONS)}); upgrade yeswidget")
            self.version = version
            self.run = Run.from_dict(entry["run"])
            return
        # no header: a v2 log's second line is an update holding every header field
        parts = self.path.stem.split("-", 2)  # <date>-<time>-<run id>
        self.run = Run(run_id=parts[2] if len(parts) == 3 else self.path.stem)
        if not self.header_damaged:
            self.damage(number, "the log has no header before it (its start is missing)")

    def finish(self) -> Run:
        run = self.run
        if run is None:
            raise ValueError("no line of it could be read as a run-log entry"
                             + (f" ({self.damaged[0]})" if self.damaged else " (the file is empty)"))
        if self.pending:  # ended epochs whose bounds never came: kept, with their loss and no verdict
            last = run.epochs[-1] if run.epochs else None
            for epoch in sorted(self.pending):
                values = self.pending[epoch]
                upper = run.upper if math.isfinite(run.upper) else values.get("upper", math.nan)
                values.update(upper=upper, lower=last.lower if last else upper, zone="none",
                              yes_k=list(last.yes_k) if last else [], bounds_updated=False, reason=PENDING_REASON)
                run.epochs.append(EpochRecord(**values))
            run.epochs.sort(key=lambda record: record.epoch)
        if self.header_damaged:
            if not run.depth and run.epochs:
                run.depth = len(run.epochs[-1].yes_k) + 1
            if not math.isfinite(run.upper) and run.epochs:
                run.upper = run.epochs[-1].upper
        if self.damaged:
            listed = "; ".join(self.damaged[:_LISTED])
            more = f"; and {len(self.damaged) - _LISTED} more" if len(self.damaged) > _LISTED else ""
            header = (" (the header was damaged: settings rebuilt from the lines after it)"
                      if self.header_damaged else "")
            run.warnings.append(f"run log {self.path.name}: {len(self.damaged)} damaged line(s) skipped{header}, "
                                f"everything else read: {listed}{more}")
        return run


def read_with_damage(path: str | os.PathLike[str]) -> tuple[Run, list[str]]:
    """``(run, damaged lines)`` from a run log; a ValueError naming the line for a bad value."""
    path = Path(path)
    reader = _Reader(path)
    try:
        for number, raw, complete in _lines(path):
            reader.line(number, raw, complete)
        run = reader.finish()
    except ValueError as exc:
        raise ValueError(f"{path}: cannot read this run log: {exc}") from None
    return run, reader.damaged


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read a run back: a run log (``.jsonl``, also one cut short by a crash or damaged) or a ``Run.to_json`` file.

    A log whose process was killed reads back with every epoch whose ``epoch_end()`` returned (an
    epoch whose bounds were not written yet has zone ``none`` and says so); its ``status`` stays
    ``running``. Damaged lines are skipped with a :class:`RunLogWarning` and a note in the run.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give one run's .jsonl file, or use load_runs({str(path)!r})")
    if not path.exists():
        raise FileNotFoundError(f"no run log at {path}")
    with open(path, "rb") as handle:
        start = handle.read(64)
    if start.lstrip().startswith(b"{") and not is_run_log(start, path):
        try:
            return Run.from_json(path)  # a whole run written by Run.to_json
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    run, damaged = read_with_damage(path)
    if damaged:
        warnings.warn(run.warnings[-1], RunLogWarning, stacklevel=2)
    return run


def load_runs(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Run]:
    """Read several runs; a folder stands for every ``*.jsonl`` log in it (oldest first)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    runs: list[Run] = []
    for path in map(Path, paths):
        if path.is_dir():
            logs = sorted(path.glob("*.jsonl"))
            if not logs:
                raise ValueError(f"{path} holds no run logs (*.jsonl)")
            runs.extend(load_run(log) for log in logs)
        else:
            runs.append(load_run(path))
    return runs
