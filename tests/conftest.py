"""Every Monitor writes a run log by default: during the tests it goes to a temporary folder, never the repo."""
from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def runs_dir_in_tmp(tmp_path_factory):
    # os.environ, not monkeypatch: notebook kernels and CLI subprocesses inherit it too
    before = os.environ.get("YESWIDGET_RUNS_DIR")
    os.environ["YESWIDGET_RUNS_DIR"] = str(tmp_path_factory.mktemp("yeswidget-runs"))
    yield
    if before is None:
        os.environ.pop("YESWIDGET_RUNS_DIR", None)
    else:
        os.environ["YESWIDGET_RUNS_DIR"] = before


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): the
    matrices in these tests are small, and on a shared 2-core machine OpenMP teams only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# the real-browser tests' fixtures (Chromium, a JupyterLab server, guarded pages): one definition
from browser_support import browser, chromium_executable, guarded, jupyter_server  # noqa: E402, F401
