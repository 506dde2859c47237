"""Ring buffer properties: no loss under BLOCK, exact drops under DROP_*, close drains."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.runtime.ring import Closed, Overflow, Ring, RingTimeout


@given(capacity=st.integers(1, 8), items=st.lists(st.integers(), max_size=200))
@settings(max_examples=60, deadline=None)
def test_block_loses_nothing_across_threads(capacity: int, items: list[int]) -> None:
    ring: Ring[int] = Ring(capacity, Overflow.BLOCK)
    got: list[int] = []

    def consume() -> None:
        try:
            while True:
                got.append(ring.get(timeout=5))
        except Closed:
            pass

    t = threading.Thread(target=consume)
    t.start()
    for x in items:
        ring.put(x, timeout=5)
        assert len(ring) <= capacity
    ring.close()
    t.join(10)
    assert not t.is_alive()
    assert got == items
    assert (ring.puts, ring.gets, ring.dropped) == (len(items), len(items), 0)


@given(capacity=st.integers(1, 8), ops=st.lists(st.booleans(), max_size=300),
       policy=st.sampled_from([Overflow.DROP_OLDEST, Overflow.DROP_NEWEST]))
@settings(max_examples=150, deadline=None)
def test_drop_policies_match_a_model(capacity: int, ops: list[bool], policy: Overflow) -> None:
    """Against a plain list model: True = put the next integer, False = get if non-empty."""
    ring: Ring[int] = Ring(capacity, policy)
    model: list[int] = []
    dropped = 0
    n = 0
    for is_put in ops:
        if is_put:
            accepted = ring.put(n)
            if len(model) == capacity:
                dropped += 1
                if policy is Overflow.DROP_OLDEST:
                    model.pop(0)
                    model.append(n)
                    assert accepted
                else:
                    assert not accepted
            else:
                model.append(n)
                assert accepted
            n += 1
        elif model:
            assert ring.get(timeout=0) == model.pop(0)
        assert len(ring) == len(model) <= capacity
        assert ring.dropped == dropped
        assert ring.puts == ring.gets + ring.dropped + len(ring)
    ring.close()
    assert [ring.get(timeout=0) for _ in range(len(model))] == model
    with pytest.raises(Closed):
        ring.get(timeout=0)


def test_close_drains_then_raises_and_refuses_puts() -> None:
    ring: Ring[str] = Ring(3)
    ring.put("a")
    ring.put("b")
    ring.close()
    with pytest.raises(Closed):
        ring.put("c")
    assert ring.get() == "a"
    assert ring.get() == "b"
    with pytest.raises(Closed):
        ring.get()


def test_waits_time_out_and_close_wakes_waiters() -> None:
    ring: Ring[int] = Ring(1)
    with pytest.raises(RingTimeout):
        ring.get(timeout=0.05)
    ring.put(1)
    t0 = time.monotonic()
    with pytest.raises(RingTimeout):
        ring.put(2, timeout=0.05)
    assert time.monotonic() - t0 < 1
    assert ring.puts == 1  # the timed-out item was never accepted

    errors: list[BaseException] = []

    def blocked_put() -> None:
        try:
            ring.put(3)  # no timeout: only close() can end this wait
        except Closed as exc:
            errors.append(exc)

    t = threading.Thread(target=blocked_put)
    t.start()
    time.sleep(0.05)
    ring.close()
    t.join(2)
    assert not t.is_alive() and len(errors) == 1


@pytest.mark.parametrize("capacity", [0, -1, 1.5])
def test_bad_capacity_is_named(capacity) -> None:
    with pytest.raises(ValueError, match="capacity"):
        Ring(capacity)


def test_clear_drops_and_counts() -> None:
    ring: Ring[int] = Ring(4)
    for i in range(3):
        ring.put(i)
    assert ring.clear() == 3 and len(ring) == 0
    assert ring.puts == ring.gets + ring.dropped + len(ring)
    ring.put(9)
    assert ring.get() == 9
