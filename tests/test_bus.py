"""The event bus: publishers never run subscribers; one dispatcher thread delivers in order."""
from __future__ import annotations

import threading
import time

from yeswidget.core.bus import EventBus


def test_subscribers_run_on_one_dispatcher_thread_in_publish_order():
    bus = EventBus()
    seen: list[tuple[int, int]] = []
    bus.subscribe(lambda event: seen.append((event, threading.get_ident())))
    publishers = [threading.Thread(target=lambda k=k: [bus.publish(k * 100 + i) for i in range(50)]) for k in range(3)]
    for t in publishers:
        t.start()
    for t in publishers:
        t.join()
    assert bus.drain(10)
    assert len(seen) == 150
    threads = {ident for _, ident in seen}
    assert len(threads) == 1 and threading.get_ident() not in threads
    for k in range(3):  # each publisher's events arrive in its order
        mine = [e for e, _ in seen if e // 100 == k]
        assert mine == sorted(mine)
    assert bus.stop()
    assert not any(t.name == "yeswidget-events" for t in threading.enumerate())


def test_a_slow_subscriber_never_holds_up_the_publisher():
    bus = EventBus()
    release = threading.Event()
    bus.subscribe(lambda event: release.wait(10))
    start = time.perf_counter()
    for i in range(20):
        bus.publish(i)
    assert time.perf_counter() - start < 1.0  # publish only queues
    assert not bus.drain(timeout=0.1)
    release.set()
    assert bus.drain(10)
    bus.stop()


def test_a_raising_subscriber_is_reported_and_delivery_goes_on():
    errors = []
    bus = EventBus(on_error=lambda callback, exc: errors.append(str(exc)))
    good = []
    bus.subscribe(lambda event: 1 / 0)
    bus.subscribe(good.append)
    bus.publish("a")
    bus.publish("b")
    assert bus.drain(10)
    assert good == ["a", "b"] and len(errors) == 2
    bus.stop()


def test_a_subscriber_may_stop_the_bus_and_a_later_publish_restarts_it():
    bus = EventBus()
    seen = []

    def stop_on_first(event):
        seen.append(event)
        if event == 1:
            bus.stop()  # on the dispatcher itself: must not deadlock
            assert bus.drain(0)  # drain inside a subscriber returns at once

    bus.subscribe(stop_on_first)
    bus.publish(1)
    time.sleep(0.2)
    bus.publish(2)
    assert bus.drain(10)
    assert seen == [1, 2]
    assert bus.stop()


def test_handles_remove_safely_twice_and_work_as_context_managers():
    bus = EventBus()
    seen = []
    with bus.subscribe(seen.append) as handle:
        bus.publish(1)
        bus.drain(10)
    handle.remove()
    bus.publish(2)
    bus.drain(10)
    assert seen == [1] and bus.subscribers == 0
    bus.stop()


def test_events_nobody_listens_to_start_no_thread_and_later_subscribers_get_later_events():
    bus = EventBus(name="yeswidget-events-unheard")
    for i in range(50):
        bus.publish(i)
    assert bus.drain(1.0)
    assert not [t for t in threading.enumerate() if t.name == "yeswidget-events-unheard"]
    seen: list[int] = []
    bus.subscribe(seen.append)
    bus.publish("after")
    assert bus.drain(5.0)
    assert seen == ["after"]
    bus.stop()
