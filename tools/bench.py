#!/usr/bin/env python3
"""Throughput of maskstream on this machine, measured side by side in one run.

    python -m tools.bench --model M.onnx --video V.mp4 [--frames N] [--repeat R] [--json]
                          [--backend B] [--device D]

Reports, for the same frames:
  decode      video decoding alone: PyAV and OpenCV, one thread and automatic threads
  model-only  engine.infer in a loop on preprocessed frames, for each session/thread
              setting (the limit: nothing else runs)
  pipeline    the threaded pipeline end to end (mp4 + JSONL outputs), default settings
  sequential  the obvious loop: decode → preprocess → infer → decode masks → track →
              render → encode, one engine (ONNX Runtime: as many threads as cores)
  torch       model-only, the torch backend where it is usable (tools/bench_torch.py):
              eager and CUDA graphs at batch 1/8/32 on CUDA, eager batch 1 on the CPU
--backend / --device choose the engine of the pipeline and sequential runs (default auto).
and the per-frame cost of mask decoding + rendering against inference.
Speed belongs here, not in the tests: the ratios are what to compare across machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from engines import Backend, choose_backend, open_engine, read_spec
from engines.onnxruntime_engine import OnnxRuntimeEngine
from engines.select import torch_problem
from pipeline.config import (
    Config,
    DecodeParams,
    ModelConfig,
    OutputConfig,
    RenderParams,
    SourceConfig,
    TrackParams,
)
from pipeline.decode.yolo import YoloSegDecoder
from pipeline.graph import build_pipeline
from pipeline.infer.preprocess import Preprocess
from pipeline.io.jsonl_sink import JsonlSink
from pipeline.io.sources import VideoFileSource
from pipeline.io.video_sink import VideoSink
from pipeline.render.render import Render
from pipeline.track.tracker import Tracker
from tools.bench_torch import bench_torch_model_only, print_rows


def bench_decode(video: Path, frames: int) -> dict[str, float]:
    import av

    out = {}
    for threads in (1, 0):
        with av.open(str(video)) as c:
            s = c.streams.video[0]
            if threads != 1:
                s.thread_type = "AUTO"
            s.thread_count = threads
            t, n = time.perf_counter(), 0
            for f in c.decode(s):
                f.to_ndarray(format="bgr24")
                n += 1
                if n == frames:
                    break
            out[f"pyav threads={threads or 'auto'}"] = n / (time.perf_counter() - t)
        cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_N_THREADS, threads] if threads else [])
        t, n = time.perf_counter(), 0
        while n < frames and cap.read()[0]:
            n += 1
        cap.release()
        out[f"opencv threads={threads or 'auto'}"] = n / (time.perf_counter() - t)
    return out


def load_frames(video: Path, frames: int):
    src = VideoFileSource(video)
    out = []
    for f in src.frames(threading.Event()):
        out.append(f)
        if len(out) == frames:
            break
    src.close()
    return out


def bench_model_only(model: Path, tensors: list[np.ndarray], name: str) -> dict[str, float]:
    cores = os.cpu_count() or 1
    settings = [(1, 1), (1, cores), (cores, 1)]  # (sessions, intra-op threads each)
    out = {}
    for sessions, threads in settings:
        engines = [OnnxRuntimeEngine(model, threads=threads) for _ in range(sessions)]
        for e in engines:  # warm-up
            e.infer({name: tensors[0]})
        todo = list(range(len(tensors)))
        lock = threading.Lock()

        def work(e, todo=todo, lock=lock) -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                e.infer({name: tensors[i]})

        t = time.perf_counter()
        threads_ = [threading.Thread(target=work, args=(e,)) for e in engines]
        for th in threads_:
            th.start()
        for th in threads_:
            th.join()
        out[f"{sessions} session(s) x {threads} thread(s)"] = len(tensors) / (time.perf_counter() - t)
        for e in engines:
            e.close()
    return out


def bench_sequential(model: Path, video: Path, frames: int, tmp: Path, backend: str = "auto",
                     device: str = "auto") -> dict[str, float]:
    """The obvious single-thread loop, with every stage the pipeline has."""
    torch.set_num_threads(1)
    engine = open_engine(model, backend, device, threads=os.cpu_count() or 1)
    spec = read_spec(engine, model)
    pre, dec = Preprocess(spec), YoloSegDecoder(spec, DecodeParams())
    tracker, render = Tracker(TrackParams()), Render(RenderParams())
    src = VideoFileSource(video)
    mp4, meta = VideoSink(tmp / "seq.mp4", src.rate), JsonlSink(tmp / "seq.jsonl")
    engine.infer({spec.input_name: pre.process(load_frames(video, 1)[0]).tensor})
    cost = {"infer": 0.0, "masks+track": 0.0, "render": 0.0}
    t0, n = time.perf_counter(), 0
    for frame in src.frames(threading.Event()):
        f = pre.process(frame)
        t = time.perf_counter()
        outputs = engine.infer({spec.input_name: f.tensor})
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
        if n == frames:
            break
    mp4.close()
    meta.close()
    src.close()
    wall = time.perf_counter() - t0
    engine.close()
    return {"fps": n / wall, **{f"{k} ms": v / n * 1000 for k, v in cost.items()}}


def bench_pipeline(model: Path, video: Path, tmp: Path, backend: str = "auto",
                   device: str = "auto") -> tuple[float, object]:
    cfg = Config(source=SourceConfig(uri=str(video)),
                 model=ModelConfig(path=str(model), backend=Backend(backend), device=device),
                 output=OutputConfig(video=str(tmp / "pipe.mp4"), jsonl=str(tmp / "pipe.jsonl")))
    built = build_pipeline(cfg)
    report = built.pipeline.run()
    return report.fps, report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--video", required=True, type=Path)
    ap.add_argument("--frames", type=int, default=0, help="frames to use (0: the whole video)")
    ap.add_argument("--repeat", type=int, default=2, help="alternating rounds; medians reported")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--backend", default="auto", choices=[b.value for b in Backend],
                    help="engine of the pipeline and sequential runs (default auto)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    args = ap.parse_args()
    frames = args.frames or 10**9
    clip = load_frames(args.video, frames)
    engine = open_engine(args.model, "onnxruntime", "cpu")  # to read the spec
    spec = read_spec(engine, args.model)
    engine.close()
    pre = Preprocess(spec)
    tensors = [pre.process(f).tensor for f in clip[:120]]
    n = len(clip)

    rounds: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {"pipeline/model-only": [], "pipeline/sequential": []}
    seq_costs: list[dict[str, float]] = []
    last_report = None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):  # alternate so drift hits every contender alike
            for k, v in bench_model_only(args.model, tensors, spec.input_name).items():
                rounds.setdefault(f"model-only {k}", []).append(v)
            fps, last_report = bench_pipeline(args.model, args.video, Path(tmp), args.backend,
                                              args.device)
            rounds.setdefault("pipeline end-to-end", []).append(fps)
            seq = bench_sequential(args.model, args.video, frames, Path(tmp), args.backend,
                                   args.device)
            rounds.setdefault("sequential loop", []).append(seq.pop("fps"))
            seq_costs.append(seq)
            best_now = max(v[-1] for k, v in rounds.items() if k.startswith("model-only"))
            ratios["pipeline/model-only"].append(fps / best_now)
            ratios["pipeline/sequential"].append(fps / rounds["sequential loop"][-1])
        dec = bench_decode(args.video, frames)
    torch_device = str(choose_backend(args.model, "auto", args.device).device)
    torch_rows = (bench_torch_model_only(args.model, tensors[0], spec.input_name, torch_device)
                  if args.backend in ("auto", "torch")
                  and torch_problem(cuda=torch_device.startswith("cuda")) is None else [])

    med = {k: statistics.median(v) for k, v in rounds.items()}
    best_key = max((k for k in med if k.startswith("model-only")), key=med.get)
    costs = {k: statistics.median(c[k] for c in seq_costs) for k in seq_costs[0]}
    result = {
        "machine": f"{os.cpu_count()} cores, torch {torch.__version__}",
        "model": str(args.model), "video": str(args.video), "frames": n,
        "fps": med, "decode_fps": dec,
        "best_model_only": best_key,
        # ratios within each round (side by side), then their median: drift between
        # rounds on a shared machine cancels out
        "pipeline_vs_best_model_only": statistics.median(ratios["pipeline/model-only"]),
        "pipeline_vs_sequential": statistics.median(ratios["pipeline/sequential"]),
        "ratios_per_round": ratios,
        "sequential_ms_per_frame": costs,
        "masks_track_render_vs_infer": (costs["masks+track ms"] + costs["render ms"]) / costs["infer ms"],
        "torch_model_only": torch_rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{n} frames of {args.video.name}, {args.model.name}, {result['machine']}, "
          f"median of {args.repeat} alternating rounds")
    for k, v in med.items():
        print(f"  {k:<42}{v:8.1f} FPS")
    print("  decode only:")
    for k, v in dec.items():
        print(f"    {k:<40}{v:8.1f} FPS")
    each = "  ".join(f"{r:.2f}" for r in ratios["pipeline/model-only"])
    print(f"  pipeline / best model-only ({best_key.removeprefix('model-only ')}): "
          f"{result['pipeline_vs_best_model_only']:.2f}x  (median of rounds: {each})")
    each = "  ".join(f"{r:.2f}" for r in ratios["pipeline/sequential"])
    print(f"  pipeline / sequential loop: {result['pipeline_vs_sequential']:.2f}x  "
          f"(median of rounds: {each})")
    print("  sequential loop, ms per frame: " + ", ".join(f"{k} {v:.2f}" for k, v in costs.items()))
    print(f"  masks + tracking + rendering / inference: {result['masks_track_render_vs_infer']:.1%}")
    if torch_rows:
        print_rows(torch_rows)
    if last_report is not None:
        from pipeline.report import format_report

        print("  pipeline stages (last round):")
        print("    " + format_report(last_report).replace("\n", "\n    "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
