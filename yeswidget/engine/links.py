"""The user's loss as the last layer sees it, when the model's output function is part of it.

Tutorials often end ``forward`` in a sigmoid and train with ``nn.BCELoss``, or in
``log_softmax`` and train with ``nn.NLLLoss``. To the loss that is a model ending in logits
trained with ``nn.BCEWithLogitsLoss`` / ``nn.CrossEntropyLoss``: the YES network's last layer
is then fitted on the logits in that convex loss (so the construction fits the user's
architecture, sigmoid included), and the user's own loss object scores the user's outputs.
Label smoothing is cross-entropy against smoothed target rows. Any other callable is applied
to the YES network's outputs through the same output function, with the targets in the form
the user gave them (class labels stay labels): an achieved value, never a certified one.

Pure math, no UI. Shapes: outputs and targets are N × m (one-hot rows for class labels).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .losses import LastLayerLoss, last_layer_loss

__all__ = ["OwnLoss", "resolve_loss", "LINKS"]

#: the output functions a loss can absorb, as the YES network applies them to its last layer
LINKS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "log_softmax": lambda u: torch.log_softmax(u, dim=-1),
    "softmax": lambda u: torch.softmax(u, dim=-1),
}

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class OwnLoss:
    """The last-layer loss (None: squared error), the output function it absorbs, and how the
    user's outputs are scored (None: ``last_layer.value``)."""

    last_layer: LastLayerLoss | None
    absorbed: str | None = None
    score: Score | None = None
    smoothing: float = 0.0

    def describe(self) -> str:
        """What the loss absorbed, for describe() (empty when nothing was)."""
        if self.absorbed is None:
            return ""
        exact = {"sigmoid": "bce", "log_softmax": "cross_entropy"}.get(self.absorbed)
        if self.last_layer is None or self.last_layer.kind != exact:  # e.g. a custom callable after a sigmoid
            return (f"the YES network's outputs pass through the model's {self.absorbed}, as the model's do, "
                    "before the loss scores them")
        return {"sigmoid": "the model's sigmoid output is part of the loss (BCELoss on sigmoid(z) is "
                           "BCEWithLogitsLoss on z): the YES network ends in the same sigmoid",
                "log_softmax": "the model's log_softmax output is part of the loss (NLLLoss on log_softmax(z) "
                               "is CrossEntropyLoss on z): the YES network ends in the same log_softmax",
                }.get(self.absorbed, f"the YES network's outputs pass through the model's {self.absorbed}")


def resolve_loss(loss: Any, Y: torch.Tensor, link: str | None) -> OwnLoss:
    """The judged loss for the user's ``loss`` on targets ``Y`` (N × m, or N class labels), for a
    model whose output passes through ``link`` (a key of :data:`LINKS`) after its last affine map."""
    if isinstance(loss, nn.BCELoss) and link == "sigmoid" and _plain(loss):
        bce = LastLayerLoss("bce", "BCELoss after the model's sigmoid")
        return OwnLoss(bce, "sigmoid", lambda out, T: nn.functional.binary_cross_entropy(out, T))
    if isinstance(loss, nn.NLLLoss) and link == "log_softmax" and _plain(loss) and Y.ndim == 1:
        # cross-entropy of the YES network's logits is NLL of their log_softmax; the user's outputs
        # are log-probabilities already, scored by NLL itself (T: one-hot rows)
        return OwnLoss(LastLayerLoss("cross_entropy", "NLLLoss after the model's log_softmax"), "log_softmax",
                       lambda out, T: -(T * out).sum(dim=-1).mean())
    if (isinstance(loss, nn.KLDivLoss) and link == "log_softmax" and loss.reduction == "batchmean"
            and not loss.log_target and Y.ndim == 2):
        return OwnLoss(_KLDivergence("KLDivLoss(batchmean) after the model's log_softmax"), "log_softmax",
                       lambda out, T: nn.functional.kl_div(out, T, reduction="batchmean"))
    if (isinstance(loss, nn.CrossEntropyLoss) and link is None and _plain(loss)
            and 0.0 < loss.label_smoothing < 1.0):
        name = f"CrossEntropyLoss(label_smoothing={loss.label_smoothing:g})"
        return OwnLoss(LastLayerLoss("cross_entropy", name), smoothing=float(loss.label_smoothing))
    last = last_layer_loss(loss, Y)
    if last is None:
        return OwnLoss(None)  # squared error: the paper's construction (the plan's note says what it misses)
    if last.kind != "custom" and link is None:
        return OwnLoss(last)
    if last.kind == "cross_entropy" and link == "log_softmax":  # log_softmax is idempotent: CE(log_softmax(z)) = CE(z)
        return OwnLoss(last, "log_softmax")
    # a convex loss on outputs that passed another function (CrossEntropyLoss on softmax outputs)
    # is not convex in the logits: the YES network ends in the same function, achieved values only
    return _custom(loss, _named(loss, last.name), Y.ndim == 1, link)


def _named(loss: Any, name: str) -> str:
    """``BCEWithLogitsLoss(pos_weight=…)``: what made a known loss custom shows in its name."""
    if not isinstance(loss, nn.Module):
        return name
    given = [f"{key}=…" for key in ("weight", "pos_weight") if getattr(loss, key, None) is not None]
    given += [f"label_smoothing={loss.label_smoothing:g}"] if getattr(loss, "label_smoothing", 0.0) else []
    given += [f"reduction={loss.reduction!r}"] if getattr(loss, "reduction", "mean") != "mean" else []
    return f"{name}({', '.join(given)})" if given else name


class _KLDivergence(LastLayerLoss):
    """KL(T ‖ softmax(U)) per sample, mean over samples: cross-entropy less the targets' entropy
    (a constant of the data), so the same convex solve; T: N × m probability rows."""

    def __init__(self, name: str) -> None:
        super().__init__("cross_entropy", name)

    def fresh(self) -> _KLDivergence:
        return _KLDivergence(self.name)

    def value(self, U: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        entropy: torch.Tensor = -torch.special.xlogy(T, T).sum(-1).mean(-1)
        return super().value(U, T) - entropy


def _plain(loss: nn.Module) -> bool:
    return getattr(loss, "reduction", "mean") == "mean" and getattr(loss, "weight", None) is None


def _custom(loss: Any, name: str, labels: bool, link: str | None) -> OwnLoss:
    """A loss without an exact solver, called as the user calls it: on outputs that passed the
    model's output function, against labels where the user gave labels."""
    apply = LINKS[link] if link is not None else None

    def user_loss(out: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        value = loss(out, T.argmax(dim=-1) if labels else T)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"loss {name} must return one number (a mean), got {shape}")
        return value.reshape(())

    through = f", then the model's {link}" if link else ""

    def on_yes_outputs(u: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        try:
            return user_loss(apply(u) if apply is not None else u, T)
        except RuntimeError as error:  # e.g. BCELoss on outputs outside [0, 1]
            raise ValueError(
                f"loss {name} failed on the YES network's outputs (an affine last layer{through}) against "
                f"the targets as given: {error}. Pass "
                "loss= the loss in the form forward's output takes (nn.BCEWithLogitsLoss() for logits, "
                "nn.CrossEntropyLoss() for class scores), or loss=nn.MSELoss()") from error

    return OwnLoss(LastLayerLoss("custom", name, fn=on_yes_outputs), link, user_loss)
