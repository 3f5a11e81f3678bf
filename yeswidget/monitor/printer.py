"""A text subscriber: one line per epoch, for scripts and logs."""
from __future__ import annotations

import sys
from typing import Any, TextIO

from ..core.formats import db_number
from ..core.run import EpochEvent, EpochRecord, StatusEvent
from ..core.zones import ZONE_WORDS

__all__ = ["TextPrinter"]


class TextPrinter:
    """A subscriber printing one line per epoch: epoch, loss dB, YES-0 dB, lower edge dB, zone."""

    def __init__(self, stream: TextIO | None = None, *, every: int = 1) -> None:
        self.stream = stream
        self.every = max(1, int(every))

    @staticmethod
    def format(record: EpochRecord, epochs_total: int | None = None) -> str:
        total = f"/{epochs_total}" if epochs_total else ""
        return (f"epoch {record.epoch:>4}{total}  loss {db_number(record.loss):>8} dB  "
                f"YES-0 {db_number(record.upper):>8} dB  lower {db_number(record.lower):>8} dB  "
                f"{record.zone:<6} ({ZONE_WORDS[record.zone]})")

    def __call__(self, event: Any) -> None:
        stream = self.stream or sys.stdout
        if isinstance(event, EpochEvent):
            last = bool(event.epochs_total) and event.record.epoch == event.epochs_total
            if event.record.epoch % self.every == 0 or last:
                print(self.format(event.record, event.epochs_total), file=stream, flush=True)
        elif isinstance(event, StatusEvent) and event.status != "running":
            print(f"run {event.status}" + (f": {event.message}" if event.message else ""), file=stream, flush=True)
