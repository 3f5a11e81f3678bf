"""How an epoch is scored: the loss the bounds are in, for regressors and classifiers.

The judged loss is the user's own (``loss=``; yeswidget's extension, YES-BOUNDS.md "Beyond
squared error"): the mean over the certification set, exactly as the loss object computes it,
with the YES network's last layer fitted in that loss (:mod:`yeswidget.engine.losses`).
Not given: integer class labels are judged in cross-entropy, real targets in the paper's
metric E = ‖Ŷ − Y‖²_F / N (squared error summed over outputs), and 0/1 float targets are a
question (logits for BCE, or one-hot targets for squared error?) the user must answer.
``judge="outputs"`` scores the raw outputs by E, ``judge="probabilities"`` softmax
probabilities against one-hot targets (the Brier score): both squared error.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..engine.links import OwnLoss, resolve_loss
from ..engine.losses import LOSS_KINDS, LastLayerLoss, binary_targets

__all__ = ["Judge", "JUDGES", "step_loss_info"]

JUDGES = ("auto", "outputs", "probabilities")


class Judge:
    """Targets for the bounds (N × m) and the score of an output (N × m) against them.

    ``Y``: N × m targets, or N integer class labels (then m = the model's output width).
    ``loss``: the loss the user trains with (a module, its name, or a callable); ``own`` is
    its :class:`~yeswidget.engine.losses.LastLayerLoss`, None for squared error. ``link``: the
    function the model's output passes through after its last affine map (``sigmoid``,
    ``log_softmax``, ``softmax``; :attr:`CapturePlan.output_link`), which a matching loss absorbs.
    """

    def __init__(self, Y: torch.Tensor, output_width: int, mode: str = "auto",
                 dtype: torch.dtype = torch.float64, loss: Any = None, link: str | None = None) -> None:
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
        if mode == "probabilities" and self.labels is None:
            raise ValueError('judge="probabilities" needs integer class labels as Y')
        squared = mode != "auto" or (loss is None and self.labels is None and not binary_targets(Y))
        self.loss = OwnLoss(None) if squared else resolve_loss(loss, Y, link)
        self.own: LastLayerLoss | None = self.loss.last_layer
        if self.labels is not None:
            self.targets = self.label_targets(self.labels)
        if self.own is not None and self.own.kind == "bce":
            _check_probabilities(Y)
        if self.own is not None and self.own.kind == "cross_entropy" and self.labels is None:
            _check_distributions(self.targets)
        #: where an output says "1" for 0/1 (or [0, 1]) targets, None where that cannot be told
        self.threshold = None if self.labels is not None else _label_threshold(loss, self.loss, Y)
        self.kind = "classification" if self.labels is not None or self.threshold is not None else "regression"
        self.probabilities = mode == "probabilities"
        centred = self.targets - self.targets.mean(dim=0, keepdim=True)
        #: the targets do not vary: there is nothing to learn and no bound can grade the run
        self.constant = bool(centred.abs().max() == 0) if self.targets.numel() else True
        # the scale a bound of "0" is measured against: E of predicting the targets' mean, or in
        # the own loss the loss of the best constant prediction (an intercept-only last layer)
        self.target_scale = float(centred.square().sum() / max(self.targets.shape[0], 1))
        if self.own is not None and not self.constant:
            ones = torch.ones(1, self.targets.shape[0], 1, dtype=torch.float64, device=self.targets.device)
            self.target_scale = abs(float(_checked_solve(self.own, ones, self.targets)))

    def label_targets(self, labels: torch.Tensor) -> torch.Tensor:
        """The target rows (N × m) of class ``labels``: one-hot, smoothed as the loss smooths them."""
        rows = nn.functional.one_hot(labels.long(), self.targets.shape[1]).to(self.targets.dtype)
        eps = self.loss.smoothing
        return rows * (1 - eps) + eps / rows.shape[1] if eps else rows

    def score(self, output: torch.Tensor, labels: torch.Tensor | None = None,
              targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the judged loss as a 0-d tensor, accuracy as a 0-d tensor or None) of ``output`` (N × m)."""
        targets = self.targets if targets is None else targets
        labels = self.labels if labels is None else labels
        if self.own is not None:
            out64, targets64 = output.to(torch.float64), targets.to(torch.float64)
            score = self.loss.score or self.own.value
            loss = score(out64, targets64)
            accuracy = None
            if labels is not None:
                accuracy = (output.argmax(dim=1) == labels).to(torch.float64).mean()
            elif self.threshold is not None:  # per label (hamming) accuracy
                accuracy = ((output > self.threshold) == (targets > 0.5)).to(torch.float64).mean()
            return loss, accuracy
        prediction = output.to(targets.dtype)
        if self.probabilities:
            prediction = torch.softmax(prediction, dim=1)
        loss = (prediction - targets).square().sum() / targets.shape[0]
        accuracy = None
        if labels is not None:
            accuracy = (output.argmax(dim=1) == labels).to(torch.float64).mean()
        return loss, accuracy

    @property
    def axis(self) -> str:
        """``db`` where the judged loss is positive, ``linear`` where it can be negative."""
        return "linear" if self.own is not None and self.own.signed else "db"

    def describe(self) -> str:
        if self.own is not None:
            what = f"{self.own.name}, mean over the certification set; the YES network's last layer is " \
                   f"fitted in it: {LOSS_KINDS[self.own.kind]}"
            if self.loss.absorbed is not None:
                what += f" ({self.loss.describe()})"
            if self.kind == "classification":
                return what + ", and accuracy"
            if self.own.kind == "custom" and binary_targets(self.targets):
                return what + (", and no accuracy: a plain loss function does not say whether the outputs are "
                               "logits (a label is 1 above 0) or outputs trained towards 0/1 (above ½); end forward "
                               "in a sigmoid or pass nn.BCEWithLogitsLoss(...) to have it")
            return what
        if self.labels is None:
            return "the metric E (squared error summed over outputs, mean over samples) on the outputs"
        what = "softmax probabilities" if self.probabilities else "outputs"
        return f"classifier: the metric E of the {what} against one-hot targets (Brier score), and accuracy"


def _label_threshold(loss: Any, own: OwnLoss, Y: torch.Tensor) -> float | None:
    """The output above which a model says "1" to 0/1 targets (N × m, one output per label), where
    the form of its outputs is known: probabilities above ½ after the model's own sigmoid, logits
    above 0 for BCE on logits. None where it is not: a plain function on the raw outputs does not
    say whether they are logits (0) or outputs trained towards 0/1 (½), and no accuracy is better
    than a guessed one."""
    last = own.last_layer
    if last is None or Y.ndim != 2:
        return None
    if last.kind == "bce":  # also soft targets in [0, 1]: the loss's own form of its outputs
        return 0.5 if own.absorbed == "sigmoid" else 0.0
    if last.kind != "custom" or not binary_targets(Y):
        return None
    if own.absorbed == "sigmoid":  # the model ends in a sigmoid: its outputs are probabilities
        return 0.5
    # BCEWithLogitsLoss with a weight or pos_weight (no exact solve, hence custom): logits by definition
    return 0.0 if isinstance(loss, nn.BCEWithLogitsLoss) else None


def _checked_solve(own: LastLayerLoss, ones: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The intercept-only fit (the loss's scale); a loss that cannot take the YES network's
    outputs says so here, before training, rather than on the bounds worker."""
    try:
        return own.fresh().solve(ones, targets)
    except (RuntimeError, ValueError, TypeError) as error:
        raise ValueError(
            f"loss {own.name} failed on the YES network's outputs (an affine last layer, through the model's "
            f"output function if it has one) against the targets as given: {error}. Pass loss= the loss you train "
            "with, in the form forward's output takes (e.g. nn.BCEWithLogitsLoss() for logits), or "
            "loss=nn.MSELoss()") from error


def _check_probabilities(Y: torch.Tensor) -> None:
    if Y.ndim != 2 or not Y.is_floating_point() or bool((Y < 0).any() | (Y > 1).any()):
        raise ValueError("binary cross-entropy needs float targets in [0, 1], N × m (one column per label: "
                         f"shape (N, 1) for one logit); got {Y.dtype} of shape {tuple(Y.shape)}. For class labels "
                         "use nn.CrossEntropyLoss() with a 1-D tensor of integer labels")


def _check_distributions(T: torch.Tensor) -> None:
    sums = T.sum(dim=1)
    if bool((T < 0).any()) or not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
        raise ValueError("cross-entropy with float targets needs each row to be class probabilities (≥ 0, summing "
                         "to 1); pass integer class labels (a 1-D tensor) instead, or the loss you train with")


def step_loss_info(loss: Any, loss_reduction: str | None,
                   own: LastLayerLoss | None = None) -> tuple[dict[str, Any], str | None]:
    """What the minibatch losses given to ``log()`` are: ``({"name", "metric"}, reduction)``.

    ``metric`` True: they are in the judged loss (or scaled to the metric E) and share the
    cloud's axis; False: another loss, drawn on its own axis with its name. ``own``: the
    judged loss (None: squared error).
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
    elif callable(loss):
        name, is_mse, reduction = getattr(loss, "__name__", type(loss).__name__), False, None
    else:
        raise TypeError(f"loss must be a loss module (e.g. nn.CrossEntropyLoss()), its name, or a callable "
                        f"loss(prediction, target); got {type(loss).__name__}")
    if own is not None:  # the loop logs the loss the epochs are judged in: one axis, no scaling
        return {"name": name, "metric": True}, None
    if is_mse:
        return {"name": name, "metric": True}, reduction or loss_reduction
    return {"name": name, "metric": False}, None
