"""Sources: one URI-based factory (``open_source``) and the file and image-folder readers.

Video files are decoded with PyAV rather than OpenCV: PyAV gives each frame's
presentation time (variable frame rate works), the rotation in the container's display
matrix, and typed FFmpeg errors, so a truncated file is told apart from a clean end.
On this 2-core machine OpenCV decoded the 960×540 fixture at ~410 FPS and PyAV at ~315
FPS single-threaded (``tools/bench.py decode``): about 0.8 ms more per frame, ~1% of a
frame's CPU at the engine-bound rate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from pipeline.config import LiveParams
from pipeline.errors import SourceError
from pipeline.io.damage import DecodeLedger
from pipeline.io.images import read_image
from pipeline.io.live import LiveSource
from pipeline.io.pixels import frame_to_bgr
from pipeline.io.uri import is_live, redact
from pipeline.runtime.stage import Source
from pipeline.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
MAX_BAD_PACKETS = 25  # corrupt packets in a row skipped before the rest of a file is given up


def _rotate(image: np.ndarray, degrees: int) -> np.ndarray:
    """Apply a display-matrix rotation (degrees counter-clockwise, as FFmpeg reports)."""
    d = degrees % 360
    if d == 90:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if d == 180:
        return cv2.rotate(image, cv2.ROTATE_180)
    if d == 270:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    return image


class VideoFileSource(Source):
    """Frames of a video file, in order, with container timestamps. Nothing is dropped.

    A damaged or truncated file is read to its end: what decodes is delivered, and
    ``incomplete`` then says which frames were lost (None while all is well).
    """

    live = False

    def __init__(self, path: str | Path, source_id: str = "src0", threads: int = 1) -> None:
        import av

        self.path = Path(path)
        self.source_id = source_id
        self.name = f"source:{source_id}"
        if not self.path.exists():
            raise SourceError(f"no such file: {self.path}")
        if self.path.is_dir():
            raise SourceError(f"{self.path} is a folder with no images")
        try:
            self._container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise SourceError(f"{self.path}: not a readable video ({_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        if threads != 1:
            self._stream.thread_type = "AUTO"
        self._stream.thread_count = max(0, int(threads))
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(30)
        self.rate = Fraction(rate)
        self.fps = float(rate)
        self.total_frames = int(self._stream.frames) or None
        self.incomplete: str | None = None

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        import av

        s = self._stream
        ledger = DecodeLedger(s.time_base or Fraction(1, 90000), s.start_time or 0, self.rate,
                              self.total_frames)
        seq = 0
        bad_in_a_row = 0
        packets = self._container.demux(s)
        while True:
            try:  # the demuxer itself can fail on a damaged container: the rest is lost
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:
                ledger.refused(_reason(exc))
                ledger.gave_up = True
                break
            if stop.is_set():
                return
            ledger.read(packet.pts if packet.size else None)
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                ledger.refused(_reason(exc))
                bad_in_a_row += 1
                if bad_in_a_row > MAX_BAD_PACKETS:
                    ledger.gave_up = True
                    break
                continue
            bad_in_a_row = 0
            for vf in decoded:
                ledger.delivered(vf.pts)
                image = _rotate(frame_to_bgr(vf), int(vf.rotation or 0))
                pts = float(vf.time) if vf.time is not None else seq / self.fps
                yield Frame(self.source_id, seq, pts, time.monotonic_ns(), image)
                seq += 1
        if seq == 0:
            raise SourceError(f"{self.path}: no decodable video frames")
        self.incomplete = ledger.report(str(self.path))

    def close(self) -> None:
        self._container.close()


class ImageFolderSource(Source):
    """The images of a folder in name order, as frames at ``fps``.

    An image that cannot be used (unreadable, not an image, cut short) is skipped with
    one warning naming it; ``incomplete`` then lists what was skipped (None if nothing).
    """

    live = False

    def __init__(self, path: str | Path, source_id: str = "src0", fps: float = 30.0) -> None:
        self.path = Path(path)
        self.source_id = source_id
        self.name = f"source:{source_id}"
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"{self.path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.fps = fps if fps > 0 else 30.0
        self.rate = Fraction(self.fps).limit_denominator(1001)
        self.total_frames = len(self.files)
        self.incomplete: str | None = None

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        seq = 0
        skipped: list[str] = []
        for f in self.files:
            if stop.is_set():
                return
            image, reason = read_image(f)
            if image is None:
                log.warning("%s: skipped: %s", f, reason)
                skipped.append(f"{f.name} ({reason})")
                continue
            yield Frame(self.source_id, seq, seq / self.fps, time.monotonic_ns(), image)
            seq += 1
        if skipped:
            self.incomplete = (f"{self.path}: {len(skipped)} of {len(self.files)} image(s) "
                               f"skipped: {', '.join(skipped)}; {seq} frame(s) were processed")


def _reason(exc: Exception) -> str:
    """FFmpeg's message without the errno prefix and file name."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip()


def open_source(uri: str, source_id: str = "src0", fps: float = 0.0,
                decode_threads: int = 1, live: LiveParams | None = None) -> Source:
    """A source for ``uri``: a stream or camera, a video file, or a folder of images."""
    if is_live(uri):
        return LiveSource(uri, source_id, live)
    if "://" in uri and not uri.startswith("file://"):
        raise SourceError(f"unsupported source {redact(uri)!r}: expected a file, a folder, "
                          "rtsp://, http(s)://, /dev/videoN, csi://N or gst://PIPELINE")
    path = Path(uri.removeprefix("file://"))
    if path.is_dir():
        return ImageFolderSource(path, source_id, fps or 30.0)
    return VideoFileSource(path, source_id, threads=decode_threads)
