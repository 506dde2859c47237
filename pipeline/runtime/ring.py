"""Bounded ring buffer between threads with a named overflow policy.

One producer and one consumer, except a worker pool, whose workers share one inbox and
use the delivery numbers of :meth:`Ring.get_numbered` to leave in order.

Counters only grow: ``index = counter % capacity``, so depth and drops are arithmetic.
Invariant at any quiet moment: ``puts == gets + dropped + len(ring)``.
End of stream is :meth:`Ring.close`: the consumer drains what is left, then
:meth:`Ring.get` raises :class:`Closed`.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from pipeline.errors import ConfigError, MaskstreamError

T = TypeVar("T")


class Overflow(enum.Enum):
    """What ``put`` does when the ring is full. ``AUTO`` is a config value, resolved by the
    graph (block for files, drop-oldest for live sources) before any ring is made."""

    AUTO = "auto"
    BLOCK = "block"  # the producer waits: files, nothing is lost
    DROP_OLDEST = "drop_oldest"  # the oldest item is discarded: live sources, bounded latency
    DROP_NEWEST = "drop_newest"  # the new item is discarded


class Closed(MaskstreamError):
    """The ring was closed (and, for ``get``, drained)."""


class RingTimeout(MaskstreamError, TimeoutError):
    """A ``put`` or ``get`` waited longer than its timeout."""


class Ring(Generic[T]):
    """Fixed-capacity FIFO between two threads."""

    def __init__(self, capacity: int, overflow: Overflow = Overflow.BLOCK, name: str = "",
                 listener: threading.Event | None = None) -> None:
        """``listener`` is set on every put and on close: one thread can wait on several
        rings at once (the runner's merge)."""
        if not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(f"ring {name!r} capacity: expected an int >= 1, got {capacity!r}")
        if overflow is Overflow.AUTO:
            raise ConfigError(f"ring {name!r}: Overflow.AUTO must be resolved before a ring is made")
        self.name = name
        self.capacity = capacity
        self.overflow = overflow
        self._slots: list[T | None] = [None] * capacity
        self._head = 0  # next slot to read (grows; also advanced by DROP_OLDEST)
        self._tail = 0  # next slot to write (grows)
        self.puts = 0  # items offered to put()
        self.gets = 0  # items handed out by get()
        self.dropped = 0  # items discarded by the overflow policy
        self._closed = False
        self._cond = threading.Condition(threading.Lock())
        self._listener = listener

    def __len__(self) -> int:
        return self._tail - self._head

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Add ``item``; returns False when DROP_NEWEST discarded it.

        Raises :class:`Closed` if the ring is closed (also while waiting), and
        :class:`RingTimeout` if BLOCK waited more than ``timeout`` seconds.
        """
        with self._cond:
            if self._closed:
                raise Closed(f"ring {self.name!r} is closed")
            self.puts += 1
            if self._tail - self._head >= self.capacity:
                if self.overflow is Overflow.DROP_NEWEST:
                    self.dropped += 1
                    return False
                if self.overflow is Overflow.DROP_OLDEST:
                    self._slots[self._head % self.capacity] = None
                    self._head += 1
                    self.dropped += 1
                else:
                    self._wait(lambda: self._tail - self._head < self.capacity, timeout, "put")
            self._slots[self._tail % self.capacity] = item
            self._tail += 1
            self._cond.notify_all()
        if self._listener is not None:
            self._listener.set()
        return True

    def get(self, timeout: float | None = None) -> T:
        """Take the oldest item; raises :class:`Closed` once closed and empty."""
        return self.get_numbered(timeout)[1]

    def get_numbered(self, timeout: float | None = None) -> tuple[int, T]:
        """Take the oldest item with its delivery number (0, 1, 2, … with no gaps, also
        when the overflow policy dropped items). Several consumers may call this: the
        numbers tell them the order the items left the ring."""
        with self._cond:
            self._wait(lambda: self._tail > self._head, timeout, "get", drain=True)
            index = self._head % self.capacity
            item = self._slots[index]
            self._slots[index] = None
            self._head += 1
            number = self.gets
            self.gets += 1
            self._cond.notify_all()
            return number, item  # type: ignore[return-value]

    def clear(self) -> int:
        """Drop every item waiting in the ring (counted as dropped); returns how many."""
        with self._cond:
            n = self._tail - self._head
            for i in range(self._head, self._tail):
                self._slots[i % self.capacity] = None
            self._head = self._tail
            self.dropped += n
            self._cond.notify_all()
            return n

    def count_lost(self) -> None:
        """Count an item that was meant for this ring but never got in because the ring
        closed first (a stop, or its consumer failed): offered and dropped."""
        with self._cond:
            self.puts += 1
            self.dropped += 1

    def close(self) -> None:
        """No more puts; waiting threads wake up. Items already in the ring stay gettable."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._listener is not None:
            self._listener.set()

    def _wait(self, ready: Callable[[], bool], timeout: float | None, op: str,
              drain: bool = False) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if drain and ready():
                return
            if self._closed:
                if op == "put":
                    self.puts -= 1  # the item was never accepted
                raise Closed(f"ring {self.name!r} is closed")
            if not drain and ready():
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                if op == "put":
                    self.puts -= 1
                raise RingTimeout(f"ring {self.name!r}: {op} waited {timeout}s")
            self._cond.wait(remaining)
