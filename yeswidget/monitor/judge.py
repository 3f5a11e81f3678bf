"""How an epoch is scored: the metric E of the YES bounds, for regressors and classifiers.

Regression: E = ‖Ŷ − Y‖²_F / N on the model's outputs. Classification (integer class
labels as Y): the bounds use one-hot targets, and the judged loss is E of
``softmax(output)`` against one-hot, the multi-class Brier score, in the same
squared-error unit as the bounds (yeswidget's extension; the paper trains
classifiers with MSE on one-hot targets, which stays available by passing one-hot
float targets). ``judge="outputs"`` scores the raw outputs instead.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Judge", "JUDGES", "step_loss_info"]

JUDGES = ("auto", "outputs", "probabilities")


class Judge:
    """Targets for the bounds (N × m) and the score of an output (N × m) against them.

    ``Y``: N × m targets, or N integer class labels (then m = the model's output width).
    """

    def __init__(self, Y: torch.Tensor, output_width: int, mode: str = "auto",
                 dtype: torch.dtype = torch.float64) -> None:
        if mode not in JUDGES:
            raise ValueError(f"judge must be one of {JUDGES}; got {mode!r}")
        self.labels: torch.Tensor | None = None
        if Y.ndim == 1:
            self.labels = Y.long()
            low, high = int(self.labels.min()), int(self.labels.max())
            if low < 0 or high >= output_width:
                raise ValueError(
                    f"Y holds class labels {low} … {high} but the model has {output_width} outputs; labels must be "
                    f"0 … {output_width - 1} (one output per class)")
            self.targets = nn.functional.one_hot(self.labels, output_width).to(dtype)
        else:
            if Y.shape[1] != output_width:
                raise ValueError(
                    f"the model's output has {output_width} features per sample but Y has {Y.shape[1]} (Y shape "
                    f"{tuple(Y.shape)}); Y must be the targets the model is trained to produce (or a 1-D tensor of "
                    "integer class labels for a classifier)")
            self.targets = Y.to(dtype)
        self.kind = "classification" if self.labels is not None else "regression"
        if mode == "probabilities" and self.labels is None:
            raise ValueError('judge="probabilities" needs integer class labels as Y')
        self.probabilities = mode == "probabilities" or (mode == "auto" and self.labels is not None)
        # E of predicting the targets' mean: their spread, the scale a bound of "0" is measured against
        centred = self.targets - self.targets.mean(dim=0, keepdim=True)
        self.target_scale = float(centred.square().sum() / max(self.targets.shape[0], 1))

    def score(self, output: torch.Tensor, labels: torch.Tensor | None = None,
              targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(E as a 0-d tensor, accuracy as a 0-d tensor or None) of ``output`` (N × m)."""
        targets = self.targets if targets is None else targets
        labels = self.labels if labels is None else labels
        prediction = output.to(targets.dtype)
        if self.probabilities:
            prediction = torch.softmax(prediction, dim=1)
        loss = (prediction - targets).square().sum() / targets.shape[0]
        accuracy = None
        if labels is not None:
            accuracy = (output.argmax(dim=1) == labels).to(torch.float64).mean()
        return loss, accuracy

    def describe(self) -> str:
        if self.labels is None:
            return "the metric E on the outputs"
        what = "softmax probabilities" if self.probabilities else "outputs"
        return f"classifier: the metric E of the {what} against one-hot targets (Brier score), and accuracy"


def step_loss_info(loss: Any, loss_reduction: str | None) -> tuple[dict[str, Any], str | None]:
    """What the minibatch losses given to ``log()`` are: ``({"name", "metric"}, reduction)``.

    ``metric`` True: they are (or are scaled to) the metric E and share the cloud's axis;
    False: another loss (cross-entropy, L1, …), drawn on its own axis with its name.
    """
    if loss is None:
        return {"name": "minibatch loss", "metric": True}, loss_reduction
    if isinstance(loss, str):
        name = loss
        reduction = loss_reduction
        is_mse = name.lower() in ("mse", "mseloss", "mse_loss")
    elif isinstance(loss, nn.Module):
        name = type(loss).__name__
        is_mse = isinstance(loss, nn.MSELoss)
        reduction = getattr(loss, "reduction", None) if is_mse else None
    else:
        raise TypeError(f"loss must be a loss module (e.g. nn.CrossEntropyLoss()) or its name; "
                        f"got {type(loss).__name__}")
    if is_mse:
        return {"name": name, "metric": True}, reduction or loss_reduction
    return {"name": name, "metric": False}, None
