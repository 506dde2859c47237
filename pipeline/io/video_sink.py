"""Video output through PyAV: files (mp4, mkv, …) and RTSP publishing.

H.264 (libx264, ``ultrafast``) where the installed FFmpeg has it, else MPEG-4 Part 2.
Frame timing follows the source: each frame's pts is its source time on a ``1/rate`` time
base, so a file has the input's frame count and frame rate.

When writing fails:
- a file (a full disk, a read-only folder) is an error naming it; what was written is
  removed, since an mp4 cut short has no index and plays nowhere;
- ``rtsp://`` publishes (RTSP ANNOUNCE/RECORD over TCP) to a server that accepts it, such as
  MediaMTX, tuned for latency (``zerolatency``, a key frame every second). If the first
  connection fails that is an error naming the URL; once connected, an outage reconnects
  with backoff while frames are dropped and counted (``health``), and never ends the run.
"""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from pipeline.errors import SinkError
from pipeline.io.link import Backoff, Health
from pipeline.io.pixels import bgr_to_frame
from pipeline.io.uri import redact, scrub
from pipeline.runtime.stage import Sink
from pipeline.types import Frame

log = logging.getLogger(__name__)
OPEN_TIMEOUT_S = 5.0
# what writing a video can raise: the system's errors (a full disk, a broken pipe) and
# FFmpeg's (a refused or dropped connection, a muxer error)
WRITE_ERRORS = (OSError, av.FFmpegError)


def pick_codec(preferred: str = "auto") -> str:
    if preferred != "auto":
        if preferred not in av.codecs_available:
            raise SinkError(f"video codec {preferred!r} is not in this FFmpeg build")
        return preferred
    for name in ("libx264", "libopenh264", "h264_nvenc", "mpeg4"):
        if name in av.codecs_available:
            return name
    raise SinkError("no usable video encoder in this FFmpeg build (tried libx264, mpeg4)")


def _reason(exc: BaseException, target: str) -> str:
    return scrub(str(getattr(exc, "strerror", None) or exc or type(exc).__name__), target)


class _Encoder:
    """One open container with one video stream; frames in, packets muxed."""

    def __init__(self, target: str, push: bool, codec: str, rate: Fraction, w: int,
                 h: int) -> None:
        if push:
            self.container: Any = av.open(target, mode="w", format="rtsp",
                                          options={"rtsp_transport": "tcp"},
                                          timeout=OPEN_TIMEOUT_S)
        else:
            self.container = av.open(target, mode="w")
        stream = self.container.add_stream(codec, rate=rate)
        stream.width, stream.height = w - w % 2, h - h % 2  # yuv420p needs even sizes
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / rate
        if codec == "libx264":
            # one encoder thread: the encoder has a stage thread of its own already
            stream.options = {"preset": "ultrafast", "crf": "23", "threads": "1"}
            if push:
                stream.options |= {"tune": "zerolatency"}
                stream.codec_context.gop_size = max(1, round(rate))
        elif codec == "mpeg4":
            stream.options = {"qscale": "4"}
        self.stream = stream

    def encode(self, image: np.ndarray, pts: int) -> None:
        sw, sh = self.stream.width, self.stream.height
        if (sw, sh) != image.shape[1::-1]:
            image = np.ascontiguousarray(image[:sh, :sw])
        vf = bgr_to_frame(image)
        vf.pts = pts
        for packet in self.stream.encode(vf):
            self.container.mux(packet)

    def finish(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        finally:
            self.container.close()

    def abandon(self) -> None:
        """Close without flushing (the connection or the disk is gone)."""
        try:
            self.container.close()
        except Exception:
            log.debug("closing a failed output", exc_info=True)


class VideoSink(Sink):
    """Writes the rendered frames; opened on the first frame (its size fixes the output's)."""

    def __init__(self, target: str | Path, rate: Fraction, codec: str = "auto") -> None:
        self.uri = str(target)
        self.push = self.uri.startswith("rtsp://")
        self.network = self.push
        self.target = redact(self.uri)
        self._link = Health()
        self.health = self._link if self.push else None  # the summary shows it for RTSP
        if self.push:
            self.name = f"sink:{self.target}"
        else:
            self.path = Path(target)
            self.name = f"sink:{self.path.name}"
            if not self.path.parent.exists():
                raise SinkError(f"output folder does not exist: {self.path.parent}")
        self.rate = Fraction(rate).limit_denominator(1001) if rate else Fraction(30)
        self.codec = pick_codec(codec)
        self._encoder: _Encoder | None = None
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None
        self._last_pts = -1
        self._retry_at = 0.0
        self._backoff = Backoff(0.5, 10.0)
        self.frames_written = 0

    @property
    def dropped(self) -> int:
        return self._link.dropped

    def write(self, frame: Frame) -> None:
        image = frame.rendered if frame.rendered is not None else frame.image
        h, w = image.shape[:2]
        if self._size is None:
            self._size = (w, h)
        if (w, h) != self._size:
            import cv2

            image = cv2.resize(image, self._size)
        if self._t0 is None:
            self._t0 = frame.pts
        pts = max(self._last_pts + 1, round((frame.pts - self._t0) * self.rate))
        self._last_pts = pts
        if self.push:
            self._publish(image, pts, self._size)
            return
        try:
            if self._encoder is None:
                self._encoder = _Encoder(self.uri, False, self.codec, self.rate, *self._size)
            self._encoder.encode(image, pts)
        except WRITE_ERRORS as exc:
            self._discard()
            raise SinkError(f"cannot write {self.target}: {_reason(exc, self.uri)}"
                            f"{self._removed()}") from None
        self.frames_written += 1

    def _publish(self, image: np.ndarray, pts: int, size: tuple[int, int]) -> None:
        """Send a frame to the RTSP server, reconnecting after an outage (frames meanwhile
        dropped and counted). A first connection that fails is an error: RTSP's handshake
        happens on the first frame, so "connected" means a frame went out."""
        health = self._link
        if self._encoder is None and time.monotonic() < self._retry_at:
            with health.lock:
                health.dropped += 1
            return
        try:
            if self._encoder is None:
                self._encoder = _Encoder(self.uri, True, self.codec, self.rate, *size)
            self._encoder.encode(image, pts)
        except WRITE_ERRORS as exc:
            reason = _reason(exc, self.uri)
            if self._encoder is not None:
                self._encoder.abandon()
                self._encoder = None
            if not health.frames:
                raise SinkError(f"cannot write {self.target}: {reason}") from None
            self._outage(reason)  # the server went away: reconnect later
            return
        with health.lock:
            if not health.connected:
                health.connected = True
                health.connects += 1
                health.reconnects += health.connects > 1
                log.info("%s: publishing", self.target)
                self._backoff.reset()
            health.frames += 1
            health.last_frame = time.monotonic()
        self.frames_written += 1

    def _outage(self, reason: str) -> None:
        delay = self._backoff.next_delay()
        self._retry_at = time.monotonic() + delay
        health = self._link
        with health.lock:
            was = health.connected
            health.connected = False
            health.last_error = reason
            health.dropped += 1
        if was:
            log.warning("%s: %s; frames are dropped until it is back (retrying in %.1f s)",
                        self.target, reason, delay)

    def _discard(self) -> None:
        if self._encoder is not None:
            self._encoder.abandon()
            self._encoder = None

    def _removed(self) -> str:
        """Remove a file cut short (no index: it would play nowhere); say so."""
        if self.push or not self.path.exists():
            return ""
        try:
            self.path.unlink()
        except OSError:
            return f" (the incomplete {self.path.name} could not be removed)"
        return f" (the incomplete {self.path.name} was removed)"

    def close(self) -> None:
        if self._encoder is None:
            return
        encoder, self._encoder = self._encoder, None
        try:
            encoder.finish()
        except WRITE_ERRORS as exc:
            if self.push:  # the stream just ends; nothing to keep
                log.debug("closing %s", self.target, exc_info=True)
                return
            raise SinkError(f"cannot write {self.target}: {_reason(exc, self.uri)}"
                            f"{self._removed()}") from None
        log.info("wrote %d frames to %s", self.frames_written, self.target)
