"""The admission gate on its own: slots, the bounded FIFO queue, its deadline, and a
waiter that leaves; the departure watch's last look (the end-to-end behaviour is in
tests/e2e/test_overload_e2e.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from starlette.types import Message

from sluicegate.errors import Overloaded
from sluicegate.server.overload import AdmissionGate, Departure


def gate(in_flight: int = 1, queued: int = 1, timeout_s: float = 1.0) -> AdmissionGate:
    return AdmissionGate(max_in_flight=in_flight, max_queued=queued, queue_timeout_s=timeout_s)


def test_slots_then_queue_then_shed_at_once():
    async def scenario() -> None:
        g = gate(in_flight=1, queued=1)
        assert g.try_enter() and not g.try_enter()
        waiting = asyncio.ensure_future(g.wait_turn())
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as shed:  # the queue is full: refused without waiting
            await asyncio.wait_for(g.wait_turn(), 0.05)
        assert shed.value.retry_after >= 1 and shed.value.status == 503
        g.leave()  # the slot passes to the waiter, not back to the pool
        await asyncio.wait_for(waiting, 1)
        assert g.in_flight == 1 and g.shed == 1
        g.leave()
        assert g.in_flight == 0

    asyncio.run(scenario())


def test_the_gate_is_crowded_from_an_eighth_of_its_slots_or_a_queue():
    """Only then does an admitted call wait the departure grace (wire_routes)."""

    async def scenario() -> None:
        g = gate(in_flight=16, queued=2)
        assert not g.crowded()
        assert g.try_enter() and not g.crowded()  # 1 of 16 taken: slots to spare
        assert g.try_enter() and g.crowded()  # an eighth taken
        g.leave(0.01)
        assert not g.crowded()
        assert all(g.try_enter() for _ in range(15)) and not g.try_enter()  # all taken
        waiting = asyncio.ensure_future(g.wait_turn())
        await asyncio.sleep(0)
        assert g.crowded()
        for _ in range(15):  # the first release passes to the waiter
            g.leave(0.01)
        await asyncio.wait_for(waiting, 1)
        assert g.in_flight == 2 and g.crowded()
        g.leave(0.01)
        assert g.in_flight == 1 and not g.crowded()

    asyncio.run(scenario())


def test_the_queue_wait_has_a_deadline():
    async def scenario() -> None:
        g = gate(timeout_s=0.05)
        assert g.try_enter()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Overloaded):
            await g.wait_turn()
        assert 0.04 <= loop.time() - started < 0.5
        assert g.stats()["queued"] == 0

    asyncio.run(scenario())


def test_a_waiter_that_leaves_frees_its_place_and_never_takes_a_slot():
    async def scenario() -> None:
        g = gate(queued=2)
        assert g.try_enter()
        leaving = asyncio.ensure_future(g.wait_turn())
        staying = asyncio.ensure_future(g.wait_turn())
        await asyncio.sleep(0)
        leaving.cancel()  # its client left
        await asyncio.sleep(0)
        assert g.stats()["queued"] == 1
        g.leave()
        await asyncio.wait_for(staying, 1)
        assert g.in_flight == 1
        g.leave()
        assert g.in_flight == 0 and g.try_enter()

    asyncio.run(scenario())


def test_a_waiter_cancelled_just_after_being_handed_a_slot_gives_it_back():
    async def scenario() -> None:
        g = gate()
        assert g.try_enter()
        waiter = asyncio.ensure_future(g.wait_turn())
        await asyncio.sleep(0)
        g.leave()  # handed over...
        waiter.cancel()  # ...but its client left before it ran
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert g.in_flight == 0 and g.try_enter()

    asyncio.run(scenario())


def test_a_request_that_would_wait_past_the_deadline_is_refused_at_once():
    """Little's law: 2 slots held ~100 ms each free one every ~50 ms, so with a 120 ms
    deadline (half of it the margin) the first in line may queue and the second is
    refused without waiting."""

    async def scenario() -> None:
        g = gate(in_flight=2, queued=8, timeout_s=0.12)
        assert g.expected_wait_s() is None  # nothing measured yet: the queue is used as is
        assert g.try_enter() and g.try_enter()
        g.leave(held_s=0.1)
        assert g.try_enter()
        assert g.expected_wait_s() == pytest.approx(0.05)
        first = asyncio.ensure_future(g.wait_turn())
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Overloaded) as shed:
            await g.wait_turn()
        assert loop.time() - started < 0.01  # refused, not timed out
        assert "expected" in shed.value.message and g.shed == 1
        g.leave(held_s=0.1)  # the slot passes to the first in line
        await asyncio.wait_for(first, 1)
        assert g.in_flight == 2 and g.stats()["mean_hold_ms"] == pytest.approx(100)

    asyncio.run(scenario())


def test_the_expected_wait_follows_recent_hold_times():
    g = gate(in_flight=4, queued=8, timeout_s=0.05)
    for _ in range(4):
        assert g.try_enter()
    for _ in range(4):
        g.leave(held_s=1.0)  # slow holds: a slot every 250 ms
    for _ in range(4):
        assert g.try_enter()
    assert g.refusal() is not None
    for _ in range(150):  # then fast ones: the mean follows them (16 releases: 1/e)
        g.leave(held_s=0.01)
        assert g.try_enter()
    assert g.expected_wait_s() == pytest.approx(0.0025, rel=0.1)
    assert g.refusal() is None


def _server_side_close() -> tuple[asyncio.Future[Message], threading.Thread]:
    """A `receive()` future resolved with http.disconnect from another thread through
    call_soon_threadsafe, as a server's I/O thread delivers a close it has read."""
    loop = asyncio.get_running_loop()
    watch: asyncio.Future[Message] = loop.create_future()
    disconnect: Message = {"type": "http.disconnect"}
    thread = threading.Thread(target=loop.call_soon_threadsafe, args=(watch.set_result, disconnect))
    return watch, thread


def test_the_last_look_sees_a_close_delivered_but_not_yet_run():
    async def scenario() -> None:
        watch, closer = _server_side_close()

        async def receive() -> Message:
            return await watch

        departure = Departure(receive)
        await asyncio.sleep(0)  # the watch is waiting on the server
        closer.start()
        closer.join(5)  # delivered to the loop, not run yet: the race
        assert not departure.left()
        assert await departure.last_look()
        departure.stop()

    asyncio.run(scenario())


def test_the_last_look_of_a_client_still_there_is_no():
    async def scenario() -> None:
        never: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

        async def receive() -> Message:
            return await never

        departure = Departure(receive)
        assert not await departure.last_look()
        departure.stop()

    asyncio.run(scenario())


def test_the_grace_lets_a_close_that_comes_a_moment_later_through():
    """The server's thread delivers the close 20 ms after the body: two loop turns miss
    it, a 500 ms grace sees it (and ends as soon as it comes, not at the grace's end)."""

    async def scenario(grace_s: float) -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        watch: asyncio.Future[Message] = loop.create_future()
        disconnect: Message = {"type": "http.disconnect"}
        timer = threading.Timer(0.02, loop.call_soon_threadsafe, (watch.set_result, disconnect))

        async def receive() -> Message:
            return await watch

        departure = Departure(receive, grace_s=grace_s)
        departure.armed = True  # as while a call is served: a close cancels its task
        timer.start()
        started = loop.time()
        try:
            seen = await departure.last_look()
        except asyncio.CancelledError:
            seen = departure.fired
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        took = loop.time() - started
        departure.stop()
        timer.join(5)
        return seen, took

    seen, _ = asyncio.run(scenario(0.0))
    assert not seen
    seen, took = asyncio.run(scenario(0.5))
    assert seen and took < 0.4
