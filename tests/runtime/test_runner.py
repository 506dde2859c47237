"""The stage runner: order through a worker pool, error propagation, stop and drain."""

from __future__ import annotations

import dataclasses
import random
import threading
import time

import numpy as np
import pytest

from pipeline.runtime.runner import Pipeline
from pipeline.runtime.stage import Sink, Source, Stage
from pipeline.types import Frame


class Counter(Source):
    def __init__(self, n: int, delay: float = 0.0) -> None:
        self.n, self.delay, self.closed = n, delay, False

    def frames(self, stop: threading.Event):
        for i in range(self.n):
            if stop.is_set():
                return
            time.sleep(self.delay)
            yield Frame("s", i, i / 25, time.monotonic_ns(), np.zeros((2, 2, 3), np.uint8))

    def close(self) -> None:
        self.closed = True


class Jitter(Stage):
    """Sleeps a random few ms and stamps pts with its worker id (order must survive)."""

    def __init__(self, k: int, fail_at: int = -1) -> None:
        self.k, self.fail_at, self.rng = k, fail_at, random.Random(k)
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def process(self, frame: Frame) -> Frame:
        if frame.seq == self.fail_at:
            raise ZeroDivisionError(f"boom at {frame.seq}")
        time.sleep(self.rng.random() * 0.004)
        return dataclasses.replace(frame, pts=float(self.k))

    def stop(self) -> None:
        self.stopped = True


class Collect(Sink):
    def __init__(self, delay: float = 0.0) -> None:
        self.seqs: list[int] = []
        self.closed = False
        self.delay = delay

    def write(self, frame: Frame) -> None:
        time.sleep(self.delay)
        self.seqs.append(frame.seq)

    def close(self) -> None:
        self.closed = True


class BatchJitter(Jitter):
    """Jitter that also notes the size of every batch it was handed."""

    def __init__(self, k: int, fail_at: int = -1) -> None:
        super().__init__(k, fail_at)
        self.sizes: list[int] = []

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        self.sizes.append(len(frames))
        return [self.process(f) for f in frames]


def build(n: int, workers: int, fail_at: int = -1, delay: float = 0.0, sink_delay: float = 0.0,
          batch: int = 1, batch_timeout_s: float = 0.0):
    p = Pipeline()
    src = Counter(n, delay)
    a = p.ring("a", max(2, batch))
    p.source(src, a)
    b = p.ring("b", 2)
    stages = [BatchJitter(k, fail_at) for k in range(workers)]
    p.pool(stages, a, b, batch, batch_timeout_s)
    sinks = [Collect(sink_delay), Collect()]
    rings = [p.ring("s0", 2), p.ring("s1", 2)]
    p.stage(Jitter(99), b, rings)
    for s, r in zip(sinks, rings, strict=True):
        p.sink(s, r)
    return p, src, stages, sinks


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_pool_keeps_frame_order_and_loses_nothing(workers: int) -> None:
    before = threading.active_count()
    p, src, stages, sinks = build(200, workers)
    report = p.run()
    assert [s.seqs for s in sinks] == [list(range(200))] * 2
    assert report.frames_in == 200 and set(report.frames_out.values()) == {200}
    assert report.dropped == 0 and not report.stopped_early
    assert src.closed and all(s.closed for s in sinks)
    assert all(s.started and s.stopped for s in stages)
    assert threading.active_count() == before  # no thread outlives run()


class EvenSlow(Stage):
    """Even frames take 30 ms, odd ones none: results keep finishing out of order."""

    def process(self, frame: Frame) -> Frame:
        if frame.seq % 2 == 0:
            time.sleep(0.03)
        return frame


def test_pool_workers_do_not_wait_for_their_turn() -> None:
    """A worker whose result is ahead of its turn stashes it and takes the next frame.
    Waiting for the turn would serialise the slow frames: 30 × 30 ms = 0.9 s at least;
    not waiting, two workers share them: about 0.45 s."""
    p = Pipeline()
    a, b = p.ring("a", 4), p.ring("b", 4)
    p.source(Counter(60), a)
    p.pool([EvenSlow(), EvenSlow()], a, b)
    sink = Collect()
    p.sink(sink, b)
    t0 = time.perf_counter()
    p.run()
    assert sink.seqs == list(range(60))
    assert time.perf_counter() - t0 < 0.75


def test_a_failing_consumer_stops_the_pool_workers() -> None:
    before = threading.active_count()
    p = Pipeline()
    a, b, c = p.ring("a", 2), p.ring("b", 2), p.ring("c", 2)
    p.source(Counter(2000), a)
    stages = [BatchJitter(k) for k in range(2)]
    p.pool(stages, a, b)
    p.stage(Jitter(99, fail_at=37), b, [c])
    p.sink(Collect(), c)
    with pytest.raises(ZeroDivisionError, match="boom at 37"):
        p.run()
    assert sum(sum(s.sizes) for s in stages) < 100  # nowhere near the 2000 frames
    assert threading.active_count() == before


@pytest.mark.parametrize("workers", [1, 2])
def test_batched_pool_keeps_order_and_fills_batches(workers: int) -> None:
    before = threading.active_count()
    p, _src, stages, sinks = build(300, workers, batch=4, batch_timeout_s=0.05)
    report = p.run()
    assert [s.seqs for s in sinks] == [list(range(300))] * 2
    sizes = [n for s in stages for n in s.sizes]
    assert sum(sizes) == 300 and max(sizes) == 4
    assert sizes.count(4) >= 0.5 * len(sizes)  # a file source keeps the batches full
    infer = next(s for s in report.stages if s.batches)
    assert infer.items == 300 and infer.batches == len(sizes)
    assert threading.active_count() == before


def test_batch_timeout_bounds_the_wait_for_a_slow_source() -> None:
    """A source slower than the timeout: every batch leaves with one frame, none waits long."""
    p, _src, stages, sinks = build(12, 1, delay=0.06, batch=8, batch_timeout_s=0.01)
    t0 = time.perf_counter()
    p.run()
    assert sinks[0].seqs == list(range(12))
    assert stages[0].sizes == [1] * 12
    assert time.perf_counter() - t0 < 12 * 0.06 + 1.0


@pytest.mark.parametrize("workers", [1, 2])
def test_first_worker_error_is_reraised_and_sinks_finalized(workers: int) -> None:
    before = threading.active_count()
    p, src, stages, sinks = build(500, workers, fail_at=37)
    with pytest.raises(ZeroDivisionError, match="boom at 37"):
        p.run()
    assert all(s.closed for s in sinks) and src.closed
    assert all(s.stopped for s in stages)
    assert all(37 not in s.seqs and len(s.seqs) < 500 for s in sinks)
    assert threading.active_count() == before


def test_stop_drains_everything_captured() -> None:
    p, _, _, sinks = build(10_000, 2, delay=0.001)
    threading.Timer(0.3, p.stop).start()
    report = p.run()
    assert report.stopped_early
    assert 0 < report.frames_in < 10_000
    # every frame the source produced reached every sink, in order
    assert [s.seqs for s in sinks] == [list(range(report.frames_in))] * 2


def test_stop_discards_what_waits_for_the_engine() -> None:
    p, _, _, sinks = build(10_000, 2, delay=0.0005)
    p.discard_on_stop(*[r for r in p._rings if r.name == "a"])
    threading.Timer(0.3, p.stop).start()
    report = p.run()
    out = sinks[0].seqs
    assert out == sinks[1].seqs and out == sorted(out) and len(set(out)) == len(out)
    assert report.frames_in == len(out) + report.dropped


def test_slow_sink_does_not_lose_frames_and_end_to_end_is_measured() -> None:
    p, _, _, sinks = build(40, 2, sink_delay=0.005)
    report = p.run()
    assert sinks[0].seqs == sinks[1].seqs == list(range(40))
    assert report.end_to_end.count == 80 and report.end_to_end.percentile(50) > 0


def test_source_error_after_frames_drains_then_raises() -> None:
    class Broken(Counter):
        def frames(self, stop):
            yield from super().frames(stop)
            raise OSError("file ends early")

    p = Pipeline()
    a = p.ring("a", 2)
    p.source(Broken(25), a)
    sink = Collect()
    p.sink(sink, a)
    with pytest.raises(OSError, match="ends early"):
        p.run()
    assert sink.seqs == list(range(25)) and sink.closed


def test_merge_is_not_held_up_by_a_silent_source() -> None:
    class Silent(Source):
        def frames(self, stop: threading.Event):
            stop.wait(30)  # a camera that connected and then never sent anything
            return
            yield

    p = Pipeline()
    wakeup = threading.Event()
    a, b = p.ring("a", 1, listener=wakeup), p.ring("b", 1, listener=wakeup)
    p.source(Silent(), a)
    p.source(Counter(50), b)
    merged = p.ring("m", 2)
    p.merge([a, b], merged, wakeup)
    sink = Collect()
    p.sink(sink, merged)
    t0 = time.monotonic()

    def stop_when_done() -> None:
        while len(sink.seqs) < 50 and time.monotonic() - t0 < 10:
            time.sleep(0.01)
        p.stop()

    threading.Thread(target=stop_when_done).start()
    p.run()
    assert sink.seqs == list(range(50)) and time.monotonic() - t0 < 5
