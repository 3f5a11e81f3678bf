"""Small anywidget widgets: a table of training runs and a per-epoch zone timeline.

The front ends are ES modules in ``js/src`` at the repository root; the
package reaches them through the ``yeswidget/static`` symlink (``../js/src``),
so editable installs read the sources directly and wheels carry copies.
No build step and no network at run time.

anywidget loads a widget's ``_esm`` as one module, so a module cannot import
another: :func:`compose_esm` puts ``shared.js`` (number formatting, the zone
lookup) in front of the widget's module and drops that module's
``import ... from "./shared.js"`` line. The zone colours and words are not in
the JS: each widget's synced ``zones`` trait carries
:func:`yeswidget.core.zones.zone_definitions`, and the JS reads them from it.

Values sent to the browser go through :func:`_json_safe`: non-finite floats
become the strings ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"`` (strict JSON has
no NaN; the JS side reads them back with ``Number()``) and NumPy scalars become
plain Python numbers. The Python-side traits keep the values as given.
"""
from __future__ import annotations

import math
import numbers
import pathlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anywidget
import traitlets

from ..core.formats import format_definitions
from ..core.run import RUN_STATUSES
from ..core.zones import VERDICTS, to_db, zone_definitions
from ..view.rows import ROW_KEYS, RUNS_TABLE_COLUMNS, run_row

#: a row's status: a run's, or "paused" while a live run waits (shown, never stored in the run)
ROW_STATUSES = (*RUN_STATUSES, "paused")

__all__ = [
    "RunsTable",
    "ZoneTimeline",
    "SelectHandle",
    "RUNS_TABLE_COLUMNS",
    "ROW_KEYS",
    "STATIC",
    "compose_esm",
]


def _static_dir() -> pathlib.Path:
    """``yeswidget/static`` (the symlink to ``js/src``, or the copy in a wheel).

    Falls back to ``js/src`` next to the package for checkouts where the
    symlink was not created (e.g. git on Windows without symlink support,
    which checks it out as a small text file).
    """
    package = pathlib.Path(__file__).resolve().parent.parent
    static = package / "static"
    if static.is_dir():
        return static
    source = package.parent / "js" / "src"
    return source if source.is_dir() else static


STATIC = _static_dir()
#: the module every widget module imports (and the only import allowed)
SHARED_MODULE = "shared.js"
_SHARED_IMPORT = re.compile(r'^import\s*\{[^}]*\}\s*from\s*"\./shared\.js";[ \t]*\n?', re.M)
_ANY_IMPORT = re.compile(r"^\s*import\b", re.M)


def compose_esm(name: str, static: pathlib.Path | None = None) -> str:
    """The text anywidget loads for ``static/<name>``: ``shared.js``, then the module.

    The module's one ``import {...} from "./shared.js";`` line is dropped (the
    names it imports are defined above it). Raises ``ValueError`` if the module
    imports anything else or does not import ``./shared.js`` exactly once.
    """
    folder = STATIC if static is None else static
    text = (folder / name).read_text(encoding="utf-8")
    body, count = _SHARED_IMPORT.subn("", text)
    if count != 1 or _ANY_IMPORT.search(body):
        raise ValueError(
            f"{name}: a widget module must import exactly once from \"./shared.js\" (one line, "
            f"'import {{ a, b }} from \"./shared.js\";') and nothing else; found {count} such lines"
        )
    shared = (folder / SHARED_MODULE).read_text(encoding="utf-8")
    return f"{shared}\n// ---- {name} (its import of ./shared.js is the code above) ----\n{body}"


def _json_safe(value: Any) -> Any:
    """A copy of ``value`` that strict JSON can carry (see the module docstring)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
        if isinstance(value, bool):
            return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isfinite(number):
            return number
        if math.isnan(number):
            return "NaN"
        return "Infinity" if number > 0 else "-Infinity"
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _to_json(value: Any, widget: Any) -> Any:
    return _json_safe(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class SelectHandle:
    """Returned by :meth:`RunsTable.on_select`; ``remove()`` stops the callback.

    ``remove()`` may be called any number of times. Used as a context manager,
    the callback is active inside the ``with`` block only.
    """

    def __init__(self, widget: RunsTable, handler: Callable[[dict], None]) -> None:
        self._widget: RunsTable | None = widget
        self._handler = handler
        widget.observe(handler, names="selected")

    @property
    def active(self) -> bool:
        """Whether the callback is still attached."""
        return self._widget is not None

    def remove(self) -> None:
        """Detach the callback (safe to call again)."""
        widget, self._widget = self._widget, None
        if widget is not None:
            widget.unobserve(self._handler, names="selected")

    def __enter__(self) -> SelectHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


_STYLE_FIELDS: dict[str, type] = {"band": str, "edge": str, "word": str, "meaning": str, "code": int}
_KIND_WORDS = {str: "a string", int: "an int"}


def _check_zone_definitions(value: Any) -> None:
    """Raise ``TraitError`` unless ``value`` has the shape of :func:`zone_definitions`."""
    fix = "(leave `zones` at its default, yeswidget.core.zones.zone_definitions(), or pass a modified copy of it)"
    if not isinstance(value, Mapping) or not isinstance(value.get("zones"), Mapping):
        raise traitlets.TraitError(f"zones must be a dict with a 'zones' dict of styles {fix}; got {value!r:.200}")
    missing = [name for name in VERDICTS if name not in value["zones"]]
    if missing:
        raise traitlets.TraitError(f"zones['zones'] lacks {', '.join(missing)}: every verdict needs a style {fix}")
    order = value.get("order")
    if not isinstance(order, (list, tuple)) or any(name not in value["zones"] for name in order):
        raise traitlets.TraitError(f"zones['order'] must list names defined in zones['zones'] {fix}; got {order!r}")
    for name, style in value["zones"].items():
        for field, kind in _STYLE_FIELDS.items():
            item = style.get(field) if isinstance(style, Mapping) else None
            if not isinstance(item, kind) or isinstance(item, bool):
                raise traitlets.TraitError(
                    f"zones['zones'][{name!r}][{field!r}] must be {_KIND_WORDS[kind]}; got {item!r} {fix}"
                )


class _ZoneWidget(anywidget.AnyWidget):
    """Base of the widgets that draw zones: the synced ``zones`` trait."""

    zones = traitlets.Dict(
        help=(
            "The zone colours and words the front end draws with: yeswidget.core.zones.zone_definitions() "
            "(order, band_opacity, and per zone band / edge colours, word, meaning, code). The JS has no "
            "colours of its own; change this (a modified copy) to restyle one widget."
        ),
    ).tag(sync=True, to_json=_to_json)

    formats = traitlets.Dict(
        help=("The number formats the front end writes with: yeswidget.core.formats.format_definitions() "
              "(db_decimals, lr_significant)."),
    ).tag(sync=True, to_json=_to_json)

    @traitlets.default("zones")
    def _default_zones(self) -> dict[str, Any]:
        return zone_definitions()

    @traitlets.default("formats")
    def _default_formats(self) -> dict[str, Any]:
        return format_definitions()

    @traitlets.validate("zones")
    def _validate_zones(self, proposal: dict[str, Any]) -> dict[str, Any]:
        _check_zone_definitions(proposal["value"])
        return dict(proposal["value"])


class RunsTable(_ZoneWidget):
    """A sortable table of training runs; clicking a row selects that run.

    Example::

        table = RunsTable().set_runs([{"id": 0, "label": "adam", "lr": 1e-3, "status": "running"}])
        handle = table.on_select(lambda row: print(row["label"]))
        ...
        handle.remove()
    """

    _esm = compose_esm("runs_table.js")
    _css = STATIC / "runs_table.css"

    #: sortable column keys (``sort_by`` must be one of them)
    COLUMNS = RUNS_TABLE_COLUMNS

    rows = traitlets.List(
        traitlets.Dict(),
        help=(
            "One dict per run with keys id (int, unique), label, lr, batch_size, optimizer, "
            "schedule, seed, final_loss_db (float or None), "
            "final_zone ('red'/'yellow'/'green', 'none' = no verdict, None = not yet), "
            "epochs_to_green (int or None), wall_time (s), status "
            "('running'/'finished'/'stopped'/'diverged'/'failed') and color (the run's line colour)."
        ),
    ).tag(sync=True, to_json=_to_json)
    selected = traitlets.Int(
        -1, help="The id of the selected row, -1 for none. Set by clicking a row."
    ).tag(sync=True)
    sort_by = traitlets.Unicode(
        "id", help=f"Column key the table is sorted by, one of {', '.join(RUNS_TABLE_COLUMNS)}."
    ).tag(sync=True)
    sort_ascending = traitlets.Bool(
        True, help="Sort direction; missing values (None, NaN) come last either way."
    ).tag(sync=True)

    # ---- validation -------------------------------------------------------
    @traitlets.validate("sort_by")
    def _validate_sort_by(self, proposal: dict) -> str:
        value = proposal["value"]
        if value not in RUNS_TABLE_COLUMNS:
            raise traitlets.TraitError(
                f"sort_by must be one of the columns {', '.join(RUNS_TABLE_COLUMNS)}; got {value!r}"
            )
        return value

    @traitlets.validate("selected")
    def _validate_selected(self, proposal: dict) -> int:
        value = proposal["value"]
        if value < -1:
            raise traitlets.TraitError(f"selected must be a row id (>= 0) or -1 for none; got {value}")
        return value

    @traitlets.validate("rows")
    def _validate_rows(self, proposal: dict) -> list[dict]:
        rows = []
        seen: set[int] = set()
        for index, row in enumerate(proposal["value"]):
            if "id" not in row:
                raise traitlets.TraitError(f"rows[{index}] has no 'id' (every row needs a unique int id)")
            row_id = row["id"]
            if not _is_int(row_id):
                raise traitlets.TraitError(f"rows[{index}]['id'] must be an int; got {row_id!r}")
            row_id = int(row_id)
            if row_id < 0:
                raise traitlets.TraitError(f"rows[{index}]['id'] must be >= 0 (-1 means 'no selection'); got {row_id}")
            if row_id in seen:
                raise traitlets.TraitError(f"rows[{index}]['id'] = {row_id} is not unique")
            seen.add(row_id)
            zone = row.get("final_zone")
            if zone is not None and zone not in VERDICTS:
                raise traitlets.TraitError(
                    f"rows[{index}]['final_zone'] must be one of {', '.join(VERDICTS)} or None; got {zone!r}"
                )
            status = row.get("status")
            if status is not None and status not in ROW_STATUSES:
                raise traitlets.TraitError(
                    f"rows[{index}]['status'] must be one of {', '.join(ROW_STATUSES)}; got {status!r}"
                )
            rows.append({**row, "id": row_id})
        return rows

    # ---- conveniences -----------------------------------------------------
    def set_runs(self, rows: Iterable[Mapping[str, Any] | Any]) -> RunsTable:
        """Replace the rows; returns the table.

        Each item is a mapping (missing keys of :data:`ROW_KEYS` become None;
        a missing ``id`` becomes the item's position) or a
        :class:`yeswidget.core.run.Run`-like object (label, config, final, status, …).
        The selection is cleared when its row is gone.
        """
        normalised = []
        for index, item in enumerate(rows):
            if isinstance(item, Mapping):
                row: dict[str, Any] = {key: None for key in ROW_KEYS}
                row["id"] = index
                row.update(item)
            else:
                row = run_row(item, index)
            normalised.append(row)
        with self.hold_sync():
            self.rows = normalised
            if self.selected != -1 and self.selected not in {row["id"] for row in self.rows}:
                self.selected = -1
        return self

    @property
    def selected_row(self) -> dict | None:
        """A copy of the selected row, or None."""
        for row in self.rows:
            if row["id"] == self.selected:
                return dict(row)
        return None

    def on_select(self, callback: Callable[[dict], Any]) -> SelectHandle:
        """Call ``callback(row)`` whenever ``selected`` changes to the id of a row.

        ``row`` is a copy of that row's dict. Returns a :class:`SelectHandle`;
        ``handle.remove()`` (or leaving ``with table.on_select(...):``) stops it.
        """
        if not callable(callback):
            raise TypeError(f"on_select needs a callable; got {callback!r}")

        def handler(change: dict) -> None:
            for row in self.rows:
                if row["id"] == change["new"]:
                    callback(dict(row))
                    return

        return SelectHandle(self, handler)


class ZoneTimeline(_ZoneWidget):
    """The current zone as a badge, and one coloured cell per epoch under it.

    With more epochs than ``max_cells`` the cells are buckets of consecutive
    epochs, each coloured by the worst zone in it.
    """

    _esm = compose_esm("zone_timeline.js")
    _css = STATIC / "zone_timeline.css"

    records = traitlets.List(
        traitlets.Dict(),
        help=(
            "One dict per epoch, in epoch order: epoch (int), loss_db, upper_db (YES-0), "
            "lower_db (the cloud's lower edge), all in dB, and zone ('red'/'yellow'/'green', 'none' for no verdict)."
        ),
    ).tag(sync=True, to_json=_to_json)
    zone = traitlets.Unicode(
        "", help="The current zone ('red', 'yellow', 'green', 'none' = no verdict), or '' for none yet."
    ).tag(sync=True)
    headline = traitlets.Unicode(
        "",
        help=(
            "One line next to the badge, e.g. 'yellow: inside the cloud, training is meaningful "
            "but not optimal'; empty shows the zone's meaning (from `zones`)."
        ),
    ).tag(sync=True)
    max_cells = traitlets.Int(
        400, help="Most cells in the strip (>= 10); more epochs are bucketed."
    ).tag(sync=True)

    def set_run(self, run: Any) -> ZoneTimeline:
        """Show a :class:`yeswidget.core.run.Run` (or a look-alike with ``epochs``); returns the timeline.

        One record per epoch (loss and edges in dB), ``zone`` the last epoch's,
        ``headline`` cleared (the badge then shows the zone's meaning from ``zones``).
        """
        epochs = list(getattr(run, "epochs", None) or [])
        records: list[dict[str, Any]] = [
            {
                "epoch": int(getattr(record, "epoch", index + 1)),
                "loss_db": to_db(getattr(record, "loss", None)),
                "upper_db": to_db(getattr(record, "upper", None)),
                "lower_db": to_db(getattr(record, "lower", None)),
                "zone": getattr(record, "zone", None),
            }
            for index, record in enumerate(epochs)
        ]
        with self.hold_sync():
            self.records = records
            self.zone = str(records[-1]["zone"] or "") if records else ""
            self.headline = ""
        return self

    @traitlets.validate("zone")
    def _validate_zone(self, proposal: dict) -> str:
        value = proposal["value"]
        if value and value not in VERDICTS:
            raise traitlets.TraitError(f"zone must be one of {', '.join(VERDICTS)} or ''; got {value!r}")
        return value

    @traitlets.validate("max_cells")
    def _validate_max_cells(self, proposal: dict) -> int:
        value = proposal["value"]
        if value < 10:
            raise traitlets.TraitError(f"max_cells must be >= 10; got {value}")
        return value

    @traitlets.validate("records")
    def _validate_records(self, proposal: dict) -> list[dict]:
        for index, record in enumerate(proposal["value"]):
            zone = record.get("zone")
            if zone not in (None, "") and zone not in VERDICTS:
                raise traitlets.TraitError(
                    f"records[{index}]['zone'] must be one of {', '.join(VERDICTS)} or None; got {zone!r}"
                )
        return proposal["value"]
