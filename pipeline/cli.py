"""``maskstream`` command line: ``run`` a pipeline, ``info`` about a model."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence

from pipeline.archive import cli as archive_cli
from pipeline.config import Config, load_config, override
from pipeline.errors import MaskstreamError

log = logging.getLogger("maskstream")

EPILOG = """examples:
  maskstream run dashcam.mp4 --model yolov8n-seg.onnx --output out.mp4 --jsonl out.jsonl
  maskstream run frames/ --model twinlitenet.onnx --output lanes.mp4
  maskstream run dashcam.mp4 --config configs/dashcam.yaml --conf 0.4
  maskstream run cam1=rtsp://… cam2=rtsp://… -m m.onnx -o 'mqtt://broker/site/{source}?masks=none'
  maskstream archive dashcam/ --model yolov8n-seg.onnx --out archive/ [--ray]
  maskstream info yolov8n-seg.onnx
"""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="maskstream", description="Real-time video segmentation: instance masks with "
        "tracking, or semantic class maps, drawn on the video and written as JSON Lines.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the pipeline on a video file or image folder",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("sources", nargs="*", metavar="SOURCE",
                     help="video file, image folder, rtsp:// or http(s):// stream, /dev/videoN, "
                     "csi://N or gst://PIPELINE; several at once, each optionally named "
                     "(cam1=rtsp://…)")
    run.add_argument("--model", "-m", help="ONNX model (YOLO-seg or semantic heads)")
    run.add_argument("--output", "-o", help="annotated video (.mp4/.mkv/.avi), rtsp:// "
                     "(publish), mqtt://[user:pass@]host[:port]/topic[?qos=1&masks=rle|none] "
                     "(one JSON message per frame), display:// or null://; {source} makes one "
                     "per source")
    run.add_argument("--jsonl", "-j", help="per-frame metadata (.jsonl); {source} makes one "
                     "per source")
    run.add_argument("--config", "-c", help="YAML config (see configs/); flags override it")
    run.add_argument("--conf", type=float, help="confidence threshold (default 0.25)")
    run.add_argument("--iou", type=float, help="NMS IoU threshold (default 0.7)")
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto: CUDA where "
                     "onnxruntime-gpu is installed, else CPU)")
    run.add_argument("--workers", type=int, help="engine instances side by side "
                     "(default: one per core on CPU)")
    run.add_argument("--batch", type=int, help="frames per engine call, across sources "
                     "(default 1; > 1 needs a dynamic-batch model, see tools/dynamic_batch.py)")
    run.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus "
                     "metrics on 127.0.0.1:PORT/metrics while running")
    run.add_argument("--tracker", choices=["bytetrack", "ocsort", "botsort", "sort", "none"],
                     help="multi-object tracker (default bytetrack)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    info = sub.add_parser("info", help="print what maskstream reads from a model")
    info.add_argument("model", help="model file (.onnx)")
    info.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    archive_cli.add_parser(sub)
    return ap


def _config(args: argparse.Namespace) -> Config:
    from pipeline.track.tracker import TrackerKind

    cfg = load_config(args.config)
    if args.sources:
        cfg = dataclasses.replace(cfg, sources=tuple(args.sources))
    cfg = override(cfg, "model", path=args.model, device=args.device, workers=args.workers,
                   batch=args.batch)
    cfg = override(cfg, "metrics", port=args.metrics_port)
    cfg = override(cfg, "decode", conf=args.conf, iou=args.iou)
    cfg = override(cfg, "track", kind=TrackerKind(args.tracker) if args.tracker else None)
    cfg = override(cfg, "output", video=args.output, jsonl=args.jsonl)
    return cfg


def _install_signal_handlers(stop) -> None:  # type: ignore[no-untyped-def]
    """First Ctrl-C / SIGTERM: stop the source and drain. A second one exits at once."""
    state = {"count": 0}

    def handler(signum: int, _frame: object) -> None:
        state["count"] += 1
        if state["count"] > 1:
            os._exit(130)
        print(f"\nmaskstream: {signal.Signals(signum).name}: stopping, finishing outputs "
              "(again to quit at once)", file=sys.stderr)
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.graph import build_pipeline
    from pipeline.report import format_report

    cfg = _config(args)
    built = build_pipeline(cfg)
    total = built.total_frames
    bar = None
    if not args.no_progress and not built.live:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="frame", desc="maskstream", file=sys.stderr, disable=None,
                   dynamic_ncols=True)

    def tick(_p) -> None:  # type: ignore[no-untyped-def]
        if bar is not None:
            bar.update(built.progress.items - bar.n)

    if cfg.metrics.port:
        print(f"maskstream: metrics at http://{cfg.metrics.host}:{cfg.metrics.port}/metrics",
              file=sys.stderr)
    _install_signal_handlers(built.pipeline.stop)
    try:
        report = built.pipeline.run(on_tick=tick)
    finally:
        if bar is not None:
            tick(built.pipeline)
            bar.close()
    print(format_report(report))
    for sink in built.sinks:
        path = getattr(sink, "path", None)
        if path is not None:
            print(f"wrote {path}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from engines import open_engine, read_spec

    engine = open_engine(args.model)
    try:
        print(read_spec(engine, args.model).describe())
    finally:
        engine.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            if not args.sources and not args.config:
                _parser().error("run: give a SOURCE (or a --config with source.uri or sources)")
            return cmd_run(args)
        if args.command == "archive":
            return archive_cli.run(args)
        return cmd_info(args)
    except MaskstreamError as exc:
        if args.debug:
            raise
        print(f"maskstream: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("maskstream: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; --debug shows the traceback
        if args.debug:
            raise
        print(f"maskstream: internal error: {type(exc).__name__}: {exc} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
