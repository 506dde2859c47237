"""The archive on this machine: a pool of worker processes, one pipeline per file.

Each process opens its engines once and runs one file at a time; files are handed out
as processes free up. Processes are started with ``spawn`` (no inherited threads or
sessions). A process that dies (a crash in native code) breaks the pool: a new pool is
started for the files not yet done, and a file that keeps killing its worker is given up
on after ``job.MAX_ATTEMPTS`` starts (its attempts count lives beside its outputs).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pipeline.archive.discover import InputFile
from pipeline.archive.job import MAX_ATTEMPTS, EngineSet, JobSettings, process_file
from pipeline.archive.result import FileResult
from pipeline.errors import EngineError

log = logging.getLogger(__name__)


class _Worker:
    """A pool process's state: its settings, engines and the shared frame counter."""

    def __init__(self, settings: JobSettings, engines: int, counter: Any) -> None:
        self.settings = settings
        self.engines = EngineSet(settings.config.model, engines)
        self.counter = counter

    def add_frames(self, n: int) -> None:
        with self.counter.get_lock():
            self.counter.value += n


# Set once per pool process by _init: a process-pool worker has no other place to keep what
# it opened for the files that follow. Closed when the process exits.
_worker: _Worker | None = None


def _init(settings: JobSettings, engines: int, counter: Any, log_level: int) -> None:
    global _worker
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    _worker = _Worker(settings, engines, counter)


def _work(item: InputFile) -> FileResult:
    if _worker is None:
        raise EngineError("archive worker process used before its initializer ran")
    return process_file(item, _worker.settings, _worker.engines, _worker.add_frames)


class LocalPool:
    """``processes`` worker processes with ``engines`` engine instances each."""

    def __init__(self, settings: JobSettings, processes: int, engines: int,
                 log_level: int = logging.WARNING) -> None:
        self.settings, self.processes, self.engines = settings, max(1, processes), engines
        self.log_level = log_level
        self._ctx = mp.get_context("spawn")
        self._frames = self._ctx.Value("q", 0)

    def frames(self) -> int:
        """Frames finished so far, across processes (for the progress bar)."""
        return int(self._frames.value)

    def run(self, todo: list[InputFile]) -> Iterator[FileResult]:
        """Results as files finish, in no particular order."""
        pending = list(todo)
        rounds = 0
        while pending:
            rounds += 1
            if rounds > MAX_ATTEMPTS + len(todo):  # cannot happen unless attempts are lost
                raise EngineError(f"archive worker processes keep dying; {len(pending)} "
                                  "file(s) left undone")
            retry: list[InputFile] = []
            yield from self._round(pending, retry)
            if retry:
                log.warning("a worker process died; restarting the pool for %d file(s)",
                            len(retry))
            pending = retry

    def _round(self, items: list[InputFile], retry: list[InputFile]) -> Iterator[FileResult]:
        pool = ProcessPoolExecutor(
            min(self.processes, len(items)), mp_context=self._ctx, initializer=_init,
            initargs=(self.settings, self.engines, self._frames, self.log_level))
        try:
            futures: dict[Future[FileResult], InputFile] = {
                pool.submit(_work, item): item for item in items}
            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    retry.append(futures[fut])
                    continue
                yield result
        finally:  # also on Ctrl-C or an error: nothing queued starts afterwards
            pool.shutdown(wait=True, cancel_futures=True)
