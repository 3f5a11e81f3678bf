"""A real small monitored run for the output tests: tiny MLP, tiny data, every=1, no worker thread."""
from __future__ import annotations

import torch
from torch import nn

from yeswidget.monitor import Monitor


def data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    Y = torch.relu(X @ torch.randn(4, 3, generator=g))
    return X, Y


def model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))


def monitored_run(epochs: int = 4, *, lr: float = 1e-2, attach=(), runs_dir=None, batch: int = 16,
                  seed: int = 0, lr_from: dict[int, float] | None = None, **options) -> Monitor:
    """Train for ``epochs`` with the outputs in ``attach`` subscribed; returns the closed monitor.

    ``lr_from``: {epoch: lr} sets the learning rate from that (1-based) epoch on.
    With the defaults the loss is red for epochs 1–11, yellow for 12–19, green from 20.
    """
    X, Y = data(seed=seed)
    net = model(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    options = {"every": 1, "background": False, **options}
    monitor = Monitor(net, X, Y, optimizer=optimizer, runs_dir=runs_dir, loss_reduction="mean", **options)
    handles = [output.attach(monitor) for output in attach]
    for epoch in monitor.epochs(epochs):
        if (lr_from or {}).get(epoch + 1) is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_from[epoch + 1]
        for start in range(0, X.shape[0], batch):
            loss = nn.functional.mse_loss(net(X[start:start + batch]), Y[start:start + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            monitor.log(loss)
    monitor.close()
    for handle in handles:
        handle.remove()
    return monitor
