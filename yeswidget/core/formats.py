"""How numbers are written for people: losses in dB, learning rates, margins. The one place the
CLI, the reports, the printer, the run labels, the charts and the JS (through the synced
``formats`` trait, :func:`format_definitions`) take them from.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from .zones import to_db

__all__ = ["DB_DECIMALS", "TABLE_DB_DECIMALS", "LR_DIGITS", "LR_SIGNIFICANT", "db_text", "db_number", "lr_text",
           "lr_change_text", "margin_text", "format_definitions"]

#: decimals of a value in dB in reports, the CLI, the printer and the chart's status line
DB_DECIMALS = 2
#: decimals of a value in dB in a table cell or a timeline's tooltip (the JS front end)
TABLE_DB_DECIMALS = 1
#: significant digits of a learning rate in a live change, ``1e-03→3e-02`` (short run names)
LR_DIGITS = 1
#: at most this many significant digits of a learning rate in a table cell (``2.5e-4``)
LR_SIGNIFICANT = 3


def db_number(value: Any, decimals: int = DB_DECIMALS) -> str:
    """A loss as a number of dB without the unit, e.g. ``-12.34`` (``nan`` when unknown)."""
    return f"{to_db(value):.{decimals}f}"


def db_text(value: Any, decimals: int = DB_DECIMALS) -> str:
    """A loss in dB for people: ``-12.34 dB``; an exact zero is ``0 (exact)`` rather than ``-inf dB``."""
    db = to_db(value)
    if db == -math.inf:
        return "0 (exact)"
    return f"{db:.{decimals}f} dB"


def margin_text(loss: Any, edge: Any, decimals: int = DB_DECIMALS) -> str:
    """How far ``loss`` is above ``edge`` in dB, signed: ``+1.25 dB``."""
    return f"{to_db(loss) - to_db(edge):+.{decimals}f} dB"


def lr_text(value: Any, significant: int = LR_SIGNIFICANT) -> str:
    """A learning rate for people, the one format: ``significant`` digits, trailing zeros dropped
    (``1.26e-04``, ``1e-03``; ``lr_text(0.0316, 1)`` is ``3e-02``). Not a number: as given."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return str(value)
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    mantissa, exponent = f"{value:.{max(int(significant), 1) - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


def lr_change_text(value: Any) -> str:
    """A learning rate in a live change, as in a run's short name (``1e-03``)."""
    return lr_text(value, LR_DIGITS)


def format_definitions() -> dict[str, int]:
    """The formats as plain JSON, for the front end (the widgets' synced ``formats`` trait)."""
    return {"db_decimals": TABLE_DB_DECIMALS, "lr_significant": LR_SIGNIFICANT}
