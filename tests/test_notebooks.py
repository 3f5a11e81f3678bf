"""The notebooks: stored clean, and each one runs top to bottom and shows what it promises.

Each notebook is executed with nbclient in a fresh ``python3`` kernel, with
``YESWIDGET_FAST=1`` (short runs) and ``notebooks/`` as the working directory.
After its last cell one extra cell is run that prints the notebook's results as
JSON (``PROBE`` below); the checks read those values, so they test what the
notebook computed, not what it printed for people.

Run just these with ``pytest -m notebook``; the execution times (wall and the
kernel's CPU time) are printed with ``-s`` and kept as properties in a JUnit report.
"""
from __future__ import annotations

import base64
import json
import math
import re
import tempfile
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300          # seconds per cell
MAX_BYTES = 600 * 1024
MARKER = "YESWIDGET-PROBE:"
CPU_MARKER = "YESWIDGET-CPU-SECONDS:"
ZONES = ("red", "yellow", "green")

# directories that may hold notebooks which are not ours
SKIP_DIRS = {".venv", "venv", "node_modules", ".ipynb_checkpoints", ".git", "build", "dist", ".pytest_cache",
             ".hypothesis"}


# --------------------------------------------------------------------------- #
# running a notebook
# --------------------------------------------------------------------------- #
def execute(path: Path, probe: str, monkeypatch) -> tuple[object, dict, float, float]:
    """Run the notebook plus a probe cell; return (executed notebook, probe values, wall seconds,
    CPU seconds the kernel used)."""
    monkeypatch.setenv("YESWIDGET_FAST", "1")      # the kernel inherits this environment
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(path, as_version=4)
    probe_source = ("import json as _json, time as _time\n"
                    f"print({CPU_MARKER!r}, _time.process_time())\n"
                    f"print({MARKER!r}, _json.dumps({probe.strip()}))")
    nb.cells.append(nbformat.v4.new_code_cell(probe_source))
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    texts = [out.get("text", "") for out in nb.cells[-1].outputs if out.get("output_type") == "stream"]
    lines = "".join(texts).splitlines()
    line = next((ln for ln in lines if ln.startswith(MARKER)), None)
    assert line is not None, f"the probe printed nothing: {nb.cells[-1].outputs}"
    values = json.loads(line[len(MARKER):])
    cpu = next((float(ln[len(CPU_MARKER):]) for ln in lines if ln.startswith(CPU_MARKER)), math.nan)
    return nb, values, seconds, cpu


def outputs_of(nb, kind: str | None = None) -> list[dict]:
    found = []
    for cell in nb.cells[:-1]:  # not the probe
        for out in cell.get("outputs", []):
            if kind is None or out.get("output_type") == kind:
                found.append(out)
    return found


def printed(nb) -> str:
    return "".join(out.get("text", "") for out in outputs_of(nb, "stream"))


def png_count(nb) -> int:
    return sum("image/png" in out.get("data", {}) for out in outputs_of(nb) if out.get("output_type") in
               ("display_data", "execute_result"))


def widget_count(nb) -> int:
    return sum("application/vnd.jupyter.widget-view+json" in out.get("data", {}) for out in outputs_of(nb))


def first_green_for_good(zones: list[str]) -> int | None:
    settled = None
    for epoch, zone in enumerate(zones, start=1):
        if zone == "green":
            settled = epoch if settled is None else settled
        else:
            settled = None
    return settled


# --------------------------------------------------------------------------- #
# what each notebook must show
# --------------------------------------------------------------------------- #
def check_quickstart(nb, v):
    assert v["fast"] and v["EPOCHS"] == 60, "YESWIDGET_FAST=1 must pick the short run"
    assert v["n_runs"] == 1 and not v["running"]
    assert v["status"] == "finished"
    assert v["n_epochs"] == v["EPOCHS"]
    assert v["final_zone"] in ZONES and v["final_zone"] == v["zones"][-1]
    assert set(v["zones"]) <= set(ZONES)
    # Adam at lr 1e-3 leaves the red zone within a few epochs on phase retrieval
    assert v["zones"][0] == "red" and "red" not in v["zones"][5:]
    assert v["upper"] == pytest.approx(v["cloud_upper"])
    assert all(lo <= v["upper"] * (1 + 1e-12) for lo in v["lowers"])
    assert widget_count(nb) >= 1, "the Playground was displayed"
    assert f"final zone {v['final_zone']}" in printed(nb)


def check_own_loop(nb, v):
    assert v["fast"] and v["EPOCHS"] == 60
    assert v["status"] == "finished" and v["n_epochs"] == v["EPOCHS"] and not v["alive"]
    lrs = v["lrs"]
    # the slider moved the optimizer's learning rate in the middle of the run
    assert lrs[0] == pytest.approx(1e-4)
    assert lrs[-1] == pytest.approx(3e-3) and v["optimizer_lr"] == pytest.approx(3e-3)
    assert v["slider"] == pytest.approx(3e-3, rel=1e-6)
    changed = next(i for i, lr in enumerate(lrs, start=1) if lr != lrs[0])
    assert 2 <= changed <= v["EPOCHS"] - 10, f"the lr changed at epoch {changed}"
    assert all(lr == pytest.approx(3e-3) for lr in lrs[changed - 1:]), "it stays changed"
    # the larger learning rate works: the loss drops well below where it was, out of the red zone
    losses = v["losses"]
    assert 10 * math.log10(losses[-1]) < 10 * math.log10(losses[changed - 2]) - 3
    assert v["zones"][0] == "red"
    assert v["final_zone"] != "red"
    if changed <= v["EPOCHS"] - 20:
        assert v["epochs_to_green"] is not None and v["epochs_to_green"] > changed
    assert len(v["step_losses"]) == v["EPOCHS"] * 25  # 800 rows / batch 32: every logged step is kept
    assert widget_count(nb) >= 1


def check_paper(nb, v, *, epochs: int, panels: list[str]):
    assert v["fast"] and v["EPOCHS"] == epochs
    assert v["panels"] == panels
    # the 2 x 3 grid: six axes, each with its title and the three zone bands
    assert v["n_axes"] == 6
    assert v["axes_titles"] == panels
    assert all(n >= 3 for n in v["band_collections"]), v["band_collections"]
    assert png_count(nb) >= 1
    for title in panels:
        run = v["runs"][title]
        assert run["status"] == "finished" and len(run["zones"]) == epochs
        assert all(run["bounds_updated"]), "the paper recomputes the bounds after every epoch"
        assert set(run["zones"]) <= set(ZONES)
    # the table: one row per panel, the paper's reading and our epochs-until-green
    table = v["table"]
    assert [row["panel"] for row in table] == panels
    for row in table:
        run = v["runs"][row["panel"]]
        assert row["paper"] and isinstance(row["paper"], str)
        green = row["epochs_until_green"]
        assert green == (run["zones"].index("green") + 1 if "green" in run["zones"] else None)
        assert row["green_for_good_from"] == first_green_for_good(run["zones"])
        assert row["final_zone"] == run["zones"][-1]
        assert row["green_share"] == pytest.approx(run["zones"].count("green") / epochs)
    text = printed(nb)
    assert "first green" in text and "green from" in text
    for title in panels:
        assert title in text
    return {row["panel"]: row for row in table}


def check_phase_retrieval(nb, v):
    panels = ["batch 20 · lr 1e-3", "batch 100 · lr 1e-3", "batch 500 · lr 1e-3",
              "lr 1e-3 · batch 50", "lr 1e-2 · batch 50", "lr 1e-4 · batch 50"]
    rows = check_paper(nb, v, epochs=40, panels=panels)
    final = {t: v["runs"][t]["final_loss"] for t in panels}
    # robust even in a short run: fewer steps per epoch or tiny steps train more slowly
    assert final["batch 500 · lr 1e-3"] > final["batch 20 · lr 1e-3"]
    assert final["lr 1e-4 · batch 50"] > final["lr 1e-3 · batch 50"]
    assert rows["lr 1e-4 · batch 50"]["final_zone"] != "green"


def check_signal_denoising(nb, v):
    panels = ["batch 20 · lr 1e-3", "batch 100 · lr 1e-3", "batch 500 · lr 1e-3",
              "lr 1e-3 · batch 20", "lr 5e-3 · batch 20", "lr 1e-4 · batch 20"]
    rows = check_paper(nb, v, epochs=150, panels=panels)
    runs = v["runs"]
    # the two panels with the same settings are one run
    assert v["same_run"] and runs["batch 20 · lr 1e-3"] == runs["lr 1e-3 · batch 20"]
    final = {t: runs[t]["final_loss"] for t in panels}
    assert final["batch 500 · lr 1e-3"] > final["batch 20 · lr 1e-3"]
    assert final["lr 1e-4 · batch 20"] > final["lr 1e-3 · batch 20"]
    # the reference panel reaches green within the short run; lr 1e-4 does not
    assert rows["batch 20 · lr 1e-3"]["epochs_until_green"] is not None
    assert rows["lr 1e-4 · batch 20"]["epochs_until_green"] is None
    # signed targets: the YES-0 hidden-layer errors grow with depth, the linear last layer brings it down
    errors = v["layer_errors"]
    assert len(errors) == 5
    assert errors[0] < errors[1] < errors[2] < errors[3]
    assert errors[4] < errors[3] and errors[4] == pytest.approx(v["upper"])


def check_patch_recovery(nb, v):
    assert v["fast"] and v["EPOCHS"] == 25
    assert v["status"] == "finished" and v["n_epochs"] == v["EPOCHS"]
    assert all(v["bounds_updated"])
    assert v["image_shape"] == [128, 128] == v["clean_shape"]
    assert v["image_finite"]
    assert sorted(v["snapshot_epochs"]) == sorted({0, 2, 12, 25})
    # training recovers the picture: better than the untrained network, by a margin
    assert v["psnr_final"] > v["psnr_untrained"] + 3, (v["psnr_untrained"], v["psnr_final"])
    assert v["final_zone"] in ZONES and v["final_zone"] != "red"
    # the figure: the clean image and the snapshots, with the cloud underneath
    assert v["n_image_axes"] == 1 + len(v["snapshot_epochs"]) and v["has_cloud_axes"]
    assert png_count(nb) >= 1
    assert widget_count(nb) >= 1, "the live chart was displayed"
    assert v["hooks_left"] == 0, "monitor.close() removed its hooks"


def check_classroom(nb, v):
    assert v["fast"] and v["BAD_EPOCHS"] == 30 and v["GOOD_EPOCHS"] == 60
    assert v["n_runs"] == 3 and not v["running"]
    bad, good = v["bad"], v["good"]
    # the bad learning rate stays red, every epoch, clearly above YES-0 in the short run
    assert bad["config"]["optimizer"] == "sgd" and bad["config"]["lr"] == pytest.approx(1e-6)
    assert bad["status"] == "finished" and len(bad["zones"]) == v["BAD_EPOCHS"]
    assert set(bad["zones"]) == {"red"}
    assert all(loss > bad["upper"] for loss in bad["losses"])
    assert 10 * math.log10(bad["losses"][-1] / bad["upper"]) > 1.0
    # the fix reaches green (and leaves red early)
    assert good["config"]["optimizer"] == "adam" and good["config"]["lr"] == pytest.approx(1e-3)
    assert good["status"] == "finished" and len(good["zones"]) == v["GOOD_EPOCHS"]
    assert good["epochs_to_green"] is not None
    assert good["zones"].index("green") + 1 == good["epochs_to_green"]
    assert "red" not in good["zones"][5:]
    assert good["zones"][-1] == "green"
    # same data, same YES-0 for both runs, and every epoch had its bounds (every=1)
    assert bad["upper"] == pytest.approx(good["upper"])
    assert all(bad["bounds_updated"]) and all(good["bounds_updated"])
    # the depth view: non-negative targets (|Ax|) and ReLU, so per-layer YES-0 does not grow (Theorem 1)
    errors = v["layer_errors"]
    assert len(errors) == 5 and errors[-1] == pytest.approx(bad["upper"])
    assert all(b <= a * (1 + 1e-9) for a, b in zip(errors, errors[1:])), errors
    assert v["show_depth"]
    assert png_count(nb) >= 2
    assert widget_count(nb) >= 3  # the Playground, and again in each training cell
    # the static fallback: every widget output carries a picture, refreshed when the runs ended
    views = [out for out in outputs_of(nb) if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert views and all("image/png" in out["data"] for out in views)
    pictures = [out["data"]["image/png"] for out in views]
    assert len(set(pictures)) == 1, "every copy of the Playground shows the state at the end of the lesson"
    assert len(base64.b64decode(pictures[0])) > 10_000
    # the text matches the runs: the schedule named, the margin printed, the fall-back question answered
    text = markdown(nb)
    out = printed(nb)
    assert bad["config"]["schedule"] == "step" and "step" in text and "plain SGD" not in text
    assert "YES-BOUNDS.md" not in text
    above = 10 * math.log10(bad["losses"][-1] / bad["upper"])
    assert f"{above:.2f} dB above YES-0" in out and above > 1.0  # "more than 1 dB above it at the end"
    assert v["left_red"] is not None and v["left_red"] <= 5  # "within a few epochs"
    fell_back = "yellow" in good["zones"][good["epochs_to_green"]:]
    assert v["fell_back"] == fell_back
    assert ("fell back to yellow at least once" if fell_back else "stayed green") in out
    # "expect a flat line": the per-layer YES-0 values agree to three decimals (in dB)
    assert len({f"{10 * math.log10(e):.3f}" for e in errors}) == 1, errors
    assert "flat line" in text
    # the projector layout, one colour per run in chart and table
    assert v["layout"] == "compact"
    assert len(set(v["row_colors"])) == 3 and v["loss_color"] == [v["row_colors"][2]]
    # slimTrain from the same start: finished, λ recorded for every epoch (nothing said about who wins)
    slim = v["slim"]
    assert slim["config"]["optimizer"] == "slimtrain" and slim["status"] == "finished"
    assert len(slim["zones"]) == v["SLIM_EPOCHS"] == 20 and slim["upper"] == pytest.approx(good["upper"])
    assert len(v["lambdas"]) == 20 and all(lam > 0 for lam in v["lambdas"])
    assert f"λ from {v['lambdas'][0]:.1e} to {v['lambdas'][-1]:.1e}" in out
    # "try it yourself" lines assign the run (no wall of Run(...) when a student runs them)
    assert "run = pg.retry(" in text and "\n   pg.retry(" not in text


def markdown(nb) -> str:
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def check_lightning(nb, v):
    assert v["fast"] and v["EPOCHS"] == 40
    assert v["status"] == "finished" and v["n_epochs"] == v["EPOCHS"]
    assert all(v["bounds_updated"]), "every=1: the paper's cadence"
    assert v["zones"][0] == "red" and v["final_zone"] in ("yellow", "green")
    assert v["n_steps"] == v["EPOCHS"] * 16  # every batch's loss was logged (800 samples / 50)
    assert v["hooks_left"] == 0
    assert widget_count(nb) >= 1, "the live chart was displayed"
    assert f"final zone {v['final_zone']}" in printed(nb)


def _run_values(var: str) -> str:
    return (f"{{'status': {var}.status, 'zones': [r.zone for r in {var}.epochs], "
            f"'losses': [r.loss for r in {var}.epochs], 'upper': {var}.upper, "
            f"'bounds_updated': [r.bounds_updated for r in {var}.epochs], "
            f"'epochs_to_green': {var}.epochs_to_green, "
            f"'config': {{k: {var}.config.get(k) for k in ('lr', 'batch_size', 'optimizer', 'epochs', 'schedule')}}}}")


PROBES = {
    "01-quickstart.ipynb": ("""{
        "fast": os.environ.get("YESWIDGET_FAST") == "1", "EPOCHS": EPOCHS, "n_runs": len(pg.runs),
        "running": pg.running, "status": run.status, "n_epochs": len(run.epochs),
        "final_zone": run.final_zone, "zones": [r.zone for r in run.epochs], "upper": run.upper,
        "lowers": [r.lower for r in run.epochs], "cloud_upper": pg.cloud.upper}""", check_quickstart),
    "02-your-own-training-loop.ipynb": ("""{
        "fast": FAST, "EPOCHS": EPOCHS, "status": live.run.status, "n_epochs": len(live.run.epochs),
        "alive": live.thread.is_alive(), "lrs": [r.lr for r in live.run.epochs],
        "losses": [r.loss for r in live.run.epochs], "zones": [r.zone for r in live.run.epochs],
        "final_zone": live.run.final_zone, "epochs_to_green": live.run.epochs_to_green,
        "optimizer_lr": optimizer.param_groups[0]["lr"], "slider": live.lr_slider.value,
        "step_losses": live.run.step_losses}""", check_own_loop),
    "03-paper-phase-retrieval.ipynb": (None, check_phase_retrieval),
    "04-paper-signal-denoising.ipynb": (None, check_signal_denoising),
    "05-patch-recovery.ipynb": ("""{
        "fast": FAST, "EPOCHS": EPOCHS, "status": run.status, "n_epochs": len(run.epochs),
        "bounds_updated": [r.bounds_updated for r in run.epochs], "final_zone": run.final_zone,
        "image_shape": list(image.shape), "clean_shape": list(clean.shape),
        "image_finite": bool(np.isfinite(image).all()), "snapshot_epochs": sorted(snapshots),
        "psnr_untrained": float(psnr(snapshots[0])), "psnr_final": float(psnr(image)),
        "n_image_axes": sum(bool(ax.images) for ax in fig.axes),
        "has_cloud_axes": any(len(ax.collections) >= 3 and not ax.images for ax in fig.axes),
        "hooks_left": sum(len(m._forward_hooks) + len(m._forward_pre_hooks)
                          for m in monitor.model.modules())}""", check_patch_recovery),
    "07-lightning.ipynb": ("""{
        "fast": FAST, "EPOCHS": EPOCHS, "status": run.status, "n_epochs": len(run.epochs),
        "bounds_updated": [r.bounds_updated for r in run.epochs], "zones": [r.zone for r in run.epochs],
        "final_zone": run.final_zone, "n_steps": len(run.step_losses),
        "hooks_left": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())}""",
                           check_lightning),
    "06-classroom.ipynb": ("""{
        "fast": FAST, "BAD_EPOCHS": BAD_EPOCHS, "GOOD_EPOCHS": GOOD_EPOCHS, "n_runs": len(pg.runs),
        "running": pg.running, "bad": %s, "good": %s, "layer_errors": layer_errors,
        "slim": %s, "SLIM_EPOCHS": SLIM_EPOCHS, "lambdas": lambdas,
        "show_depth": pg.chart.show_depth, "left_red": left_red, "fell_back": fell_back,
        "layout": pg.layout_name, "row_colors": [r["color"] for r in pg.table.rows],
        "loss_color": list(pg.chart.loss_line.colors)}""" % (_run_values("bad"), _run_values("good"),
                                                             _run_values("slim")),
                           check_classroom),
}


def check_reopen(nb, v):
    assert v["n_runs"] == 2 and v["labels"][0] != v["labels"][1]
    assert v["chart_epochs"] == v["EPOCHS"] and v["past"] == 1
    assert v["first_equal"] and v["statuses"] == ["finished", "finished"]
    assert v["table_zones"] == v["final_zones"]


PROBES["08-reopen-runs.ipynb"] = ("""{
    "fast": FAST, "EPOCHS": EPOCHS, "n_runs": len(box.runs), "labels": [r.label for r in box.runs],
    "chart_epochs": len(box.chart.loss_line.x), "past": len(box.chart.past_runs),
    "first_equal": box.runs[0] == first, "statuses": [r.status for r in box.runs],
    "table_zones": [row["final_zone"] for row in box.table.rows], "final_zones": [r.final_zone for r in box.runs]}""",
                                  check_reopen)

def check_tuning(nb, v):
    assert v["fast"] and v["EPOCHS"] == 12
    # the range test: a range around its suggestion, within the learning rates it tried
    lo, hi = v["range"]
    assert 1e-5 <= lo <= v["suggested"] <= hi <= 1.0 and v["upper"] > 0
    assert "suggested lr" in printed(nb) and png_count(nb) >= 2  # the range test's drawing and the grid
    # the sweep: 6 rows, every cell filled, the diverging lr pruned with its reason, no green run pruned
    assert v["n_rows"] == 6 and v["filled"] == 6 and v["loaded"] == 6
    for row in v["rows"]:
        if row["lr"] == 0.5:
            assert row["pruned"] and re.fullmatch(r"red after \d+ epochs", row["prune_reason"])
            assert row["epochs_run"] < v["EPOCHS"]
        assert not (row["pruned"] and row["first_green"] is not None)
    assert v["cell_colors"] == v["zone_colors"]
    # the best cell's run shown over its cloud, as many epochs as it ran
    assert v["shown"] == v["best"]["index"] and v["chart_epochs"] == v["best"]["epochs_run"]
    assert widget_count(nb) >= 1 and v["png"]


PROBES["09-tuning.ipynb"] = ("""{
    "fast": FAST, "EPOCHS": EPOCHS, "range": list(finder.range), "suggested": finder.suggested,
    "upper": finder.upper, "n_rows": len(sweep.results), "filled": view.grid.filled, "loaded": len(again.results),
    "rows": [{k: r[k] for k in ("lr", "batch_size", "pruned", "prune_reason", "epochs_run", "first_green",
                                "final_zone")} for r in sweep.results],
    "cell_colors": sorted(c.color for line in view.grid.cells for c in line),
    "zone_colors": sorted(__import__("yeswidget.core.zones", fromlist=["ZONE_COLORS"]).ZONE_COLORS[r["final_zone"]]
                          for r in sweep.results),
    "shown": view.selected, "best": {"index": best["index"], "epochs_run": best["epochs_run"]},
    "chart_epochs": len(view.chart.loss_line.x), "png": png.is_file()}""", check_tuning)

PAPER_PROBE = """{
    "fast": FAST, "EPOCHS": EPOCHS, "panels": list(PANELS), "n_axes": len(fig.axes),
    "axes_titles": [ax.get_title() for ax in fig.axes],
    "band_collections": [len(ax.collections) for ax in fig.axes],
    "table": table, "upper": cloud.upper, "layer_errors": list(cloud.layer_errors),
    "same_run": runs[list(PANELS)[0]] is runs[list(PANELS)[3]],
    "runs": {t: {"status": r.status, "zones": [e.zone for e in r.epochs], "final_loss": r.final.loss,
                 "bounds_updated": [e.bounds_updated for e in r.epochs]} for t, r in runs.items()}}"""


# --------------------------------------------------------------------------- #
# the tests
# --------------------------------------------------------------------------- #
def test_every_notebook_has_a_check():
    names = {path.name for path in NOTEBOOKS}
    assert names == set(PROBES), f"notebooks without a check: {names - set(PROBES)}; missing: {set(PROBES) - names}"


#: executed by test_saved_lesson.py, whose saved-lesson check needs the executed notebook too (with this probe)
RUN_ELSEWHERE = {"06-classroom.ipynb"}


@pytest.mark.notebook
@pytest.mark.parametrize("name", sorted(set(PROBES) - RUN_ELSEWHERE))
def test_notebook_runs(name, monkeypatch, record_property):
    path = NOTEBOOK_DIR / name
    if not path.exists():
        pytest.fail(f"{name} is missing from notebooks/")
    probe, check = PROBES[name]
    nb, values, seconds, cpu = execute(path, probe or PAPER_PROBE, monkeypatch)
    record_property("seconds", round(seconds, 1))
    record_property("kernel_cpu_seconds", round(cpu, 1))
    print(f"\n{name}: executed in {seconds:.1f} s (kernel CPU time {cpu:.1f} s)")
    check(nb, values)


def _repo_notebooks() -> list[Path]:
    found = []
    for path in ROOT.rglob("*.ipynb"):
        if not SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
            found.append(path)
    return sorted(found)


def test_notebooks_are_stored_clean():
    """Every notebook in the repository: no outputs, no execution counts, no widget state, small."""
    paths = _repo_notebooks()
    assert {p.name for p in NOTEBOOKS} <= {p.name for p in paths}
    assert len(NOTEBOOKS) >= 6
    # this machine's paths (the checkout, the home and temp folders) must not leak into a notebook
    machine_paths = {str(ROOT), str(Path.home()), tempfile.gettempdir()} - {"/", ""}
    for path in paths:
        where = path.relative_to(ROOT)
        size = path.stat().st_size
        assert size < MAX_BYTES, f"{where} is {size} bytes"
        raw = path.read_text(encoding="utf-8")
        nb = nbformat.reads(raw, as_version=4)
        nbformat.validate(nb)
        assert "widgets" not in nb.metadata, f"{where} stores widget state in its metadata"
        assert "application/vnd.jupyter.widget-state+json" not in raw
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", where
        for index, cell in enumerate(nb.cells):
            assert "widgets" not in cell.get("metadata", {}), f"{where} cell {index} stores widget state"
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{where} cell {index} has stored outputs"
                assert cell.execution_count is None, f"{where} cell {index} has an execution count"
            for machine_path in machine_paths:
                assert machine_path not in cell.source, f"{where} cell {index} names a path on this machine"
        assert any(cell.cell_type == "markdown" for cell in nb.cells), f"{where} explains nothing"


def test_notebooks_read_the_fast_switch():
    """Each notebook picks its epochs from YESWIDGET_FAST, and the full run is the paper's."""
    full = {"01-quickstart.ipynb": "800", "03-paper-phase-retrieval.ipynb": "800",
            "04-paper-signal-denoising.ipynb": "1800", "05-patch-recovery.ipynb": "1000",
            "06-classroom.ipynb": "150", "07-lightning.ipynb": "200", "09-tuning.ipynb": "60"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
        assert 'os.environ.get("YESWIDGET_FAST") == "1"' in code, path.name
        if path.name in full:
            assert re.search(r"EPOCHS = \d+ if (FAST|os\.environ.*) else " + full[path.name] + r"\b", code), path.name
