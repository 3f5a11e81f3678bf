"""Static matplotlib pictures: read the PNG back and check pixel colours in each band."""
from __future__ import annotations

import ast
import colorsys
import math
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
import matplotlib.image as mpimg  # noqa: E402

from yeswidget.core.run import EpochRecord, Run  # noqa: E402
from yeswidget.view import render, scene  # noqa: E402
from yeswidget.view.render import ZONE_COLORS, draw_cloud, draw_depth, save_cloud  # noqa: E402

UPPER, LOWER = 1.0, 0.1          # 0 dB and -10 dB
N_EPOCHS = 40


def loss_db_at(t):
    """Loss falls linearly in dB from +10 dB (epoch 1) to -20 dB (epoch 40)."""
    return 10.0 - 30.0 * (t - 1) / (N_EPOCHS - 1)


def make_run(n_epochs=N_EPOCHS, steps=10, run_id="r", lr=1e-3, with_steps=True):
    run = Run(run_id=run_id, config={"lr": lr, "batch_size": 32}, depth=3, upper=UPPER,
              layer_errors=[1.0, 0.9, 1.0])
    for t in range(1, n_epochs + 1):
        loss = 10 ** (loss_db_at(t) / 10)
        zone = "red" if loss > UPPER else ("yellow" if loss > LOWER else "green")
        run.epochs.append(EpochRecord(t, loss, UPPER, LOWER, zone, yes_k=[0.3, LOWER]))
        if with_steps:
            for k in range(steps):
                run.step_positions.append(t - 1 + (k + 1) / steps)
                run.step_losses.append(loss * (1.15 if k % 2 else 0.87))
    return run


def blended(hex_color, alpha=0.4):
    """The colour of a band drawn at ``alpha`` over a white background, as 0..1 RGB."""
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return 1.0 - alpha * (1.0 - rgb)


def pixel(image, fig, x, y, half=2, reduce=np.median):
    """Colour (RGB 0..1) around data point (x, y) of the first axes, reduced over a small patch."""
    ax = fig.axes[0]
    px, py = ax.transData.transform((x, y))
    height = image.shape[0]
    col, row = int(round(px)), int(round(height - py))
    patch = image[row - half: row + half + 1, col - half: col + half + 1, :3]
    return reduce(patch.reshape(-1, 3), axis=0)


def hue_deg(rgb):
    return colorsys.rgb_to_hsv(*rgb)[0] * 360.0


def hue_distance(a, b):
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    path = tmp_path_factory.mktemp("render") / "cloud.png"
    fig = save_cloud(make_run(), path, dpi=100, size=(8, 4.5))
    return fig, mpimg.imread(str(path)), path


def test_png_has_the_size_asked_for(png):
    fig, image, path = png
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.shape[:2] == (450, 800)


@pytest.mark.parametrize(
    "zone,x,where",
    [
        ("red", 35.0, "above"),     # loss is at about -16 dB there, far below
        ("yellow", 5.0, "middle"),  # loss is at about +7 dB there, far above
        ("green", 5.0, "below"),
    ],
)
def test_band_pixels_have_the_paper_colours(png, zone, x, where):
    fig, image, _ = png
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    up, lo = 10 * math.log10(UPPER), 10 * math.log10(LOWER)
    y = {"above": (up + top) / 2, "middle": (up + lo) / 2, "below": (lo + bottom) / 2}[where]
    got = pixel(image, fig, x, y)
    want = blended(ZONE_COLORS[zone])
    np.testing.assert_allclose(got, want, atol=0.05)
    assert hue_distance(hue_deg(got), hue_deg(want)) < 8.0


def test_loss_line_is_dark(png):
    fig, image, _ = png
    for t in (3, 20, 38):
        darkest = pixel(image, fig, float(t), loss_db_at(t), half=2, reduce=np.min)
        assert darkest.max() < 0.3, (t, darkest)


def test_yes0_line_is_red(png):
    fig, image, _ = png
    reds = []
    for dx in (0.3, 0.5, 0.7):
        rgb = pixel(image, fig, 30.0 + dx, 10 * math.log10(UPPER), half=1, reduce=np.median)
        reds.append(rgb)
    rgb = np.mean(reds, axis=0)
    assert rgb[0] > 0.6 and rgb[1] < 0.45 and rgb[2] < 0.45, rgb


def test_svg_is_written(tmp_path):
    path = tmp_path / "cloud.svg"
    save_cloud(make_run(), path)
    text = path.read_text()
    assert "<svg" in text
    assert path.stat().st_size > 1000


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(ValueError):
        save_cloud(make_run(), tmp_path / "cloud.jpg")


def test_axes_and_labels():
    fig = draw_cloud(make_run(), title="my run")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss (dB)"
    assert ax.get_title() == "my run"
    bottom, top = ax.get_ylim()
    assert top > 10.0 and bottom < -20.0
    assert ax.get_xlim()[0] == 0.0 and ax.get_xlim()[1] >= N_EPOCHS
    # the lower edge is dashed, YES-0 solid
    styles = {line.get_label(): line.get_linestyle() for line in ax.get_lines()}
    assert styles["lower edge"] == "--" and styles["YES-0"] == "-"
    # three bands at 40% opacity
    fills = [c for c in ax.collections if c.get_alpha() == pytest.approx(0.4)]
    assert len(fills) == 3


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_other_scales(scale, tmp_path):
    fig = save_cloud(make_run(), tmp_path / f"cloud_{scale}.png", scale=scale)
    ax = fig.axes[0]
    assert ax.get_yscale() == ("log" if scale == "log" else "linear")
    bottom, top = ax.get_ylim()
    assert top > 10.0 and 0.0 <= bottom < 0.01  # the smallest loss is 0.01


def test_past_runs_are_faded_and_labelled():
    past = make_run(run_id="old", lr=1e-2)
    fig = draw_cloud(make_run(), past_runs=[past])
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert past.label in lines
    assert lines[past.label].get_alpha() < 1.0


@pytest.mark.parametrize("n_epochs", [0, 1])
def test_runs_with_zero_or_one_epoch(n_epochs, tmp_path):
    run = make_run(n_epochs=n_epochs)
    fig = save_cloud(run, tmp_path / "few.png")
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert bottom < 0.0 < top            # YES-0 (0 dB) is inside the plot
    assert ax.get_xlim()[1] >= 1.0


def test_empty_run_without_bounds():
    fig = draw_cloud(Run(run_id="nothing"))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "no data yet" in texts


def test_missing_step_data():
    fig = draw_cloud(make_run(with_steps=False))
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "minibatch loss" not in labels and "epoch loss" in labels


def test_diverged_losses_are_clipped_to_the_top_and_marked(tmp_path):
    run = make_run(n_epochs=10)
    run.epochs.append(EpochRecord(11, math.inf, UPPER, LOWER, "red"))
    run.epochs.append(EpochRecord(12, math.nan, UPPER, LOWER, "red"))
    run.step_positions += [10.5, 11.5]
    run.step_losses += [math.inf, math.nan]
    run.status = "diverged"
    fig = save_cloud(run, tmp_path / "diverged.png")
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert math.isfinite(top) and top < 20.0
    loss = next(line for line in ax.get_lines() if line.get_label() == "epoch loss")
    y = np.asarray(loss.get_ydata(), dtype=float)
    assert np.all(np.isfinite(y)) and y[-1] == pytest.approx(top) and y[-2] == pytest.approx(top)
    crosses = [line for line in ax.get_lines() if line.get_marker() == "x"]
    assert crosses and np.allclose(crosses[0].get_xdata(), [11, 12])
    assert any("diverged" in t.get_text() for t in ax.texts)


def test_marks_are_vertical_lines():
    run = make_run(n_epochs=10)
    run.marks.append({"position": 4.5, "kind": "batch_size", "value": 64})
    fig = draw_cloud(run)
    ax = fig.axes[0]
    assert any("batch → 64" in t.get_text() for t in ax.texts)
    vertical = [line for line in ax.get_lines()
                if np.allclose(np.asarray(line.get_xdata(), dtype=float), 4.5)]
    assert vertical and vertical[0].get_linestyle() == "--"


def test_draw_into_given_axes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2, 2)
    assert draw_cloud(make_run(n_epochs=3), ax=ax) is fig


def test_draw_depth():
    errors = [0.5, 0.4, 0.45, 0.3]
    fig = draw_depth(errors)
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(line.get_ydata(), 10 * np.log10(errors))
    assert ax.get_xlabel() == "layer"
    assert draw_depth([]).axes[0].texts


def test_render_uses_no_pyplot_and_no_widgets():
    source = Path(render.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not any(m.startswith(("matplotlib.pyplot", "ipywidgets", "bqplot", "pylab")) for m in imported)
    assert "matplotlib.backends.backend_agg" in imported


def test_shared_helpers():
    assert scene.check_scale("dB") == "db"
    with pytest.raises(ValueError):
        scene.check_scale("furlongs")
    d = scene.to_display([1.0, 0.0, -1.0, math.inf, math.nan], "db")
    assert d[0] == 0.0 and d[1] == -math.inf and math.isnan(d[2]) and d[3] == math.inf and math.isnan(d[4])
    bottom, top = scene.y_limits([[0.0, -10.0], [math.nan, math.inf]], "db")
    assert bottom < -10.0 and top > 0.0 and math.isfinite(top)
    x, up, lo = scene.band_geometry([1, 2, 3], [1, 1, 1], [0.5, math.nan, 0.2], x_end=3.5)
    np.testing.assert_allclose(x, [0, 1, 2, 3, 3.5])
    np.testing.assert_allclose(lo, [0.5, 0.5, 0.5, 0.2, 0.2])
