"""The UI pump: one thread applies every widget update, coalesced, and leaves nothing behind."""
from __future__ import annotations

import threading
import time

import pytest

from yeswidget.widgets.pump import Pump, default_pump


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def test_applies_run_on_the_pump_thread_and_flush_waits_for_them():
    pump = Pump(interval=0.05)
    threads = []
    reg = pump.register(lambda: threads.append(threading.get_ident()), name="probe")
    assert pump.thread is not None and pump.thread.daemon
    assert reg.flush() is True
    assert threads == [pump.thread.ident]  # even a flush writes on the pump thread
    worker = threading.Thread(target=reg.mark)
    worker.start()
    worker.join()
    assert wait_until(lambda: len(threads) == 2)
    assert set(threads) == {pump.thread.ident} and threading.get_ident() not in threads
    reg.close()
    assert pump.thread is None


def test_marks_are_coalesced_to_the_interval():
    pump = Pump(interval=0.2)
    calls = []
    reg = pump.register(lambda: calls.append(time.monotonic()))
    for _ in range(10_000):
        reg.mark()
    assert wait_until(lambda: len(calls) >= 1)
    time.sleep(0.1)
    for _ in range(10_000):
        reg.mark()
    assert wait_until(lambda: len(calls) >= 2)
    time.sleep(0.3)
    # 20,000 marks from the producer, two applies at least 0.2 s apart
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.19   # the interval is a floor the pump keeps
    reg.close()


def test_a_failing_apply_is_recorded_and_the_pump_keeps_going():
    pump = Pump(interval=0.0)
    good = []
    broken = pump.register(lambda: 1 / 0, name="broken")
    healthy = pump.register(lambda: good.append(1), name="healthy")
    assert broken.flush() is False
    assert isinstance(broken.last_error, ZeroDivisionError)
    assert pump.errors[-1][0] == "broken"
    broken.mark()
    healthy.mark()
    assert wait_until(lambda: len(good) >= 1)
    assert healthy.flush() is True and healthy.last_error is None
    assert pump.thread is not None and pump.thread.is_alive()
    broken.close()
    healthy.close()
    assert pump.thread is None


def test_close_waits_for_an_apply_in_progress_and_nothing_runs_after():
    pump = Pump(interval=0.0)
    entered, release, calls = threading.Event(), threading.Event(), []

    def slow():
        calls.append(1)
        entered.set()
        release.wait(5)

    reg = pump.register(slow)
    reg.mark()
    assert entered.wait(5)
    closer = threading.Thread(target=reg.close)
    closer.start()
    time.sleep(0.05)
    assert closer.is_alive()          # still waiting for the apply
    release.set()
    closer.join(5)
    assert not closer.is_alive()
    reg.mark()
    assert reg.flush() is False
    time.sleep(0.05)
    assert calls == [1]
    assert pump.thread is None


def test_flush_times_out_instead_of_hanging():
    pump = Pump(interval=0.0)
    release = threading.Event()
    blocker = pump.register(lambda: release.wait(5))
    other = pump.register(lambda: None)
    blocker.mark()
    time.sleep(0.05)
    assert other.flush(timeout=0.1) is False
    release.set()
    assert other.flush() is True
    blocker.close()
    other.close()


def test_thread_ends_with_the_last_registration_and_restarts():
    pump = Pump()
    a = pump.register(lambda: None)
    b = pump.register(lambda: None)
    first = pump.thread
    a.close()
    assert pump.thread is first and first.is_alive()
    b.close()
    assert pump.thread is None and not first.is_alive()
    c = pump.register(lambda: None)
    assert pump.thread is not None and pump.thread is not first and c.flush()
    c.close()
    assert pump.thread is None


def test_flush_from_inside_an_apply_runs_inline():
    pump = Pump()
    order = []
    inner = pump.register(lambda: order.append("inner"))
    outer = pump.register(lambda: (order.append("outer"), inner.flush()))
    assert outer.flush() is True
    assert order == ["outer", "inner"]
    inner.close()
    outer.close()


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="interval"):
        Pump(interval=-1)
    with pytest.raises(TypeError, match="callable"):
        Pump().register("not a function")


def test_default_pump_is_shared():
    assert default_pump() is default_pump()
