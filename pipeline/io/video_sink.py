"""Video output through PyAV: files (mp4, mkv, …) and RTSP publishing.

H.264 (libx264, ``ultrafast``) where the installed FFmpeg has it, else MPEG-4 Part 2; on a
GPU with an NVENC encoder and PyNvVideoCodec, files are encoded there (:mod:`pipeline.io.
nvenc`; codec ``auto`` falls back to libx264 with one log line where the GPU has none, as
on A100/H100/H200 and Jetson Orin Nano). libx264 gets one thread below 1080p, where the
cores belong to inference, and up to four from 1080p on (:func:`x264_threads`): one core
encodes 1080p at ~75-100 FPS (measured on the 2-core machine), which would cap a GPU
pipeline. Frame timing follows the source: each frame's pts is its source time on a ``1/rate`` time
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
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from pipeline.errors import BackendUnavailable, SinkError
from pipeline.io.link import Backoff, Health
from pipeline.io.nvenc import NvencEncoder, nvenc_unavailable_reason
from pipeline.io.pixels import bgr_to_frame
from pipeline.io.uri import redact, scrub
from pipeline.runtime.stage import Sink
from pipeline.types import Frame

log = logging.getLogger(__name__)
OPEN_TIMEOUT_S = 5.0
# what writing a video can raise: the system's errors (a full disk, a broken pipe) and
# FFmpeg's (a refused or dropped connection, a muxer error)
WRITE_ERRORS = (OSError, av.FFmpegError)


def x264_threads(w: int, h: int) -> int:
    """libx264 threads for a frame size: 1 below 1080p, ``min(cores, 4)`` from 1080p on."""
    if w * h < 1920 * 1080 * 3 // 4:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


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
            threads = x264_threads(w, h)
            stream.options = {"preset": "ultrafast", "crf": "23", "threads": str(threads)}
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
        self.requested = codec
        if codec == "nvenc":
            reason = "RTSP outputs use libx264" if self.push else nvenc_unavailable_reason()
            if reason is not None:
                raise SinkError(f"video codec nvenc: {reason}")
        # NVENC where it may exist (files); libx264 (or what FFmpeg has) otherwise
        self.nvenc = codec == "nvenc" or (codec == "auto" and not self.push
                                          and nvenc_unavailable_reason() is None)
        self.codec = pick_codec("auto" if codec == "nvenc" else codec)
        self._encoder: _Encoder | NvencEncoder | None = None
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
        image = frame.rendered_pixels()
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
                self._encoder = self._open_file(*self._size)
            self._encoder.encode(image, pts)
        except WRITE_ERRORS as exc:
            self._discard()
            raise SinkError(f"cannot write {self.target}: {_reason(exc, self.uri)}"
                            f"{self._removed()}") from None
        self.frames_written += 1

    def _open_file(self, w: int, h: int) -> _Encoder | NvencEncoder:
        if self.nvenc:
            try:
                encoder = NvencEncoder(self.uri, self.rate, w, h)
            except BackendUnavailable as exc:
                if self.requested == "nvenc":
                    raise SinkError(f"cannot write {self.target}: {exc}") from None
                log.info("%s: %s; encoding with %s", self.target, exc, self.codec)
                self.nvenc = False
            else:
                self.codec = "nvenc"
                return encoder
        return _Encoder(self.uri, False, self.codec, self.rate, w, h)

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
