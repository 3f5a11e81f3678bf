"""Bounds across torch.distributed ranks: 2 CPU processes over gloo, each with its shard.

Both ranks must get identical results, equal (1e-9) to one process on the union.
Processes are spawned with torch.multiprocessing, talk over 127.0.0.1 only and
every wait is bounded (a hang fails the test instead of stalling CI).
"""
from __future__ import annotations

import datetime
import math
import os
import pickle
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from yeswidget.engine.bounds import YesCloud, yes0_bound, yes_k_bounds
from yeswidget.engine.distributed import all_reduce_sum, is_distributed, is_main_process, union_constant, union_metric

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

WORLD = 2
SPLIT = 23  # rank 0 holds samples [0, 23), rank 1 the other 38: uneven shards
RTOL = 1e-9
TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_data(N=61, n=6, m=5, widths=(9, 7, 8), epochs=2):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, n, generator=g, dtype=torch.float64)
    Y = (X @ torch.randn(n, m, generator=g, dtype=torch.float64)).abs() + 0.1
    per_epoch = []
    for _ in range(epochs):
        hidden, H = [], X
        for w in widths:
            H = torch.relu(H @ torch.randn(H.shape[1], w, generator=g, dtype=torch.float64) / math.sqrt(H.shape[1]))
            hidden.append(H)
        per_epoch.append(hidden)
    return X, Y, per_epoch


def shard(t: torch.Tensor, rank: int) -> torch.Tensor:
    return t[:SPLIT] if rank == 0 else t[SPLIT:]


def cloud_summary(cloud: YesCloud) -> dict:
    return {"N": cloud.N, "upper": cloud.upper, "layer_errors": cloud.layer_errors,
            "curves": [cloud.curve(k) for k in range(cloud.depth)], "last": cloud.last_bounds}


def worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))
    try:
        X, Y, per_epoch = make_data()
        Xr, Yr = shard(X, rank), shard(Y, rank)
        result = {"distributed": is_distributed(), "main": is_main_process()}
        for name, kwargs in (("whole", {}), ("chunked", {"chunk_size": 5})):
            cloud = YesCloud(Xr, Yr, 4, **kwargs)
            for hidden in per_epoch:
                cloud.update([shard(h, rank) for h in hidden])
            result[name] = cloud_summary(cloud)
        result["yes0"] = yes0_bound(Xr, Yr, 3)
        result["yes_k"] = yes_k_bounds(Xr, Yr, [shard(h, rank) for h in per_epoch[0]], chunk_size=7)
        result["local"] = yes0_bound(Xr, Yr, 3, process_group=False)
        result["metric"] = union_metric(Yr * 0.9, Yr)
        result["sum"] = all_reduce_sum(torch.tensor([float(rank + 1)])).item()
        # each shard constant: the union is constant only when the shards hold the same value
        result["constant"] = (union_constant(torch.ones(2 + rank, 2)), union_constant(torch.full((3, 1), rank)))
        # ranks that disagree on the widths get the same clear error (no hang)
        try:
            yes0_bound(Xr if rank == 0 else Xr[:, :5], Yr, 2)
            result["mismatch"] = None
        except ValueError as exc:
            result["mismatch"] = str(exc)
        with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump(result, f)
    finally:
        dist.destroy_process_group()


def close(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * abs(b) + 1e-14


def assert_summary(got: dict, want: dict) -> None:
    assert got["N"] == want["N"]
    assert close(got["upper"], want["upper"])
    assert all(close(a, b) for a, b in zip(got["layer_errors"], want["layer_errors"]))
    for curve_got, curve_want in zip(got["curves"], want["curves"]):
        assert len(curve_got) == len(curve_want)
        assert all(close(a, b) for a, b in zip(curve_got, curve_want))
    assert got["last"].keys() == want["last"].keys()
    assert all(close(got["last"][s], want["last"][s]) for s in want["last"])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    context = mp.start_processes(worker, args=(free_port(), str(out)), nprocs=WORLD, join=False,
                                 start_method="spawn")
    deadline = TIMEOUT_S + 60
    import time
    start = time.monotonic()
    while not context.join(timeout=5):
        if time.monotonic() - start > deadline:
            for p in context.processes:
                p.kill()
            pytest.fail("the 2 gloo ranks did not finish in time")
    results = []
    for r in range(WORLD):
        with open(out / f"rank{r}.pkl", "rb") as f:
            results.append(pickle.load(f))
    return results


def test_both_ranks_get_the_clouds_of_the_union(ranks):
    X, Y, per_epoch = make_data()
    single = YesCloud(X, Y, 4)
    for hidden in per_epoch:
        single.update(hidden)
    want = cloud_summary(single)
    assert want["N"] == 61
    for result in ranks:
        assert result["distributed"]
        assert_summary(result["whole"], want)
        assert_summary(result["chunked"], want)
    # identical on both ranks, bit for bit
    assert ranks[0]["whole"] == ranks[1]["whole"]
    assert ranks[0]["chunked"] == ranks[1]["chunked"]


def test_functions_and_helpers_over_the_union(ranks):
    X, Y, per_epoch = make_data()
    yes0, yes_k = yes0_bound(X, Y, 3), yes_k_bounds(X, Y, per_epoch[0])
    for result in ranks:
        assert close(result["yes0"], yes0)
        assert all(close(result["yes_k"][s], yes_k[s]) for s in yes_k)
        assert close(result["metric"], float(((Y * 0.9 - Y) ** 2).sum() / 61))
        assert result["sum"] == 3.0
        assert result["constant"] == (True, False)
    assert [r["main"] for r in ranks] == [True, False]
    # process_group=False: each rank's own shard
    assert close(ranks[0]["local"], yes0_bound(X[:SPLIT], Y[:SPLIT], 3))
    assert close(ranks[1]["local"], yes0_bound(X[SPLIT:], Y[SPLIT:], 3))


def test_ranks_that_disagree_get_the_same_error(ranks):
    for result in ranks:
        assert result["mismatch"] is not None and "ranks disagree" in result["mismatch"]


def test_helpers_without_distributed():
    assert not is_distributed() and is_main_process()
    assert all_reduce_sum(torch.tensor([2.0])).item() == 2.0
    assert union_metric(torch.zeros(4, 2), torch.ones(4, 2)) == 2.0
    assert union_constant(torch.ones(3, 2)) and not union_constant(torch.eye(2))


# --------------------------------------------------------------------------- #
# Monitor under DistributedDataParallel
# --------------------------------------------------------------------------- #
BATCH = 8  # per rank; the single process trains on both ranks' batches together


def mlp_data():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(64, 5, generator=g, dtype=torch.float64)
    Y = (X @ torch.randn(5, 4, generator=g, dtype=torch.float64)).abs()
    return X, Y


def make_mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 4)).double()


def train(model, monitor, batches, epochs=3):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor.attach_optimizer(optimizer)
    for _ in range(epochs):
        for x, y in batches:
            optimizer.zero_grad()
            loss = ((model(x) - y) ** 2).sum(dim=1).mean()
            loss.backward()
            optimizer.step()
            monitor.log(loss)
        monitor.epoch_end()
    monitor.finish()
    monitor.wait(timeout=60)
    return [(r.epoch, r.loss, r.upper, r.lower, list(r.yes_k), r.zone) for r in monitor.run.epochs]


def ddp_worker(rank: int, port: int, out_dir: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    from yeswidget.monitor import Monitor
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))
    try:
        X, Y = mlp_data()
        Xr, Yr = X[rank * 32:(rank + 1) * 32], Y[rank * 32:(rank + 1) * 32]
        model = DistributedDataParallel(make_mlp())
        monitor = Monitor(model, Xr, Yr, every=1, epochs=3)
        events = []
        monitor.subscribe(events.append)
        batches = [(Xr[i:i + BATCH], Yr[i:i + BATCH]) for i in range(0, 32, BATCH)]
        records = train(model, monitor, batches)
        with open(os.path.join(out_dir, f"ddp{rank}.pkl"), "wb") as f:
            pickle.dump({"records": records, "events": len(events), "N": monitor.cloud.N}, f)
    finally:
        dist.destroy_process_group()


def test_monitor_under_ddp_holds_the_union_records_on_every_rank(tmp_path):
    context = mp.start_processes(ddp_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=False,
                                 start_method="spawn")
    import time
    start = time.monotonic()
    while not context.join(timeout=5):
        if time.monotonic() - start > TIMEOUT_S + 60:
            for p in context.processes:
                p.kill()
            pytest.fail("the 2 DDP ranks did not finish in time")
    ranks = []
    for r in range(WORLD):
        with open(tmp_path / f"ddp{r}.pkl", "rb") as f:
            ranks.append(pickle.load(f))
    from yeswidget.monitor import Monitor
    X, Y = mlp_data()
    model = make_mlp()
    single = Monitor(model, X, Y, every=1, epochs=3, background=False)
    # one union batch = rank 0's batch i and rank 1's batch i (DDP averages the two gradients)
    def union(t, i):
        return torch.cat([t[i:i + BATCH], t[32 + i:32 + i + BATCH]])

    batches = [(union(X, i), union(Y, i)) for i in range(0, 32, BATCH)]
    want = train(model, single, batches)
    assert ranks[0]["N"] == ranks[1]["N"] == 64
    assert ranks[0]["records"] == ranks[1]["records"]  # identical on both ranks
    assert len(want) == 3
    for got, expected in zip(ranks[0]["records"], want):
        assert got[0] == expected[0] and got[5] == expected[5]
        for a, b in zip([got[1], got[2], got[3], *got[4]], [expected[1], expected[2], expected[3], *expected[4]]):
            assert close(a, b), (got, expected)
    assert ranks[0]["events"] > 0 and ranks[1]["events"] == 0  # only rank 0 emits


# --------------------------------------------------------------------------- #
# Monitor under DDP, judged in the user's own loss (the last layer fitted from all-reduced sums)
# --------------------------------------------------------------------------- #
OWN_RTOL = 1e-6  # two Newton solves of one convex problem, each to a 1e-9 decrement


def own_loss_tasks():
    """(name, X, Y, loss module or None, per-batch training loss): an integer-label classifier
    (no loss= given: judged in cross-entropy) and a Huber regressor with outliers."""
    g = torch.Generator().manual_seed(2)
    X = torch.randn(64, 5, generator=g, dtype=torch.float64)
    # noisy labels: the classes overlap in the constructed features (a minimiser exists, no ridge fallback)
    noisy = X @ torch.randn(5, 4, generator=g, dtype=torch.float64) + 3 * torch.randn(64, 4, generator=g,
                                                                                     dtype=torch.float64)
    labels = noisy.argmax(dim=1)
    Y = (X @ torch.randn(5, 4, generator=g, dtype=torch.float64)).abs()
    Y[::9] += 5.0  # outliers
    huber = torch.nn.HuberLoss(delta=0.5)
    return [("classifier", X, labels, None, torch.nn.functional.cross_entropy),
            ("huber", X, Y, huber, huber)]


OWN_EPOCHS = 20  # long enough to go from red through yellow to green


def train_in(model, monitor, batches, loss_fn, epochs=OWN_EPOCHS):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    monitor.attach_optimizer(optimizer)
    for _ in range(epochs):
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            monitor.log(loss)
        monitor.epoch_end()
    monitor.finish()
    monitor.wait(timeout=60)
    return {"records": [(r.epoch, r.loss, r.upper, r.lower, list(r.yes_k), r.zone, r.accuracy)
                        for r in monitor.run.epochs],
            "layer_errors": list(monitor.cloud.layer_errors), "scale": monitor.judge.target_scale,
            "loss": monitor.run.config["loss"], "streamed": monitor.cloud.streamed}


def own_loss_worker(rank: int, port: int, out_dir: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    from yeswidget.monitor import Monitor
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))
    try:
        result = {}
        for name, X, Y, loss, loss_fn in own_loss_tasks():
            Xr, Yr = X[rank * 32:(rank + 1) * 32], Y[rank * 32:(rank + 1) * 32]
            model = DistributedDataParallel(make_mlp())
            monitor = Monitor(model, Xr, Yr, every=1, epochs=OWN_EPOCHS, loss=loss)
            batches = [(Xr[i:i + BATCH], Yr[i:i + BATCH]) for i in range(0, 32, BATCH)]
            result[name] = train_in(model, monitor, batches, loss_fn)
        with open(os.path.join(out_dir, f"own{rank}.pkl"), "wb") as f:
            pickle.dump(result, f)
    finally:
        dist.destroy_process_group()


def test_monitor_under_ddp_judges_in_the_own_loss_as_in_memory(tmp_path):
    context = mp.start_processes(own_loss_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=False,
                                 start_method="spawn")
    import time
    start = time.monotonic()
    while not context.join(timeout=5):
        if time.monotonic() - start > TIMEOUT_S + 60:
            for p in context.processes:
                p.kill()
            pytest.fail("the 2 DDP ranks did not finish in time")
    ranks = []
    for r in range(WORLD):
        with open(tmp_path / f"own{r}.pkl", "rb") as f:
            ranks.append(pickle.load(f))
    from yeswidget.monitor import Monitor

    def union(t, i):
        return torch.cat([t[i:i + BATCH], t[32 + i:32 + i + BATCH]])

    for name, X, Y, loss, loss_fn in own_loss_tasks():
        model = make_mlp()
        single = Monitor(model, X, Y, every=1, epochs=OWN_EPOCHS, loss=loss, background=False)
        want = train_in(model, single, [(union(X, i), union(Y, i)) for i in range(0, 32, BATCH)], loss_fn)
        got = ranks[0][name]
        assert got == ranks[1][name], name  # identical on both ranks
        assert got["streamed"] and not want["streamed"]
        assert got["loss"] == want["loss"]
        if loss is None:  # integer labels, no loss given: judged in cross-entropy
            assert "cross-entropy" in want["loss"]
        assert len(got["records"]) == len(want["records"]) == OWN_EPOCHS
        zones = []
        for g, w in zip(got["records"], want["records"]):
            assert g[0] == w[0] and g[5] == w[5], (name, g, w)  # the epoch and its zone
            assert close(g[1], w[1]), (name, g, w)  # the epoch loss over the union
            for a, b in zip([g[2], g[3], *g[4]], [w[2], w[3], *w[4]]):  # YES-0, the lower edge, YES-k
                assert abs(a - b) <= OWN_RTOL * abs(b), (name, g, w)
            zones.append(w[5])
        assert all(abs(a - b) <= OWN_RTOL * abs(b) for a, b in zip(got["layer_errors"], want["layer_errors"]))
        assert abs(got["scale"] - want["scale"]) <= OWN_RTOL * want["scale"]
        assert set(zones) == {"red", "yellow", "green"} and zones[-1] == "green", (name, zones)


# --------------------------------------------------------------------------- #
# Lightning DDP with YesCallback
# --------------------------------------------------------------------------- #
try:  # Lightning is optional: its test is skipped without it
    import lightning
except ImportError:  # pragma: no cover
    lightning = None

if lightning is not None:
    from torch import nn

    class DDPRegressor(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 5))
            self.net.double()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-2)

    class KeepRuns(lightning.Callback):
        """Each rank writes what its YesCallback holds, and rank zero the final weights."""

        def __init__(self, yes, out_dir: str) -> None:
            self.yes, self.out_dir = yes, out_dir

        def on_fit_end(self, trainer, pl_module) -> None:
            with open(os.path.join(self.out_dir, f"rank{trainer.global_rank}.json"), "w") as handle:
                handle.write(self.yes.run.to_json())
            if trainer.global_rank == 0:
                torch.save(pl_module.net.state_dict(), os.path.join(self.out_dir, "model.pt"))


def _lightning_fit(out_dir: str) -> None:
    from yeswidget.integrations.lightning import YesCallback

    torch.manual_seed(0)
    X, Y, _ = make_data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16)
    yes = YesCallback(X, Y, every=1, runs_dir=os.path.join(out_dir, "runs"))
    trainer = lightning.Trainer(max_epochs=2, accelerator="cpu", devices=WORLD, strategy="ddp_spawn",
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[yes, KeepRuns(yes, out_dir)])
    trainer.fit(DDPRegressor(), loader)


@pytest.mark.skipif(lightning is None, reason="needs PyTorch Lightning")
def test_lightning_ddp_with_yescallback_certifies_the_whole_set_on_every_rank(tmp_path):

    from yeswidget.core.run import Run

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(free_port())
    _lightning_fit(str(tmp_path))
    runs = [Run.from_json(tmp_path / f"rank{r}.json") for r in range(WORLD)]
    def verdicts(run):  # what the ranks must agree on (wall times and local batch sizes differ)
        return [(r.epoch, r.loss, r.upper, r.lower, r.zone, r.yes_k, r.bounds_updated) for r in run.epochs]

    assert verdicts(runs[0]) == verdicts(runs[1]) and [r.epoch for r in runs[0].epochs] == [1, 2]
    # equal to one process certifying the final model on the whole certification set
    X, Y, _ = make_data()
    model = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 5)).double()
    model.load_state_dict(torch.load(tmp_path / "model.pt"))
    with torch.no_grad():
        expected = float((model(X) - Y).square().sum() / X.shape[0])
    assert runs[0].epochs[-1].loss == pytest.approx(expected, rel=RTOL)
    assert runs[0].upper == pytest.approx(YesCloud(X, Y, 3).upper, rel=RTOL)
    assert runs[0].config["n_samples"] == X.shape[0]
    assert len(list((tmp_path / "runs").glob("*.jsonl"))) == 1  # only rank zero wrote the run
