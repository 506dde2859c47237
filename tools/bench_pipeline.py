"""maskstream's contenders for tools/bench.py, each over the same clip:

- ``bench_model_only``: ONNX Runtime ``engine.infer`` in a loop on preprocessed frames, for
  each session × thread setting (the limit on a CPU: nothing else runs).
- ``bench_pipeline``: the threaded pipeline end to end, ``Variant`` saying which outputs
  (annotated mp4 + JSONL, JSONL only, null) over how many copies of the clip as sources,
  with which batch; the run's per-stage latencies come back with it.
- ``bench_sequential``: the obvious single-thread loop with every stage the pipeline has.

Each also gives the CPU time it cost per frame (all threads of the process), the figure
that holds still on a shared machine where FPS does not.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engines import Backend, open_engine, read_spec
from engines.errors import ModelError
from engines.onnxruntime_engine import OnnxRuntimeEngine
from pipeline.config import (
    Config,
    DataPath,
    DecodeParams,
    ModelConfig,
    OutputConfig,
    RenderParams,
    RuntimeConfig,
    SourceConfig,
    TrackParams,
    VideoDecoder,
)
from pipeline.decode.yolo import YoloSegDecoder
from pipeline.graph import build_pipeline
from pipeline.infer.preprocess import Preprocess
from pipeline.io.jsonl_sink import JsonlSink
from pipeline.io.sources import VideoFileSource
from pipeline.io.video_sink import VideoSink
from pipeline.render.render import Render
from pipeline.report import format_report
from pipeline.runtime.run_report import RunReport
from pipeline.track.tracker import Tracker
from tools.bench_clip import load_frames

__all__ = ["Engine", "Variant", "bench_model_only", "bench_pipeline", "bench_sequential", "dynamic_copy"]


@dataclass(frozen=True)
class Variant:
    """One way of running the pipeline. ``outputs``: ``mp4+jsonl``, ``jsonl`` or ``null``."""

    key: str
    outputs: str = "mp4+jsonl"
    streams: int = 1
    batch: int = 1


@dataclass(frozen=True)
class Engine:
    """Which engine the pipeline and the sequential loop run (the CLI's flags)."""

    backend: str = "auto"
    device: str = "auto"
    datapath: str = "auto"
    decode: str = "auto"


def bench_model_only(model: Path, tensors: list[np.ndarray], name: str) -> dict[str, float]:
    """FPS per (sessions × intra-op threads) setting, sessions side by side in threads."""
    cores = os.cpu_count() or 1
    settings = [(1, 1), (1, cores), (cores, 1)]
    out = {}
    for sessions, threads in settings:
        engines = [OnnxRuntimeEngine(model, threads=threads) for _ in range(sessions)]
        for e in engines:  # warm-up
            e.infer({name: tensors[0]})
        todo = list(range(len(tensors)))
        lock = threading.Lock()

        def work(e: OnnxRuntimeEngine, todo: list[int] = todo,
                 lock: threading.Lock = lock) -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                e.infer({name: tensors[i]})

        t = time.perf_counter()
        workers = [threading.Thread(target=work, args=(e,)) for e in engines]
        for th in workers:
            th.start()
        for th in workers:
            th.join()
        out[f"{sessions} session(s) x {threads} thread(s)"] = len(tensors) / (time.perf_counter() - t)
        for e in engines:
            e.close()
    return out


def dynamic_copy(model: Path, folder: Path) -> Path | None:
    """A dynamic-batch copy of ``model`` in ``folder`` (None, with a note, where it cannot
    be made: a dynamically quantized model, say)."""
    import onnx

    from tools.dynamic_batch import make_dynamic

    out = folder / f"{model.stem}-dynamic.onnx"
    if out.exists():
        return out
    try:
        onnx.save(make_dynamic(onnx.load(str(model))), str(out))
    except (ModelError, ValueError) as exc:
        print(f"  (no batches > 1 for {model.name}: {exc})", file=sys.stderr)
        return None
    return out


def pipeline_config(model: Path, video: Path, tmp: Path, v: Variant, e: Engine) -> Config:
    """The CLI's config for ``v``: ``v.streams`` copies of ``video`` named s0, s1, …;
    JSONL (and mp4) files in ``tmp``, one per source when there are several."""
    if v.streams == 1:
        sources: tuple[str, ...] = (str(video),)
    else:
        sources = tuple(f"s{i}={video}" for i in range(v.streams))
    tag = "_{source}" if v.streams > 1 else ""
    video_out = str(tmp / f"{v.key}{tag}.mp4") if v.outputs == "mp4+jsonl" else ""
    jsonl_out = {"null": "null://"}.get(v.outputs, str(tmp / f"{v.key}{tag}.jsonl"))
    return Config(
        sources=sources,
        source=SourceConfig(decode=VideoDecoder(e.decode)),
        model=ModelConfig(path=str(model), backend=Backend(e.backend), device=e.device,
                          batch=v.batch),
        output=OutputConfig(video=video_out, jsonl=jsonl_out),
        runtime=RuntimeConfig(datapath=DataPath(e.datapath)))


def stage_rows(report: RunReport) -> list[dict[str, object]]:
    """Per-stage latency of a run: items, p50/p99/mean ms, CPU ms per item."""

    def ms(s: float) -> float | None:
        return None if math.isnan(s) else round(s * 1000, 3)

    rows: list[dict[str, object]] = [
        {"stage": s.name, "items": s.items, "p50_ms": ms(s.latency.percentile(50)),
         "p99_ms": ms(s.latency.percentile(99)), "mean_ms": ms(s.latency.mean),
         "cpu_ms": None if math.isnan(s.cpu_ms_per_item) else round(s.cpu_ms_per_item, 3),
         **({"mean_batch": round(s.mean_batch, 2)} if s.batches else {})}
        for s in report.stages]
    h = report.end_to_end
    rows.append({"stage": "capture → sink", "items": h.count, "p50_ms": ms(h.percentile(50)),
                 "p99_ms": ms(h.percentile(99)), "mean_ms": ms(h.mean), "cpu_ms": None})
    return rows


def bench_pipeline(model: Path, video: Path, tmp: Path, v: Variant,
                   e: Engine) -> dict[str, object]:
    """One run of the pipeline: FPS over every frame of every source that reached the
    outputs, the per-stage rows and the summary text."""
    built = build_pipeline(pipeline_config(model, video, tmp, v, e))
    cpu = time.process_time()  # every thread of this process: the pipeline's alone here
    report = built.pipeline.run()
    cpu = time.process_time() - cpu
    done = report.frames_in - report.dropped
    return {"fps": done / report.wall_s if report.wall_s > 0 else 0.0, "frames": done,
            "cpu_ms_per_frame": cpu * 1000 / max(1, done), "wall_s": report.wall_s,
            "stages": stage_rows(report), "summary": format_report(report)}


def bench_sequential(model: Path, video: Path, tmp: Path, e: Engine) -> dict[str, float]:
    """The obvious single-thread loop, with every stage the pipeline has; host data path."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    engine = open_engine(model, e.backend, e.device, threads=os.cpu_count() or 1)
    spec = read_spec(engine, model)
    pre, dec = Preprocess(spec), YoloSegDecoder(spec, DecodeParams())
    tracker, render = Tracker(TrackParams()), Render(RenderParams())
    src = VideoFileSource(video)
    mp4, meta = VideoSink(tmp / "seq.mp4", src.rate), JsonlSink(tmp / "seq.jsonl")
    engine.infer({spec.input_name: pre.process(load_frames(video, 1)[0]).tensor})
    cost = {"infer": 0.0, "masks+track": 0.0, "render": 0.0}
    t0, cpu, n = time.perf_counter(), time.process_time(), 0
    for frame in src.frames(threading.Event()):
        f = pre.process(frame)
        t = time.perf_counter()
        outputs = engine.infer({spec.input_name: f.tensor})
        if engine.stream is not None:  # CUDA: the work is queued, not done
            engine.stream.synchronize()
        t1 = time.perf_counter()
        det = tracker.update(dec(outputs, f.letterbox), frame.pts)
        t2 = time.perf_counter()
        f = render.process(dataclasses.replace(f, detections=det, tensor=None))
        t3 = time.perf_counter()
        mp4.write(f)
        meta.write(f)
        cost["infer"] += t1 - t
        cost["masks+track"] += t2 - t1
        cost["render"] += t3 - t2
        n += 1
    mp4.close()
    meta.close()
    src.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
    engine.close()
    torch.set_num_threads(before)
    return {"fps": n / wall, "cpu_ms_per_frame": cpu * 1000 / n,
            **{f"{k} ms": v / n * 1000 for k, v in cost.items()}}
