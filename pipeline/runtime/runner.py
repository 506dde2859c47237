"""The stage runner: one thread per stage, bounded rings between them.

The runner owns every thread, ring and stop flag. Shutdown is always by closing rings:
a worker that finishes (or fails) closes its inbox and its outboxes, so producers
upstream see :class:`Closed` on their next ``put`` and consumers downstream drain what
is left and then see :class:`Closed` on ``get``. Every wait polls with a timeout.
The first exception raised in any worker is re-raised from :meth:`Pipeline.run`; an
output that fails stops alone and its error is raised once the others have finished.
The worker loops are in :mod:`pipeline.runtime.workers` and :mod:`pipeline.runtime.pool`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from pipeline.errors import MaskstreamError
from pipeline.runtime.metrics import LatencyHistogram, StageStats
from pipeline.runtime.pool import PoolState, pool_worker
from pipeline.runtime.ring import Overflow, Ring
from pipeline.runtime.run_report import OutputReport, RunReport
from pipeline.runtime.stage import Sink, Source, Stage
from pipeline.runtime.workers import (
    POLL_S,
    Crew,
    Route,
    SinkOutcome,
    merge_worker,
    sink_worker,
    source_worker,
    stage_worker,
)

# While a pipeline runs, the GIL changes hands every 1 ms instead of CPython's 5 ms: an
# engine thread whose inference just finished (ONNX Runtime releases the GIL) waits less
# for a Python stage holding it. Measured: cores busy 97.4% instead of 96.7% of the run.
SWITCH_INTERVAL_S = 0.001
log = logging.getLogger(__name__)


class Service(Protocol):
    """Something that runs alongside the workers (a metrics endpoint)."""

    def start(self) -> None: ...

    def close(self) -> None: ...


class Pipeline:
    """A graph of workers; wire it with :meth:`ring`, :meth:`source`, :meth:`stage`,
    :meth:`pool` and :meth:`sink`, then :meth:`run` it once."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._rings: list[Ring] = []
        self._sources: list[tuple[Source, StageStats]] = []
        self._outputs: list[tuple[SinkOutcome, Ring]] = []
        self._stages: list[Stage] = []
        self._services: list[Service] = []
        self._discard_on_stop: list[Ring] = []
        self.stats: list[StageStats] = []
        self._crew = Crew()
        self._ran = False
        self.report: RunReport | None = None  # set when run() ends, also when it raises

    # -- wiring ----------------------------------------------------------------------

    def ring(self, name: str, capacity: int, overflow: Overflow = Overflow.BLOCK,
             listener: threading.Event | None = None) -> Ring:
        r: Ring = Ring(capacity, overflow, name=name, listener=listener)
        self._rings.append(r)
        return r

    def source(self, source: Source, out: Ring) -> None:
        stats = self._new_stats(source.name)
        self._sources.append((source, stats))
        self._spawn(source.name, source_worker, self._crew, source, out, stats)

    def stage(self, stage: Stage, inbox: Ring, outboxes: Sequence[Ring],
              route: Route | None = None) -> StageStats:
        """One thread running ``stage``; each result goes to every outbox, or to the
        outboxes whose indices ``route(result)`` names. Returns the stage's stats."""
        stats = self._new_stats(stage.name)
        self._stages.append(stage)
        self._spawn(stage.name, stage_worker, self._crew, stage, inbox, list(outboxes), stats,
                    route)
        return stats

    def merge(self, inboxes: Sequence[Ring], outbox: Ring, wakeup: threading.Event) -> None:
        """Interleave several rings into one, taking from whichever has an item, so a slow
        or dead input never holds up the others. The inboxes must share ``wakeup`` as
        their listener. ``outbox`` closes when every inbox has closed and drained."""
        stats = self._new_stats("merge")
        self._spawn("merge", merge_worker, self._crew, list(inboxes), outbox, wakeup, stats)

    def pool(self, stages: Sequence[Stage], inbox: Ring, outbox: Ring, batch: int = 1,
             batch_timeout_s: float = 0.0) -> StageStats:
        """Run identical ``stages`` side by side; results leave in input order
        (:mod:`pipeline.runtime.pool`)."""
        if len(stages) == 1 and batch == 1:
            return self.stage(stages[0], inbox, [outbox])
        shared = PoolState(len(stages))
        stats = self._new_stats(stages[0].name)
        for k, s in enumerate(stages):
            self._stages.append(s)
            self._spawn(f"{s.name}[{k}]", pool_worker, self._crew, s, inbox, outbox, shared,
                        stats, batch, batch_timeout_s)
        return stats

    def sink(self, sink: Sink, inbox: Ring) -> None:
        outcome = SinkOutcome(sink, self._new_stats(sink.name))
        self._outputs.append((outcome, inbox))
        self._spawn(sink.name, sink_worker, self._crew, outcome, inbox)

    def service(self, service: Service) -> None:
        """Started before the workers, closed after the last one has finished."""
        self._services.append(service)

    def discard_on_stop(self, *rings: Ring) -> None:
        """Rings whose waiting frames :meth:`stop` drops (those not yet at the engine), so
        a stop takes effect in about one engine call."""
        self._discard_on_stop.extend(rings)

    @property
    def rings(self) -> list[Ring]:
        return list(self._rings)

    @property
    def sources(self) -> list[Source]:
        return [s for s, _ in self._sources]

    @property
    def sinks(self) -> list[Sink]:
        return [o.sink for o, _ in self._outputs]

    @property
    def end_to_end(self) -> LatencyHistogram:
        return self._crew.end_to_end

    # -- control ---------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the sources to stop. Frames past the engine drain to the sinks; frames
        still waiting for it in the ``discard_on_stop`` rings are dropped and counted."""
        self._crew.stop_requested = True
        self._crew.stop.set()
        for ring in self._discard_on_stop:
            ring.close()  # first: a producer blocked in put() gives up instead of refilling it
            ring.clear()

    @property
    def stopping(self) -> bool:
        return self._crew.stop.is_set()

    def close_unstarted(self) -> None:
        """Release what building opened when the pipeline will never run: sources, sinks
        and every stage's ``stop`` (engines close there)."""
        for source, _ in self._sources:
            _quietly(source.close)
        for outcome, _ in self._outputs:
            _quietly(outcome.sink.abort)
        for stage in self._stages:
            _quietly(stage.stop)

    def run(self, on_tick: Callable[[Pipeline], None] | None = None) -> RunReport:
        """Start every worker, wait for all of them, re-raise the first error. The report
        is also left in :attr:`report` when it raises."""
        if self._ran:
            raise MaskstreamError("a Pipeline runs once; build a new one")
        self._ran = True
        started: list[Service] = []
        try:
            for service in self._services:
                service.start()
                started.append(service)
        except BaseException:  # nothing ran: release what building opened
            for service in reversed(started):
                service.close()
            self.close_unstarted()
            raise
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(previous_interval, SWITCH_INTERVAL_S))
        t0 = time.perf_counter()
        for t in self._threads:
            t.start()
        try:
            for t in self._threads:
                while t.is_alive():
                    t.join(POLL_S)
                    if on_tick is not None:
                        on_tick(self)
        finally:
            # only reached early on KeyboardInterrupt without a handler: stop and drain
            self._crew.stop.set()
            for t in self._threads:
                while t.is_alive():
                    t.join(POLL_S)
            sys.setswitchinterval(previous_interval)
            for service in reversed(started):
                service.close()
            self.report = self._report(time.perf_counter() - t0)
        if self._crew.error is not None:
            raise self._crew.error
        errors = self.report.errors
        if errors:
            raise errors[0]
        return self.report

    # -- internals -------------------------------------------------------------------

    def _report(self, wall: float) -> RunReport:
        sink_rings = {id(ring) for _, ring in self._outputs}
        return RunReport(
            wall_s=wall,
            frames_in=sum(stats.items for _, stats in self._sources),
            dropped=sum(r.dropped for r in self._rings if id(r) not in sink_rings),
            outputs=[OutputReport(o.sink, o.stats.items - o.sink.dropped,
                                  ring.dropped + o.lost + o.sink.dropped, o.error)
                     for o, ring in self._outputs],
            stages=self.stats,
            end_to_end=self._crew.end_to_end,
            rings=self._rings,
            stopped_early=self._crew.stop_requested,
            sources=self.sources,
        )

    def _new_stats(self, name: str) -> StageStats:
        s = StageStats(name)
        self.stats.append(s)
        return s

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> None:
        self._threads.append(threading.Thread(target=target, args=args, name=name, daemon=True))


def _quietly(close: Callable[[], None]) -> None:
    """Run a cleanup whose failure must not hide the error that is being reported."""
    try:
        close()
    except Exception:  # best effort on an error path; the first error is what the user sees
        log.debug("cleanup after a failed start failed", exc_info=True)
