"""Test doubles shared by test_training.py and test_playground.py."""
from __future__ import annotations

from torch import nn

from yeswidget import tasks
from yeswidget.training import Trainer


class FailsOnThirdStep(nn.Module):
    """An MLP whose forward raises on the 3rd training-mode call (the 3rd step)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tasks.mlp([4, 8, 8, 3])
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("boom at step 3")
        return self.net(x)


class AlwaysFails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = tasks.mlp([4, 8, 3])

    def forward(self, x):
        raise RuntimeError("this model never works")


class HookedTrainer(Trainer):
    """A Trainer whose optimizer gets test hooks right after it is built (in the
    training thread, before the first step): ``on_pre(trainer, step_index)`` runs
    when a step begins (after backward), ``on_post(trainer, step_index)`` after it;
    ``lrs`` collects the learning rate each step ran with."""

    def __init__(self, *args, on_pre=None, on_post=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_pre, self.on_post = on_pre, on_post
        self.lrs: list[float] = []
        self.steps = 0

    def _build(self) -> None:
        super()._build()

        def pre(opt, args, kwargs):
            self.lrs.append(float(opt.param_groups[0]["lr"]))
            if self.on_pre is not None:
                self.on_pre(self, self.steps)

        def post(opt, args, kwargs):
            self.steps += 1
            if self.on_post is not None:
                self.on_post(self, self.steps)

        self.optimizer.register_step_pre_hook(pre)
        self.optimizer.register_step_post_hook(post)
