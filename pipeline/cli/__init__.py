"""The ``maskstream`` command line. Each subcommand is a module with ``add_parser(sub)``
that sets ``handler`` (and optionally ``check``) on its arguments."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pipeline.cli import archive, build_engine, info, run
from pipeline.errors import MaskstreamError

COMMANDS = (run, info, build_engine, archive)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="maskstream", description="Real-time video segmentation: instance masks with "
        "tracking, or semantic class maps, drawn on the video and written as JSON Lines.",
        epilog=run.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debug", action="store_true", help="show tracebacks and debug logs "
                    "(also accepted after the command)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    check = getattr(args, "check", None)
    if check is not None:
        check(ap, args)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
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
