"""The whole pipeline, wired in one function that reads top to bottom."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import torch

from engines import Engine, ModelSpec, open_engine, read_spec, resolve_device
from pipeline.config import Config
from pipeline.decode.postprocess import Postprocess
from pipeline.errors import ConfigError
from pipeline.infer.infer import Infer
from pipeline.infer.preprocess import Preprocess
from pipeline.io.sinks import is_network, needs_render, open_sink
from pipeline.io.sources import open_source
from pipeline.render.render import Render
from pipeline.runtime.metrics import StageStats
from pipeline.runtime.prometheus import MetricsServer
from pipeline.runtime.ring import Overflow
from pipeline.runtime.runner import Pipeline
from pipeline.runtime.stage import Sink, Source
from pipeline.types import Frame


@dataclass
class Built:
    pipeline: Pipeline
    spec: ModelSpec
    sources: list[Source]
    sinks: list[Sink]
    progress: StageStats  # the stage that feeds the sinks: frames done

    @property
    def live(self) -> bool:
        return any(s.live for s in self.sources)

    @property
    def total_frames(self) -> int | None:
        totals = [s.total_frames for s in self.sources]
        return None if any(t is None for t in totals) else sum(t for t in totals if t)


_NAMED = re.compile(r"^([A-Za-z][\w-]{0,31})=(.+)$")


def named_sources(cfg: Config) -> list[tuple[str, str]]:
    """(source id, uri) pairs: ``name=uri`` names a source, others are src0, src1, …"""
    uris = list(cfg.sources) or ([cfg.source.uri] if cfg.source.uri else [])
    if not uris:
        raise ConfigError("no source given")
    out = []
    for i, uri in enumerate(uris):
        m = _NAMED.match(uri)
        out.append((m.group(1), m.group(2)) if m and "://" not in m.group(1) else (f"src{i}", uri))
    ids = [sid for sid, _ in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"source names must differ, got {ids}")
    return out


def expand_outputs(outputs: list[str], source_ids: list[str]) -> list[tuple[str, str | None]]:
    """(uri, source id or None for all sources) per sink; ``{source}`` makes one per source."""
    out: list[tuple[str, str | None]] = []
    for uri in outputs:
        if "{source}" in uri:
            out += [(uri.replace("{source}", sid), sid) for sid in source_ids]
        elif len(source_ids) > 1 and needs_render(uri) and not uri.startswith(("display://", "null://")):
            raise ConfigError(f"output {uri}: {len(source_ids)} sources cannot share one video; "
                              "put {source} in the name, e.g. out_{source}.mp4")
        else:
            out.append((uri, None))
    return out


def default_workers(device: str) -> int:
    """One single-thread engine per core on CPUs (measured best on 2 cores), 1 on GPUs."""
    if device.startswith("cuda"):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def build_pipeline(cfg: Config, engines: Sequence[Engine] | None = None) -> Built:
    """sources → (merge) → preprocess → infer (pool) → decode+track → render → sinks.

    ``engines``: instances to run instead of opening ``cfg.model`` (one infer worker each;
    the pipeline closes them when it ends), so a caller that runs many pipelines, such as
    the archive job, loads the model once."""
    named = named_sources(cfg)
    if not cfg.model.path:
        raise ConfigError("no model given (--model or model.path)")

    device = resolve_device(cfg.model.device)
    if not device.startswith("cuda"):
        # On a CPU the stages are the parallelism: torch's and OpenCV's own thread pools
        # would only preempt the engines (their small ops are fastest single-threaded).
        torch.set_num_threads(1)
        cv2.setNumThreads(1)

    sources = [open_source(uri, sid, cfg.source.fps, cfg.source.decode_threads, cfg.live)
               for sid, uri in named]
    by_id = {s.source_id: s for s in sources}
    outputs = expand_outputs([u for u in (cfg.output.video, cfg.output.jsonl) if u] or ["null://"],
                             list(by_id))
    if engines:
        engines = list(engines)
        spec = read_spec(engines[0], cfg.model.path)
    else:
        workers = cfg.model.workers or default_workers(device)
        engines = [open_engine(cfg.model.path, device, cfg.model.threads)]
        spec = read_spec(engines[0], cfg.model.path)
        engines += [open_engine(cfg.model.path, device, cfg.model.threads)
                    for _ in range(workers - 1)]
    batch = cfg.model.batch
    if batch > 1 and spec.batch is not None:
        raise ConfigError(f"model.batch {batch}: {os.path.basename(cfg.model.path)} has a fixed "
                          f"batch of {spec.batch}; make a dynamic-batch copy with "
                          "tools/dynamic_batch.py, or set batch 1")
    sinks = [open_sink(u, by_id[sid].rate if sid else sources[0].rate, cfg.output.codec)
             for u, sid in outputs]

    q = cfg.runtime.queue_size
    fixed = None if cfg.runtime.overflow == "auto" else Overflow(cfg.runtime.overflow)

    def policy(live: bool) -> Overflow:
        return fixed or (Overflow.DROP_OLDEST if live else Overflow.BLOCK)

    # live: only the newest frame waits for the engine, so latency stays bounded; files:
    # a few frames of slack per ring and nothing is ever dropped
    ahead = 1 if any(s.live for s in sources) else q
    shared = policy(all(s.live for s in sources))
    p = Pipeline()
    if len(sources) == 1:
        captured = p.ring("captured", ahead, shared)
        p.source(sources[0], captured)
    else:  # each source its own ring, so a stalled camera never holds up the others
        wakeup = threading.Event()
        rings = [p.ring(f"captured:{s.source_id}", 1 if s.live else q, policy(s.live), wakeup)
                 for s in sources]
        for s, r in zip(sources, rings, strict=True):
            p.source(s, r)
        captured = p.ring("captured", ahead)
        p.merge(rings, captured, wakeup)

    prepared = p.ring("prepared", max(ahead, batch), shared)  # room for a full batch
    p.stage(Preprocess(spec), captured, [prepared])
    p.discard_on_stop(captured, prepared)  # Ctrl-C: what the engine has not started is dropped

    inferred = p.ring("inferred", q)
    p.pool([Infer(e, spec) for e in engines], prepared, inferred, batch,
           cfg.model.batch_timeout_ms / 1000)

    # each sink has its own ring, so a slow sink never stalls the others
    sink_rings = [p.ring(s.name, q, Overflow.DROP_OLDEST if is_network(u) else Overflow.BLOCK)
                  for s, (u, _) in zip(sinks, outputs, strict=True)]
    targets = [sid for _, sid in outputs]

    def route(frame: Frame) -> list[int]:
        return [i for i, sid in enumerate(targets) if sid is None or sid == frame.source_id]

    postprocess = Postprocess(spec, cfg.decode, cfg.track, {s.source_id: s.fps for s in sources})
    if any(needs_render(u) for u, _ in outputs):
        decoded = p.ring("decoded", q)
        p.stage(postprocess, inferred, [decoded])
        last = p.stage(Render(cfg.render), decoded, sink_rings, route)
    else:  # metadata only: nothing to draw
        last = p.stage(postprocess, inferred, sink_rings, route)

    for sink, ring in zip(sinks, sink_rings, strict=True):
        p.sink(sink, ring)
    if cfg.metrics.port:
        p.service(MetricsServer(p, cfg.metrics.port, cfg.metrics.host))
    return Built(p, spec, sources, sinks, last)
