#!/usr/bin/env python3
"""Throughput of maskstream on this machine, measured side by side in one run.

    python -m tools.bench --model M.onnx --video V.mp4 [--device cpu|cuda] [--sections S,…]
        [--frames N] [--repeat R] [--backend B] [--datapath D] [--decode cpu|nvdec]
        [--streams N] [--ultralytics-python PY] [--json] [--out DIR [--name NAME]]

Sections (``--sections``, comma-separated; default per device, below):
  decode       decoding alone: PyAV and OpenCV (1 thread, automatic threads), and
               maskstream's source x1 and xN sessions with the chosen decoder (cpu or nvdec)
  model        model-only: ONNX Runtime per sessions x threads setting on the CPU (the
               limit: nothing else runs); the torch backend (tools/bench_torch.py) once:
               eager fp32 on the CPU, eager and CUDA graphs at batch 1/8/32 on CUDA
  pipeline     the pipeline end to end, annotated mp4 + JSONL, one stream
  jsonl        the pipeline end to end, JSONL only, one stream
  sequential   the obvious loop: decode → preprocess → infer → masks → track → render →
               encode, one engine (ONNX Runtime: as many threads as cores)
  streams      N copies of the clip as N sources, --batch N, JSONL only (one file each)
  ultralytics  Ultralytics' track(stream=True, save=True) on the same weights and clip
               (tools/bench_ultralytics.py; skipped, saying why, where it is missing)
  masks        mask decoding + overlay per frame at 5/30/100 instances, host vs device
               (tools/bench_device.py; on a frame of the uncut video), once
Defaults: cpu  decode,model,pipeline,sequential (what `make bench` has always shown)
          cuda decode,model,pipeline,jsonl,streams,ultralytics,masks
Every per-round contender runs once per round, rounds alternate, and the ratios are taken
inside each round (drift on a shared machine cancels out); medians are reported, with the
load average at each round's start.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from engines import Backend, choose_backend, open_engine, read_spec
from engines.select import torch_problem
from pipeline.config import DataPath, VideoDecoder
from pipeline.infer.preprocess import Preprocess
from tools import bench_report
from tools.bench_clip import (
    count_frames,
    describe_machine,
    load_average,
    load_frames,
    machine,
    trim_clip,
)
from tools.bench_decode import bench_decode_libs, bench_sources
from tools.bench_pipeline import (
    Engine,
    Variant,
    bench_model_only,
    bench_pipeline,
    bench_sequential,
    dynamic_copy,
)
from tools.bench_torch import bench_torch_model_only
from tools.bench_ultralytics import run_ultralytics, ultralytics_problem

__all__ = ["Rounds", "main"]

T = TypeVar("T")
SECTIONS = ("decode", "model", "pipeline", "jsonl", "sequential", "streams", "ultralytics",
            "masks")
DEFAULTS = {"cpu": "decode,model,pipeline,sequential",
            "cuda": "decode,model,pipeline,jsonl,streams,ultralytics,masks"}
PIPELINE = "pipeline end-to-end"  # the names of today's rows, kept
JSONL = "pipeline JSONL only"
SEQUENTIAL = "sequential loop"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--video", required=True, type=Path)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    ap.add_argument("--sections", help=f"comma-separated, of {', '.join(SECTIONS)}")
    ap.add_argument("--frames", type=int, default=0, help="frames of the clip to use (0: all)")
    ap.add_argument("--repeat", type=int, default=2, help="alternating rounds; medians reported")
    ap.add_argument("--backend", default="auto", choices=[b.value for b in Backend],
                    help="engine of the pipeline and sequential runs (default auto)")
    ap.add_argument("--datapath", default="auto", choices=[d.value for d in DataPath])
    ap.add_argument("--decode", default="auto", choices=[d.value for d in VideoDecoder],
                    help="the pipeline's decoder, and the one decode-only compares with")
    ap.add_argument("--streams", type=int, default=8, help="sources (and batch) for 'streams'")
    ap.add_argument("--instances", type=int, nargs="+", default=[5, 30, 100],
                    help="instances for 'masks'")
    ap.add_argument("--ultralytics-python", help="interpreter with ultralytics (default: this one)")
    ap.add_argument("--ultralytics-weights", type=Path,
                    help="its weights: the fixtures' state dict or the --model .onnx (default)")
    ap.add_argument("--ultralytics-threads", default="0",
                    help="torch CPU threads for Ultralytics, comma-separated runs (0: its own "
                         "default, min(8, cores - 1))")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--out", type=Path, help="write NAME.json and NAME.md into this folder")
    ap.add_argument("--name", default="bench", help="file names under --out (default bench)")
    args = ap.parse_args(argv)
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    args.sections = [s.strip() for s in (args.sections or DEFAULTS[kind]).split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        ap.error(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.ultralytics_threads = [int(t) for t in args.ultralytics_threads.split(",")]
    return args


class Rounds:
    """Per-round figures by name, and ratios taken inside each round."""

    def __init__(self) -> None:
        self.fps: dict[str, list[float]] = {}
        self.cpu_ms: dict[str, list[float]] = {}  # CPU time per frame, all threads
        self.ratios: dict[str, list[float]] = {}
        self.loads: list[float] = []
        self.added: dict[str, int] = {}  # the round each name's latest figures come from

    def add(self, name: str, value: float, cpu_ms: float | None = None) -> None:
        self.fps.setdefault(name, []).append(value)
        self.added[name] = len(self.loads)
        if cpu_ms is not None:
            self.cpu_ms.setdefault(name, []).append(cpu_ms)

    def last(self, name: str, cpu: bool = False) -> float | None:
        """This round's figure (FPS, or CPU ms per frame), None where it has none (a
        contender that failed this round, or in an earlier one, is judged by this one)."""
        values = (self.cpu_ms if cpu else self.fps).get(name)
        return values[-1] if values and self.added.get(name) == len(self.loads) else None

    def ratio(self, name: str, a: float | None, b: float | None) -> None:
        if a is not None and b:
            self.ratios.setdefault(name, []).append(a / b)

    def medians(self) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in self.fps.items()}


@dataclass
class Context:
    """What the sections share: made once (``prepare``), filled in by the rounds."""

    cuda: bool
    clip: Path  # the clip every contender reads (cut to --frames)
    frames: int
    wh: tuple[int, int]
    input_name: str
    imgsz: int  # the model's input size (Ultralytics is run at it)
    decoder: str  # cpu | nvdec: the pipeline's, and what decode-only compares it with
    engine: Engine
    tensors: list[np.ndarray] = field(default_factory=list)  # model-only inputs (CPU)
    batch: int = 1  # the streams' batch, and the model that can run it
    batch_model: Path = Path()
    runs: dict[str, dict[str, object]] = field(default_factory=dict)  # last round's runs
    seq_costs: list[dict[str, float]] = field(default_factory=list)
    torch_rows: list[dict[str, object]] = field(default_factory=list)
    torch_best: float | None = None  # model-only batch 1 on CUDA (measured once)
    ultralytics: list[dict[str, object]] = field(default_factory=list)
    ultralytics_problem: str | None = None
    ul_weights: Path = Path()
    masks: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, object] = field(default_factory=dict)


def decode_name(decoder: str, sessions: int) -> str:
    return f"decode {decoder} source x{sessions}"


def streams_name(args: argparse.Namespace, ctx: Context) -> str:
    return f"pipeline {args.streams} streams, batch {ctx.batch}, JSONL only"


def attempt(ctx: Context, name: str, run: Callable[[], T]) -> T | None:
    """``run()``, or None with a note naming what failed: one contender that breaks (a
    missing decoder, a model a backend cannot take) leaves the others' figures standing."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - reported in the result, the run goes on
        message = str(exc).strip().splitlines()
        ctx.notes.append(f"{name} failed: {type(exc).__name__}: {message[0] if message else ''}")
        print(f"bench: {ctx.notes[-1]}", file=sys.stderr)
        return None


def one_round(args: argparse.Namespace, ctx: Context, r: Rounds, tmp: Path) -> None:
    """Every per-round contender once, in a fixed order."""
    clip, model, engine, sec = ctx.clip, args.model, ctx.engine, args.sections
    r.loads.append(load_average())
    decoder = ctx.decoder
    if "decode" in sec:
        for k, v in bench_decode_libs(clip).items():
            r.add(f"decode {k}", v)
        sessions = [1, args.streams] if "streams" in sec and args.streams > 1 else [1]
        for d in dict.fromkeys(("cpu", decoder)):  # the CPU's, and NVDEC's where it is used
            for n in sessions:
                fps = attempt(ctx, decode_name(d, n), lambda d=d, n=n: bench_sources(clip, d, n))
                if fps is not None:
                    r.add(decode_name(d, n), fps)
    if "model" in sec and not ctx.cuda:
        for k, v in bench_model_only(model, ctx.tensors, ctx.input_name).items():
            r.add(f"model-only {k}", v)
    variants = []
    if "pipeline" in sec:
        variants.append((PIPELINE, model, Variant("pipe")))
    if "jsonl" in sec:
        variants.append((JSONL, model, Variant("meta", "jsonl")))
    if "sequential" in sec:
        seq = attempt(ctx, SEQUENTIAL, lambda: bench_sequential(model, clip, tmp, engine))
        if seq is not None:
            r.add(SEQUENTIAL, seq.pop("fps"), seq.pop("cpu_ms_per_frame"))
            ctx.seq_costs.append(seq)
    if "streams" in sec:
        variants.append((streams_name(args, ctx), ctx.batch_model,
                         Variant("streams", "jsonl", args.streams, ctx.batch)))
    for name, path, v in variants:
        run = attempt(ctx, name, lambda p=path, v=v: bench_pipeline(p, clip, tmp, v, engine))
        if run is not None:
            ctx.runs[name] = run
            r.add(name, float(run["fps"]), float(run["cpu_ms_per_frame"]))  # type: ignore[arg-type]
    if "ultralytics" in sec and ctx.ultralytics_problem is None:
        for threads in args.ultralytics_threads:
            name = "ultralytics track" + (f", {threads} threads" if threads else "")
            got = run_ultralytics(args.ultralytics_python, ctx.ul_weights, model, clip,
                                  args.device, ctx.imgsz, threads)
            ctx.ultralytics.append({"round": len(r.loads), "threads": threads, **got})
            if "error" not in got:
                r.add(name, float(got["fps"]), float(got["cpu_ms_per_frame"]))  # type: ignore[arg-type]
    # ratios inside this round
    pipe = r.last(PIPELINE)
    model_now = [v for k in r.fps if k.startswith("model-only")
                 and (v := r.last(k)) is not None]
    best_model = max(model_now) if model_now else ctx.torch_best
    r.ratio("pipeline / best model-only", pipe, best_model)
    r.ratio("pipeline / sequential loop", pipe, r.last(SEQUENTIAL))
    ul_now = [v for k in r.fps if k.startswith("ultralytics") and (v := r.last(k)) is not None]
    r.ratio("pipeline / Ultralytics track", pipe, max(ul_now) if ul_now else None)
    r.ratio("JSONL only / Ultralytics track", r.last(JSONL), max(ul_now) if ul_now else None)
    ul_cpu = [r.last(k, cpu=True) for k in r.fps if k.startswith("ultralytics")]
    ul_cpu = [c for c in ul_cpu if c is not None]
    r.ratio("CPU per frame: Ultralytics track / pipeline", min(ul_cpu) if ul_cpu else None,
            r.last(PIPELINE, cpu=True))
    r.ratio("JSONL only / decode x1", r.last(JSONL), r.last(decode_name(decoder, 1)))
    if "streams" in sec:
        r.ratio(f"{args.streams} streams / decode x{args.streams}",
                r.last(streams_name(args, ctx)), r.last(decode_name(decoder, args.streams)))


def prepare(args: argparse.Namespace, tmp: Path) -> Context:
    """The clip, the model's spec and inputs, and what each section needs, made once."""
    cuda = args.device.startswith("cuda")
    clip = trim_clip(args.video, tmp / f"clip{args.video.suffix}", args.frames) \
        if args.frames else args.video
    ort_rows = "model" in args.sections and not cuda
    frames = load_frames(clip, 120 if ort_rows else 1)
    ref = open_engine(args.model, "onnxruntime", "cpu")  # to read the spec
    spec = read_spec(ref, args.model)
    ref.close()
    pre = Preprocess(spec)
    ctx = Context(cuda=cuda, clip=clip, frames=count_frames(clip), wh=frames[0].size,
                  input_name=spec.input_name, imgsz=max(spec.input_wh), decoder="nvdec" if args.decode == "nvdec" else "cpu",
                  engine=Engine(args.backend, args.device, args.datapath, args.decode),
                  batch_model=args.model, machine=machine())
    if ort_rows:
        ctx.tensors = [pre.process(f).tensor for f in frames]
    first = pre.process(frames[0]).tensor
    del frames
    if "model" in args.sections:
        torch_device = str(choose_backend(args.model, "auto", args.device).device)
        problem = torch_problem(cuda=torch_device.startswith("cuda"))
        if args.backend in ("auto", "torch") and problem is None:
            ctx.torch_rows = attempt(ctx, "torch model-only", lambda: bench_torch_model_only(
                args.model, first, spec.input_name, torch_device)) or []
            batch1 = [float(r["fps"]) for r in ctx.torch_rows if r["batch"] == 1]  # type: ignore[arg-type]
            ctx.torch_best = max(batch1) if cuda and batch1 else None
        elif problem is not None:
            ctx.notes.append(f"torch model-only skipped: {problem}")
    if "streams" in args.sections and args.streams > 1:
        dyn = dynamic_copy(args.model, tmp) if spec.batch is not None else args.model
        if dyn is None:
            ctx.notes.append(f"streams run at batch 1: {args.model.name} cannot batch")
        else:
            ctx.batch, ctx.batch_model = args.streams, dyn
    if "ultralytics" in args.sections:
        ctx.ultralytics_problem = ultralytics_problem(args.ultralytics_python)
        ctx.ul_weights = args.ultralytics_weights or args.model
        if ctx.ultralytics_problem:
            ctx.notes.append(f"Ultralytics skipped: {ctx.ultralytics_problem}")
    return ctx


def run_masks(args: argparse.Namespace) -> list[dict[str, object]]:
    import torch

    from tools.bench_device import bench_masks_overlay

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the pipeline runs torch on a CPU
    device = "cuda" if args.device.startswith("cuda") else "cpu"
    rows = [bench_masks_overlay(args.model, args.video, device, n, 20 if device == "cuda" else 5)
            for n in args.instances]
    torch.set_num_threads(before)
    return rows


def summarize(args: argparse.Namespace, ctx: Context, r: Rounds,
              started: float) -> dict[str, object]:
    med = r.medians()
    model_keys = [k for k in med if k.startswith("model-only")]
    ratios = {k: statistics.median(v) for k, v in r.ratios.items()}
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "command": "python -m tools.bench " + " ".join(sys.argv[1:]),
        "machine": describe_machine(ctx.machine), "machine_info": ctx.machine,
        "model": str(args.model), "video": str(args.video), "frames": ctx.frames,
        "frame_size": f"{ctx.wh[0]}x{ctx.wh[1]}", "device": args.device,
        "backend": args.backend, "datapath": args.datapath, "decode": args.decode,
        "sections": args.sections, "repeat": args.repeat,
        "load_per_round": [round(x, 2) for x in r.loads],
        "fps": med, "fps_per_round": r.fps,
        "cpu_ms_per_frame": {k: statistics.median(v) for k, v in r.cpu_ms.items()},
        "decode_fps": {k.removeprefix("decode "): v for k, v in med.items()
                       if k.startswith("decode")},
        "ratios": ratios, "ratios_per_round": r.ratios,
        "stages": {k: v["stages"] for k, v in ctx.runs.items()},
        "summaries": {k: v["summary"] for k, v in ctx.runs.items()},
        "torch_model_only": ctx.torch_rows, "masks": ctx.masks,
        "ultralytics": ctx.ultralytics, "notes": ctx.notes,
        "wall_s": round(time.time() - started, 1),
    }
    if model_keys:  # the keys `make bench` has always written
        result["best_model_only"] = max(model_keys, key=med.__getitem__)
    for key, ratio in (("pipeline_vs_best_model_only", "pipeline / best model-only"),
                       ("pipeline_vs_sequential", "pipeline / sequential loop")):
        if ratio in ratios:
            result[key] = ratios[ratio]
    if ctx.seq_costs:
        costs = {k: statistics.median(c[k] for c in ctx.seq_costs) for k in ctx.seq_costs[0]}
        result["sequential_ms_per_frame"] = costs
        result["masks_track_render_vs_infer"] = (
            (costs["masks+track ms"] + costs["render ms"]) / costs["infer ms"])
    return result


def write_out(args: argparse.Namespace, result: dict[str, object]) -> None:
    """NAME.json and NAME.md under --out (rewritten after every round)."""
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / f"{args.name}.md").write_text(bench_report.markdown(result))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = prepare(args, Path(tmp))
        r = Rounds()
        for _ in range(args.repeat):  # alternate so drift hits every contender alike
            one_round(args, ctx, r, Path(tmp))
            write_out(args, summarize(args, ctx, r, started))  # a run cut short keeps these
        if "masks" in args.sections:
            ctx.masks = attempt(ctx, "masks", lambda: run_masks(args)) or []
        result = summarize(args, ctx, r, started)
    write_out(args, result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(bench_report.text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
