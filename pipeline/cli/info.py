"""``maskstream info MODEL``: what maskstream reads from a model."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    info = sub.add_parser("info", help="print what maskstream reads from a model")
    info.add_argument("model", help="model file (.onnx, or a TensorRT .engine/.plan)")
    info.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                      help=argparse.SUPPRESS)
    info.set_defaults(handler=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from engines import Backend, open_engine, read_spec, usable_backends
    from engines.select import ENGINE_SUFFIXES

    # reading a model needs no GPU: ONNX Runtime on the CPU (an engine file: TensorRT)
    on_trt = args.model.lower().endswith(ENGINE_SUFFIXES)
    engine = (open_engine(args.model) if on_trt
              else open_engine(args.model, Backend.ONNXRUNTIME, "cpu"))
    try:
        print(read_spec(engine, args.model).describe())
    finally:
        engine.close()
    print("backends here:")
    for row in usable_backends():
        print(f"  {row.describe()}")
    return 0
