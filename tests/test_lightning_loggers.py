"""YesCallback gives the YES metrics to every logger the Lightning trainer has."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

lightning = pytest.importorskip("lightning")
pytest.importorskip("tensorboard")
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger  # noqa: E402
from output_helpers import data  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from yeswidget.core.zones import ZONE_CODES  # noqa: E402
from yeswidget.integrations.lightning import YesCallback  # noqa: E402


class Regressor(lightning.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def fit(tmp_path, callback, epochs=4):
    X, Y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16)
    loggers = [TensorBoardLogger(str(tmp_path), name="tb"), CSVLogger(str(tmp_path), name="csv")]
    trainer = lightning.Trainer(max_epochs=epochs, accelerator="cpu", logger=loggers, log_every_n_steps=1,
                                enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    trainer.fit(Regressor(), loader)
    return trainer


def csv_columns(path) -> dict[str, dict[int, float]]:
    """column → {step: value} from a CSVLogger metrics.csv (empty cells skipped)."""
    columns: dict[str, dict[int, float]] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            for name, value in row.items():
                if value not in ("", None) and name != "step":
                    columns.setdefault(name, {})[int(row["step"])] = float(value)
    return columns


@pytest.mark.parametrize("background", [False, True])
def test_the_yes_metrics_reach_tensorboard_and_csv_loggers(tmp_path, background):
    X, Y = data()
    callback = YesCallback(X, Y, every=1, background=background, loss_reduction="mean")
    trainer = fit(tmp_path, callback)
    run = callback.run
    assert [r.step for r in run.epochs] == [4, 8, 12, 16]  # 4 batches an epoch

    tb_logger, csv_logger = trainer.loggers
    columns = csv_columns(f"{csv_logger.log_dir}/metrics.csv")
    assert columns["yes/loss"] == {r.step: r.loss for r in run.epochs}
    assert columns["yes/yes0"] == {r.step: r.upper for r in run.epochs}
    assert columns["yes/lower"] == {r.step: r.lower for r in run.epochs}
    assert columns["yes/zone"] == {r.step: ZONE_CODES[r.zone] for r in run.epochs}
    assert columns["yes/epoch"] == {r.step: r.epoch for r in run.epochs}
    assert "train_loss" in columns  # the module's own metrics are still there

    events = EventAccumulator(tb_logger.log_dir, size_guidance={"scalars": 0})
    events.Reload()
    assert {e.step: e.value for e in events.Scalars("yes/loss")} == {r.step: np.float32(r.loss) for r in run.epochs}
    assert {e.step: e.value for e in events.Scalars("yes/yes_k/2")} == \
        {r.step: np.float32(r.yes_k[1]) for r in run.epochs}
    assert "train_loss" in events.Tags()["scalars"]


def test_log_metrics_false_leaves_the_loggers_alone(tmp_path):
    X, Y = data()
    trainer = fit(tmp_path, YesCallback(X, Y, every=1, log_metrics=False), epochs=2)
    assert not any(name.startswith("yes/") for name in csv_columns(f"{trainer.loggers[1].log_dir}/metrics.csv"))
