"""``maskstream info MODEL``: what maskstream reads from a model."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    info = sub.add_parser("info", help="print what maskstream reads from a model")
    info.add_argument("model", help="model file (.onnx)")
    info.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                      help=argparse.SUPPRESS)
    info.set_defaults(handler=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from engines import open_engine, read_spec

    engine = open_engine(args.model)
    try:
        print(read_spec(engine, args.model).describe())
    finally:
        engine.close()
    return 0
