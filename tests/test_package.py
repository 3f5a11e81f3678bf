"""The package surface: what ``import yeswidget`` loads, what ``dir()`` shows, the typing marker."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

import yeswidget

PACKAGE_DIR = pathlib.Path(yeswidget.__file__).resolve().parent
WIDGET_LIBRARIES = {"ipywidgets", "bqplot", "anywidget", "matplotlib"}


def test_import_loads_no_widget_library_until_a_widget_is_asked_for():
    code = (
        "import json, sys, yeswidget\n"
        "before = sorted({m.split('.')[0] for m in sys.modules})\n"
        "yeswidget.Playground\n"
        "after = sorted({m.split('.')[0] for m in sys.modules})\n"
        "print(json.dumps([before, after]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=PACKAGE_DIR.parent)
    assert result.returncode == 0, result.stderr[-4000:]
    before, after = json.loads(result.stdout.strip().splitlines()[-1])
    assert WIDGET_LIBRARIES.isdisjoint(before), f"import yeswidget loaded {WIDGET_LIBRARIES & set(before)}"
    assert {"ipywidgets", "anywidget"} <= set(after)


def test_dir_lists_every_public_name_including_the_lazy_ones():
    names = dir(yeswidget)
    assert names == sorted(yeswidget.__all__)
    for name in ("CloudChart", "LiveCloud", "Playground", "tasks", "Monitor", "YesCloud", "Run"):
        assert name in names
    for name in yeswidget.__all__:
        assert getattr(yeswidget, name) is not None


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Chart'"):
        yeswidget.Chart  # noqa: B018
    assert not hasattr(yeswidget, "widgetz")


def test_the_package_is_marked_as_typed():
    assert (PACKAGE_DIR / "py.typed").is_file()
