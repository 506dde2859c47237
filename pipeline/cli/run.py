"""``maskstream run``: build the pipeline from a config and flags, run it with a progress
bar, print the summary (also when the run ends in an error)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from pipeline.config import (
    Backend,
    Config,
    DataPath,
    TrackerKind,
    VideoDecoder,
    load_config,
    override,
)
from pipeline.errors import TruncatedSource

EPILOG = """examples:
  maskstream run dashcam.mp4 --model yolov8n-seg.onnx --output out.mp4 --jsonl out.jsonl
  maskstream run frames/ --model twinlitenet.onnx --output lanes.mp4
  maskstream run cam1=rtsp://… cam2=rtsp://… --model m.onnx --jsonl all.jsonl
  maskstream run dashcam.mp4 --config configs/dashcam.yaml --conf 0.4
  maskstream run cam1=rtsp://… cam2=rtsp://… -m m.onnx -o 'mqtt://broker/site/{source}?masks=none'
  maskstream archive dashcam/ --model yolov8n-seg.onnx --out archive/ [--ray]
"""


def add_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="run the pipeline on video files, image folders or "
                         "live streams", epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("sources", nargs="*", metavar="SOURCE",
                     help="video file, image folder, rtsp:// or http(s):// stream, /dev/videoN, "
                     "csi://N or gst://PIPELINE; several at once, each optionally named "
                     "(cam1=rtsp://…)")
    run.add_argument("--model", "-m", help="ONNX model (YOLO-seg or semantic heads)")
    run.add_argument("--output", "-o", action="append", metavar="OUTPUT",
                     help="annotated video (.mp4/.mkv/.avi), rtsp:// (publish), "
                     "mqtt://[user:pass@]host[:port]/topic[?qos=1&masks=rle|none] (one JSON "
                     "message per frame), display:// or null://; {source} makes one per "
                     "source; give it again for more outputs")
    run.add_argument("--jsonl", "-j", help="per-frame metadata (.jsonl); {source} makes one "
                     "per source")
    run.add_argument("--config", "-c", help="YAML config (see configs/); flags override it")
    run.add_argument("--conf", type=float, help="confidence threshold (default 0.25)")
    run.add_argument("--iou", type=float, help="NMS IoU threshold (default 0.7)")
    run.add_argument("--backend", choices=[b.value for b in Backend],
                     help="inference backend (default auto: the fastest usable here)")
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto: CUDA where "
                     "a GPU backend can use it, else CPU)")
    run.add_argument("--workers", type=int, help="engine instances side by side "
                     "(default: one per core on CPU)")
    run.add_argument("--batch", type=int, help="frames per engine call, across sources "
                     "(default 1; > 1 needs a dynamic-batch model: python -m tools.dynamic_batch)")
    run.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus "
                     "metrics on 127.0.0.1:PORT/metrics while running")
    run.add_argument("--datapath", choices=[d.value for d in DataPath],
                     help="where frames, masks and overlays live: host (numpy/OpenCV), device "
                     "(torch on the engine's device: one upload and one download a frame) or "
                     "auto (default: device when the engine runs on CUDA)")
    run.add_argument("--decode", choices=[d.value for d in VideoDecoder],
                     help="video decoding: cpu (FFmpeg), nvdec (the NVIDIA GPU's decoder, "
                     "through PyNvVideoCodec) or auto (default)")
    run.add_argument("--tracker", choices=[k.value for k in TrackerKind],
                     help="multi-object tracker (default bytetrack)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help=argparse.SUPPRESS)
    run.set_defaults(handler=cmd_run, check=_check)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.sources and not args.config:
        parser.error("run: give a SOURCE (or a --config with source.uri or sources)")


def config_from(args: argparse.Namespace) -> Config:
    """The config file (or the defaults) with the flags laid over it."""
    cfg = load_config(args.config)
    if args.sources:
        cfg = dataclasses.replace(cfg, sources=tuple(args.sources))
    cfg = override(cfg, "model", path=args.model, device=args.device, workers=args.workers,
                   batch=args.batch, backend=Backend(args.backend) if args.backend else None)
    cfg = override(cfg, "metrics", port=args.metrics_port)
    cfg = override(cfg, "runtime", datapath=DataPath(args.datapath) if args.datapath else None)
    cfg = override(cfg, "source", decode=VideoDecoder(args.decode) if args.decode else None)
    cfg = override(cfg, "decode", conf=args.conf, iou=args.iou)
    cfg = override(cfg, "track", kind=TrackerKind(args.tracker) if args.tracker else None)
    first, *more = args.output or [None]
    return override(cfg, "output", video=first, jsonl=args.jsonl,
                    more=tuple(more) if more else None)


def install_signal_handlers(stop: Callable[[], None] | None) -> None:
    """First Ctrl-C / SIGTERM: stop the source and drain. A second one exits at once.
    Before the pipeline exists (``stop`` None), SIGTERM interrupts like Ctrl-C does."""
    count = [0]

    def handler(signum: int, _frame: object) -> None:
        if stop is None:
            raise KeyboardInterrupt
        count[0] += 1
        if count[0] > 1:
            os._exit(130)
        print(f"\nmaskstream: {signal.Signals(signum).name}: stopping, finishing outputs "
              "(again to quit at once)", file=sys.stderr)
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.graph import build_pipeline
    from pipeline.report import format_report

    install_signal_handlers(None)
    cfg = config_from(args)
    if cfg.source.decode is VideoDecoder.NVDEC:  # before the model loads: fail in seconds
        from pipeline.io.nvdec import require_nvdec

        require_nvdec()
    built = build_pipeline(cfg)
    bar = None
    if not args.no_progress and not built.live:
        from tqdm import tqdm

        bar = tqdm(total=built.total_frames, unit="frame", desc="maskstream", file=sys.stderr,
                   disable=None, dynamic_ncols=True)

    def tick(_p: object) -> None:
        if bar is not None:
            bar.update(built.progress.items - bar.n)

    if cfg.metrics.port:
        print(f"maskstream: metrics at http://{cfg.metrics.host}:{cfg.metrics.port}/metrics",
              file=sys.stderr)
    install_signal_handlers(built.pipeline.stop)
    try:
        built.pipeline.run(on_tick=tick)
    finally:
        if bar is not None:
            tick(built.pipeline)
            bar.close()
        report = built.pipeline.report
        if report is not None:  # also when the run ends in an error: what was done
            print(format_report(report))
            for out in report.outputs:
                path = getattr(out.sink, "path", None)
                if path is not None and out.error is None:
                    print(f"wrote {path}")
    # a source that could not be read whole (damaged video, unreadable images) fails the
    # run, after everything readable went through and the summary above was printed
    incomplete = [s.incomplete for s in built.sources if s.incomplete]
    if incomplete:
        raise TruncatedSource("; ".join(incomplete))
    return 0
