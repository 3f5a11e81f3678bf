"""The Playground's controls: built here, read here (:func:`chosen_settings`), and written only
here, on the UI pump thread (:func:`apply_controls`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ...training.recipe import OPTIMIZERS, SCHEDULES, Settings, batch_size_options
from ...training.tasks import TASKS
from ..lr_slider import lr_slider, set_lr_value
from .families import MAX_DEPTH, MAX_EPOCHS, MAX_WIDTH

if TYPE_CHECKING:
    from .app import Playground

__all__ = ["build_controls", "control_rows", "chosen_settings", "apply_controls", "nearest"]

_STYLE = {"description_width": "initial"}


def build_controls(pg: Playground, recipe: Settings, depth: int, width: int) -> None:
    """Every control of ``pg``, set to ``recipe`` and the architecture, wired to ``pg``'s handlers."""
    _hyper_parameters(pg, recipe)
    _setup(pg, recipe.seed, depth, width)
    _buttons(pg)


def _hyper_parameters(pg: Playground, recipe: Settings) -> None:
    pg.lr_slider = lr_slider(recipe.lr)
    options = batch_size_options(pg.task.X_train.shape[0])
    pg.batch_slider = widgets.SelectionSlider(options=options, value=nearest(options, recipe.batch_size),
                                              description="batch size", style=_STYLE, continuous_update=False)
    pg.epochs_box = widgets.BoundedIntText(value=recipe.epochs, min=1, max=MAX_EPOCHS, description="epochs",
                                           style=_STYLE, layout=widgets.Layout(width="10em"))
    pg.optimizer_box = widgets.ToggleButtons(options=list(OPTIMIZERS), value=recipe.optimizer,
                                             description="optimizer", style={"button_width": "5em"})
    pg.schedule_box = widgets.Dropdown(options=list(SCHEDULES), value=recipe.schedule, description="lr schedule",
                                       style=_STYLE, layout=widgets.Layout(width="14em"))
    pg.lr_slider.observe(pg._on_lr, names="value")
    pg.batch_slider.observe(pg._on_batch, names="value")


def _setup(pg: Playground, seed: int, depth: int, width: int) -> None:
    task = pg.task
    pg.seed_box = widgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=_STYLE,
                                         layout=widgets.Layout(width="9em"))
    names = list(TASKS) if task.name in TASKS else [task.name, *TASKS]
    pg.task_box = widgets.Dropdown(options=names, value=task.name, description="task", style=_STYLE,
                                   layout=widgets.Layout(width="16em"))
    pg.depth_box = widgets.BoundedIntText(value=depth, min=2, max=MAX_DEPTH, description="depth (layers)",
                                          style=_STYLE, layout=widgets.Layout(width="10em"),
                                          tooltip="Linear layers L; a new depth starts a new family")
    pg.width_box = widgets.BoundedIntText(value=max(width, 1), min=1, max=MAX_WIDTH, description="width",
                                          style=_STYLE, layout=widgets.Layout(width="8em"))
    pg.task_box.observe(pg._on_task, names="value")


def _buttons(pg: Playground) -> None:
    pg.retry_button = widgets.Button(description="Train", button_style="primary", icon="play",
                                     tooltip="start a run from the seed's initial weights")
    pg.pause_button = widgets.Button(description="Pause", icon="pause", disabled=True)
    pg.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger", disabled=True)
    pg.reset_button = widgets.Button(description="Reset", icon="undo",
                                     tooltip="put the controls back to their starting values (runs are kept)")
    pg.step_button = widgets.Button(description="Step 1 epoch", icon="step-forward",
                                    tooltip="train one more epoch, then pause (a new run if none is live)")
    pg.retry_button.on_click(lambda _: pg._retry_clicked())
    pg.step_button.on_click(lambda _: pg.step_epoch())
    pg.pause_button.on_click(lambda _: pg.resume() if pg.paused else pg.pause())
    pg.stop_button.on_click(lambda _: pg.stop())
    pg.reset_button.on_click(lambda _: pg.reset())
    pg.hide_button = widgets.Button(description="Hide run", icon="eye-slash", disabled=True,
                                    tooltip="hide or show the chosen run's line on the chart",
                                    layout=widgets.Layout(width="auto", min_width="9em"))
    pg.delete_button = widgets.Button(description="Delete run", icon="trash", disabled=True,
                                      tooltip="remove the chosen run from the table and the chart",
                                      layout=widgets.Layout(width="auto", min_width="9em"))
    pg.hide_button.on_click(lambda _: pg._toggle_chosen())
    pg.delete_button.on_click(lambda _: pg._delete_chosen())


def control_rows(pg: Playground) -> list[widgets.HBox]:
    """The controls in rows, as the default layout shows them."""
    return [
        widgets.HBox([pg.lr_slider, pg.batch_slider]),
        widgets.HBox([pg.epochs_box, pg.optimizer_box, pg.schedule_box, pg.seed_box]),
        widgets.HBox([pg.task_box, pg.depth_box, pg.width_box]),
        widgets.HBox([pg.retry_button, pg.step_button, pg.pause_button, pg.stop_button, pg.reset_button]),
    ]


def chosen_settings(pg: Playground) -> Settings:
    """The controls' current values as :class:`~yeswidget.training.Settings`."""
    return Settings(lr=float(pg.lr_slider.value), batch_size=int(pg.batch_slider.value),
                    epochs=int(pg.epochs_box.value), optimizer=pg.optimizer_box.value,
                    schedule=pg.schedule_box.value, seed=int(pg.seed_box.value), every=pg.every,
                    step_size=pg.defaults.step_size, gamma=pg.defaults.gamma)


def apply_controls(pg: Playground, values: dict[str, Any]) -> None:
    """On the UI pump thread: put ``values`` into the controls (these writes are not user moves)."""
    if not values:
        return
    pg._syncing = True  # the handlers ignore these changes
    try:
        if "lr" in values:
            set_lr_value(pg.lr_slider, float(values["lr"]))
        if "batch_options" in values:
            pg.batch_slider.options = list(values["batch_options"])
        if "task" in values and pg.task_box.value != values["task"]:
            pg.task_box.value = values["task"]
        if "batch_size" in values:
            options = list(pg.batch_slider.options)
            size = int(values["batch_size"])
            if size not in options:
                pg.batch_slider.options = sorted(set(options) | {size})
            pg.batch_slider.value = size
        for key, box in (("epochs", pg.epochs_box), ("optimizer", pg.optimizer_box),
                         ("schedule", pg.schedule_box), ("seed", pg.seed_box),
                         ("depth", pg.depth_box), ("width", pg.width_box)):
            if key in values:
                box.value = values[key] if key in ("optimizer", "schedule") else int(values[key])
    finally:
        pg._syncing = False


def nearest(options: list[int], value: int) -> int:
    return min(options, key=lambda o: (abs(o - value), o))
