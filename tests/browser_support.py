"""Shared helpers of the real-browser tests: Debian's Chromium driven by Playwright against a JupyterLab
server (which also serves Notebook 7) on 127.0.0.1, every other request recorded and aborted.

Fixtures (registered in ``conftest.py``): ``chromium_executable``, ``jupyter_server`` (one server per test
module), ``browser`` and ``guarded`` (pages that record console messages and block the network). Helpers
for opening notebooks, finding the Playground, reading the chart, contrast and colour-blindness measures.

Needs Chromium (``/usr/bin/chromium``, or ``YESWIDGET_CHROMIUM``) and the Python ``playwright`` package
(Playwright's own browser download is not used). Without them the tests are skipped, except under
``CI=true`` where they fail.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
OUTPUT_COPY = REPO / "test-output" / "browser"

#: the paper's band colours (YES-BOUNDS.md)
BAND_COLORS = {"red": "#FFB6C1", "yellow": "#FFD700", "green": "#00FF7F"}
ZONES = tuple(BAND_COLORS)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1800}


SERVER_START_S = 120
KERNEL_START_MS = 120_000  # kernel start + torch import on a small machine
RUN_MS = 150_000  # one short training run, including a cold kernel


# --------------------------------------------------------------------------
# availability: skip locally, fail in CI
# --------------------------------------------------------------------------
def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(why: str):
    if _in_ci():
        pytest.fail(f"browser test cannot run in CI: {why}", pytrace=False)
    pytest.skip(why)


def _chromium_path() -> str | None:
    candidates = [os.environ.get("YESWIDGET_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium_executable() -> str:
    path = _chromium_path()
    if path is None:
        _unavailable("no Chromium at /usr/bin/chromium (install Debian's chromium, or set YESWIDGET_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        _unavailable(f"the playwright Python package is missing ({exc})")
    for module in ("jupyterlab", "notebook", "ipykernel", "nbformat"):
        try:
            __import__(module)
        except ImportError as exc:
            _unavailable(f"{module} is missing ({exc})")
    return path


# --------------------------------------------------------------------------
# the JupyterLab server
# --------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class JupyterServer:
    proc: subprocess.Popen
    port: int
    token: str
    root: Path
    log: Path
    kernel_pids: set = field(default_factory=set)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, **query: str) -> str:
        extra = "".join(f"{key}={value}&" if value else f"{key}&" for key, value in query.items())
        return f"{self.base}{path}?{extra}token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 10.0):
        request = urllib.request.Request(self.base + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return "(no server log)"

    def kernel_state(self, notebook: str) -> str | None:
        """The execution state of ``notebook``'s kernel as the server sees it (None: no session)."""
        try:
            for session in self.api("/api/sessions"):
                if session.get("path") == notebook:
                    return (session.get("kernel") or {}).get("execution_state")
        except (OSError, ValueError):
            return None
        return None

    def remember_kernels(self) -> None:
        self.kernel_pids.update(_children(self.proc.pid))

    def shutdown_sessions(self, notebook: str) -> None:
        """Shut down the kernel(s) of one notebook (frees the CPU for the next test)."""
        self.remember_kernels()
        try:
            for session in self.api("/api/sessions"):
                if session.get("path") == notebook:
                    self.api(f"/api/sessions/{session['id']}", method="DELETE", timeout=30)
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        self.remember_kernels()
        try:
            for kernel in self.api("/api/kernels"):
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE", timeout=30)
        except (OSError, ValueError):
            pass
        self.remember_kernels()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        for pid in sorted(self.kernel_pids):
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


@pytest.fixture(scope="module")
def jupyter_server(chromium_executable, tmp_path_factory):
    """A JupyterLab server (also serving Notebook 7) on 127.0.0.1 with its own settings, one per test module."""
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "root"
    dirs = {name: home / name for name in ("config", "data", "runtime", "ipython", "workspaces")}
    for path in [root, *dirs.values()]:
        path.mkdir(parents=True, exist_ok=True)
    settings = dirs["config"] / "lab" / "user-settings"
    # no "news / updates" notification (it would ask to fetch from the internet)
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


    env = dict(os.environ)
    # user-level Jupyter dirs go to temp folders; sys.prefix's share/jupyter (kernel spec,
    # ipywidgets / bqplot / anywidget lab extensions) and etc/jupyter stay on the search path
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        IPYTHONDIR=str(dirs["ipython"]),
        PYTHONUNBUFFERED="1",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    env.pop("JUPYTER_TOKEN", None)
    port = _free_port()
    token = secrets.token_hex(24)
    cmd = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        f"--LabApp.workspaces_dir={dirs['workspaces']}",
        f"--LabApp.user_settings_dir={settings}",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = home / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=str(root), env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = JupyterServer(proc=proc, port=port, token=token, root=root, log=log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                status = server.api("/api/status", timeout=3)
                if isinstance(status, dict):
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on /api within {SERVER_START_S} s:\n{server.log_tail()}")
            time.sleep(0.3)
        yield server
    finally:
        server.stop()
        if log.exists():
            shutil.copyfile(log, _output_copy_dir() / "server.log")


# --------------------------------------------------------------------------
# the browser, with every non-loopback request recorded and aborted
# --------------------------------------------------------------------------
def _output_copy_dir() -> Path:
    OUTPUT_COPY.mkdir(parents=True, exist_ok=True)
    return OUTPUT_COPY


@pytest.fixture(scope="module")
def browser(chromium_executable):
    from playwright.sync_api import sync_playwright

    # screenshots and logs of an earlier session would read as this one's
    if OUTPUT_COPY.is_dir():
        for stale in [*OUTPUT_COPY.glob("*.png"), *OUTPUT_COPY.glob("*.log")]:
            stale.unlink()

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome-error"):
        return True
    return parts.hostname == "127.0.0.1"


class Guarded:
    """A page whose context aborts every request that leaves 127.0.0.1, and records them all."""

    def __init__(self, browser, out: Path, name: str, viewport: dict | None = None, scale: float = 1.0):
        self.out = out
        self.name = name
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.console: list[str] = []
        self.context = browser.new_context(viewport=viewport or VIEWPORT, device_scale_factor=scale,
                                           service_workers="block")
        self.context.set_default_timeout(60_000)
        self.context.route("**/*", self._route)
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.page.on("websocket", lambda ws: self.requests.append(ws.url))
        self.page.on("console", self._console)
        self.page.on("pageerror", self._pageerror)

    def _console(self, msg) -> None:
        where = (msg.location or {}).get("url", "")  # the script that logged it (bqplot's, anywidget's, …)
        self.console.append(f"[{msg.type}] {msg.text}" + (f" @ {where}" if where else ""))

    def _pageerror(self, exc) -> None:
        where = re.search(r"(https?://[^\s)]+?):\d+:\d+", getattr(exc, "stack", "") or "")  # the script that threw
        self.console.append(f"[pageerror] {exc}" + (f" @ {where.group(1)}" if where else ""))

    def _route(self, route) -> None:
        url = route.request.url
        if _is_local(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")

    def external(self) -> list[str]:
        return sorted({url for url in self.requests + self.blocked if not _is_local(url)})

    def shot(self, filename: str, *, full_page: bool = True) -> Path:
        path = self.out / filename
        self.page.screenshot(path=str(path), full_page=full_page)
        shutil.copyfile(path, _output_copy_dir() / filename)
        return path

    def close(self) -> None:
        log = self.out / f"{self.name}-console.log"
        log.write_text("\n".join(self.console) + "\n")
        shutil.copyfile(log, _output_copy_dir() / log.name)
        self.context.close()


@pytest.fixture
def guarded(browser, tmp_path):
    pages: list[Guarded] = []

    def make(name: str, **options) -> Guarded:
        page = Guarded(browser, tmp_path, name, **options)
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.close()


# --------------------------------------------------------------------------
# Jupyter front-end helpers (JupyterLab 4 and Notebook 7 share these)
# --------------------------------------------------------------------------
_KERNEL_READY_JS = """
() => {
  const names = [...document.querySelectorAll('.jp-NotebookPanel-toolbar .jp-Toolbar-kernelName')]
    .map((el) => el.textContent.trim());
  const status = [...document.querySelectorAll('.jp-Notebook-ExecutionIndicator')]
    .map((el) => el.dataset.status);
  // before the session exists the indicator already reads "idle" next to "No Kernel"
  return names.length > 0 && names.every((n) => n !== '' && n !== 'No Kernel')
    && status.length > 0 && status.every((s) => s === 'idle');
}
"""


def _accept_dialog(page) -> bool:
    """Accept a start-up dialog ("Select Kernel", ...) if one is shown."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        accept = dialog.first.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click()
            return True
    return False


def _open_notebook(page, server: JupyterServer, url: str, notebook: str) -> None:
    """Open ``url`` and wait until the notebook's kernel is started, connected and idle."""
    page.goto(url, wait_until="domcontentloaded", timeout=90_000)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=90_000)
    deadline = time.monotonic() + KERNEL_START_MS / 1000
    while True:
        _accept_dialog(page)
        if server.kernel_state(notebook) == "idle" and page.evaluate(_KERNEL_READY_JS):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel of {notebook} did not become idle in time "
                                 f"(server says {server.kernel_state(notebook)!r})")
        page.wait_for_timeout(250)


def _run_all_cells(page) -> None:
    """Run → Run All Cells, through the menu bar (JupyterLab and Notebook 7 both have it)."""
    page.locator(".lm-MenuBar-item").filter(has_text=re.compile(r"^\s*Run\s*$")).first.click()
    item = page.locator(".lm-Menu .lm-Menu-item").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")))
    item.first.click()


def _wait_for_playground(page, timeout: int = RUN_MS):
    """The Playground's output (accepting a late kernel dialog, should one still appear)."""
    playground = page.locator(".yeswidget-playground").first
    deadline = time.monotonic() + timeout / 1000
    while not playground.is_visible():
        if _accept_dialog(page):
            raise AssertionError("a kernel dialog appeared after Run All Cells: the cells did not run")
        if time.monotonic() > deadline:
            raise AssertionError("the Playground did not render")
        page.wait_for_timeout(250)
    return playground


def _wait_for_output(page, text: str, timeout: int = RUN_MS) -> None:
    page.locator(".jp-OutputArea-output", has_text=text).first.wait_for(timeout=timeout)


def _color(value: str | None) -> tuple | None:
    """'#FFD700', '#fd0', 'rgb(255, 215, 0)', 'rgba(255,215,0,0.4)' → (255, 215, 0)."""
    if not value:
        return None
    value = value.strip().lower()
    match = re.fullmatch(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*[\d.]+\s*)?\)", value)
    if match:
        return tuple(int(group) for group in match.groups())
    match = re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", value)
    if match:
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(ch * 2 for ch in digits)
        return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return None


_FIGURE_PATHS_JS = """
(root) => {
  const figure = root.querySelector('.bqplot.figure');
  if (!figure) return null;
  const box = figure.getBoundingClientRect();
  const paths = [...figure.querySelectorAll('svg path.area, svg path.line')].map((p) => {
    const style = getComputedStyle(p);
    let bbox = {width: 0, height: 0};
    try { bbox = p.getBBox(); } catch (e) {}
    return {
      kind: p.classList.contains('area') ? 'area' : 'line',
      fill: style.fill, stroke: style.stroke,
      opacity: parseFloat(style.opacity), fillOpacity: parseFloat(style.fillOpacity),
      styleAttr: p.getAttribute('style') || '',
      d: p.getAttribute('d') || '',
      width: bbox.width, height: bbox.height,
    };
  });
  return {width: box.width, height: box.height, paths};
}
"""


def _figure(playground) -> dict:
    info = playground.evaluate(_FIGURE_PATHS_JS)
    assert info is not None, "no bqplot figure inside the Playground"
    return info


def _drawn(path: dict) -> bool:
    return path["d"].lstrip().upper().startswith("M") and path["width"] > 0


def _band(info: dict, zone: str) -> dict | None:
    """The drawn area of ``zone``: filled with its colour, or with its hatch pattern (red, yellow)."""
    want = _color(BAND_COLORS[zone])
    for path in info["paths"]:
        fill = path["fill"] or ""
        if (path["kind"] == "area" and (_color(fill) == want or f"yw-hatch-{zone}" in fill)
                and path["opacity"] > 0 and _drawn(path)):
            return path
    return None


def _check_chart(playground) -> dict:
    """The main figure: big enough, three filled bands, the loss line, a zone badge."""
    from yeswidget.view.render import LOSS_COLOR
    from yeswidget.widgets.playground import RUN_COLORS

    svg = playground.locator(".bqplot.figure svg").first
    svg.wait_for(timeout=30_000)
    info = _figure(playground)
    assert info["width"] >= 400 and info["height"] >= 250, f"chart too small: {info['width']}x{info['height']}"
    for zone in ZONES:
        band = _band(info, zone)
        fills = sorted({p["fill"] for p in info["paths"] if p["kind"] == "area"})
        assert band is not None, f"no drawn {zone} band filled {BAND_COLORS[zone]}; area fills: {fills}"
        assert band["height"] > 0, f"the {zone} band has no height"
    # the Playground draws its live run in the run's own colour (as in the table)
    colors = {_color(c) for c in (LOSS_COLOR, *RUN_COLORS)}
    loss = [p for p in info["paths"] if p["kind"] == "line" and _color(p["stroke"]) in colors
            and p["opacity"] == 1 and _drawn(p)]
    assert loss, "no loss line drawn in the chart"
    assert loss[0]["d"].count("L") >= 2, f"the loss line has too few points: {loss[0]['d'][:80]}"

    badge = playground.locator(".yes-badge").first
    badge.wait_for(timeout=30_000)
    word = badge.inner_text().strip().split(":")[0].strip().lower()
    assert word in ZONES, f"the badge shows no zone word: {badge.inner_text()!r}"
    classes = badge.get_attribute("class") or ""
    assert f"yes-{word}" in classes.split(), f"badge class {classes!r} does not match its word {word!r}"
    return info


def _rows(playground):
    return playground.locator(".yw-runs-table tbody tr.yw-row")


def _wait_rows_ended(page, playground, count: int, timeout: int = RUN_MS) -> None:
    """Wait until the runs table has ``count`` rows and none of them is running.

    The table is looked up anew at every poll: a run's start refreshes the Playground's picture, and
    the front end then replaces its output (the element found before the click is gone).
    """
    rows = _rows(playground)
    states: list[str] = []
    deadline = time.monotonic() + timeout / 1000
    while time.monotonic() < deadline:
        states = rows.evaluate_all("(rows) => rows.map((row) => "
                                   "(row.querySelector('td.yw-col-status') || {textContent: ''}).textContent.trim())")
        if len(states) == count and all(state not in ("", "running") for state in states):
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"the runs table shows {states}, not {count} ended runs, after {timeout / 1000:.0f} s")


def _lr_slider(playground):
    return playground.locator(".widget-slider").filter(
        has=playground.page.locator(".widget-label", has_text="learning rate")).first


def _assert_offline(guarded: Guarded) -> None:
    external = guarded.external()
    assert not external, f"requests left 127.0.0.1: {external}"
    assert not guarded.blocked, f"blocked non-loopback requests: {guarded.blocked}"
    assert guarded.requests, "no request was recorded at all"


# --------------------------------------------------------------------------
# the compact (projector) layout: one viewport, contrast, colour blindness
# --------------------------------------------------------------------------
PROJECTOR = {"width": 1024, "height": 576}
PROJECTOR_SCALE = 1.25

_COMPACT_BOXES_JS = """
(root) => {
  const box = (sel) => { const el = root.querySelector(sel); if (!el) return null;
    const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, right: r.right, bottom: r.bottom}; };
  const scroller = root.closest('.jp-WindowedPanel-outer') || root.closest('.jp-Notebook');
  const s = scroller.getBoundingClientRect();
  return {controls: box('.yeswidget-controls'), chart: box('.bqplot.figure'), badge: box('.yes-badge'),
          timeline: box('.yw-timeline'), visible: {x: s.x, y: s.y, right: s.right, bottom: s.bottom},
          window: {right: window.innerWidth, bottom: window.innerHeight}};
}
"""

_COMPACT_PIXELS_JS = """
(root) => {
  const fig = root.querySelector('.bqplot.figure');
  const client = (p, x, y) => { const q = new DOMPoint(x, y).matrixTransform(p.getScreenCTM()); return [q.x, q.y]; };
  const bands = {};
  for (const p of fig.querySelectorAll('svg path.area')) {
    const st = getComputedStyle(p);
    if (parseFloat(st.opacity) === 0 || !(p.getAttribute('d') || '').startsWith('M')) continue;
    const bb = p.getBBox(); const pts = [];
    for (let i = 1; i < 40; i++) for (let j = 1; j < 40; j++) {
      const x = bb.x + bb.width * i / 40, y = bb.y + bb.height * j / 40;
      if (p.isPointInFill(new DOMPoint(x, y))) pts.push(client(p, x, y));
    }
    bands[st.fill] = (bands[st.fill] || []).concat(pts);
  }
  const lines = [...fig.querySelectorAll('svg path.line')].filter((p) => {
    const s = getComputedStyle(p);
    return Math.abs(parseFloat(s.strokeWidth) - 2.2) < 0.05 && parseFloat(s.opacity) > 0.9
      && (p.getAttribute('d') || '').startsWith('M');
  });
  const loss = [];
  if (lines.length) {
    const p = lines[0], n = p.getTotalLength();
    for (let k = 2; k < 60; k++) {
      const a = p.getPointAtLength(n * k / 61), b = p.getPointAtLength(n * (k + 0.3) / 61);
      const [ax, ay] = client(p, a.x, a.y), [bx, by] = client(p, b.x, b.y);
      const len = Math.hypot(bx - ax, by - ay) || 1;
      loss.push({at: [ax, ay], normal: [-(by - ay) / len, (bx - ax) / len]});
    }
  }
  return {bands, loss, stroke: lines.length ? getComputedStyle(lines[0]).stroke : null};
}
"""


def _luminance(rgb) -> float:
    import numpy as np

    c = np.asarray(rgb, dtype=float) / 255.0
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def _contrast(a, b) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _deuteranopia(pixels):
    """Machado et al. (2009) deuteranopia (severity 1) of sRGB pixels ``(..., 3)`` uint8 → uint8."""
    import numpy as np

    m = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]])
    c = np.asarray(pixels, dtype=float) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    sim = np.clip(lin @ m.T, 0, 1)
    out = np.where(sim <= 0.0031308, sim * 12.92, 1.055 * sim ** (1 / 2.4) - 0.055)
    return np.round(out * 255).astype(np.uint8)


def _lab(pixels):
    import numpy as np

    c = np.asarray(pixels, dtype=float) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / [0.95047, 1.0, 1.08883]
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def _zone_of_fill(fill: str) -> str | None:
    for zone in ZONES:
        if f"yw-hatch-{zone}" in fill or _color(fill) == _color(BAND_COLORS[zone]):
            return zone
    return None


def _measure_compact(png: Path, pixels: dict, out: Path) -> dict:
    """Loss-line contrast against the band under it, and the bands after a deuteranopia simulation."""
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB"))
    h, w, _ = image.shape

    def at(x, y):
        i, j = int(round(y * PROJECTOR_SCALE)), int(round(x * PROJECTOR_SCALE))
        return image[min(max(i, 0), h - 1), min(max(j, 0), w - 1)]

    def patch(x, y, r=2):
        i, j = int(round(y * PROJECTOR_SCALE)), int(round(x * PROJECTOR_SCALE))
        return image[max(i - r, 0):i + r + 1, max(j - r, 0):j + r + 1].reshape(-1, 3)

    ratios = []
    for point in pixels["loss"]:
        (x, y), (nx, ny) = point["at"], point["normal"]
        band = np.median(np.concatenate([patch(x + 9 * nx, y + 9 * ny), patch(x - 9 * nx, y - 9 * ny)]), axis=0)
        core = patch(x, y, 1)  # the line's core: the pixel that stands out most from the band
        line = core[np.argmax(np.abs(core.astype(float) - band).sum(axis=1))]
        ratios.append(_contrast(line, band))
    simulated = _deuteranopia(image)
    Image.fromarray(simulated).save(out)
    bands = {}
    for fill, points in pixels["bands"].items():
        zone = _zone_of_fill(fill)
        if zone is None or not points:
            continue
        rows = np.clip(np.round(np.array([p[1] for p in points]) * PROJECTOR_SCALE).astype(int), 0, h - 1)
        cols = np.clip(np.round(np.array([p[0] for p in points]) * PROJECTOR_SCALE).astype(int), 0, w - 1)
        samples = simulated[rows, cols]
        lab = _lab(samples)
        lightness = lab[:, 0]
        bands[zone] = {"mean": lab.mean(axis=0), "texture": float(np.median(np.abs(lightness - np.median(lightness))))}
    return {"contrast": float(np.median(ratios)) if ratios else 0.0, "bands": bands, "points": len(ratios)}


def _distinguishable(a: dict, b: dict) -> tuple[bool, str]:
    import numpy as np

    delta_e = float(np.linalg.norm(a["mean"] - b["mean"]))
    texture = abs(a["texture"] - b["texture"])
    why = f"ΔE {delta_e:.1f}, texture (MAD of L*) {a['texture']:.1f} vs {b['texture']:.1f}"
    return delta_e >= 10 or texture >= 3, why


def _set_theme(page, name: str) -> None:
    page.locator(".lm-MenuBar-item").filter(has_text=re.compile(r"^\s*Settings\s*$")).first.click()
    label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$"))
    page.locator(".lm-Menu .lm-Menu-item").filter(has=label).first.hover()
    choice = page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{name}$"))
    page.locator(".lm-Menu .lm-Menu-item").filter(has=choice).first.click()
    light = "true" if name == "JupyterLab Light" else "false"
    page.wait_for_function(f"document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)
    page.wait_for_timeout(1500)  # the theme's stylesheet, then bqplot repaints with its variables
