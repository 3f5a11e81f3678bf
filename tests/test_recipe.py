"""One definition each of the optimizers, the schedules, the recipe defaults, the settings keys, the
run → table row mapping and the number formats, read by the CLI, the Playground, the tasks and the JS."""
from __future__ import annotations

import json
import re

import pytest
import torch

from yeswidget import cli
from yeswidget.core.formats import DB_DECIMALS, db_text, format_definitions, lr_change_text, lr_text
from yeswidget.core.run import EpochRecord, Run
from yeswidget.report import verdict_lines
from yeswidget.training.recipe import (
    OPTIMIZERS,
    RECIPE_DEFAULTS,
    RECIPE_KEYS,
    SCHEDULES,
    SETTINGS_KEYS,
    Settings,
    make_optimizer,
    recipe_definitions,
)
from yeswidget.training.tasks import Task, mlp
from yeswidget.view.rows import ROW_KEYS, run_row


def _choices(parser, flag):
    demo = next(a for a in parser._subparsers._group_actions[0].choices["demo"]._actions if flag in a.option_strings)
    return tuple(demo.choices)


def _own_task(**recipe):
    torch.manual_seed(0)
    return Task.from_tensors(lambda: mlp([3, 4, 2]), torch.randn(200, 3), torch.randn(200, 2), **recipe)


def _finished_run():
    run = Run(run_id="run 2", config={"lr": 2e-3, "batch_size": 20, "optimizer": "sgd", "schedule": "step",
                                      "seed": 1, "color": "#1f77b4"}, depth=3, upper=1.0, status="finished")
    run.epochs = [EpochRecord(epoch=1, loss=0.5, upper=1.0, lower=0.1, zone="yellow", wall_time=1.5),
                  EpochRecord(epoch=2, loss=0.05, upper=1.0, lower=0.1, zone="green", wall_time=3.0)]
    return run


def test_the_cli_offers_the_recipes_optimizers_and_schedules():
    parser = cli.build_parser()
    assert _choices(parser, "--optimizer") == OPTIMIZERS
    assert _choices(parser, "--schedule") == SCHEDULES
    model = mlp([3, 4, 2])
    for name in OPTIMIZERS:  # every listed optimizer can be built and stepped at the lr it was given
        optimizer = make_optimizer(name, model, 1e-3)
        assert [group["lr"] for group in optimizer.param_groups] == [1e-3]
        optimizer.zero_grad()
        loss = optimizer.loss(torch.randn(8, 3), torch.randn(8, 2)) if name == "slimtrain" else model(
            torch.randn(8, 3)).square().sum()
        loss.backward()
        optimizer.step()
    assert "slimtrain" in OPTIMIZERS


def test_the_tasks_fill_their_recipe_from_the_one_set_of_defaults():
    task = _own_task(lr=0.01)
    assert {k: task.defaults[k] for k in RECIPE_KEYS} == {**RECIPE_DEFAULTS, "lr": 0.01}
    assert RECIPE_DEFAULTS == {k: getattr(Settings(), k) for k in RECIPE_KEYS}
    with pytest.raises(ValueError, match=re.escape(str(OPTIMIZERS))):
        _own_task(optimizer="rmsprop")


def test_the_playground_shows_the_recipe():
    from yeswidget import Playground
    from yeswidget.widgets.playground import draw
    from yeswidget.widgets.playground.settings import SETTINGS_KEYS as STRING_KEYS

    pg = Playground(_own_task())
    try:
        assert tuple(pg.optimizer_box.options) == OPTIMIZERS and tuple(pg.schedule_box.options) == SCHEDULES
        settings = pg.settings()
        assert {k: getattr(settings, k) for k in RECIPE_KEYS} == RECIPE_DEFAULTS
        assert [k for k in STRING_KEYS if k in SETTINGS_KEYS] == list(SETTINGS_KEYS)
        run = _finished_run()
        row = draw.row(run)
        assert set(row) == set(ROW_KEYS) and row == run_row(run, 2, label=row["label"])
    finally:
        pg.close()


def test_one_run_to_row_mapping_for_the_table_and_the_cli():
    from yeswidget.widgets.tables import RunsTable

    run = _finished_run()
    row = run_row(run, 0)
    assert set(row) == set(ROW_KEYS)
    table = RunsTable().set_runs([run])
    assert table.rows == [json.loads(json.dumps(row))]
    line = cli.runs_table([run]).splitlines()[1].split()
    assert row["final_zone"] in line and str(row["epochs_to_green"]) == line[-1]
    assert f"{row['final_loss_db']:.{DB_DECIMALS}f}" in line
    table.close()


def test_one_set_of_number_formats_for_python_and_the_js(tmp_path):
    from test_tables import _render_in_node  # the node + jsdom renderer of the front-end tests

    from yeswidget.widgets.tables import RunsTable, ZoneTimeline

    run = _finished_run()
    assert run.label.startswith(f"lr {lr_text(2e-3)} · batch 20")
    assert lr_change_text(2e-3) == "2e-03" and lr_text(1.2589254117941674e-4) == "1.26e-04"
    assert any(db_text(0.05) in line for line in verdict_lines(run))
    assert RunsTable().get_state()["formats"] == format_definitions() == ZoneTimeline().formats
    assert recipe_definitions()["optimizers"] == list(OPTIMIZERS)
    timeline = ZoneTimeline().set_run(run)
    drawn = _render_in_node(timeline, tmp_path)
    titles = " ".join(item["title"] for item in drawn["drawn"])
    assert re.search(r"loss -13\.0 dB", titles), titles  # the default: 1 decimal in a tooltip
    timeline.formats = {"db_decimals": 3, "lr_significant": 3}  # the JS writes what the trait says
    titles = " ".join(item["title"] for item in _render_in_node(timeline, tmp_path)["drawn"])
    assert re.search(r"loss -13\.010 dB", titles), titles
