"""The run store: the only writer of a run; versioned snapshots; one event per write."""
from __future__ import annotations

from yeswidget.core.bus import EventBus
from yeswidget.core.run import EpochEvent, EpochRecord, Run, StatusEvent, StepEvent
from yeswidget.core.store import RunStore


def make_store():
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    return RunStore(Run(run_id="r", upper=1.0), bus), events


def record(epoch, loss=0.5):
    return EpochRecord(epoch=epoch, loss=loss, upper=1.0, lower=0.4, zone="yellow")


def test_every_write_is_published_in_order():
    store, events = make_store()
    store.add_steps([0.5, 1.0], [0.9, 0.8], lr=1e-3, batch_size=10)
    store.add_epoch(record(1), epochs_total=3)
    store.set_status("finished")
    assert store.bus.drain(10)
    assert [type(e) for e in events] == [StepEvent, EpochEvent, StatusEvent]
    assert events[0].positions == (0.5, 1.0) and events[0].first_step == 0
    assert events[1].record.epoch == 1 and events[1].epochs_total == 3
    assert store.run.status == "finished" and store.run.step_losses == [0.9, 0.8]
    store.bus.stop()


def test_a_snapshot_does_not_change_with_later_writes():
    store, _ = make_store()
    store.add_epoch(record(1), epochs_total=None)
    version, snap = store.snapshot()
    store.add_epoch(record(2), epochs_total=None)
    store.mark(1.5, "lr", 0.01, previous=0.001)
    store.note("hello")
    later, now = store.snapshot()
    assert later > version
    assert len(snap.epochs) == 1 and snap.marks == [] and snap.warnings == []
    assert len(now.epochs) == 2 and now.marks[0]["previous"] == 0.001 and now.warnings == ["hello"]
    assert Run.from_json(now.to_json()).epochs == now.epochs
    store.bus.stop()
