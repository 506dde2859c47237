"""The worker loops: one function per kind of thread, one shared skeleton.

Every worker runs inside :func:`guarded`: ``Closed`` (its neighbour is gone) ends it
quietly, any other exception is recorded as the run's error (the first one wins and stops
the sources), and whatever happens it closes its rings (so neighbours stop or drain),
runs its cleanup and adds up its CPU time. Every wait polls with a timeout
(:data:`POLL_S`), so a stop is seen within that time.

Sinks are the exception to "an error stops the run": a failing output stops alone and
its error is reported once everything else has finished (:class:`SinkOutcome`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.errors import SinkError
from pipeline.runtime.metrics import LatencyHistogram, StageStats
from pipeline.runtime.ring import Closed, Ring, RingTimeout
from pipeline.runtime.stage import Sink, Source, Stage
from pipeline.types import Frame

log = logging.getLogger(__name__)

POLL_S = 0.1
Route = Callable[[Frame], Sequence[int]]


class Crew:
    """What the worker threads of one pipeline share: the stop flag, the first error and
    the capture-to-sink latency."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.stop_requested = False  # a user's stop (Ctrl-C), not an error
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.end_to_end = LatencyHistogram()

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc
                log.debug("worker %s failed", threading.current_thread().name, exc_info=exc)
        self.stop.set()

    def put(self, ring: Ring, item: Frame) -> None:
        """Put with polling; raises :class:`Closed` when the consumer is gone."""
        while True:
            try:
                ring.put(item, timeout=POLL_S)
                return
            except RingTimeout:
                continue

    @staticmethod
    def get(ring: Ring) -> Frame:
        while True:
            try:
                return ring.get(timeout=POLL_S)
            except RingTimeout:
                continue

    @staticmethod
    def get_numbered(ring: Ring) -> tuple[int, Frame]:
        while True:
            try:
                return ring.get_numbered(timeout=POLL_S)
            except RingTimeout:
                continue

    def offer(self, ring: Ring, item: Frame) -> bool:
        """Put ``item``; False when the ring has closed (its consumer stopped: a failed
        output, an error, or a stop), in which case the item counts as lost there."""
        try:
            self.put(ring, item)
            return True
        except Closed:
            ring.count_lost()
            return False

    def finish(self, stats: StageStats, rings: Sequence[Ring], cleanup: Callable[[], None]) -> None:
        """A worker's last act: close its rings, run its cleanup, add up its CPU time."""
        for r in rings:
            r.close()
        try:
            cleanup()
        except BaseException as exc:
            self.fail(exc)
        cpu = time.thread_time()
        with self.lock:
            stats.cpu_s += cpu


@contextmanager
def guarded(crew: Crew, stats: StageStats, rings: Sequence[Ring],
            cleanup: Callable[[], None]) -> Iterator[None]:
    """The skeleton every worker runs in (see the module docstring)."""
    try:
        yield
    except Closed:
        pass
    except BaseException as exc:  # recorded, re-raised by Pipeline.run()
        crew.fail(exc)
    finally:
        crew.finish(stats, rings, cleanup)


def _nothing() -> None:
    pass


def source_worker(crew: Crew, source: Source, out: Ring, stats: StageStats) -> None:
    with guarded(crew, stats, [out], source.close):
        t = time.perf_counter()
        for frame in source.frames(crew.stop):
            elapsed = time.perf_counter() - t
            crew.put(out, frame)
            stats.record(elapsed)  # counted once it is in the ring
            if crew.stop.is_set():
                break
            t = time.perf_counter()


def stage_worker(crew: Crew, stage: Stage, inbox: Ring, outs: list[Ring], stats: StageStats,
                 route: Route | None = None) -> None:
    """``stage`` on every frame of ``inbox``; each result goes to every ring of ``outs``, or
    to those ``route(result)`` names. It stops when its inbox is closed and drained, or when
    every one of its outboxes has closed (a closed outbox's frames count as lost there)."""
    gone: set[int] = set()
    with guarded(crew, stats, [inbox, *outs], stage.stop):
        stage.start()
        while len(gone) < len(outs):
            frame = crew.get(inbox)
            t = time.perf_counter()
            result = stage.process(frame)
            stats.record(time.perf_counter() - t)
            for i in (range(len(outs)) if route is None else route(result)):
                if i in gone:
                    outs[i].count_lost()
                elif not crew.offer(outs[i], result):
                    gone.add(i)


def merge_worker(crew: Crew, inboxes: list[Ring], outbox: Ring, wakeup: threading.Event,
                 stats: StageStats) -> None:
    """Interleave ``inboxes`` into ``outbox``, one fair round at a time."""
    open_ = list(inboxes)
    k = 0
    with guarded(crew, stats, [*inboxes, outbox], _nothing):
        while open_:
            wakeup.clear()
            moved = False
            for _ in range(len(open_)):  # one fair round, starting after the last taker
                ring = open_[k % len(open_)]
                k += 1
                try:
                    item = ring.get(timeout=0)
                except RingTimeout:
                    continue
                except Closed:
                    open_.remove(ring)
                    break
                if not crew.offer(outbox, item):
                    return
                moved = True
            if not moved and open_:
                wakeup.wait(POLL_S)


@dataclass
class SinkOutcome:
    """How one output ended: frames written, and the error that stopped it, if any."""

    sink: Sink
    stats: StageStats
    error: SinkError | None = None
    lost: int = 0  # frames it had taken but could not write when it failed


def as_sink_error(sink: Sink, exc: BaseException) -> SinkError:
    """``cannot write TARGET: reason`` for any failure of an output."""
    if isinstance(exc, SinkError):
        return exc
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return SinkError(f"cannot write {sink.target or sink.name}: {reason}")


def sink_worker(crew: Crew, outcome: SinkOutcome, inbox: Ring) -> None:
    """Write every frame of ``inbox``. A failure stops this output only: its error is kept
    in ``outcome``, what still waits for it is dropped (counted), and the others go on."""
    sink, stats = outcome.sink, outcome.stats

    def close() -> None:
        inbox.clear()  # frames it will never write: dropped, counted
        try:
            sink.close()
        except Exception as exc:  # finalizing failed (a full disk): this output's error
            outcome.error = outcome.error or as_sink_error(sink, exc)

    with guarded(crew, stats, [inbox], close):
        while True:
            frame = crew.get(inbox)
            t = time.perf_counter()
            try:
                sink.write(frame)
            except Exception as exc:
                outcome.error = as_sink_error(sink, exc)
                outcome.lost += 1  # the frame in hand
                log.error("%s; the other outputs go on", outcome.error)
                return
            stats.record(time.perf_counter() - t)
            crew.end_to_end.add((time.monotonic_ns() - frame.t_capture) / 1e9)
