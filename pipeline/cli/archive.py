"""``maskstream archive``: the command line of the archive job (``pipeline.archive``).

Exit status: 0 when every file is ok, 3 when some failed (they are listed, and in
``files.parquet`` with their error), 130 when interrupted, 1 on an error that stopped
the job (a bad model, no cluster).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.config import Backend

EXIT_SOME_FAILED = 3
EXIT_INTERRUPTED = 130

EPILOG = """examples:
  maskstream archive dashcam/ --model yolov8n-seg.onnx --out archive/
  maskstream archive 'uploads/**/*.mp4' --model yolov8n-seg.onnx --out archive/ --workers 2
  maskstream archive files.txt --model yolov8n-seg.onnx --out /mnt/shared/archive --ray
  maskstream archive dashcam/ --model m.onnx --out /mnt/shared/a --ray head:6379 --gpus-per-worker 1

outputs (run again to resume: finished files are skipped):
  DIR/<name>.mp4, DIR/<name>.jsonl      per input file, complete or absent
  DIR/detections/                       Parquet dataset, one row per detection
  DIR/files.parquet                     one row per file: status ok or failed, error
"""


def add_parser(sub: Any) -> None:
    """Register ``archive`` on the main parser's subcommands."""
    p = sub.add_parser("archive", help="segment many video files once (resumable), here or on a "
                       "Ray cluster", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="a folder (searched recursively), a quoted "
                   "glob ('videos/**/*.mp4') or a text file listing paths, one a line")
    p.add_argument("--model", "-m", help="ONNX model (YOLO-seg or semantic heads)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder (on a "
                   "filesystem every node mounts, with --ray)")
    p.add_argument("--config", "-c", help="YAML config for model, decode, track and render "
                   "settings; its sources and outputs are ignored")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster: ADDRESS (host:6379, ray://host:10001), or "
                   "without one the cluster in RAY_ADDRESS or started here, else a new local one")
    p.add_argument("--workers", "-w", type=int, help="files processed at once: processes here "
                   "(default: one per core, at most 8; one on a GPU), Ray actors with --ray "
                   "(default: as many as the cluster's CPUs, or GPUs, allow)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="F",
                   help="GPUs each Ray actor holds (1: one engine per GPU; default 0, CPU)")
    p.add_argument("--backend", choices=[b.value for b in Backend],
                   help="inference backend (default auto: the fastest usable on each worker)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (without --ray)")
    p.add_argument("--retry-failed", action="store_true", help="process files that failed in "
                   "an earlier run again (they are skipped otherwise)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)
    p.set_defaults(handler=run)


MAX_DEFAULT_PROCESSES = 8  # each holds its own model, torch and buffers


def _local_layout(workers: int | None, device: str, engines: int) -> tuple[int, int]:
    """(processes, engines per process) on this machine. On a CPU the cores are shared out:
    by default one process per core (at most 8), each with one engine per core it has. On
    two cores that is as fast as one process with two engines (12.8 frames/s both,
    tools/archive_bench.py); with more cores, whole pipelines side by side do not share one
    pipeline's Python stages (decode+track, drawing). On a GPU one process unless told."""
    cores = os.cpu_count() or 1
    if device.startswith("cuda"):
        return max(1, workers or 1), max(1, engines or 1)
    processes = max(1, workers or min(cores, MAX_DEFAULT_PROCESSES))
    return processes, max(1, engines or cores // processes)


def _runner(args: argparse.Namespace, settings: Any, files: int, level: int) -> Any:
    """The Ray runner, or the local process pool (with the backend decided and the model
    checked here, once: a bad model would otherwise break every worker)."""
    from pipeline.config import override

    cfg = settings.config
    if args.ray is not None:
        from pipeline.archive.ray_runner import RayRunner

        return RayRunner(settings, args.ray, args.workers, args.gpus_per_worker,
                         cfg.model.workers or 1, level)
    from engines import choose_backend, open_engine, read_spec
    from pipeline.archive.local import LocalPool

    choice = choose_backend(cfg.model.path, cfg.model.backend, cfg.model.device)
    engine = open_engine(cfg.model.path, choice.backend, choice.device, 1)
    try:
        read_spec(engine, cfg.model.path)
    finally:
        engine.close()
    device = str(choice.device)
    settings = dataclasses.replace(settings, config=override(
        cfg, "model", device=device, backend=choice.backend))
    processes, engines = _local_layout(args.workers, device, cfg.model.workers)
    return LocalPool(settings, min(processes, max(1, files)), engines, level)


def run(args: argparse.Namespace) -> int:
    from pipeline.archive.discover import discover
    from pipeline.archive.job import JobSettings
    from pipeline.archive.layout import clean_temps
    from pipeline.archive.progress import ArchiveProgress
    from pipeline.archive.result import FileResult, FileStatus
    from pipeline.archive.summary import collect, format_summary, pending_files, save_tables
    from pipeline.config import load_config, override
    from pipeline.errors import ConfigError

    cfg = load_config(args.config)
    cfg = override(cfg, "model", path=args.model, device=args.device,
                   backend=Backend(args.backend) if args.backend else None)
    if not cfg.model.path:
        raise ConfigError("archive: no model given (--model or model.path)")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers: expected an int >= 1, got {args.workers}")
    out_dir = Path(args.out).expanduser().resolve()
    files = discover(args.input, exclude=out_dir)
    settings = JobSettings(cfg, out_dir, args.retry_failed)
    todo = pending_files(files, settings)
    runner = _runner(args, settings, len(todo), logging.DEBUG if args.debug else logging.WARNING)
    out_dir.mkdir(parents=True, exist_ok=True)  # once the inputs and the model are known good
    removed = clean_temps(out_dir)
    if removed:
        print(f"archive: removed {removed} half-written file(s) left by an earlier run",
              file=sys.stderr)

    t0 = time.perf_counter()
    results: dict[str, FileResult] = {}
    interrupted = False
    progress = ArchiveProgress(len(todo), runner.frames, enabled=not args.no_progress and bool(todo))
    try:
        for result in (runner.run(todo) if todo else []):
            results[result.path] = result
            progress.file_done(result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
        close = getattr(runner, "close", None)
        if close is not None:
            close()
    wall = time.perf_counter() - t0
    # every execution of this run has ended: what is left half-written is from one that died
    removed = clean_temps(out_dir)
    if removed:
        print(f"archive: removed {removed} half-written file(s) of executions that died",
              file=sys.stderr)
    table = collect(files, settings, results)
    save_tables(table, out_dir)
    print(format_summary(table, {f.rel for f in todo}, wall, out_dir))
    if interrupted:
        print("archive: interrupted; run the same command again to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if any(r.status is FileStatus.FAILED for r in table) else 0
