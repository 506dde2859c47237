"""What an archive run did, as files.parquet and as the lines printed at the end.

The status records under ``DIR/.archive/`` are the truth (each worker writes its file's
record last); ``files.parquet`` is rebuilt from them after every run, so it also covers
files finished by earlier, interrupted runs.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.archive.discover import InputFile
from pipeline.archive.job import JobSettings, is_done
from pipeline.archive.layout import DETECTIONS_DIR, FILES_TABLE, FileOutputs
from pipeline.archive.result import FileResult, FileStatus, load_status
from pipeline.archive.tables import write_files_table

MAX_ERRORS_SHOWN = 20


def pending_files(files: list[InputFile], settings: JobSettings) -> list[InputFile]:
    """The files that still need work."""
    todo = []
    for f in files:
        out = FileOutputs.of(settings.out_dir, f.stem)
        if not is_done(load_status(out.status), out, settings.retry_failed):
            todo.append(f)
    return todo


def collect(files: list[InputFile], settings: JobSettings,
            results: dict[str, FileResult]) -> list[FileResult]:
    """One result per input, in input order: its status record, else what a worker
    returned (a record a worker could not store where the driver sees it), else pending."""
    table = []
    for f in files:
        record = load_status(FileOutputs.of(settings.out_dir, f.stem).status)
        returned = results.get(f.rel)
        if record is not None:
            table.append(record)
        elif returned is not None:
            table.append(returned)
        else:
            table.append(FileResult(f.rel, FileStatus.PENDING))
    return table


def save_tables(table: list[FileResult], out_dir: Path) -> None:
    write_files_table(table, out_dir / FILES_TABLE)


def format_summary(table: list[FileResult], todo: set[str], wall_s: float,
                   out_dir: Path) -> str:
    """``table``: every input's result; ``todo``: the relative names this run set out to
    process (the others were done before it)."""
    ok = [r for r in table if r.status is FileStatus.OK]
    failed = [r for r in table if r.status is FileStatus.FAILED]
    pending = [r for r in table if r.status is FileStatus.PENDING]
    worked = [r for r in table if r.path in todo and r.status is not FileStatus.PENDING]
    frames = sum(r.frames for r in worked if r.status is FileStatus.OK)
    detections = sum(r.detections for r in worked if r.status is FileStatus.OK)
    rate = frames / wall_s if wall_s > 0 else 0.0
    lines = [
        f"archive: {len(table)} file(s): {len(ok)} ok, {len(failed)} failed"
        + (f", {len(pending)} not done" if pending else "")
        + f"; this run processed {len(worked)}, skipped {len(table) - len(todo)} done before",
        f"this run: {frames} frames, {detections} detections in {wall_s:.1f} s "
        f"({rate:.1f} frames/s)",
    ]
    lines += [f"failed: {r.path}: {r.error}" for r in failed[:MAX_ERRORS_SHOWN]]
    if len(failed) > MAX_ERRORS_SHOWN:
        lines.append(f"… and {len(failed) - MAX_ERRORS_SHOWN} more (see files.parquet)")
    lines.append(f"wrote {out_dir / FILES_TABLE} and {out_dir / DETECTIONS_DIR}/")
    return "\n".join(lines)
