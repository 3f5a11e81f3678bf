"""The package surface: what ``import yeswidget`` loads, what ``dir()`` shows, the typing marker."""
from __future__ import annotations

import json
import pathlib
import re
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


def test_make_demo_installs_only_the_demo_extra_and_opens_the_quickstart(tmp_path):
    """``make -n demo`` in a fresh copy (no venv): the pip lines it would run and the notebook it opens."""
    import shutil
    import subprocess
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[1]
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(root / name, tmp_path / name)
    plan = subprocess.run(["make", "-n", "demo"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert installs == [".venv/bin/pip install torch==2.13.0", '.venv/bin/pip install -e ".[demo]"'], plan
    assert "01-quickstart.ipynb" in plan and "jupyter lab" in plan
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    test_only = {"pytest", "pytest-timeout", "hypothesis", "playwright", "lightning", "tensorboard", "mlflow-skinny",
                 "wandb", "ruff", "mypy", "nbclient"}
    demo = {re.split(r"[<>=\[ ]", spec, maxsplit=1)[0] for spec in extras["demo"]}
    assert demo == {"jupyterlab", "ipykernel"} and not demo & test_only
    test_plan = subprocess.run(["make", "-n", "setup"], cwd=tmp_path, capture_output=True, text=True,
                               check=True).stdout
    assert '.venv/bin/pip install -e ".[test,notebooks]"' in test_plan  # make test keeps the test stack
