"""The Lightning callback: a real (CPU) Lightning fit, certified epoch by epoch."""
from __future__ import annotations

import pytest
import torch
from torch import nn

lightning = pytest.importorskip("lightning")

from yeswidget.engine.bounds import YesCloud  # noqa: E402
from yeswidget.integrations.lightning import YesCallback  # noqa: E402


class Regressor(lightning.LightningModule):
    def __init__(self, fail_at_epoch: int | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
        self.loss = nn.MSELoss()  # a registered loss module is not a layer
        self.fail_at_epoch = fail_at_epoch

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if self.fail_at_epoch is not None and self.current_epoch == self.fail_at_epoch:
            raise RuntimeError("broken batch")
        x, y = batch
        return self.loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def data(n=64):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 4, generator=g)
    Y = torch.relu(X @ torch.randn(4, 3, generator=g))
    return X, Y


def fit(module, callback, epochs=4):
    X, Y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16)
    trainer = lightning.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    trainer.fit(module, loader)
    return trainer


def test_a_lightning_fit_is_certified_every_epoch():
    X, Y = data()
    module = Regressor()
    callback = YesCallback(X, Y, every=1, loss_reduction="mean")
    fit(module, callback)
    run = callback.run
    assert run.status == "finished" and [r.epoch for r in run.epochs] == [1, 2, 3, 4]
    assert len(run.step_losses) == 4 * 4  # every batch's loss, from training_step's output
    # the epoch loss is the metric E of the trained module, not Lightning's mean loss
    with torch.no_grad():
        expected = float(((module(X) - Y) ** 2).sum() / X.shape[0])
    assert run.epochs[-1].loss == pytest.approx(expected, rel=1e-5)
    assert run.upper == pytest.approx(YesCloud(X, Y, 3).upper)
    assert run.epochs[-1].lr == pytest.approx(1e-2)
    # nothing is left attached to the model
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def test_a_failing_fit_keeps_the_record_and_says_failed():
    X, Y = data()
    callback = YesCallback(X, Y, every=1)
    with pytest.raises(RuntimeError, match="broken batch"):
        fit(Regressor(fail_at_epoch=2), callback)
    run = callback.run
    assert run.status == "failed" and "broken batch" in run.message
    assert len(run.epochs) == 2


def test_a_fit_resumed_from_a_checkpoint_continues_its_run(tmp_path):
    X, Y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16)

    def trainer(epochs, callback):
        return lightning.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
                                 enable_model_summary=False, default_root_dir=tmp_path, callbacks=[callback])

    first = YesCallback(X, Y, every=1)
    torch.manual_seed(0)
    module = Regressor()
    trainer(2, first).fit(module, loader)
    checkpoint = next(tmp_path.rglob("*.ckpt"))
    second = YesCallback(X, Y, every=1)
    trainer(4, second).fit(Regressor(), loader, ckpt_path=checkpoint)
    run = second.run
    assert run.run_id == first.run.run_id
    assert [r.epoch for r in run.epochs] == [1, 2, 3, 4] and run.status == "finished"
    assert run.epochs[:2] == first.run.epochs
    assert all(b.lower <= a.lower for a, b in zip(run.epochs, run.epochs[1:]))  # the running minimum goes on
    assert len(run.step_losses) == 4 * 4


class NextValueLSTM(lightning.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, 8, batch_first=True)
        self.fc = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc(self.lstm(x)[0][:, -1])

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def test_certify_from_reaches_the_monitor_through_the_callback():
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(48, 5, 1, generator=g), torch.randn(48, 1, generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16)
    for options, zone in (({}, "none"), ({"certify_from": "lstm"}, None)):
        callback = YesCallback(X, Y, every=1, **options)
        trainer = lightning.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                                    enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
        trainer.fit(NextValueLSTM(), loader)
        records = callback.run.epochs
        assert len(records) == 2
        if zone == "none":
            assert all(r.zone == "none" and "recurrent" in r.reason for r in records)
        else:
            assert all(r.zone in ("red", "yellow", "green") and "head given current features" in r.reason
                       for r in records)
            assert callback.run.config["certified"] == "head given current features (certify_from='lstm')"
