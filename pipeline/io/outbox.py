"""A bounded outbox for network outputs (MQTT now; Kafka has the same shape), and the
counters that say what became of every message.

The pipeline hands a message over and never waits: when the outbox is full (the broker is
slow or gone) the oldest waiting message is dropped and counted. A sender thread takes
messages out only while connected and while fewer than ``max_in_flight`` are awaiting
their acknowledgement, so the client library's own queue stays small too. Every message
is in exactly one state: waiting, in flight (sent, not acknowledged), acknowledged, or
dropped; at close whatever is still in flight is reported as unacknowledged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class OutputHealth:
    """What a network output has been through; read by the summary and the metrics."""

    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    messages: int = 0  # handed to the output by the pipeline
    acknowledged: int = 0  # confirmed by the broker (QoS 0: written to the socket)
    dropped: int = 0  # never sent: pushed out of a full outbox, or still waiting at close
    in_flight: int = 0  # sent, not acknowledged yet; after close: never acknowledged
    waiting: int = 0  # in the outbox now
    closed: bool = False
    last_error: str = ""
    last_connected: float = 0.0  # time.monotonic() of the last connection

    def counters(self) -> dict[str, int]:
        """Messages by state (they add up to ``messages``)."""
        return {"acknowledged": self.acknowledged, "dropped": self.dropped,
                "unacknowledged": self.in_flight, "waiting": self.waiting}

    def describe(self) -> str:
        state = "closed" if self.closed else "connected" if self.connected else "disconnected"
        unacked = "unacknowledged" if self.closed else "in flight"
        err = f", last error: {self.last_error}" if self.last_error else ""
        return (f"{state}, {self.reconnects} reconnect(s); {self.messages} messages: "
                f"{self.acknowledged} acknowledged, {self.dropped} dropped, "
                f"{self.in_flight} {unacked}" + (f", {self.waiting} waiting" if self.waiting else "")
                + err)


@dataclass
class Outbox(Generic[T]):
    """Bounded, drop-oldest, with acknowledgement bookkeeping by message id."""

    capacity: int
    max_in_flight: int
    health: OutputHealth = field(default_factory=OutputHealth)

    def __post_init__(self) -> None:
        self._items: deque[T] = deque()
        self._in_flight: set[int] = set()
        self._acked_early: set[int] = set()  # acknowledged before sent() recorded the id
        self._sending = 0  # taken by next(), not yet reported sent() or refused()
        self._cond = threading.Condition()

    def put(self, item: T) -> None:
        """Never blocks; drops (and counts) the oldest waiting message when full."""
        with self._cond:
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.health.dropped += 1
            self._items.append(item)
            self.health.messages += 1
            self.health.waiting = len(self._items)
            self._cond.notify_all()

    def _ready(self) -> bool:
        return (bool(self._items) and self.health.connected
                and len(self._in_flight) + self._sending < self.max_in_flight)

    def next(self, timeout: float) -> T | None:
        """The oldest message once it may be sent (connected, room in flight), or None
        after ``timeout`` seconds. Report each one taken with :meth:`sent` or
        :meth:`refused`."""
        with self._cond:
            if not self._cond.wait_for(self._ready, timeout):
                return None
            item = self._items.popleft()
            self._sending += 1
            self.health.waiting = len(self._items)
            return item

    def sent(self, message_id: int) -> None:
        """The client took the message: it is in flight until :meth:`acknowledged`."""
        with self._cond:
            self._sending -= 1
            if message_id in self._acked_early:
                self._acked_early.discard(message_id)
                self.health.acknowledged += 1
            else:
                self._in_flight.add(message_id)
            self.health.in_flight = len(self._in_flight)

    def refused(self) -> None:
        """The client would not take the message (QoS 0 while disconnected): dropped."""
        with self._cond:
            self._sending -= 1
            self.health.dropped += 1

    def acknowledged(self, message_id: int) -> None:
        with self._cond:
            if message_id in self._in_flight:
                self._in_flight.discard(message_id)
                self.health.acknowledged += 1
            else:
                self._acked_early.add(message_id)
            self.health.in_flight = len(self._in_flight)
            self._cond.notify_all()

    def set_connected(self, connected: bool, error: str = "") -> None:
        with self._cond:
            h = self.health
            if connected and not h.connected:
                h.connects += 1
                h.reconnects = max(0, h.connects - 1)
                h.last_connected = time.monotonic()
            h.connected = connected
            if error:
                h.last_error = error
            self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until nothing is waiting or in flight; False after ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items and not self._in_flight, timeout)

    def close(self) -> None:
        """Count what never left as dropped; what is in flight stays unacknowledged."""
        with self._cond:
            self.health.dropped += len(self._items)
            self._items.clear()
            self.health.waiting = 0
            self.health.in_flight = len(self._in_flight)
            self.health.closed = True
            self._cond.notify_all()
