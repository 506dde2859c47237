"""One archived file: one pipeline, outputs under temporary names, committed when complete.

``process_file`` is what a worker (a pool process or a Ray actor) runs per input. It is
idempotent: a file whose status record says it is done is skipped; otherwise it is
processed from the start, and the outputs and the Parquet part replace whatever an
earlier or concurrent execution left. The status record is written last.

A file that fails for its own reasons (unreadable, truncated, no video stream) is
recorded as failed with the error and not retried by later runs unless asked
(``retry_failed``). A worker that dies while on a file (a crash, a lost node) leaves an
attempts count behind; after ``MAX_ATTEMPTS`` starts the file is recorded as failed
instead of being handed to the next worker forever.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from engines import Engine, choose_backend, open_engine
from pipeline.archive.discover import InputFile
from pipeline.archive.layout import (
    FileOutputs,
    commit,
    execution_token,
    remove_quietly,
    write_atomic,
)
from pipeline.archive.result import FileResult, FileStatus, load_status
from pipeline.archive.tables import detections_from_jsonl, write_parquet
from pipeline.config import Config, ModelConfig
from pipeline.errors import MaskstreamError, SinkError, TruncatedSource
from pipeline.runtime.runner import Pipeline

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class JobSettings:
    """What every file's job needs; picklable (sent to pool processes and Ray actors)."""

    config: Config  # model, decode, track, render; sources and outputs are set per file
    out_dir: Path
    retry_failed: bool = False


class EngineSet:
    """The engines a worker opens once and lends to every file's pipeline."""

    def __init__(self, model: ModelConfig, count: int) -> None:
        choice = choose_backend(model.path, model.backend, model.device)
        self.engines: list[Engine] = []
        try:
            for _ in range(max(1, count)):
                self.engines.append(open_engine(model.path, choice.backend, choice.device,
                                                model.threads))
        except BaseException:
            self.close()
            raise

    def lend(self) -> list[Engine]:
        """Views of the engines whose ``close`` does nothing (the pipeline closes what it
        is given; these stay open for the next file)."""
        return [cast(Engine, _Lent(e)) for e in self.engines]

    def close(self) -> None:
        for e in self.engines:
            e.close()
        self.engines = []


class _Lent:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def close(self) -> None:
        """The owner closes it."""


@dataclass
class _Progress:
    """What the pipeline got through, for the record when it fails part-way."""

    frames: int = 0
    fps: float = 0.0
    reported: int = 0
    reported_at: float = field(default_factory=time.monotonic)


def file_config(base: Config, item: InputFile, video: Path, jsonl: Path) -> Config:
    """``base`` with one source (the file) and the two outputs; no metrics endpoint."""
    return dataclasses.replace(
        base, sources=(str(item.path),), source=dataclasses.replace(base.source, uri=""),
        output=dataclasses.replace(base.output, video=str(video), jsonl=str(jsonl)),
        metrics=dataclasses.replace(base.metrics, port=0))


def is_done(previous: FileResult | None, out: FileOutputs, retry_failed: bool) -> bool:
    """Whether a file with this status record needs no work: ok with every output there,
    or failed (unless failures are to be retried)."""
    if previous is None:
        return False
    if previous.status is FileStatus.OK:
        return out.complete()
    return previous.status is FileStatus.FAILED and not retry_failed


def _bump_attempts(path: Path, delta: int = 1) -> int:
    try:
        n = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        n = 0
    if n + delta <= 0:
        remove_quietly(path)
    else:
        write_atomic(path, f"{n + delta}\n")
    return n + delta


def _run(item: InputFile, cfg: Config, engines: EngineSet | None,
         temps: tuple[Path, Path, Path], progress: _Progress,
         on_frames: Callable[[int], None] | None) -> tuple[int, float, int]:
    """Run the pipeline and write the Parquet part; (frames, duration s, detections)."""
    from pipeline.graph import build_pipeline

    built = build_pipeline(cfg, engines.lend() if engines else None)
    source = built.sources[0]
    progress.fps = source.fps

    def tick(_p: Pipeline) -> None:
        progress.frames = built.progress.items
        now = time.monotonic()
        if on_frames is not None and now - progress.reported_at >= PROGRESS_EVERY_S:
            on_frames(progress.frames - progress.reported)
            progress.reported, progress.reported_at = progress.frames, now

    try:
        report = built.pipeline.run(on_tick=tick)
    finally:
        tick(built.pipeline)
        if on_frames is not None and progress.frames > progress.reported:
            on_frames(progress.frames - progress.reported)
            progress.reported = progress.frames
    frames = report.frames_in
    expected = source.total_frames
    if expected and frames < expected:  # a cut-off file can end without a decoding error
        raise TruncatedSource(f"{item.path}: truncated: {frames} of the {expected} frames its "
                              "header lists could be decoded")
    short = {name: n for name, n in report.frames_out.items() if n != frames}
    if short:
        raise SinkError(f"{item.path}: outputs got {short} of {frames} frames")
    table, extent = detections_from_jsonl(temps[1], item.rel)
    if extent.frames != frames:
        raise SinkError(f"{item.path}: JSONL has {extent.frames} lines for {frames} frames")
    write_parquet(table, temps[2])
    step = 1 / source.fps if source.fps > 0 else 0.0
    duration = extent.last_pts - extent.first_pts + step if frames else 0.0
    return frames, duration, table.num_rows


def _record(result: FileResult, out: FileOutputs) -> FileResult:
    """Store ``result`` as the file's status, unless it is a failure and another execution
    of the same file has already finished it (a duplicate run never undoes a success)."""
    if result.status is FileStatus.FAILED:
        other = load_status(out.status)
        if other is not None and other.status is FileStatus.OK and out.complete():
            return other
    result.save(out.status)
    remove_quietly(out.attempts)
    return result


def process_file(item: InputFile, settings: JobSettings, engines: EngineSet | None = None,
                 on_frames: Callable[[int], None] | None = None) -> FileResult:
    """Archive one file (see the module docstring); never raises for a bad file."""
    out = FileOutputs.of(settings.out_dir, item.stem)
    previous = load_status(out.status)
    if previous is not None and is_done(previous, out, settings.retry_failed):
        return dataclasses.replace(previous, skipped=True)
    host = socket.gethostname()
    attempts = _bump_attempts(out.attempts)
    if attempts > MAX_ATTEMPTS:
        return _record(FileResult(
            item.rel, FileStatus.FAILED, error=f"gave up after {MAX_ATTEMPTS} attempts: the "
            "worker on it died each time (a crash on this file, or lost nodes)",
            attempts=attempts - 1, host=host, finished_at=time.time()), out)
    temps = out.temporary(execution_token())
    cfg = file_config(settings.config, item, temps[0], temps[1])
    progress = _Progress()
    t0 = time.perf_counter()
    error = ""
    try:
        frames, duration, detections = _run(item, cfg, engines, temps, progress, on_frames)
        for temp, final in zip(temps, out.data(), strict=True):
            commit(temp, final)
    except MaskstreamError as exc:
        error = str(exc)
    except OSError as exc:  # e.g. the output disk is full
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug fails this file, with its type; the job goes on
        log.warning("%s: internal error", item.rel, exc_info=exc)
        error = f"internal error: {type(exc).__name__}: {exc}"
    except BaseException:  # Ctrl-C, a worker shutting down: not the file's fault
        _bump_attempts(out.attempts, -1)
        raise
    finally:
        remove_quietly(*temps)
    wall = time.perf_counter() - t0
    if error:
        log.info("%s: failed: %s", item.rel, error)
        result = FileResult(item.rel, FileStatus.FAILED, error=error.splitlines()[0],
                            frames=progress.frames, fps=progress.fps, wall_s=wall,
                            attempts=attempts, host=host, finished_at=time.time())
    else:
        result = FileResult(item.rel, FileStatus.OK, frames=frames, duration_s=duration,
                            fps=progress.fps, detections=detections, wall_s=wall,
                            attempts=attempts, host=host, finished_at=time.time())
    return _record(result, out)
