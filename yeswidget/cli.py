"""The ``yeswidget`` command: train a paper task headless, certify a saved run.

    yeswidget demo phase-retrieval --epochs 200 --out report/
    yeswidget certify report/run.json
    yeswidget show yeswidget-runs/ --out runs.png

Exit codes of ``certify`` (and of ``demo``): 0 green, 3 yellow, 4 red,
5 no verdict (the run has no epochs), 2 usage error or unreadable file.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .core.zones import verdict  # the one zone rule, colours and words (light: no torch, no UI)
from .report.verdict import verdict_lines, write_report_html
from .training.recipe import OPTIMIZERS, SCHEDULES

if TYPE_CHECKING:
    from .core.run import Run
    from .training.tasks.catalog import Task

EXIT_NO_VERDICT = 5
EXIT_CODES = {"green": 0, "yellow": 3, "red": 4, "none": EXIT_NO_VERDICT}
EXIT_USAGE = 2
#: the losses ``--loss`` offers (yeswidget.training.trainer.TRAINING_LOSSES; kept here so the parser needs no torch)
LOSSES = ("mse", "huber", "smooth_l1", "l1")
_LOSS_HELP = "the loss the task is trained in and judged in (default: mse, the paper's)"

__all__ = ["main", "EXIT_CODES", "runs_table", "sweep_table"]


def _task_names() -> list[str]:
    from .training.tasks import TASKS

    return sorted(TASKS)


def _demo(args: argparse.Namespace) -> int:
    import torch

    from .engine.bounds import YesCloud
    from .engine.losses import last_layer_loss
    from .monitor import TextPrinter
    from .training import Settings, Trainer
    from .training.tasks import get_task
    from .training.trainer import training_loss
    from .view.render import save_cloud

    try:
        task = get_task(args.task)
    except (ValueError, ImportError) as exc:
        print(f"yeswidget demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fast = os.environ.get("YESWIDGET_FAST") == "1"
    try:
        recipe = Settings.for_task(task)
        epochs = args.epochs if args.epochs is not None else (min(recipe.epochs, 40) if fast else recipe.epochs)
        given = {"lr": args.lr, "batch_size": args.batch_size, "epochs": epochs, "optimizer": args.optimizer,
                 "schedule": args.schedule}
        settings = Settings.for_task(task, given, seed=args.seed, shuffle=args.shuffle == "on",
                                     every=args.every if args.every in ("auto", "time") else int(args.every))
    except ValueError as exc:
        print(f"yeswidget demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"{task.name}: {task.description}")
    printer = TextPrinter(every=args.print_every)
    own = last_layer_loss(training_loss(args.loss), task.Y_train)  # trained and judged in --loss
    cloud = YesCloud(task.X_train, task.Y_train, _depth_of(task), bias=True, loss=own)
    try:
        trainer = Trainer(task, settings, cloud=cloud, subscribers=(printer,), loss=args.loss)
    except ValueError as exc:
        print(f"yeswidget demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    trainer.start(background=False)
    run = trainer.run
    run.to_json(out / "run.json")
    save_cloud(run, out / "report.png")
    write_report_html(run, out / "report.png", out / "report.html")
    print("\n".join(verdict_lines(run)))
    print(f"wrote {out / 'report.png'}, {out / 'run.json'}, {out / 'report.html'}")
    if run.final is None:
        return EXIT_NO_VERDICT
    return EXIT_CODES[run.final.zone]


def _depth_of(task: Task) -> int:
    from .engine.capture import trace

    return trace(task.model(0), task.X_train[:2]).depth


def _certify(args: argparse.Namespace) -> int:
    import warnings

    from .core.persist import RunLogWarning
    from .core.run import Run

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunLogWarning)  # damaged lines are printed as the run's notes
            run = Run.from_json(args.run)
    except Exception as exc:  # one clear line, never a traceback
        print(f"yeswidget certify: cannot read {args.run}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    problem = _inconsistency(run)
    if problem:
        print(f"yeswidget certify: {args.run} is not a valid run record: {problem}", file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(verdict_lines(run)))
    if run.final is None:
        return EXIT_NO_VERDICT
    return EXIT_CODES[run.final.zone]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, (OSError, ValueError)):
        text = f"{type(exc).__name__}: {text}"
    return text[:500]


def _inconsistency(run: Run) -> str | None:
    """Why a run record cannot be trusted (a zone that its own numbers contradict), or None.

    The verdict is recomputed from each epoch's loss, YES-0 and lower edge with the
    spec's rule, never taken from the stored zone.
    """
    for record in run.epochs:
        try:
            loss, upper, lower = float(record.loss), float(record.upper), float(record.lower)
        except (TypeError, ValueError):
            return f"epoch {record.epoch!r}: loss, upper and lower must be numbers"
        if not isinstance(record.zone, str) or record.zone not in EXIT_CODES:
            return f"epoch {record.epoch}: unknown zone {record.zone!r} (expected one of {sorted(EXIT_CODES)})"
        if record.zone == "none" and not math.isfinite(upper):
            continue  # no bound was computed: a model the construction cannot represent
        scale = float(run.certification.get("target_scale", 0.0) or 0.0)
        expected, _ = verdict(loss, upper, lower, has_lower_edge=True, depth=run.depth or 2, target_scale=scale)
        # a zone may be more careful than the numbers: green needs an edge computed at that epoch,
        # and a record without the targets' scale cannot be checked for "no verdict"
        # and "none" (no verdict, e.g. an epoch whose bounds failed or never reached the log) claims nothing
        careful = (record.zone == "yellow" and expected == "green" and (not record.bounds_updated or lower == upper))
        if record.zone != expected and not careful and record.zone != "none":
            return (f"epoch {record.epoch}: stored zone {record.zone!r} but loss {loss!r}, YES-0 {upper!r} "
                    f"and lower edge {lower!r} give {expected!r}")
    return None


# --------------------------------------------------------------------------- #
# show: reopen run logs after a restart or a crash
# --------------------------------------------------------------------------- #
def runs_table(runs: Sequence[Run]) -> str:
    """One text row per run: id, settings, status, epochs, final zone, loss / YES-0 / lower edge (dB),
    first green epoch."""
    from .core.formats import db_number
    from .view.rows import run_row

    header = ("run", "settings", "status", "epochs", "zone", "loss dB", "YES-0 dB", "lower dB", "green at")
    rows: list[tuple[str, ...]] = [header]
    for index, run in enumerate(runs):
        row, final = run_row(run, index), run.final
        status = "no end recorded" if row["status"] == "running" else str(row["status"])
        numbers = [db_number(v) for v in (final.loss, final.upper, final.lower)] if final else ["-"] * 3
        green = row["epochs_to_green"]
        rows.append((run.run_id, row["label"] if row["label"] != run.run_id else "-", status,
                     str(final.epoch if final else 0), row["final_zone"] or "none", *numbers,
                     "never" if green is None else str(green)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _show_out(paths: list[str]) -> Path:
    first = Path(paths[0])
    return first / "runs.png" if first.is_dir() else first.with_suffix(".png")


def _show_sweep(folder: Path, out: str | None) -> int:
    """``yeswidget show <sweep folder>``: its table (one line per run) and the grid picture."""
    from .tuning.sweep import Sweep

    try:
        sweep = Sweep.load(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"yeswidget show: {exc}", file=sys.stderr)
        return EXIT_USAGE
    picture = Path(out) if out else folder / "sweep.png"
    if picture.suffix.lower() not in (".png", ".svg", ".pdf"):
        print(f"yeswidget show: --out must end in .png, .svg or .pdf; got {picture}", file=sys.stderr)
        return EXIT_USAGE
    judged = "" if sweep.spec.get("loss", "mse") == "mse" else f", trained and judged in {sweep.spec['loss']}"
    print(f"sweep of {sweep.spec.get('task') or 'a task'}: {len(sweep.results)} of {len(sweep.configs)} runs{judged}")
    for row in sweep.results:
        green = "never" if row.get("first_green") is None else row["first_green"]
        why = f"  ({row['prune_reason']})" if row.get("pruned") else ""
        print(f"  run {row['index']:>3}  lr {row['lr']:.1e}  batch {row['batch_size']:>4}  "
              f"{row.get('final_zone') or 'none':<6}  green at {green}  epochs {row.get('epochs_run')}{why}")
    sweep.picture(picture)
    print(f"wrote {picture}")
    return 0


def _show(args: argparse.Namespace) -> int:
    import warnings

    from .core.logread import load_runs
    from .core.persist import RunLogWarning
    from .view.render import save_cloud

    if len(args.paths) == 1 and (Path(args.paths[0]) / "sweep.json").is_file():
        return _show_sweep(Path(args.paths[0]), args.out)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunLogWarning)  # damaged lines are printed as the runs' notes
            runs = load_runs(args.paths)
    except Exception as exc:  # one clear line, never a traceback
        print(f"yeswidget show: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out) if args.out else _show_out(args.paths)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        print(f"yeswidget show: --out must end in .png, .svg or .pdf; got {out}", file=sys.stderr)
        return EXIT_USAGE
    main_run, others = runs[0], runs[1:]
    print(runs_table(runs))
    if others and any(not math.isclose(r.upper, main_run.upper, rel_tol=1e-9) for r in others):
        print(f"note: the runs were certified on different data (YES-0 differs); the cloud drawn is run "
              f"{main_run.run_id}'s, the others are drawn as loss lines")
    for run in runs:
        for note in dict.fromkeys(run.warnings):
            print(f"note ({run.run_id}): {note}")
    more = f" and {len(others)} more run{'s' * (len(others) > 1)}" if others else ""
    title = main_run.label + more
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_cloud(main_run, out, past_runs=others, scale=args.scale, title=title)
    except Exception as exc:
        print(f"yeswidget show: cannot draw {out}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {out}")
    return 0


def _every(value: str) -> str:
    if value in ("auto", "time"):
        return value
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--every must be 'auto' or a positive int; got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"--every must be 'auto' or a positive int; got {value!r}")
    return str(number)


# --------------------------------------------------------------------------- #
# sweep: a grid of settings, pruned by verdict, one row per run
# --------------------------------------------------------------------------- #
_SWEEP_COLUMNS = (("lr", "lr"), ("batch_size", "batch"), ("schedule", "schedule"), ("optimizer", "optimizer"),
                  ("seed", "seed"), ("final_zone", "zone"), ("final_loss", "loss dB"),
                  ("margin_upper_db", "YES-0 margin dB"), ("first_green", "green at"), ("epochs_run", "epochs"),
                  ("pruned", "pruned"))


def _sweep_cell(key: str, value: object) -> str:
    from .core.formats import DB_DECIMALS, db_number, lr_text

    if key == "lr":
        return lr_text(value)
    if key == "final_loss":
        return db_number(value)
    if key.endswith("_db"):  # already in dB: above the edge is positive
        return "-" if not isinstance(value, (int, float)) else f"{value:+.{DB_DECIMALS}f}"
    if key == "first_green":
        return "never" if value is None else str(value)
    if key == "pruned":
        return "yes" if value else "-"
    return "-" if value is None else str(value)


def sweep_table(rows: Sequence[dict[str, object]]) -> str:
    """One text row per sweep run: settings, final zone, loss and margin to YES-0 (dB), first green
    epoch, epochs run, pruned."""
    lines = [tuple(title for _, title in _SWEEP_COLUMNS)]
    lines.extend(tuple(_sweep_cell(key, row.get(key)) for key, _ in _SWEEP_COLUMNS) for row in rows)
    widths = [max(len(line[i]) for line in lines) for i in range(len(_SWEEP_COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _sweep(args: argparse.Namespace) -> int:
    from .tuning.sweep import sweep

    try:
        result = sweep(args.task, lr=tuple(args.lr), batch_size=None if args.batch_size is None else
                       tuple(args.batch_size), epochs=args.epochs, workers=args.workers, backend=args.backend,
                       prune=None if args.prune == "none" else args.prune, folder=args.out, loss=args.loss)
    except (ValueError, TypeError, ImportError) as exc:
        print(f"yeswidget sweep: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if result.error is not None:
        print(f"yeswidget sweep: a run failed: {_one_line(result.error)}", file=sys.stderr)
        return 1
    print(sweep_table(result.results))
    best = result.best()
    if best is None:
        print("best: none (no run finished)")
    else:
        settings = ", ".join(f"{key}={_sweep_cell(key, best.get(key))}"
                             for key in ("lr", "batch_size", "schedule", "optimizer", "seed"))
        loss = _sweep_cell("final_loss", best.get("final_loss"))
        judged = "" if args.loss == "mse" else f" in {args.loss}"
        print(f"best: {settings} ({best.get('final_zone') or 'none'}, loss {loss} dB{judged})")
    print(f"wrote {result.folder}")
    return 0


def _add_sweep_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = sub.add_parser("sweep", help="train a grid of settings in parallel, pruned by verdict, with a table",
                           description="Train every combination of --lr and --batch-size on a task, each run with "
                                       "its own monitor and run log; runs still red are stopped early (--prune). "
                                       "Prints one row per run and the best configuration; FOLDER holds sweep.json "
                                       "and runs/ ('yeswidget show FOLDER' draws them).",
                           epilog="exit codes: 0 sweep done, 1 a run failed, 2 usage error")
    sweep.add_argument("task", help="one of: " + ", ".join(_task_names()))
    sweep.add_argument("--lr", type=float, nargs="+", required=True, help="learning rates to try")
    sweep.add_argument("--batch-size", type=int, nargs="+", default=None,
                       help="minibatch sizes to try (default: the task's)")
    sweep.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the task's)")
    sweep.add_argument("--loss", choices=LOSSES, default="mse", help=_LOSS_HELP)
    sweep.add_argument("--prune", choices=("red", "verdict", "none"), default="red",
                       help="stop runs still red (red, default), also yellow plateaus (verdict), or never (none)")
    sweep.add_argument("--workers", type=int, default=None, help="runs at once (default: min(cores, runs))")
    sweep.add_argument("--backend", default="processes",
                       help="processes (default), inline (one by one in this process) or ray")
    sweep.add_argument("--out", default=None, help="sweep folder (default: yeswidget-sweeps/<time>)")
    sweep.set_defaults(func=_sweep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yeswidget",
        description="YES training bounds: is the training any good? (red above YES-0, yellow inside the "
                    "cloud, green below the lower edge)",
        epilog="exit codes: 0 green, 3 yellow, 4 red, 5 no verdict, 2 usage error",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a paper task headless and write a report",
                          description="Train one of the paper's tasks headless, print one verdict line per "
                                      "epoch, and write DIR/report.png, DIR/run.json and DIR/report.html. "
                                      "YESWIDGET_FAST=1 caps the default number of epochs at 40.",
                          epilog="exit codes: 0 green, 3 yellow, 4 red, 5 no verdict, 2 usage error")
    demo.add_argument("task", help="one of: " + ", ".join(_task_names()))
    demo.add_argument("--epochs", type=int, default=None, help="number of epochs (default: the task's)")
    demo.add_argument("--lr", type=float, default=None, help="learning rate (default: the task's)")
    demo.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: the task's)")
    demo.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                      help="default: the task's; slimtrain: the last layer solved in closed form")
    demo.add_argument("--schedule", choices=SCHEDULES, default=None,
                      help="learning-rate schedule (default: the task's)")
    demo.add_argument("--loss", choices=LOSSES, default="mse", help=_LOSS_HELP)
    demo.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the shuffling")
    demo.add_argument("--every", type=_every, default="auto",
                      help="recompute YES-k every k epochs; 'auto' (default: a period fixed from shapes, "
                           "~20%% of the training work, reproducible) or 'time' (~20%% of wall time)")
    demo.add_argument("--shuffle", choices=("on", "off"), default="on",
                      help="reshuffle the minibatches every epoch (off: the published scripts' protocol)")
    demo.add_argument("--print-every", type=int, default=1, help="print every k-th epoch line")
    demo.add_argument("--out", default="yeswidget-report", help="output folder (default: yeswidget-report)")
    demo.set_defaults(func=_demo)
    certify = sub.add_parser("certify", help="print the verdict of a saved run.json",
                             description="Print a saved run's verdict: final zone, epochs until green, margins.",
                             epilog="exit codes: 0 green, 3 yellow, 4 red, 5 no verdict, 2 unreadable file")
    certify.add_argument("run", help="a run.json written by 'yeswidget demo' or Run.to_json()")
    certify.set_defaults(func=_certify)
    show = sub.add_parser("show", help="draw saved runs (run logs or run.json) as one picture, with a table",
                          description="Reopen runs after a restart or a crash: run logs (.jsonl, also cut short "
                                      "by a crash), run.json files, or folders of run logs. The first run's cloud "
                                      "is drawn with its loss; the other runs are overlaid as loss lines. A table "
                                      "of the runs is printed.",
                          epilog="exit codes: 0 picture written, 2 unreadable file or bad option")
    show.add_argument("paths", nargs="+", metavar="PATH",
                      help="a run log (.jsonl), a run.json, a runs folder, or a sweep folder (its grid)")
    show.add_argument("--out", default=None,
                      help="picture to write (.png, .svg or .pdf; default: next to the first PATH, as .png)")
    show.add_argument("--scale", choices=("db", "linear", "log"), default="db", help="y axis (default: db)")
    show.set_defaults(func=_show)
    _add_sweep_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.func
    return command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
