"""The whole pipeline, wired in one function that reads top to bottom.

    sources → (merge) → preprocess → infer (pool) → decode+track → render → sinks

Every ring is listed in one table (:func:`ring_table`) with its capacity, its overflow
policy and why; ``runtime.overflow: auto`` is resolved there, in one place. Everything
:func:`build_pipeline` opens (sources, engines, outputs) is closed again if a later step
fails, so a bad output or option leaves no thread, session or file handle behind.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import cv2
import torch

from engines import Engine, ModelSpec, choose_backend, open_engine, read_spec
from engines.spec import check_runs
from pipeline.config import Config, DataPath, Overflow, VideoDecoder
from pipeline.decode.postprocess import Postprocess
from pipeline.errors import ConfigError
from pipeline.infer.device_stages import DeviceInfer, Upload
from pipeline.infer.infer import Infer
from pipeline.infer.preprocess import Preprocess
from pipeline.io.sinks import is_network, needs_render, open_sink
from pipeline.io.sources import open_source
from pipeline.io.uri import redact
from pipeline.render.render import Render
from pipeline.runtime.metrics import StageStats
from pipeline.runtime.prometheus import MetricsServer
from pipeline.runtime.ring import Ring
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


@dataclass(frozen=True)
class RingPlan:
    """One ring of the graph: its size, what it does when full, and why."""

    name: str
    capacity: int
    overflow: Overflow
    why: str


def resolve_overflow(setting: Overflow, auto: Overflow) -> Overflow:
    """``runtime.overflow``: ``auto`` takes each ring's own choice, anything else applies to
    every ring."""
    return auto if setting is Overflow.AUTO else setting


def ring_table(cfg: Config, sources: list[Source], outputs: list[tuple[str, str | None]],
               batch: int) -> list[RingPlan]:
    """Every ring, in the order frames pass them."""
    q, setting = cfg.runtime.queue_size, cfg.runtime.overflow
    live = any(s.live for s in sources)
    all_live = all(s.live for s in sources)
    # live: only the newest frame waits for the engine, so latency stays bounded
    ahead = 1 if live else q
    front = Overflow.DROP_OLDEST if all_live else Overflow.BLOCK
    table = []
    if len(sources) > 1:
        table += [RingPlan(f"captured:{s.source_id}", 1 if s.live else q,
                           resolve_overflow(setting, Overflow.DROP_OLDEST if s.live
                                            else Overflow.BLOCK),
                           "each source its own ring: a stalled camera never holds up "
                           "the others; a file loses nothing") for s in sources]
    table += [
        RingPlan("captured", ahead, resolve_overflow(setting, front),
                 "live: the newest frame wins (bounded latency); files: a few frames of "
                 "slack and nothing dropped"),
        RingPlan("prepared", max(ahead, batch), resolve_overflow(setting, front),
                 "as captured, with room for a full batch"),
        RingPlan("inferred", q, resolve_overflow(setting, Overflow.BLOCK),
                 "past the engine nothing is dropped: each frame cost an inference"),
        RingPlan("decoded", q, resolve_overflow(setting, Overflow.BLOCK),
                 "as inferred"),
    ]
    table += [RingPlan(f"out:{redact(uri)}", q,  # ring names reach metrics: no passwords
                       resolve_overflow(setting, Overflow.DROP_OLDEST if is_network(uri)
                                        else Overflow.BLOCK),
                       "each output its own ring, so a slow one never stalls the others; a "
                       "network output drops its oldest frame, a file loses nothing")
              for uri, _ in outputs]
    return table


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
    """(uri, source id or None for all sources) per sink; ``{source}`` makes one per source
    (an MQTT topic's ``{source}`` is filled in per message instead)."""
    out: list[tuple[str, str | None]] = []
    for uri in outputs:
        # a message output fills {source} in per message: one connection serves every camera
        if "{source}" in uri and not uri.startswith(("mqtt://", "mqtts://")):
            out += [(uri.replace("{source}", sid), sid) for sid in source_ids]
        elif len(source_ids) > 1 and needs_render(uri) and not uri.startswith(("display://", "null://")):
            raise ConfigError(f"output {uri}: {len(source_ids)} sources cannot share one video; "
                              "put {source} in the name, e.g. out_{source}.mp4")
        else:
            out.append((uri, None))
    return out


def resolve_datapath(setting: DataPath, device: str, nvdec: bool = False) -> DataPath:
    """``auto``: the device path where the engine runs on CUDA or frames are decoded on
    the GPU (NVDEC), else the host path. NVDEC frames never take the host path."""
    if setting is DataPath.AUTO:
        return DataPath.DEVICE if device.startswith("cuda") or nvdec else DataPath.HOST
    if setting is DataPath.HOST and nvdec:
        raise ConfigError("--decode nvdec decodes into GPU memory: it needs --datapath device "
                          "(or auto), not host")
    return setting


def open_frames(uri: str, source_id: str, cfg: Config) -> Source:
    """A source for ``uri``, decoded on the CPU or by NVDEC (``source.decode``)."""
    if cfg.source.decode is VideoDecoder.NVDEC:
        from pipeline.io.nvdec import open_nvdec_source

        return open_nvdec_source(uri, source_id, cfg.live)
    return open_source(uri, source_id, cfg.source.fps, cfg.source.decode_threads, cfg.live)


def default_workers(device: str) -> int:
    """One single-thread engine per core on CPUs (measured best on 2 cores), 1 on GPUs."""
    if device.startswith("cuda"):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _check_batch(cfg: Config, spec: ModelSpec) -> None:
    if cfg.model.batch > 1 and spec.batch is not None:
        raise ConfigError(f"model.batch {cfg.model.batch}: {os.path.basename(cfg.model.path)} "
                          f"has a fixed batch of {spec.batch}; make a dynamic-batch copy with "
                          "python -m tools.dynamic_batch, or set batch 1")


def build_pipeline(cfg: Config, engines: Sequence[Engine] | None = None) -> Built:
    """sources → (merge) → preprocess → infer (pool) → decode+track → render → sinks.

    ``engines``: instances to run instead of opening ``cfg.model`` (one infer worker each;
    the pipeline closes them when it ends), so a caller that runs many pipelines, such as
    the archive job, loads the model once."""
    named = named_sources(cfg)
    if not cfg.model.path:
        raise ConfigError("no model given (--model or model.path)")
    # which backend on which device (engines.select logs the choice and why)
    choice = choose_backend(cfg.model.path, cfg.model.backend, cfg.model.device)
    device = str(choice.device)
    nvdec = cfg.source.decode is VideoDecoder.NVDEC
    on_device = resolve_datapath(cfg.runtime.datapath, device, nvdec) is DataPath.DEVICE
    if not device.startswith("cuda"):
        # On a CPU the stages are the parallelism: torch's and OpenCV's own thread pools
        # would only preempt the engines (their small ops are fastest single-threaded).
        torch.set_num_threads(1)
        cv2.setNumThreads(1)

    with ExitStack() as opened:  # closed again unless everything opens
        sources: list[Source] = []
        for sid, uri in named:
            sources.append(open_frames(uri, sid, cfg))
            opened.callback(sources[-1].close)
        by_id = {s.source_id: s for s in sources}
        running: list[Engine] = list(engines or ())
        for _ in range(0 if running else cfg.model.workers or default_workers(device)):
            running.append(open_engine(cfg.model.path, choice.backend, choice.device,
                                       cfg.model.threads))
            opened.callback(running[-1].close)
        spec = read_spec(running[0], cfg.model.path)
        check_runs(running[0], spec)  # a size the model cannot run at fails here, not mid-run
        _check_batch(cfg, spec)
        outputs = expand_outputs([u for u in (cfg.output.video, cfg.output.jsonl,
                                              *cfg.output.more) if u]
                                 or ["null://"], list(by_id))
        sinks: list[Sink] = []
        for uri, target in outputs:
            sinks.append(open_sink(uri, by_id[target].rate if target else sources[0].rate,
                                   cfg.output.codec))
            opened.callback(sinks[-1].abort)

        p = Pipeline()
        rings = {plan.name: plan for plan in ring_table(cfg, sources, outputs, cfg.model.batch)}

        def ring(name: str, listener: threading.Event | None = None) -> Ring:
            plan = rings[name]
            return p.ring(plan.name, plan.capacity, plan.overflow, listener)

        captured = ring("captured")
        if len(sources) == 1:
            p.source(sources[0], captured)
        else:  # each source its own ring, merged fairly
            wakeup = threading.Event()
            per_source = [ring(f"captured:{s.source_id}", wakeup) for s in sources]
            for s, r in zip(sources, per_source, strict=True):
                p.source(s, r)
            p.merge(per_source, captured, wakeup)

        # the device path: upload once (NVDEC: never), letterbox into the engine worker's
        # static input, decode and draw on the device, one download per output
        prepared = ring("prepared")
        p.stage(Upload(device) if on_device else Preprocess(spec), captured, [prepared])
        p.discard_on_stop(captured, prepared)  # Ctrl-C: what the engine has not started is dropped

        inferred = ring("inferred")
        infer = [DeviceInfer(e, spec, cfg.model.batch) if on_device else Infer(e, spec)
                 for e in running]
        p.pool(infer, prepared, inferred, cfg.model.batch, cfg.model.batch_timeout_ms / 1000)

        out_rings = [ring(f"out:{redact(uri)}") for uri, _ in outputs]
        targets = [sid for _, sid in outputs]

        def route(frame: Frame) -> list[int]:
            return [i for i, sid in enumerate(targets) if sid is None or sid == frame.source_id]

        postprocess = Postprocess(spec, cfg.decode, cfg.track, {s.source_id: s.fps for s in sources},
                                  device if on_device else None)
        if any(needs_render(u) for u, _ in outputs):
            decoded = ring("decoded")
            p.stage(postprocess, inferred, [decoded])
            last = p.stage(Render(cfg.render, device if on_device else None), decoded, out_rings,
                           route)
        else:  # metadata only: nothing to draw
            last = p.stage(postprocess, inferred, out_rings, route)

        for sink, out in zip(sinks, out_rings, strict=True):
            p.sink(sink, out)
        if cfg.metrics.port:
            p.service(MetricsServer(p, cfg.metrics.port, cfg.metrics.host))
        opened.pop_all()  # the pipeline owns them now: its workers close them
        return Built(p, spec, sources, sinks, last)
