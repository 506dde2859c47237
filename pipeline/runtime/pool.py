"""A pool of identical stages sharing one inbox, whose results leave in input order.

Each item's delivery number (:meth:`Ring.get_numbered`) is its place in the output. A
worker that finishes ahead of its turn leaves its result in a small stash (at most two per
worker) and takes the next frame instead of waiting; whoever completes the sequence puts
the stashed results out, in order, with no extra thread. Waiting for the turn instead cost
~2% of the engines' time on two cores. With ``batch`` > 1 a worker takes up to ``batch``
items for one ``process_batch`` call, waiting at most ``batch_timeout_s`` after the first
for the rest: a lone camera's frame is never held longer than that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pipeline.runtime.metrics import StageStats
from pipeline.runtime.ring import Closed, Ring, RingTimeout
from pipeline.runtime.stage import Stage
from pipeline.runtime.workers import POLL_S, Crew, guarded
from pipeline.types import Frame


def take_batch(crew: Crew, inbox: Ring, batch: int, timeout_s: float) -> list[tuple[int, Frame]]:
    """One item (waiting as long as it takes), then up to ``batch`` - 1 more that arrive
    within ``timeout_s`` of the first. :class:`Closed` only when nothing was taken."""
    items = [crew.get_numbered(inbox)]
    deadline = time.perf_counter() + timeout_s
    while len(items) < batch:
        left = deadline - time.perf_counter()
        try:
            items.append(inbox.get_numbered(timeout=max(left, 0.0)))
        except (RingTimeout, Closed):  # Closed: the next take raises it
            break
    return items


class PoolState:
    """What the workers of one pool share: the reorder stash and how many still run."""

    def __init__(self, workers: int) -> None:
        self.order = Reorder(limit=2 * workers)
        self.alive = workers
        self.lock = threading.Lock()

    def leave(self) -> bool:
        """One worker is done; True for the last one (which closes the rings: the others
        may still be putting)."""
        with self.lock:
            self.alive -= 1
            return self.alive == 0


def pool_worker(crew: Crew, stage: Stage, inbox: Ring, outbox: Ring, shared: PoolState,
                stats: StageStats, batch: int, timeout_s: float) -> None:
    def put(item: Frame) -> None:
        crew.put(outbox, item)

    def stop() -> None:
        if shared.leave():
            inbox.close()
            outbox.close()
        stage.stop()

    with guarded(crew, stats, [], stop):
        try:
            stage.start()
            while True:
                items = take_batch(crew, inbox, batch, timeout_s)
                t = time.perf_counter()
                results = stage.process_batch([frame for _, frame in items])
                elapsed = time.perf_counter() - t
                stats.batches += 1
                for (number, _), result in zip(items, results, strict=True):
                    stats.record(elapsed)
                    shared.order.deliver(number, result, put)
        except Closed:
            raise
        except BaseException:  # every worker of the pool stops, and the rings with them
            inbox.close()
            outbox.close()
            shared.order.close()
            raise


class Reorder:
    """Puts pool results out in delivery-number order without making workers wait.

    ``deliver`` stashes a result; the thread whose result completes the sequence puts out
    every result that is now in order, one flusher at a time. The stash is bounded: a
    result more than ``limit`` places ahead waits (the one that is due never waits)."""

    def __init__(self, limit: int) -> None:
        self._next = 0
        self._pending: dict[int, Frame] = {}
        self._flushing = False
        self._closed = False
        self._limit = max(1, limit)
        self._cond = threading.Condition()

    def deliver(self, number: int, item: Frame, put: Callable[[Frame], None]) -> None:
        """Hand over result ``number``; ``put`` is called for each result in order.
        :class:`Closed` if the pool is aborting or ``put`` raised it."""
        with self._cond:
            while True:
                if self._closed:
                    raise Closed("worker pool stopped")
                if number - self._next < self._limit:
                    break
                self._cond.wait(POLL_S)
            self._pending[number] = item
            if self._flushing:
                return  # the thread putting right now will take it when its turn comes
            self._flushing = True
        try:
            while True:
                with self._cond:
                    if self._closed:
                        raise Closed("worker pool stopped")
                    ready = self._pending.pop(self._next, None)
                    if ready is None:
                        self._flushing = False
                        self._cond.notify_all()
                        return
                put(ready)  # outside the lock: it may block on a full ring
                with self._cond:
                    self._next += 1
                    self._cond.notify_all()
        except BaseException:
            with self._cond:  # e.g. the consumer is gone: every worker stops
                self._flushing = False
                self._closed = True
                self._cond.notify_all()
            raise

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
