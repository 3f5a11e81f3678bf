"""The live sweep view (widgets/sweep_view), its grid (view/sweep_grid) and the static picture used
by ``yeswidget show`` on a sweep folder: widget state read with get_state()."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from tuning_tasks import tiny_abs

import yeswidget
from yeswidget import cli
from yeswidget.core.zones import ZONE_COLORS
from yeswidget.view.sweep_grid import PENDING_COLOR, sweep_grid
from yeswidget.widgets.chart import CloudChart
from yeswidget.widgets.sweep_view import SweepView

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: tiny_abs with Adam, 12 epochs (measured): at batch 16, lr 0.03 turns green at epoch 11 and lr 0.5
#: is pruned red after 5 epochs; at batch 32 both end yellow
LRS, BATCHES = (0.03, 0.5), (16, 32)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return yeswidget.sweep(tiny_abs, lr=LRS, batch_size=BATCHES, epochs=12, backend="inline",
                           folder=tmp_path_factory.mktemp("sweep-view"))


def _state(view):
    return [[(b.get_state()["description"], b.style.get_state()["button_color"]) for b in line]
            for line in view.cells]


def test_the_view_fills_in_as_runs_finish_and_colours_cells_by_final_zone(tmp_path):
    gate, first_row = threading.Event(), threading.Event()

    def hold_after_the_first_row(row):  # the sweep's thread waits here until the test has looked
        first_row.set()
        gate.wait(60)

    sweep = yeswidget.sweep(tiny_abs, lr=LRS, batch_size=BATCHES, epochs=12, backend="inline",
                            folder=tmp_path, wait=False)
    sweep.subscribe(hold_after_the_first_row)
    view = SweepView(sweep)
    try:
        assert first_row.wait(60) and view.flush()
        colors = [c for line in _state(view) for _, c in line]
        assert len(sweep.results) == 1 and colors.count(PENDING_COLOR) == 3  # one cell so far
        assert "1 of 4 runs finished" in view.status.get_state()["value"]
        gate.set()
        assert sweep.wait(120) and view.flush()
        rows = {(r["lr"], r["batch_size"]): r for r in sweep.results}
        assert view.grid.xs == list(LRS) and view.grid.ys == list(BATCHES)
        for j, batch in enumerate(BATCHES):
            for i, lr in enumerate(LRS):
                text, color = _state(view)[j][i]
                row = rows[(lr, batch)]
                assert color == ZONE_COLORS[row["final_zone"]]
                expected = (f"green at {row['first_green']}" if row["first_green"] is not None else
                            f"pruned at {row['epochs_run']}" if row["pruned"] else row["final_zone"])
                assert text == expected
        assert rows[(0.03, 16)]["final_zone"] == "green" and rows[(0.5, 16)]["pruned"]
        assert {rows[(lr, 32)]["final_zone"] for lr in LRS} == {"yellow"}
    finally:
        gate.set()
        view.close()


def test_clicking_a_cell_shows_that_run_over_its_cloud(finished):
    view = finished.view()
    try:
        assert view.flush() and view.detail.children == ()
        view.cells[0][1].click()  # batch 16, lr 0.5: the pruned one
        assert view.flush()
        (chart,) = view.detail.children
        row = next(r for r in finished.results if (r["lr"], r["batch_size"]) == (0.5, 16))
        run = finished.run(row)
        assert isinstance(chart, CloudChart) and view.selected == row["index"]
        assert chart.run == run and row["prune_reason"].startswith("red after")
        assert np.asarray(chart.loss_line.x).tolist() == list(range(1, row["epochs_run"] + 1))
        view.cells[0][0].click()  # another cell replaces it
        assert view.flush() and view.detail.children[0] is not chart
    finally:
        view.close()


def test_any_two_axes_and_colouring_by_first_green(finished):
    configs = [c.as_dict() for c in finished.configs]
    grid = sweep_grid(configs, finished.results, x="batch_size", y="lr", color_by="first_green")
    assert grid.xs == list(BATCHES) and grid.ys == list(LRS) and grid.filled == 4
    green, yellow = grid.cells[0]  # lr 0.03: green at batch 16 (shaded by how early), yellow at 32
    assert green.row["first_green"] == 11 and green.color not in (ZONE_COLORS["green"], PENDING_COLOR)
    assert yellow.color == ZONE_COLORS["yellow"] and grid.cells[1][0].color == ZONE_COLORS["red"]
    earlier = sweep_grid(configs, [dict(green.row, first_green=2)], x="batch_size", y="lr", color_by="first_green")
    assert earlier.cells[0][0].color != green.color  # an earlier green is a deeper shade
    with pytest.raises(ValueError, match="x must be one of"):
        sweep_grid(configs, [], x="momentum")
    with pytest.raises(ValueError, match="two different axes"):
        sweep_grid(configs, [], x="lr", y="lr")
    with pytest.raises(TypeError, match="needs a yeswidget Sweep"):
        SweepView([1, 2])


def test_yeswidget_show_on_a_sweep_folder_writes_the_grid_picture(finished, capsys, tmp_path):
    import matplotlib.image

    out = tmp_path / "grid.png"
    assert cli.main(["show", str(finished.folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 of 4 runs" in printed and "red after" in printed and f"wrote {out}" in printed
    pixels = matplotlib.image.imread(out)[..., :3]
    for zone in ("red", "green"):  # both zones' cell colours are painted
        rgb = np.array([int(ZONE_COLORS[zone][k:k + 2], 16) / 255 for k in (1, 3, 5)])
        assert (np.abs(pixels - rgb).max(axis=-1) < 0.02).sum() > 500, zone
    assert cli.main(["show", str(finished.folder)]) == 0 and (finished.folder / "sweep.png").is_file()
