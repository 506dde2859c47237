"""A Prometheus endpoint for long runs: what the end-of-run summary says, while it runs.

Bound to 127.0.0.1 unless told otherwise. Values are read from the pipeline at scrape
time (a custom collector), so the hot path does no extra work. Sources are labelled by
their id (``cam0``), never by URI, so credentials cannot leak into metrics.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError
from pipeline.runtime.metrics import LatencyHistogram

if TYPE_CHECKING:
    from pipeline.runtime.runner import Pipeline

# seconds; what a stage or a camera-to-sink path plausibly takes
BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
JOIN_S = 2.0


def _histogram(family: Any, labels: list[str], h: LatencyHistogram) -> None:
    counts = h.cumulative(BUCKETS)
    buckets = [(str(b), c) for b, c in zip(BUCKETS, counts, strict=True)]
    buckets.append(("+Inf", h.count))
    family.add_metric(labels, buckets, h.total)


class PipelineCollector:
    """Reads stage, ring and source state from a running :class:`Pipeline`."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        p = self.pipeline
        items = CounterMetricFamily("maskstream_stage_frames", "Frames a stage has finished",
                                    labels=["stage"])
        seconds = HistogramMetricFamily("maskstream_stage_seconds", "Time a stage takes per frame",
                                        labels=["stage"])
        calls = CounterMetricFamily("maskstream_stage_calls", "Calls of a batching stage "
                                    "(frames / calls = mean batch)", labels=["stage"])
        for s in p.stats:
            items.add_metric([s.name], s.items)
            _histogram(seconds, [s.name], s.latency)
            if s.batches:
                calls.add_metric([s.name], s.batches)
        yield from (items, seconds, calls)

        depth = GaugeMetricFamily("maskstream_ring_depth", "Items waiting in a ring", labels=["ring"])
        cap = GaugeMetricFamily("maskstream_ring_capacity", "Ring capacity", labels=["ring"])
        puts = CounterMetricFamily("maskstream_ring_puts", "Items offered to a ring", labels=["ring"])
        dropped = CounterMetricFamily("maskstream_ring_dropped", "Items a ring's overflow policy "
                                      "discarded", labels=["ring"])
        for r in p.rings:
            depth.add_metric([r.name], len(r))
            cap.add_metric([r.name], r.capacity)
            puts.add_metric([r.name], r.puts)
            dropped.add_metric([r.name], r.dropped)
        yield from (depth, cap, puts, dropped)

        up = GaugeMetricFamily("maskstream_source_connected", "1 while a live source is connected",
                               labels=["source"])
        reconnects = CounterMetricFamily("maskstream_source_reconnects", "Reconnects after a "
                                         "live source dropped or stalled", labels=["source"])
        frames = CounterMetricFamily("maskstream_source_frames", "Frames a source has decoded",
                                     labels=["source"])
        age = GaugeMetricFamily("maskstream_source_last_frame_age_seconds", "Seconds since a live "
                                "source's last frame", labels=["source"])
        for src in p.sources:
            health = getattr(src, "health", None)
            if health is None:
                continue
            sid = [src.source_id]
            up.add_metric(sid, 1.0 if health.connected else 0.0)
            reconnects.add_metric(sid, health.reconnects)
            frames.add_metric(sid, health.frames)
            a = health.last_frame_age()
            if not math.isinf(a):
                age.add_metric(sid, a)
        yield from (up, reconnects, frames, age)

        yield from _sink_metrics(p)

        e2e = HistogramMetricFamily("maskstream_capture_to_sink_seconds", "From decode to written, "
                                    "per sink write")
        _histogram(e2e, [], p.end_to_end)
        yield e2e


def _sink_metrics(p: Pipeline) -> Iterator[object]:
    """Network outputs (RTSP, MQTT): connection state, reconnects and what they could not
    deliver; MQTT adds its messages by state. Sinks are labelled by their name, which never
    holds credentials."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    up = GaugeMetricFamily("maskstream_sink_connected", "1 while a network output is connected",
                           labels=["sink"])
    reconnects = CounterMetricFamily("maskstream_sink_reconnects", "Reconnects of a network "
                                     "output after its connection dropped", labels=["sink"])
    dropped = CounterMetricFamily("maskstream_sink_dropped", "Frames or messages a network "
                                  "output could not deliver", labels=["sink"])
    messages = CounterMetricFamily("maskstream_sink_messages", "Messages handed to a message "
                                   "output (MQTT)", labels=["sink"])
    states = GaugeMetricFamily("maskstream_sink_messages_by_state", "Messages of a message "
                               "output by what became of them: acknowledged, dropped (never "
                               "sent), unacknowledged (in flight), waiting", labels=["sink", "state"])
    for sink in p.sinks:
        health = getattr(sink, "health", None)
        if health is None:
            continue
        up.add_metric([sink.name], 1.0 if health.connected else 0.0)
        reconnects.add_metric([sink.name], health.reconnects)
        dropped.add_metric([sink.name], health.dropped)
        counters = getattr(health, "counters", None)
        if counters is not None:
            messages.add_metric([sink.name], health.messages)
            for state, n in counters().items():
                states.add_metric([sink.name, state], n)
    yield from (up, reconnects, dropped, messages, states)


class MetricsServer:
    """Serves ``/metrics`` for ``pipeline`` on ``host:port`` between start() and close()."""

    def __init__(self, pipeline: Pipeline, port: int, host: str = "127.0.0.1") -> None:
        self.pipeline, self.port, self.host = pipeline, port, host
        self._server: Any = None  # wsgiref's WSGIServer, once started
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(PipelineCollector(self.pipeline))  # type: ignore[arg-type]
        try:
            self._server, self._thread = start_http_server(self.port, self.host, registry)
        except OSError as exc:
            raise ConfigError(f"metrics: cannot listen on {self.host}:{self.port} "
                              f"({exc.strerror or exc})") from None
        self.port = self._server.server_port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(JOIN_S)
            self._thread = None
