"""The anywidget widgets (RunsTable, ZoneTimeline): Python state, validation,
callbacks, the shipped ES modules, and the front-end unit tests (``npm test``).

No kernel and no browser: widget state is read with ``get_state()`` and
front-end changes are simulated with ``set_state()`` (the path comm messages take).
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest
import traitlets

from yeswidget.widgets import tables as widgets  # moved into the widgets package
from yeswidget.widgets import RUNS_TABLE_COLUMNS, RunsTable, SelectHandle, ZoneTimeline

REPO = pathlib.Path(__file__).resolve().parent.parent
JS_DIR = REPO / "js"
PACKAGE_DIR = pathlib.Path(widgets.__file__).resolve().parent.parent

MODULES = {"runs_table.js": RunsTable, "zone_timeline.js": ZoneTimeline}


def make_rows() -> list[dict]:
    return [
        {
            "id": 0, "label": "adam 1e-3", "lr": 1e-3, "batch_size": 50, "optimizer": "adam",
            "schedule": "constant", "seed": 0, "final_loss_db": -12.3, "final_zone": "green",
            "epochs_to_green": 7, "wall_time": 12.3, "status": "finished", "color": "#1f77b4",
        },
        {
            "id": 3, "label": "sgd 1e-1", "lr": 0.1, "batch_size": 10, "optimizer": "sgd",
            "schedule": "cosine", "seed": 1, "final_loss_db": None, "final_zone": None,
            "epochs_to_green": None, "wall_time": 3.0, "status": "running", "color": "#ff7f0e",
        },
    ]


def synced_state(widget, keys):
    state = widget.get_state()
    return {key: state[key] for key in keys}


# ---- RunsTable state -------------------------------------------------------------


def test_runs_table_state_roundtrip():
    table = RunsTable(rows=make_rows(), selected=3, sort_by="lr", sort_ascending=False)
    state = table.get_state()
    assert state["rows"] == make_rows()
    assert state["selected"] == 3
    assert state["sort_by"] == "lr"
    assert state["sort_ascending"] is False
    json.dumps(state["rows"], allow_nan=False)

    # the front end sends the same keys back (comm messages go through set_state)
    other = RunsTable()
    other.set_state(synced_state(table, ["rows", "selected", "sort_by", "sort_ascending"]))
    assert other.rows == table.rows
    assert (other.selected, other.sort_by, other.sort_ascending) == (3, "lr", False)


def test_runs_table_defaults():
    table = RunsTable()
    assert table.rows == []
    assert table.selected == -1
    assert table.sort_by == "id"
    assert table.sort_ascending is True
    assert table.selected_row is None


def test_traits_are_synced_and_documented():
    for cls, names in [
        (RunsTable, ["rows", "selected", "sort_by", "sort_ascending"]),
        (ZoneTimeline, ["records", "zone", "headline", "max_cells"]),
    ]:
        for name in names:
            trait = cls.class_traits()[name]
            assert trait.metadata.get("sync") is True, f"{cls.__name__}.{name} is not synced"
            assert trait.help, f"{cls.__name__}.{name} has no help="


def test_non_finite_values_are_sent_as_strict_json():
    np = pytest.importorskip("numpy")
    rows = make_rows()
    rows[0]["final_loss_db"] = float("-inf")  # loss exactly 0
    rows[1]["final_loss_db"] = float("nan")
    rows[1]["wall_time"] = np.float32(2.5)
    rows[1]["batch_size"] = np.int64(10)
    rows[1]["seed"] = np.bool_(True)
    table = RunsTable(rows=rows)
    state = table.get_state()
    text = json.dumps(state["rows"], allow_nan=False)  # would raise on NaN / inf / numpy types
    sent = json.loads(text)
    assert sent[0]["final_loss_db"] == "-Infinity"
    assert sent[1]["final_loss_db"] == "NaN"
    assert sent[1]["wall_time"] == 2.5
    assert sent[1]["batch_size"] == 10 and type(sent[1]["batch_size"]) is int
    assert sent[1]["seed"] is True
    # the Python side keeps the real values
    assert math.isinf(table.rows[0]["final_loss_db"])
    assert math.isnan(table.rows[1]["final_loss_db"])

    timeline = ZoneTimeline(records=[{"epoch": 1, "loss_db": float("inf"), "upper_db": 1.0, "lower_db": float("-inf"), "zone": "red"}])
    sent = json.loads(json.dumps(timeline.get_state()["records"], allow_nan=False))
    assert sent == [{"epoch": 1, "loss_db": "Infinity", "upper_db": 1.0, "lower_db": "-Infinity", "zone": "red"}]


def test_set_runs_fills_defaults_and_ids():
    table = RunsTable()
    result = table.set_runs([{"label": "a", "lr": 1e-2}, {"label": "b", "status": "running"}])
    assert result is table
    assert [row["id"] for row in table.rows] == [0, 1]
    assert set(table.rows[0]) == set(widgets.ROW_KEYS)
    assert table.rows[0]["final_zone"] is None and table.rows[0]["lr"] == 1e-2
    # extra keys are kept
    table.set_runs([{"id": 7, "note": "extra"}])
    assert table.rows[0]["note"] == "extra"


def test_set_runs_keeps_or_clears_the_selection():
    table = RunsTable()
    table.set_runs(make_rows())
    table.selected = 3
    table.set_runs(make_rows())
    assert table.selected == 3
    assert table.selected_row["label"] == "sgd 1e-1"
    table.set_runs(make_rows()[:1])
    assert table.selected == -1


def test_set_runs_accepts_run_records():
    from yeswidget.run import EpochRecord, Run

    finished = Run(run_id="a", config={"lr": 1e-3, "batch_size": 50, "optimizer": "adam", "seed": 4, "color": "red"})
    finished.epochs = [
        EpochRecord(epoch=1, loss=2.0, upper=1.0, lower=0.1, zone="red", wall_time=1.0),
        EpochRecord(epoch=2, loss=0.05, upper=1.0, lower=0.1, zone="green", wall_time=2.5),
    ]
    finished.status = "finished"
    running = SimpleNamespace(run_id="b", config={}, final=None, status="running", final_zone=None, epochs_to_green=None)
    table = RunsTable().set_runs([finished, running])
    first, second = table.rows
    assert first["id"] == 0 and second["id"] == 1
    assert first["lr"] == 1e-3 and first["batch_size"] == 50 and first["optimizer"] == "adam"
    assert first["final_zone"] == "green" and first["epochs_to_green"] == 2
    assert first["final_loss_db"] == pytest.approx(10 * math.log10(0.05))
    assert first["wall_time"] == 2.5 and first["status"] == "finished" and first["color"] == "red"
    assert second["label"] == "b" and second["final_loss_db"] is None and second["status"] == "running"


# ---- validation ----------------------------------------------------------------


def test_sort_by_validation_lists_the_columns():
    table = RunsTable()
    for key in RUNS_TABLE_COLUMNS:
        table.sort_by = key
    with pytest.raises(traitlets.TraitError) as info:
        table.sort_by = "learning_rate"
    message = str(info.value)
    assert "learning_rate" in message
    for key in RUNS_TABLE_COLUMNS:
        assert key in message
    with pytest.raises(traitlets.TraitError):
        RunsTable(sort_by="color")  # drawn, not a column
    assert table.sort_by == "status"  # unchanged by the failed assignment


@pytest.mark.parametrize(
    "rows, fragment",
    [
        ([{"label": "no id"}], "no 'id'"),
        ([{"id": "0"}], "must be an int"),
        ([{"id": True}], "must be an int"),
        ([{"id": -2}], ">= 0"),
        ([{"id": 1}, {"id": 1}], "not unique"),
        ([{"id": 1, "final_zone": "orange"}], "final_zone"),
        ([{"id": 1, "status": "done"}], "status"),
    ],
)
def test_rows_validation(rows, fragment):
    with pytest.raises(traitlets.TraitError, match=re.escape(fragment)):
        RunsTable(rows=rows)


def test_selected_validation():
    table = RunsTable(rows=make_rows())
    table.selected = 42  # an id that may arrive before its row: allowed
    table.selected = -1
    with pytest.raises(traitlets.TraitError):
        table.selected = -2


def test_zone_timeline_validation():
    timeline = ZoneTimeline()
    assert (timeline.records, timeline.zone, timeline.headline, timeline.max_cells) == ([], "", "", 400)
    timeline.max_cells = 10
    with pytest.raises(traitlets.TraitError, match=">= 10"):
        timeline.max_cells = 9
    assert timeline.max_cells == 10
    with pytest.raises(traitlets.TraitError):
        ZoneTimeline(max_cells=0)
    for zone in ("red", "yellow", "green", ""):
        timeline.zone = zone
    with pytest.raises(traitlets.TraitError, match="zone"):
        timeline.zone = "blue"
    with pytest.raises(traitlets.TraitError, match=r"records\[1\]"):
        timeline.records = [{"epoch": 1, "zone": "red"}, {"epoch": 2, "zone": "purple"}]


def test_zone_timeline_state_roundtrip():
    records = [
        {"epoch": 1, "loss_db": 3.0, "upper_db": 1.0, "lower_db": -5.0, "zone": "red"},
        {"epoch": 2, "loss_db": -1.0, "upper_db": 1.0, "lower_db": -5.5, "zone": "yellow"},
    ]
    headline = "yellow: inside the cloud, training is meaningful but not optimal"
    timeline = ZoneTimeline(records=records, zone="yellow", headline=headline, max_cells=50)
    state = synced_state(timeline, ["records", "zone", "headline", "max_cells"])
    assert state == {"records": records, "zone": "yellow", "headline": headline, "max_cells": 50}
    other = ZoneTimeline()
    other.set_state(state)
    assert (other.records, other.zone, other.headline, other.max_cells) == (records, "yellow", headline, 50)


# ---- on_select -------------------------------------------------------------------


def test_on_select_fires_with_the_row():
    table = RunsTable(rows=make_rows())
    seen = []
    handle = table.on_select(seen.append)
    assert isinstance(handle, SelectHandle) and handle.active
    table.set_state({"selected": 3})  # a click in the browser
    assert seen == [make_rows()[1]]
    seen[0]["label"] = "mutated"  # a copy: the trait is untouched
    assert table.rows[1]["label"] == "sgd 1e-1"
    table.selected = -1  # deselect: no call
    table.selected = 99  # unknown id: no call
    table.selected = 0
    assert [row["id"] for row in seen] == [3, 0]
    handle.remove()


def test_on_select_remove_is_safe_twice():
    table = RunsTable(rows=make_rows())
    seen = []
    handle = table.on_select(seen.append)
    handle.remove()
    handle.remove()
    assert not handle.active
    table.selected = 0
    assert seen == []


def test_on_select_as_context_manager():
    table = RunsTable(rows=make_rows())
    seen = []
    with table.on_select(lambda row: seen.append(row["id"])) as handle:
        table.selected = 0
        assert handle.active
    assert not handle.active
    table.selected = 3
    assert seen == [0]
    handle.remove()  # still safe after the with block


def test_on_select_handles_are_independent():
    table = RunsTable(rows=make_rows())
    first, second = [], []
    a = table.on_select(first.append)
    b = table.on_select(second.append)
    table.selected = 0
    a.remove()
    table.selected = 3
    assert [r["id"] for r in first] == [0]
    assert [r["id"] for r in second] == [0, 3]
    b.remove()


def test_on_select_needs_a_callable():
    with pytest.raises(TypeError):
        RunsTable().on_select("not callable")


# ---- the ES modules ---------------------------------------------------------------


@pytest.mark.parametrize("name, cls", MODULES.items())
def test_esm_files_exist_and_export_render(name, cls):
    path = widgets.STATIC / name
    assert path.is_file()
    text = path.read_text(encoding="utf-8")
    assert "export default" in text
    assert re.search(r"^function render\(\{ model, el \}\)", text, re.M)
    assert re.search(r"export default \{\s*render\s*\}", text)
    css = path.with_suffix(".css")
    assert css.is_file() and ".yw-" in css.read_text(encoding="utf-8")
    # what anywidget sends to the front end is that file's text
    state = cls().get_state()
    assert state["_esm"] == text
    assert state["_css"] == css.read_text(encoding="utf-8")


def test_static_is_the_js_src_symlink_in_a_checkout():
    if not (JS_DIR / "src").is_dir():
        pytest.skip("installed package without the repository's js/ folder")
    static = PACKAGE_DIR / "static"
    if not static.is_symlink():
        pytest.skip("yeswidget/static is not a symlink here (e.g. git without symlink support)")
    assert os.readlink(static).replace("\\", "/").rstrip("/") == "../js/src"
    for name in MODULES:
        assert (static / name).read_text(encoding="utf-8") == (JS_DIR / "src" / name).read_text(encoding="utf-8")


NETWORK_PATTERNS = [
    re.compile(r"\bhttps?://", re.I),
    re.compile(r"(^|[\s\"'(])//[a-z0-9.-]+\.[a-z]{2,}/", re.I | re.M),
    re.compile(r"\b(esm\.sh|unpkg|jsdelivr|cdnjs|skypack|jspm)\b", re.I),
    re.compile(r"\bimport\s*\("),
    re.compile(r"@import\b"),
    re.compile(r"^\s*(import|export)\s[^;]*?\bfrom\s*[\"']", re.M),
    re.compile(r"^\s*import\s*[\"']", re.M),
]


def test_modules_import_nothing_from_the_network():
    files = sorted(p for p in widgets.STATIC.iterdir() if p.suffix in {".js", ".mjs", ".css"})
    assert {p.name for p in files} >= {"runs_table.js", "zone_timeline.js", "runs_table.css", "zone_timeline.css"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern in NETWORK_PATTERNS:
            match = pattern.search(text)
            assert match is None, f"{path.name}: {match.group(0)!r} (modules must work offline, without imports)"


def test_js_columns_match_python_columns():
    text = (widgets.STATIC / "runs_table.js").read_text(encoding="utf-8")
    block = text[text.index("export const COLUMNS"):]
    block = block[: block.index("]);")]
    assert tuple(re.findall(r'\{ key: "(\w+)"', block)) == RUNS_TABLE_COLUMNS
    assert RunsTable.COLUMNS == RUNS_TABLE_COLUMNS


# ---- front-end unit tests (node --test + jsdom) -----------------------------------


def _run(command, cwd):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    return result.returncode, (result.stdout + result.stderr)[-8000:]


def test_js_unit_tests():
    in_ci = os.environ.get("CI", "").strip().lower() in {"true", "1"}
    if not (JS_DIR / "package.json").is_file():
        if in_ci:
            pytest.fail("CI: js/package.json not found next to the package")
        pytest.skip("not a repository checkout (no js/package.json)")
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        if in_ci:
            pytest.fail("CI: node and npm are needed for the front-end tests")
        pytest.skip("node / npm not installed")
    if not (JS_DIR / "node_modules").is_dir():
        if not in_ci:
            pytest.skip("js/node_modules missing: run `npm install` in js/ (CI runs `npm ci` itself)")
        code, output = _run([npm, "ci", "--no-audit", "--no-fund"], JS_DIR)
        assert code == 0, f"npm ci failed:\n{output}"
    code, output = _run([npm, "test"], JS_DIR)
    assert code == 0, f"npm test failed:\n{output}"
    assert re.search(r"\bpass [1-9]\d*", output), f"no front-end test ran:\n{output}"
