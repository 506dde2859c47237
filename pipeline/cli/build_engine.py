"""``maskstream build-engine MODEL.onnx``: a TensorRT engine for this GPU (logic in
pipeline/build_engine.py)."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """examples:
  maskstream build-engine yolov8n-seg.onnx --fp16
  maskstream build-engine yolov8n-seg.onnx --int8 --calib my_street.mp4 --out yolo-int8.engine
  maskstream build-engine yolov8n-seg-dyn.onnx --fp16 --batch 4
  maskstream build-engine yolov8n-seg.onnx --fp16 --dla 0        (Jetson AGX Orin / Orin NX)

Needs an NVIDIA GPU and TensorRT (pip install tensorrt; JetPack 6: apt python3-libnvinfer).
FP16/INT8 on TensorRT 11 (and INT8 on 10) also need NVIDIA Model Optimizer:
pip install "nvidia-modelopt[onnx]". Engines are cached under ~/.cache/maskstream/engines
($MASKSTREAM_ENGINE_CACHE), keyed by model, precision, batch, TensorRT version and GPU:
running the same command again returns the cached engine at once. An engine runs only
with the TensorRT version and GPU type that built it.
"""


def add_parser(sub: Any) -> None:
    be = sub.add_parser("build-engine", help="build a TensorRT engine from an ONNX model "
                        "(NVIDIA GPU)", description="Build a TensorRT engine (.engine) for this "
                        "GPU from an ONNX model, in FP32, FP16 or INT8.", epilog=EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    be.add_argument("model", help="ONNX model (YOLO-seg or semantic heads)")
    prec = be.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true", help="half precision (about 2x faster "
                      "than FP32 on most GPUs; small accuracy change)")
    prec.add_argument("--int8", action="store_true", help="INT8 with FP16 for the rest; needs "
                      "--calib. Check accuracy on your own footage afterwards")
    be.add_argument("--calib", metavar="VIDEO", help="video of your scene for INT8 calibration")
    be.add_argument("--calib-frames", type=int, default=512, metavar="N", help="calibration "
                    "frames taken evenly across VIDEO (default 512; NVIDIA suggests >= 500)")
    be.add_argument("--batch", type=int, default=1, metavar="N", help="largest batch per call "
                    "(default 1; > 1 needs a dynamic-batch model)")
    be.add_argument("--dla", type=int, metavar="CORE", help="run on Jetson DLA core CORE, GPU "
                    "fallback for unsupported layers (needs --fp16 or --int8)")
    be.add_argument("--workspace", type=float, default=4.0, metavar="GiB", help="builder "
                    "workspace memory limit (default 4)")
    be.add_argument("--opt-level", type=int, default=3, choices=range(6), metavar="0-5",
                    help="builder optimization level (default 3; 5 searches longest)")
    be.add_argument("--out", "-o", metavar="PATH", help="also write the engine here")
    be.add_argument("--device", default="cuda:0", help="cuda or cuda:N (default cuda:0)")
    be.add_argument("--cache-dir", metavar="DIR", help="engine cache folder")
    be.add_argument("--rebuild", action="store_true", help="build even if a cached engine fits")
    be.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS)
    be.set_defaults(handler=cmd_build_engine)


def cmd_build_engine(args: argparse.Namespace) -> int:
    from pipeline.build_engine import build_engine_file

    path = build_engine_file(
        args.model, fp16=args.fp16, int8=args.int8, calib=args.calib,
        calib_frames=args.calib_frames, batch=args.batch, dla=args.dla,
        workspace_gib=args.workspace, out=args.out, device=args.device,
        cache_dir=args.cache_dir, optimization_level=args.opt_level, rebuild=args.rebuild)
    print(f"engine: {path}")
    return 0
