"""Issue 22, acceptance 2: the executed classroom lesson, saved to disk, opens in a browser with no
kernel and shows every chart as a picture.

What works without a kernel: JupyterLab and Notebook 7 prefer the widget-view mime type and show
"model not found" for a saved widget output, so the lesson is handed to students as HTML
(``jupyter nbconvert --to html`` of the executed notebook). nbconvert skips the widget view when the
notebook holds no widget state and renders the PNG that every Playground/LiveCloud/chart output
carries in its bundle. This test executes the lesson (``YESWIDGET_FAST=1``), saves it, converts the
saved file and opens the HTML in Chromium with every non-local request blocked.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from browser_support import _chromium_path, _unavailable

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06-classroom.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


#: nbconvert's option (README "Teaching with the Playground") that shows pictures, not empty widget views
STATIC_PRIORITY = '--NbConvertBase.display_data_priority=["text/html", "image/png", "text/plain"]'


def _chart_outputs(nb) -> list[dict]:
    return [out for cell in nb.cells for out in cell.get("outputs", [])
            if WIDGET_VIEW in out.get("data", {})]


@pytest.fixture(scope="module")
def executed_lesson() -> tuple:
    """The classroom notebook executed in fast mode with the notebook tests' probe cell appended:
    (notebook, probe values). Executed once here for both of its tests (it is the suite's longest notebook)."""
    from test_notebooks import PROBES, execute

    with pytest.MonkeyPatch.context() as patch:
        nb, values, seconds, _cpu = execute(NOTEBOOK, PROBES[NOTEBOOK.name][0], patch)
    print(f"\n{NOTEBOOK.name}: executed in {seconds:.1f} s")
    return nb, values


@pytest.fixture(scope="module")
def saved_lesson(executed_lesson, tmp_path_factory) -> Path:
    """The executed lesson saved to disk, as a lecturer would (without the probe cell)."""
    nb = nbformat.from_dict(executed_lesson[0])
    nb.cells = nb.cells[:-1]
    path = tmp_path_factory.mktemp("lesson") / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_the_lesson_runs_and_shows_what_it_promises(executed_lesson):
    """The notebook test of ``06-classroom.ipynb`` (its checks live with the other notebooks' in
    test_notebooks.py; the lesson is executed here once for this test and the saved-lesson one)."""
    from test_notebooks import PROBES

    PROBES[NOTEBOOK.name][1](*executed_lesson)


def test_saved_lesson_shows_every_chart_as_a_picture(saved_lesson):
    chromium = _chromium_path()
    if chromium is None:
        _unavailable("no Chromium at /usr/bin/chromium (install Debian's chromium, or set YESWIDGET_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright Python package is missing ({exc})")

    saved = nbformat.read(saved_lesson, as_version=4)
    charts = _chart_outputs(saved)
    assert charts, "the executed lesson shows no chart output"
    missing = [i for i, out in enumerate(charts) if "image/png" not in out["data"]]
    assert not missing, f"chart outputs {missing} carry no PNG picture in their bundle"

    # as the README says to hand a lesson out: HTML that prefers each output's picture to its live widget
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", STATIC_PRIORITY, str(saved_lesson)],
                   check=True, capture_output=True, timeout=120)
    html = saved_lesson.with_suffix(".html")
    assert html.is_file(), "nbconvert wrote no HTML"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 576}, device_scale_factor=1.25)
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                       else route.abort())
            page.goto(html.as_uri(), wait_until="load")
            shown = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output img')]
                .filter(img => img.src.startsWith('data:image/png') && img.complete && img.naturalWidth > 100
                               && (img.alt || '').startsWith('yeswidget chart'))
                .length""")
            text = page.inner_text("body")
            out = Path(os.environ.get("YESWIDGET_SHOTS", str(saved_lesson.parent)))
            out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out / "saved-lesson.png"), full_page=True)
        finally:
            browser.close()
    assert "model not found" not in text.lower()
    assert shown == len(charts), f"{shown} chart pictures shown for {len(charts)} charts in the saved lesson"
