"""Video output through PyAV: files (mp4, mkv, …) and RTSP publishing.

H.264 (libx264, ``ultrafast``) where the installed FFmpeg has it, else MPEG-4 Part 2.
Frame timing follows the source: each frame's pts is its source time on a
``1/rate`` time base, so a file has the input's frame count and frame rate.
``rtsp://`` outputs publish (RTSP ANNOUNCE/RECORD, over TCP) to a server that accepts
it, such as MediaMTX, tuned for latency (``zerolatency``, a key frame every second so
viewers can join at any time).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import SinkError
from pipeline.io.pixels import bgr_to_frame
from pipeline.io.uri import redact, scrub
from pipeline.runtime.stage import Sink
from pipeline.types import Frame

log = logging.getLogger(__name__)


def pick_codec(preferred: str = "auto") -> str:
    import av

    if preferred != "auto":
        if preferred not in av.codecs_available:
            raise SinkError(f"video codec {preferred!r} is not in this FFmpeg build")
        return preferred
    for name in ("libx264", "libopenh264", "h264_nvenc", "mpeg4"):
        if name in av.codecs_available:
            return name
    raise SinkError("no usable video encoder in this FFmpeg build (tried libx264, mpeg4)")


class VideoSink(Sink):
    """Writes the rendered frames; opened on the first frame (its size fixes the output's)."""

    def __init__(self, target: str | Path, rate: Fraction, codec: str = "auto") -> None:
        self.target = str(target)
        self.push = self.target.startswith("rtsp://")
        if self.push:
            self.name = f"sink:{redact(self.target)}"
        else:
            self.path = Path(target)
            self.name = f"sink:{self.path.name}"
            if not self.path.parent.exists():
                raise SinkError(f"output folder does not exist: {self.path.parent}")
        self.rate = Fraction(rate).limit_denominator(1001) if rate else Fraction(30)
        self.codec = pick_codec(codec)
        self._container: Any = None  # av.container.OutputContainer once open
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None
        self._last_pts = -1
        self.frames_written = 0

    def _open(self, w: int, h: int) -> None:
        import av

        try:
            if self.push:
                self._container = av.open(self.target, mode="w", format="rtsp",
                                          options={"rtsp_transport": "tcp"}, timeout=5.0)
            else:
                self._container = av.open(self.target, mode="w")
        except (av.FFmpegError, OSError) as exc:
            reason = scrub(getattr(exc, "strerror", None) or str(exc), self.target)
            raise SinkError(f"cannot write {redact(self.target)}: {reason}") from None
        stream = self._container.add_stream(self.codec, rate=self.rate)
        stream.width, stream.height = w - w % 2, h - h % 2  # yuv420p needs even sizes
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / self.rate
        if self.codec == "libx264":
            # one encoder thread: the encoder has a stage thread of its own already
            stream.options = {"preset": "ultrafast", "crf": "23", "threads": "1"}
            if self.push:
                stream.options |= {"tune": "zerolatency"}
                stream.codec_context.gop_size = max(1, round(self.rate))
        elif self.codec == "mpeg4":
            stream.options = {"qscale": "4"}
        self._stream = stream
        self._size = (w, h)

    def write(self, frame: Frame) -> None:

        image = frame.rendered if frame.rendered is not None else frame.image
        h, w = image.shape[:2]
        if self._container is None:
            self._open(w, h)
        if (w, h) != self._size:
            import cv2

            image = cv2.resize(image, self._size)
        sw, sh = self._stream.width, self._stream.height
        if (sw, sh) != image.shape[1::-1]:
            image = np.ascontiguousarray(image[:sh, :sw])
        if self._t0 is None:
            self._t0 = frame.pts
        pts = max(self._last_pts + 1, round((frame.pts - self._t0) * self.rate))
        self._last_pts = pts
        vf = bgr_to_frame(image)
        vf.pts = pts
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
        log.info("wrote %d frames to %s", self.frames_written, redact(self.target))
