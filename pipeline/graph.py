"""The whole pipeline, wired in one function that reads top to bottom."""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import torch

from engines import ModelSpec, open_engine, read_spec, resolve_device
from pipeline.capture import open_source
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.infer import Infer
from pipeline.postprocess import Postprocess
from pipeline.preprocess import Preprocess
from pipeline.render import Render
from pipeline.ring import Overflow
from pipeline.runner import Pipeline
from pipeline.sink import is_network, needs_render, open_sink
from pipeline.stage import Sink, Source


@dataclass
class Built:
    pipeline: Pipeline
    spec: ModelSpec
    source: Source
    sinks: list[Sink]


def default_workers(device: str) -> int:
    """One single-thread engine per core on CPUs (measured best on 2 cores), 1 on GPUs."""
    if device.startswith("cuda"):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def build_pipeline(cfg: Config) -> Built:
    """source → preprocess → infer (pool) → decode+track → render → sinks."""
    outputs = [u for u in (cfg.output.video, cfg.output.jsonl) if u]
    if not cfg.source.uri:
        raise ConfigError("no source given")
    if not cfg.model.path:
        raise ConfigError("no model given (--model or model.path)")

    device = resolve_device(cfg.model.device)
    if not device.startswith("cuda"):
        # On a CPU the stages are the parallelism: torch's and OpenCV's own thread pools
        # would only preempt the engines (their small ops are fastest single-threaded).
        torch.set_num_threads(1)
        cv2.setNumThreads(1)

    source = open_source(cfg.source.uri, "src0", cfg.source.fps, cfg.source.decode_threads,
                         cfg.live)
    workers = cfg.model.workers or default_workers(device)
    engines = [open_engine(cfg.model.path, device, cfg.model.threads)]
    spec = read_spec(engines[0], cfg.model.path)
    engines += [open_engine(cfg.model.path, device, cfg.model.threads)
                for _ in range(workers - 1)]
    sinks = [open_sink(u, source.rate, cfg.output.codec) for u in outputs or ["null://"]]

    q = cfg.runtime.queue_size
    if cfg.runtime.overflow == "auto":
        overflow = Overflow.DROP_OLDEST if source.live else Overflow.BLOCK
    else:
        overflow = Overflow(cfg.runtime.overflow)

    # live: only the newest frame waits for the engine, so latency stays bounded; files:
    # a few frames of slack per ring and nothing is ever dropped
    ahead = 1 if source.live else q
    p = Pipeline()
    captured = p.ring("captured", ahead, overflow)
    p.source(source, captured)

    prepared = p.ring("prepared", ahead, overflow)
    p.stage(Preprocess(spec), captured, [prepared])

    inferred = p.ring("inferred", q)
    p.pool([Infer(e, spec) for e in engines], prepared, inferred)

    # each sink has its own ring, so a slow sink never stalls the others
    sink_rings = [p.ring(s.name, q, Overflow.DROP_OLDEST if is_network(u) else Overflow.BLOCK)
                  for s, u in zip(sinks, outputs or ["null://"], strict=True)]
    postprocess = Postprocess(spec, cfg.decode, cfg.track, {source.source_id: source.fps})
    if any(needs_render(u) for u in outputs):
        decoded = p.ring("decoded", q)
        p.stage(postprocess, inferred, [decoded])
        p.stage(Render(cfg.render), decoded, sink_rings)
    else:  # metadata only: nothing to draw
        p.stage(postprocess, inferred, sink_rings)

    for sink, ring in zip(sinks, sink_rings, strict=True):
        p.sink(sink, ring)
    return Built(p, spec, source, sinks)
