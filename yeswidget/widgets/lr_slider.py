"""The one learning-rate slider (the Playground's and ``LiveCloud``'s): log scale over
:data:`yeswidget.training.recipe.LR_RANGE`, widened for a value outside it."""
from __future__ import annotations

import math

import ipywidgets as widgets

from ..training.recipe import LR_RANGE, check_lr

__all__ = ["lr_slider", "set_lr_value"]


def lr_slider(lr: float, **style: object) -> widgets.FloatLogSlider:
    """A log slider labelled "learning rate" showing ``lr`` (``1.0e-03``); moves apply on release."""
    low, high = (math.log10(v) for v in LR_RANGE)
    slider = widgets.FloatLogSlider(value=LR_RANGE[0], base=10, min=low, max=high, step=0.1,
                                    description="learning rate", readout_format=".1e",
                                    style={"description_width": "initial", **style}, continuous_update=False)
    set_lr_value(slider, lr)
    return slider


def set_lr_value(slider: widgets.FloatLogSlider, lr: float) -> None:
    """Set a log slider to ``lr``, widening its range first (the slider would silently clamp)."""
    lr = check_lr(lr)
    exponent = math.log10(lr)
    with slider.hold_trait_notifications():
        if exponent < slider.min:
            slider.min = float(math.floor(exponent))
        if exponent > slider.max:
            slider.max = float(math.ceil(exponent))
    slider.value = lr
