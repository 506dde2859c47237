"""Two progress bars for the archive: files (of a known total) and frames (live, read from
the runner's counter every half second by a small thread)."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from pipeline.archive.result import FileResult, FileStatus

log = logging.getLogger(__name__)

POLL_S = 0.5


class ArchiveProgress:
    def __init__(self, files: int, frames: Callable[[], int], enabled: bool = True) -> None:
        self._frames = frames
        self._files_bar: Any = None
        self._frames_bar: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failed = 0
        if enabled:
            from tqdm import tqdm

            self._files_bar = tqdm(total=files, unit="file", desc="files", file=sys.stderr,
                                   position=0, dynamic_ncols=True, disable=None)
            self._frames_bar = tqdm(unit="frame", desc="frames", file=sys.stderr, position=1,
                                    dynamic_ncols=True, disable=None)
            self._thread = threading.Thread(target=self._poll, name="archive-progress",
                                            daemon=True)
            self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            self._update_frames()

    def _update_frames(self) -> None:
        try:
            n = self._frames()
        except Exception as exc:  # noqa: BLE001 - a progress read never stops the job
            log.debug("progress: cannot read the frame counter: %s", exc)
            return
        if self._frames_bar is not None and n > self._frames_bar.n:
            self._frames_bar.update(n - self._frames_bar.n)

    def file_done(self, result: FileResult) -> None:
        if result.status is FileStatus.FAILED:
            self.failed += 1
        if self._files_bar is not None:
            self._files_bar.update(1)
            if self.failed:
                self._files_bar.set_postfix(failed=self.failed, refresh=False)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(POLL_S * 4)
        self._update_frames()
        for bar in (self._frames_bar, self._files_bar):
            if bar is not None:
                bar.close()
