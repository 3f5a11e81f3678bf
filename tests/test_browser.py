"""The Playground in a real browser: JupyterLab (and Notebook 7) driven by Chromium via Playwright.

What this checks, end to end (kernel, comms, bqplot and the anywidget ES modules):

* the chart draws the three zone bands in the paper's colours, the loss line and
  the zone badge; the runs table shows the first run;
* moving the learning rate and clicking Retry adds a second run (a faded past-run
  line in the chart, a second table row);
* clicking the first table row puts its learning rate back into the slider;
* the same notebook renders in Notebook 7;
* nothing is fetched from outside 127.0.0.1: every non-loopback request is
  recorded and aborted, and the widgets still render.

Screenshots go to the test's ``tmp_path`` and are copied to ``test-output/browser/``
at the repository root (gitignored).

Needs Chromium (``/usr/bin/chromium``, or ``YESWIDGET_CHROMIUM``) and the Python
``playwright`` package (Playwright's own browser download is not used). Without
them the tests are skipped, except under ``CI=true`` where they fail.
"""
from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_support import (
    _COMPACT_BOXES_JS,
    _COMPACT_PIXELS_JS,
    BAND_COLORS,
    PROJECTOR,
    PROJECTOR_SCALE,
    RUN_MS,
    ZONES,
    Guarded,
    _assert_offline,
    _check_chart,
    _color,
    _distinguishable,
    _lr_slider,
    _measure_compact,
    _open_notebook,
    _output_copy_dir,
    _rows,
    _run_all_cells,
    _set_theme,
    _wait_for_output,
    _wait_for_playground,
    _wait_rows_ended,
)

pytestmark = pytest.mark.browser

COMPACT_EPOCHS = 30
LAB_EPOCHS = 60  # long enough for lr 1e-3 to reach green (~epoch 45): the README screenshot shows all zones
NB7_EPOCHS = 8
OFFLINE_EPOCHS = 4
FIRST_LR_TEXT = "1.0e-3"  # the slider readout (".1e") of Playground's default lr
SECOND_LR_TEXT = "1.0e-2"


# --------------------------------------------------------------------------
# the notebooks
# --------------------------------------------------------------------------
def _write_notebook(path: Path, epochs: int) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# yeswidget browser test\nThe Playground on a small task."),
        nbformat.v4.new_code_cell(
            "from yeswidget.widgets.playground import Playground\n"
            "from yeswidget.training.tasks import phase_retrieval\n"
            f"pg = Playground(phase_retrieval(), epochs={epochs})\n"
            "pg"
        ),
        nbformat.v4.new_code_cell(
            "run = pg.retry()\n"
            "pg.wait(timeout=240)\n"
            "print(f'first run {run.status}')"
        ),
    ]
    nbformat.write(nb, str(path))


def _write_classifier_notebook(path: Path) -> None:
    """A cross-entropy classifier on scikit-learn's digits, trained in its cell (LiveCloud)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "import torch\n"
        "from sklearn.datasets import load_digits\n"
        "from yeswidget import LiveCloud\n"
        "from yeswidget.training.tasks import mlp\n"
        "digits = load_digits()\n"
        "X = torch.tensor(digits.data / 16.0, dtype=torch.float32)\n"
        "labels = torch.tensor(digits.target)\n"
        "torch.manual_seed(0)\n"
        "model = mlp((64, 64, 64, 10))\n"
        "opt = torch.optim.Adam(model.parameters(), lr=1e-2)\n"
        "loss_fn = torch.nn.CrossEntropyLoss()\n"
        "live = LiveCloud(model, X, labels, optimizer=opt, loss=loss_fn, every=5)\n"
        "display(live)\n"
        "for epoch in live.epochs(15):\n"
        "    for batch in torch.randperm(len(X)).split(64):\n"
        "        opt.zero_grad(); loss = loss_fn(model(X[batch]), labels[batch]); loss.backward(); opt.step()\n"
        "        live.log(loss)\n"
        "live.wait()\n"
        "print(f'classifier {live.run.final_zone} {live.run.final.accuracy:.3f} {live.run.config[\"loss\"]}')"
    )]
    nbformat.write(nb, str(path))



@pytest.fixture(scope="module")
def jupyter(jupyter_server):
    """The module's server with this file's notebooks in its root."""
    root = jupyter_server.root
    _write_notebook(root / "lab.ipynb", LAB_EPOCHS)
    _write_notebook(root / "notebook7.ipynb", NB7_EPOCHS)
    _write_notebook(root / "offline.ipynb", OFFLINE_EPOCHS)
    _write_classifier_notebook(root / "classifier.ipynb")
    return jupyter_server


# --------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------
@pytest.mark.timeout(420)
def test_playground_in_jupyterlab(jupyter, guarded):
    g = guarded("lab")
    page = g.page
    workspace = f"yw-{uuid.uuid4().hex[:10]}"
    try:
        # 1. open in a fresh workspace, run all cells
        _open_notebook(page, jupyter, jupyter.url(f"/lab/workspaces/{workspace}/tree/lab.ipynb", reset=""),
                       "lab.ipynb")
        _run_all_cells(page)
        playground = _wait_for_playground(page)
        _wait_for_output(page, "first run finished")
        jupyter.remember_kernels()

        # 2. the chart, the badge, one finished run in the table
        _wait_rows_ended(page, playground, 1)
        _check_chart(playground)
        rows = _rows(playground)
        assert rows.count() == 1
        first = rows.first
        assert first.locator("td.yw-col-status").inner_text().strip() == "finished"
        assert first.locator("td.yw-col-lr").inner_text().strip() == "1e-3"
        assert first.locator("td.yw-col-final_zone").inner_text().strip() in ZONES
        pill = playground.locator(".yw-timeline .yw-pill").first
        assert pill.inner_text().strip() in ZONES
        assert playground.locator(".yw-timeline .yw-strip .yw-cell").count() == LAB_EPOCHS
        readout = _lr_slider(playground).locator(".widget-readout")
        assert readout.inner_text().strip() == FIRST_LR_TEXT
        playground.locator(".yw-runs").scroll_into_view_if_needed()
        g.shot("lab-playground.png")
        playground.screenshot(path=str(g.out / "lab-playground-widget.png"))
        shutil.copyfile(g.out / "lab-playground-widget.png", _output_copy_dir() / "lab-playground-widget.png")

        # 3. a new learning rate (typed into the slider's editable readout), then Retry
        readout.click()
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.type(SECOND_LR_TEXT)
        page.keyboard.press("Enter")
        page.wait_for_function(
            "([el, text]) => el.textContent.trim() === text",
            arg=[readout.element_handle(), SECOND_LR_TEXT], timeout=10_000)
        handle = _lr_slider(playground).locator(".noUi-handle").first
        assert float(handle.get_attribute("aria-valuenow")) == pytest.approx(-2.0)
        retry = playground.locator("button.jupyter-button").filter(has_text=re.compile(r"^\s*Retry\s*$"))
        assert retry.count() == 1, "expected one 'Retry' button after the first run"
        retry.first.click()
        _wait_rows_ended(page, playground, 2)
        second = _rows(playground).nth(1)
        assert second.locator("td.yw-col-lr").inner_text().strip() == "1e-2", "Retry did not use the new lr"
        assert second.locator("td.yw-col-status").inner_text().strip() in ("finished", "diverged", "stopped")

        # the first run is now a faded line in its table colour; the loss line shows run 2
        swatch = _rows(playground).first.locator(".yw-swatch")
        past_color = _color(swatch.evaluate("(el) => getComputedStyle(el).backgroundColor"))
        page.wait_for_function(
            """([root, rgb]) => [...root.querySelectorAll('.bqplot.figure svg path.line')].some((p) => {
                 const s = getComputedStyle(p);
                 return s.stroke.replace(/\\s/g, '') === rgb && parseFloat(s.opacity) > 0
                   && parseFloat(s.opacity) < 1 && (p.getAttribute('d') || '').startsWith('M');
               })""",
            arg=[playground.element_handle(), "rgb({},{},{})".format(*past_color)],
            timeout=30_000,
        )
        _check_chart(playground)
        playground.locator(".yw-runs").scroll_into_view_if_needed()
        g.shot("lab-after-retry.png")

        # 4. clicking the first row puts run 1's learning rate back into the slider
        _rows(playground).first.click()
        page.wait_for_function(
            "([el, text]) => el.textContent.trim() === text",
            arg=[readout.element_handle(), FIRST_LR_TEXT], timeout=30_000)
        assert "yw-selected" in (_rows(playground).first.get_attribute("class") or "").split()
        assert float(handle.get_attribute("aria-valuenow")) == pytest.approx(-3.0)
        g.shot("lab-after-select.png")

        _assert_offline(g)
    except Exception:
        _failure_shot(g, "lab-failure.png")
        raise
    finally:
        jupyter.shutdown_sessions("lab.ipynb")


@pytest.mark.timeout(300)
def test_playground_in_notebook7(jupyter, guarded):
    g = guarded("notebook7")
    page = g.page
    try:
        _open_notebook(page, jupyter, jupyter.url("/notebooks/notebook7.ipynb"), "notebook7.ipynb")
        _run_all_cells(page)
        playground = _wait_for_playground(page)
        _wait_for_output(page, "first run finished")
        jupyter.remember_kernels()
        _wait_rows_ended(page, playground, 1)
        _check_chart(playground)
        assert _rows(playground).count() == 1
        playground.locator(".bqplot.figure").first.scroll_into_view_if_needed()
        g.shot("notebook7.png", full_page=False)
        _assert_offline(g)
    except Exception:
        _failure_shot(g, "notebook7-failure.png")
        raise
    finally:
        jupyter.shutdown_sessions("notebook7.ipynb")


@pytest.mark.timeout(300)
def test_widgets_render_without_network(jupyter, guarded):
    """anywidget ES modules (runs table, zone timeline) and bqplot come from the kernel / server only."""
    g = guarded("offline")
    page = g.page
    workspace = f"yw-{uuid.uuid4().hex[:10]}"
    try:
        _open_notebook(page, jupyter, jupyter.url(f"/lab/workspaces/{workspace}/tree/offline.ipynb", reset=""),
                       "offline.ipynb")
        _run_all_cells(page)
        playground = _wait_for_playground(page)
        _wait_for_output(page, "first run finished")
        jupyter.remember_kernels()
        # the anywidget front ends rendered (their ES modules were loaded and ran)
        _wait_rows_ended(page, playground, 1)
        table = playground.locator(".yw-runs table.yw-runs-table")
        assert table.count() == 1
        assert table.locator("thead th.yw-th").count() >= 10
        # ... and their CSS applied (the header cells get the stylesheet's font weight)
        weight = table.locator("thead th.yw-th").first.evaluate("(el) => getComputedStyle(el).fontWeight")
        assert int(weight) >= 600, f"runs table CSS not applied (th font-weight {weight})"
        pill = playground.locator(".yw-timeline .yw-pill").first
        assert pill.inner_text().strip() in ZONES
        assert _color(pill.evaluate("(el) => getComputedStyle(el).backgroundColor")) == _color(
            BAND_COLORS[pill.inner_text().strip()])
        assert playground.locator(".yw-timeline .yw-strip .yw-cell").count() == OFFLINE_EPOCHS
        _check_chart(playground)
        g.shot("offline.png")
        _assert_offline(g)
        network = [urlsplit(url) for url in g.requests]
        hosts = {parts.hostname for parts in network if parts.scheme in ("http", "https", "ws", "wss")}
        assert hosts == {"127.0.0.1"}, f"hosts contacted: {hosts}"
    except Exception:
        _failure_shot(g, "offline-failure.png")
        raise
    finally:
        jupyter.shutdown_sessions("offline.ipynb")


def _failure_shot(g: Guarded, filename: str) -> None:
    try:
        g.shot(filename)
    except Exception:  # the page may be gone; the original failure matters more
        pass


def test_a_cross_entropy_classifier_is_judged_and_drawn_in_its_cross_entropy(jupyter, guarded):
    """Issue: a CE classifier at high accuracy was painted red, its cross-entropy drawn on the dB axis of
    another unit. Now the epochs are judged in the cross-entropy it trains with, and its minibatch line
    shares the cloud's axis (one unit)."""
    g = guarded("classifier")
    page = g.page
    workspace = f"yw-{uuid.uuid4().hex[:10]}"
    try:
        _open_notebook(page, jupyter, jupyter.url(f"/lab/workspaces/{workspace}/tree/classifier.ipynb", reset=""),
                       "classifier.ipynb")
        _run_all_cells(page)
        _wait_for_output(page, "classifier ")
        jupyter.remember_kernels()
        printed = page.locator(".jp-OutputArea-output pre").filter(has_text="classifier ").first.inner_text()
        zone, accuracy, judged = printed.split()[1], float(printed.split()[2]), printed.split()[3]
        assert zone != "red" and accuracy >= 0.95 and judged == "CrossEntropyLoss", printed
        figure = page.locator(".bqplot.figure").first
        figure.wait_for(state="visible", timeout=RUN_MS)
        # the minibatch cross-entropy is in the cloud's unit: no second, right-hand axis
        labels = page.locator(".bqplot.figure .axislabel").evaluate_all("(els) => els.map((e) => e.textContent)")
        assert "loss (dB)" in labels and not any("(minibatch)" in text for text in labels), labels
        status = page.locator(".yes-status").first.inner_text()
        assert "accuracy" in status
        figure.screenshot(path=str(g.out / "classifier-chart.png"))
        shutil.copyfile(g.out / "classifier-chart.png", _output_copy_dir() / "classifier-chart.png")
        g.shot("classifier.png")
    except Exception:
        _failure_shot(g, "classifier-failure.png")
        raise
    finally:
        jupyter.shutdown_sessions("classifier.ipynb")


@pytest.mark.timeout(480)
def test_compact_playground_fits_a_projector_in_light_and_dark(jupyter, guarded):
    """1024×576 CSS px at scale 1.25 (1280×720 at 125 %): controls, chart, badge and timeline in one
    viewport; the loss line ≥ 3:1 against its band; the bands distinguishable under deuteranopia."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "from yeswidget.widgets.playground import Playground\nfrom yeswidget.training.tasks import phase_retrieval\n"
        f"pg = Playground(phase_retrieval(n_samples=500), layout='compact', epochs={COMPACT_EPOCHS}, every=5)\npg"),
        nbformat.v4.new_code_cell("run = pg.retry()\npg.wait(timeout=300)\nprint(f'compact run {run.status}')")]
    nbformat.write(nb, str(jupyter.root / "compact.ipynb"))
    g = guarded("compact", viewport=PROJECTOR, scale=PROJECTOR_SCALE)
    page = g.page
    workspace = f"yw-{uuid.uuid4().hex[:10]}"
    measured = {}
    try:
        _open_notebook(page, jupyter, jupyter.url(f"/lab/workspaces/{workspace}/tree/compact.ipynb", reset=""),
                       "compact.ipynb")
        current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if current.count():  # a lecturer hides the file browser
            current.first.click()
        _run_all_cells(page)
        playground = _wait_for_playground(page)
        _wait_for_output(page, "compact run finished", timeout=300_000)
        jupyter.remember_kernels()
        _wait_rows_ended(page, playground, 1)
        _check_chart(playground)
        for theme in ("JupyterLab Light", "JupyterLab Dark"):
            _set_theme(page, theme)
            playground.evaluate("(el) => el.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            boxes = playground.evaluate(_COMPACT_BOXES_JS)
            tag = "light" if theme.endswith("Light") else "dark"
            png = g.shot(f"compact-{tag}.png", full_page=False)
            seen = boxes["visible"]
            for part in ("controls", "chart", "badge", "timeline"):
                b = boxes[part]
                assert b is not None, f"{tag}: no {part} in the compact Playground"
                assert b["x"] >= seen["x"] - 1 and b["right"] <= min(seen["right"], boxes["window"]["right"]) + 1, \
                    f"{tag}: {part} {b} is not within the visible notebook width {seen}"
                assert b["y"] >= seen["y"] - 1 and b["bottom"] <= min(seen["bottom"], boxes["window"]["bottom"]) + 1, \
                    f"{tag}: {part} {b} is not within the visible notebook height {seen}"
            pixels = playground.evaluate(_COMPACT_PIXELS_JS)
            simulated = g.out / f"compact-{tag}-deuteranopia.png"
            result = _measure_compact(png, pixels, simulated)
            shutil.copyfile(simulated, _output_copy_dir() / simulated.name)
            measured[tag] = result
            assert result["points"] >= 20, f"{tag}: the loss line was not found ({pixels['stroke']})"
            assert result["contrast"] >= 3.0, f"{tag}: loss line contrast {result['contrast']:.2f} < 3 against its band"
            bands = result["bands"]
            assert set(bands) == set(ZONES), f"{tag}: bands found {sorted(bands)}"
            for a, b in (("red", "green"), ("red", "yellow"), ("yellow", "green")):
                ok, why = _distinguishable(bands[a], bands[b])
                assert ok, f"{tag}: {a} and {b} bands look alike under deuteranopia ({why})"
        (g.out / "compact-measured.txt").write_text(repr(measured))
        shutil.copyfile(g.out / "compact-measured.txt", _output_copy_dir() / "compact-measured.txt")
        _assert_offline(g)
    except Exception:
        _failure_shot(g, "compact-failure.png")
        raise
    finally:
        try:
            _set_theme(page, "JupyterLab Light")  # the server's settings are shared with the other tests
        except Exception:
            pass
        jupyter.shutdown_sessions("compact.ipynb")
