"""The ``yeswidget`` command line: ``demo`` writes a self-contained report, ``certify`` reads it back.

One real headless demo run (phase retrieval, 8 epochs) is made once per module,
as a subprocess through the installed ``yeswidget`` script, and its three files
are checked: the PNG shows the three zone bands, run.json round-trips, the HTML
loads nothing from the network. ``certify`` is checked on that run and on
hand-made runs of every zone, an empty run, and unreadable files.
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from yeswidget import cli
from yeswidget.core.run import EpochRecord, Run
from yeswidget.training.tasks import TASKS

DEMO_EPOCHS = 8
SUBPROCESS_TIMEOUT = 600

#: the paper's zone colours; the bands are drawn at 40% opacity on white
BAND_COLORS = {"red": "#FFB6C1", "yellow": "#FFD700", "green": "#00FF7F"}
BAND_ALPHA = 0.4


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def yeswidget_command() -> list[str]:
    """The installed console script (next to this interpreter, else on PATH), else ``python -m``."""
    here = Path(sys.executable).parent / ("yeswidget.exe" if os.name == "nt" else "yeswidget")
    if here.exists():
        return [str(here)]
    found = shutil.which("yeswidget")
    if found:
        return [found]
    return [sys.executable, "-m", "yeswidget.cli"]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = SUBPROCESS_TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ, YESWIDGET_FAST="1", MPLBACKEND="Agg", PYTHONIOENCODING="utf-8")
    return subprocess.run(yeswidget_command() + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout)


def blended(hex_color: str, alpha: float = BAND_ALPHA) -> np.ndarray:
    """A colour drawn at ``alpha`` over white, RGB in 0..1."""
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64) / 255.0
    return 1.0 - alpha * (1.0 - rgb)


def make_run(zones: list[str], run_id: str = "hand-made") -> Run:
    """A run record whose epochs have the given zones (numbers consistent with each zone)."""
    upper, lower = 1.0, 0.1
    loss_of = {"red": 2.0, "yellow": 0.5, "green": 0.05}
    run = Run(run_id=run_id, config={"lr": 1e-3, "batch_size": 50, "optimizer": "adam", "epochs": len(zones)},
              depth=3, upper=upper, layer_errors=[1.0, 1.0, 1.0], status="finished")
    for epoch, zone in enumerate(zones, start=1):
        run.epochs.append(EpochRecord(epoch=epoch, loss=loss_of[zone], upper=upper, lower=lower, zone=zone,
                                      yes_k=[0.3, lower]))
    return run


# --------------------------------------------------------------------------- #
# one real demo run, shared by the tests that read its files
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli-demo")
    proc = run_cli("demo", "phase-retrieval", "--epochs", str(DEMO_EPOCHS), "--out", "tmp", cwd=workdir)
    assert proc.returncode in (0, 3, 4), f"demo failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return workdir / "tmp", proc


def test_demo_writes_the_three_files(demo):
    out, proc = demo
    for name in ("report.png", "run.json", "report.html"):
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, f"{name} missing; stdout:\n{proc.stdout}"
    # it says what it wrote, and prints one verdict line per epoch plus the final verdict
    assert "report.png" in proc.stdout and "run.json" in proc.stdout and "report.html" in proc.stdout
    assert len(re.findall(r"^epoch\s+\d+/%d" % DEMO_EPOCHS, proc.stdout, flags=re.M)) == DEMO_EPOCHS
    assert "final zone:" in proc.stdout


def test_demo_run_json_round_trips(demo):
    out, proc = demo
    text = (out / "run.json").read_text(encoding="utf-8")
    json.loads(text)  # strict JSON (no NaN literals)
    run = Run.from_json(out / "run.json")
    assert len(run.epochs) == DEMO_EPOCHS
    assert [r.epoch for r in run.epochs] == list(range(1, DEMO_EPOCHS + 1))
    assert run.final.epoch == DEMO_EPOCHS
    assert run.config["epochs"] == DEMO_EPOCHS
    assert run.config["task"] == "phase-retrieval"
    assert run.status == "finished"
    assert run.depth == 5
    assert all(r.zone in ("red", "yellow", "green") for r in run.epochs)
    assert all(r.lower <= r.upper for r in run.epochs)
    # the demo's exit code is the final zone's
    assert proc.returncode == cli.EXIT_CODES[run.final.zone]
    # a second trip through JSON gives the same record
    again = Run.from_json(run.to_json())
    assert again.to_dict() == run.to_dict()
    assert Run.from_json(text).to_dict() == run.to_dict()


def test_demo_png_shows_the_three_zone_bands(demo):
    """The picture's plot area holds pinkish, yellowish and greenish pixels: the three bands at 40% on white."""
    import matplotlib.image as mpimg

    from yeswidget.view.render import save_cloud

    out, _ = demo
    image = mpimg.imread(out / "report.png")
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    rgb = image[..., :3].astype(np.float64)
    if rgb.max() > 1.0:  # 8-bit
        rgb = rgb / 255.0

    # The legend (outside the axes, on the right) also shows the three colours; look
    # inside the plot area only, so the bands themselves must be there. The report is
    # drawn by save_cloud with its default size and dpi: redraw the same run the same
    # way to learn where the axes sit in the picture.
    run = Run.from_json(out / "run.json")
    fig = save_cloud(run, out / "again.png")
    again = mpimg.imread(out / "again.png")
    assert again.shape[:2] == image.shape[:2]
    box = fig.axes[0].get_window_extent()
    height = image.shape[0]
    top, bottom = int(math.ceil(height - box.y1)) + 2, int(math.floor(height - box.y0)) - 2
    left, right = int(math.ceil(box.x0)) + 2, int(math.floor(box.x1)) - 2
    plot = rgb[top:bottom, left:right].reshape(-1, 3)
    assert plot.shape[0] > 10_000

    counts = {}
    for zone, hex_color in BAND_COLORS.items():
        distance = np.abs(plot - blended(hex_color)).max(axis=1)
        counts[zone] = int((distance < 6 / 255).sum())
    for zone, count in counts.items():
        assert count > 500, f"too few {zone} band pixels in the plot area: {counts}"
    # and they are the three band colours, not some other colour nearby: the pinkish
    # pixels are red-dominated, the yellowish ones lack blue, the greenish lack red
    pink, yellow, green = (blended(BAND_COLORS[z]) for z in ("red", "yellow", "green"))
    assert pink[0] > pink[1] > 0.85 and pink[2] > 0.85
    assert yellow[0] > 0.99 and yellow[2] < 0.65
    assert green[1] > 0.99 and green[0] < 0.65


def test_demo_html_is_self_contained(demo):
    out, _ = demo
    page = (out / "report.html").read_text(encoding="utf-8")
    lowered = page.lower()
    assert "<html" in lowered and "</html>" in lowered
    # nothing fetched from the network
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I), "external src/href"
    assert "<script" not in lowered, "the report needs no script"
    assert not re.search(r"<link[^>]*href", page, flags=re.I), "no stylesheet or icon links"
    assert "@import" not in lowered
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", page, flags=re.I)
    assert "http://" not in lowered and "https://" not in lowered
    # the picture is inline, and it is the report.png next to it
    sources = re.findall(r"""<img[^>]*\ssrc\s*=\s*["']([^"']+)["']""", page, flags=re.I)
    assert len(sources) == 1
    assert sources[0].startswith("data:image/png;base64,")
    png = base64.b64decode(sources[0].split(",", 1)[1], validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png == (out / "report.png").read_bytes()
    # the verdict and the settings are in the page
    run = Run.from_json(out / "run.json")
    assert "final zone" in page and run.final.zone in page
    assert "phase-retrieval" in page
    # the zones' colours and words come from the one definition
    from yeswidget.core.zones import ZONE_STYLES

    for name, style in ZONE_STYLES.items():
        assert f"tr.{name} td {{ background: {style.band}66; }}" in page
        assert html.escape(style.meaning) in page


# --------------------------------------------------------------------------- #
# certify
# --------------------------------------------------------------------------- #
def test_certify_the_demo_run(demo):
    out, _ = demo
    run = Run.from_json(out / "run.json")
    proc = run_cli("certify", str(out / "run.json"))
    assert proc.returncode == cli.EXIT_CODES[run.final.zone], proc.stdout + proc.stderr
    assert f"final zone: {run.final.zone}" in proc.stdout
    green = run.epochs_to_green
    assert f"epochs until green: {green if green is not None else 'never'}" in proc.stdout
    assert f"epochs: {DEMO_EPOCHS}" in proc.stdout


@pytest.mark.parametrize("zones,code", [
    (["red", "yellow", "green"], 0),
    (["red", "yellow", "green", "yellow"], 3),
    (["red", "red"], 4),
    (["green", "red"], 4),
])
def test_certify_exit_code_matches_the_final_zone(tmp_path, capsys, zones, code):
    path = tmp_path / "run.json"
    make_run(zones).to_json(path)
    assert cli.main(["certify", str(path)]) == code
    printed = capsys.readouterr().out
    assert f"final zone: {zones[-1]}" in printed
    green = zones.index("green") + 1 if "green" in zones else "never"
    assert f"epochs until green: {green}" in printed
    assert code == {"green": 0, "yellow": 3, "red": 4}[zones[-1]]


def test_certify_subprocess_exit_codes(tmp_path):
    for zones, code in ((["yellow", "green"], 0), (["red", "yellow"], 3), (["red"], 4)):
        path = tmp_path / f"{zones[-1]}.json"
        make_run(zones).to_json(path)
        proc = run_cli("certify", str(path))
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert f"final zone: {zones[-1]}" in proc.stdout


def test_certify_a_run_without_epochs_has_no_verdict(tmp_path, capsys):
    path = tmp_path / "empty.json"
    Run(run_id="empty", status="failed", message="boom").to_json(path)
    assert cli.main(["certify", str(path)]) == 5
    assert "no verdict" in capsys.readouterr().out
    assert run_cli("certify", str(path)).returncode == 5


@pytest.mark.parametrize("content", [
    None,                                   # no such file
    "this is not json",
    "[1, 2, 3]",                            # JSON, but not an object
    '{"not_a_field": 1}',                   # an object, but not a run record
    '{"epochs": [{"epoch": 1}]}',           # an epoch record with fields missing
    b"\xff\xfe\x00binary",                  # not text
])
def test_certify_unreadable_file_exits_2(tmp_path, capsys, content):
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    assert cli.main(["certify", str(path)]) == 2
    captured = capsys.readouterr()
    assert "cannot read" in captured.err
    assert "Traceback" not in captured.err


def test_certify_a_directory_exits_2(tmp_path, capsys):
    assert cli.main(["certify", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err


# --------------------------------------------------------------------------- #
# demo in-process, task names, usage errors
# --------------------------------------------------------------------------- #
def test_demo_in_process(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("YESWIDGET_FAST", "1")
    out = tmp_path / "report"
    code = cli.main(["demo", "phase-retrieval", "--epochs", "3", "--out", str(out), "--every", "1"])
    run = Run.from_json(out / "run.json")
    assert len(run.epochs) == 3 and run.config["every"] == 1
    assert all(r.bounds_updated for r in run.epochs)  # every=1: YES-k at every epoch
    assert code == cli.EXIT_CODES[run.final.zone]
    assert (out / "report.png").is_file() and (out / "report.html").is_file()
    printed = capsys.readouterr().out
    assert "final zone:" in printed


def test_demo_with_slimtrain_records_the_regularization(tmp_path, capsys):
    out = tmp_path / "slim"
    code = cli.main(["demo", "signal-denoising", "--epochs", "2", "--optimizer", "slimtrain", "--out", str(out)])
    run = Run.from_json(out / "run.json")
    assert code == cli.EXIT_CODES[run.final.zone] and run.config["optimizer"] == "slimtrain"
    assert len(run.epochs) == 2 and all(r.extra["regularization"] > 0 for r in run.epochs)


def test_demo_trains_and_judges_in_the_loss_asked_for(tmp_path, capsys):
    from yeswidget.training.trainer import TRAINING_LOSSES

    assert tuple(TRAINING_LOSSES) == cli.LOSSES  # the parser's choices are the losses the trainer has
    out = tmp_path / "l1"
    code = cli.main(["demo", "signal-denoising", "--epochs", "2", "--loss", "l1", "--out", str(out)])
    run = Run.from_json(out / "run.json")
    assert code == cli.EXIT_CODES[run.final.zone] and len(run.epochs) == 2
    assert run.config["loss"] == "L1Loss" and "mean absolute error" in run.config["judged"]
    assert run.config["step_loss"] == {"name": "L1Loss", "metric": True}  # trained in it: one axis
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "signal-denoising", "--loss", "hinge"])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert "invalid choice: 'hinge'" in capsys.readouterr().err
    code = cli.main(["demo", "signal-denoising", "--epochs", "1", "--loss", "huber", "--optimizer", "slimtrain",
                     "--out", str(tmp_path / "slim")])
    assert code == cli.EXIT_USAGE and "slimtrain solves the last layer in squared error" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["signal-denoising", "signal_denoising", "Signal-Denoising"])
def test_dashed_and_other_spellings_of_task_names(tmp_path, capsys, name):
    out = tmp_path / "sd"
    code = cli.main(["demo", name, "--epochs", "2", "--out", str(out)])
    run = Run.from_json(out / "run.json")
    assert run.config["task"] == "signal-denoising"
    assert len(run.epochs) == 2
    assert run.depth == 5
    assert code == cli.EXIT_CODES[run.final.zone]


def test_dashed_task_name_subprocess(tmp_path):
    proc = run_cli("demo", "signal-denoising", "--epochs", "2", "--out", str(tmp_path / "sd"))
    assert proc.returncode in (0, 3, 4), proc.stdout + proc.stderr
    assert len(Run.from_json(tmp_path / "sd" / "run.json").epochs) == 2


def test_unknown_task_exits_2_and_lists_the_tasks(tmp_path, capsys):
    assert cli.main(["demo", "no-such-task", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no-such-task" in err
    for name in TASKS:
        assert name in err
    assert not (tmp_path / "x").exists(), "nothing is written for a usage error"
    proc = run_cli("demo", "no-such-task", "--out", str(tmp_path / "y"))
    assert proc.returncode == 2
    for name in TASKS:
        assert name in proc.stderr


@pytest.mark.parametrize("argv", [
    ["demo", "phase-retrieval", "--every", "0"],
    ["demo", "phase-retrieval", "--every", "often"],
    ["demo", "phase-retrieval", "--optimizer", "rmsprop"],
    ["demo", "phase-retrieval", "--epochs", "many"],
    ["demo", "phase-retrieval", "--epochs", "0"],
    ["demo", "phase-retrieval", "--epochs", "-3"],
    ["certify"],
    ["frobnicate"],
    [],
])
def test_usage_errors_exit_2(tmp_path, capsys, argv):
    if argv[:1] == ["demo"]:
        argv = argv + ["--out", str(tmp_path / "never")]
    with pytest.raises(SystemExit) as info:
        code = cli.main(argv)
        raise SystemExit(code)  # errors found after parsing are returned, not raised
    assert info.value.code == 2
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["certify", "--help"]])
def test_help(argv):
    proc = run_cli(*argv, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith("usage: yeswidget")
    assert "exit codes" in text
    if argv[0] == "--help":
        assert "demo" in text and "certify" in text
    elif argv[0] == "demo":
        for option in ("--epochs", "--lr", "--batch-size", "--out", "--every"):
            assert option in text
        for name in TASKS:
            assert name in text
    else:
        assert "run.json" in text


def test_help_in_process(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--help"])
    assert info.value.code == 0
    assert "--epochs" in capsys.readouterr().out


def test_certify_recomputes_the_zone_and_refuses_a_contradicting_record(tmp_path):
    """A stored "green" that its own numbers contradict is not trusted (exit 2)."""
    from yeswidget.cli import main
    from yeswidget.core.run import EpochRecord, Run

    run = Run(run_id="forged", epochs=[EpochRecord(epoch=1, loss=3.0, upper=2.0, lower=1.0, zone="green")])
    path = tmp_path / "run.json"
    run.to_json(path)
    assert main(["certify", str(path)]) == 2
    run.epochs[0].zone = "red"
    run.to_json(path)
    assert main(["certify", str(path)]) == 4


def test_demo_runs_the_published_protocol_without_reshuffling(tmp_path, monkeypatch):
    import yeswidget.training.trainer as training

    orders = []
    real_arange = training.torch.arange

    class Spy:
        """torch as seen by the trainer, recording whether it shuffled."""

        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def randperm(*args, **kwargs):
            orders.append("shuffled")
            return torch.randperm(*args, **kwargs)

        @staticmethod
        def arange(*args, **kwargs):
            orders.append("in order")
            return real_arange(*args, **kwargs)

    monkeypatch.setattr(training, "torch", Spy())
    out = tmp_path / "report"
    code = cli.main(["demo", "phase-retrieval", "--epochs", "2", "--out", str(out), "--every", "1",
                     "--shuffle", "off"])
    run = Run.from_json(out / "run.json")
    assert run.config["shuffle"] is False and run.config["every"] == 1 and len(run.epochs) == 2
    assert orders == ["in order", "in order"]
    assert code == cli.EXIT_CODES[run.final.zone]


def test_the_html_report_escapes_every_string_of_a_hostile_run(tmp_path):
    from yeswidget.cli import write_report_html
    from yeswidget.core.run import EpochRecord

    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    records = [EpochRecord(epoch=1, loss=0.9, upper=0.5, lower=0.3, zone=evil, reason=evil),
               EpochRecord(epoch=2, loss=0.2, upper=0.5, lower=0.3, zone="green", reason=evil)]
    run = Run(run_id=evil, config={evil: evil, "name": evil, "optimizer": evil, "batch_size": evil},
              depth=3, upper=0.5, certification={"text": evil}, epochs=records, status="failed",
              message=evil, traceback=evil, warnings=[evil], marks=[{"position": 1.0, "kind": evil, "value": evil}])
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    write_report_html(run, png, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "<img src=x" not in page and "<script" not in page and "onerror=alert(1)>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown, as text
    assert "<tr class='none'>" in page  # an unknown zone is no class name


def test_certify_a_model_without_a_verdict_and_a_head_given_current_features(tmp_path, capsys):
    """Issue 19: an LSTM run is 'none' (no bound computed), its head with certify_from= has a verdict."""
    from torch import nn

    from yeswidget.monitor import Monitor

    class NextValueLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.fc = nn.LSTM(1, 4, batch_first=True), nn.Linear(4, 1)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(32, 5, 1, generator=g), torch.randn(32, 1, generator=g)
    for options, code in (({}, cli.EXIT_NO_VERDICT), ({"certify_from": "lstm"}, None)):
        torch.manual_seed(0)
        with pytest.warns(UserWarning), Monitor(NextValueLSTM(), X, Y, runs_dir=None, **options) as monitor:
            monitor.epoch_end()
            monitor.epoch_end()
        path = tmp_path / "run.json"
        monitor.run.to_json(path)
        expected = cli.EXIT_CODES[monitor.run.final.zone] if code is None else code
        assert cli.main(["certify", str(path)]) == expected
        printed = capsys.readouterr().out
        assert ("head given current features" in printed) == bool(options), printed
        assert "final zone: none" in printed or options


# --------------------------------------------------------------------------- #
# sweep
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def sweep_output(tmp_path_factory):
    """A 2 × 1 grid on phase retrieval, one epoch a run, in this process (fast)."""
    folder = tmp_path_factory.mktemp("cli-sweep") / "grid"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["sweep", "phase-retrieval", "--lr", "1e-3", "3e-3", "--batch-size", "100",
                         "--epochs", "1", "--backend", "inline", "--out", str(folder)])
    return code, printed.getvalue(), folder


def test_sweep_prints_one_row_per_run_as_written_in_sweep_json(sweep_output):
    code, printed, folder = sweep_output
    assert code == 0
    rows = json.loads((folder / "sweep.json").read_text())["rows"]
    assert [(r["lr"], r["batch_size"]) for r in rows] == [(1e-3, 100), (3e-3, 100)]
    lines = printed.splitlines()
    assert lines[0].split()[:2] == ["lr", "batch"]
    for line, row in zip(lines[1:3], rows, strict=True):
        cells = line.split()
        assert cells[:2] == [f"{row['lr']:.0e}", str(row["batch_size"])]
        assert row["final_zone"] in cells
        assert f"{10 * math.log10(row['final_loss']):.2f}" in cells  # the loss in dB, from the stored loss
    assert lines[-1] == f"wrote {folder}"


def test_sweep_names_the_best_configuration(sweep_output):
    code, printed, folder = sweep_output
    rows = json.loads((folder / "sweep.json").read_text())["rows"]
    rank = {"green": 0, "yellow": 1, "red": 2}
    best = min(rows, key=lambda r: (rank.get(r["final_zone"], 3), r["final_loss"]))  # zone first, then loss
    best_line = next(line for line in printed.splitlines() if line.startswith("best: "))
    assert best_line.startswith(f"best: lr={best['lr']:.0e}, batch_size={best['batch_size']},")
    assert f"({best['final_zone']}, loss {10 * math.log10(best['final_loss']):.2f} dB)" in best_line


def test_sweep_bad_option_is_a_usage_error(tmp_path, capsys):
    code = cli.main(["sweep", "phase-retrieval", "--lr", "1e-3", "--backend", "threads", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "backend" in err and "processes" in err


def test_sweep_trains_and_judges_in_the_loss_asked_for(tmp_path, capsys):
    folder = tmp_path / "huber"
    code = cli.main(["sweep", "phase-retrieval", "--lr", "1e-3", "--batch-size", "100", "--epochs", "1",
                     "--backend", "inline", "--loss", "huber", "--out", str(folder)])
    printed = capsys.readouterr().out
    assert code == 0
    data = json.loads((folder / "sweep.json").read_text())
    (row,) = data["rows"]
    assert data["spec"]["loss"] == "huber" and row["loss"] == "huber"
    from yeswidget.integrations.runlog import load_run

    assert load_run(row["run_log"]).config["loss"] == "HuberLoss(delta=1)"
    best = next(line for line in printed.splitlines() if line.startswith("best: "))
    assert best.endswith(f"loss {10 * math.log10(row['final_loss']):.2f} dB in huber)")
    assert cli.main(["show", str(folder)]) == 0
    assert "1 of 1 runs, trained and judged in huber" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sweep", "phase-retrieval", "--lr", "1e-3", "--loss", "hinge", "--out", str(tmp_path / "bad")])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert "invalid choice: 'hinge'" in capsys.readouterr().err
