"""Live sources: RTSP/HTTP/UDP streams (FFmpeg through PyAV), USB and CSI cameras and
GStreamer pipelines (OpenCV), with reconnection and a stall watchdog.

- A read that returns nothing for ``read_timeout`` seconds is a stall: the connection is
  dropped and opened again (PyAV's interrupt-callback timeout, so a stopped server can
  never hang the thread).
- Reconnection backs off exponentially with jitter, capped at ``backoff_max``, and goes on
  forever once the source has delivered a frame: a camera that drops later comes back.
- A source that never connected gives up after ``first_connect_timeout`` with a clear
  error, at once for answers that will not change (404, 401, not a video). FFmpeg's
  "Invalid data" counts only when two attempts in a row get it: a camera that dies in the
  middle of the handshake leaves the same error behind, and it may come back.
- Credentials in the URL never reach logs, errors or the summary (``pipeline.io.uri``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from pipeline.config import LiveParams
from pipeline.errors import BackendUnavailable, SourceError, SourceTimeout
from pipeline.io.link import Backoff, Health
from pipeline.io.pixels import frame_to_bgr
from pipeline.io.uri import redact, scrub
from pipeline.runtime.stage import Source
from pipeline.types import Frame

log = logging.getLogger(__name__)


# what cameras and streaming servers send; FFmpeg also "opens" text as ANSI-art video
STREAM_CODECS = {"h264", "hevc", "mjpeg", "mpeg4", "mpeg2video", "vp8", "vp9", "av1", "rawvideo",
                 "h263", "jpeg2000"}


def _reconnectable() -> tuple[type[BaseException], ...]:
    """What a camera or a network can raise: a reconnect cures it. Anything else is a bug
    and stops the run instead of reconnecting forever. (PyNvVideoCodec raises RuntimeError
    for a stream it cannot demux or decode.)"""
    import av
    import cv2

    return (OSError, av.FFmpegError, cv2.error, RuntimeError)


class _Permanent(SourceError):
    """An answer that retrying will not change (404, 401, not a video). ``sure`` is False
    for FFmpeg's "Invalid data": also what a camera that dies in the middle of the
    handshake leaves behind, so it is only believed when the next attempt says it again."""

    def __init__(self, reason: str, sure: bool = True) -> None:
        super().__init__(reason)
        self.sure = sure


# opens a live stream, returns its frames (any pixel container) and nominal rate
Reader = Callable[[str, LiveParams, float], tuple[Iterator[Any], Fraction]]


def open_stream(url: str, p: LiveParams, open_timeout: float) -> tuple[Any, Any, Fraction]:
    """A PyAV container on ``url`` with the live options and timeouts, its video stream and
    rate; raises ``_Permanent`` for answers retrying will not change."""
    import av

    # probe briefly (FFmpeg's default is 5 s of stream, all of it latency). Not
    # fflags=nobuffer: with it the first frame came 10 s late from gst-rtsp-server here.
    options = {"analyzeduration": "500000", "probesize": "1000000", "flags": "low_delay"}
    if url.lower().startswith("rtsp"):
        options |= {"rtsp_transport": p.transport.value, "max_delay": "500000"}
    try:
        container = av.open(url, options=options, timeout=(open_timeout, p.read_timeout))
    except (av.HTTPNotFoundError, av.HTTPUnauthorizedError, av.HTTPForbiddenError) as exc:
        raise _Permanent(getattr(exc, "strerror", None) or str(exc)) from None
    except av.InvalidDataError as exc:
        raise _Permanent(getattr(exc, "strerror", None) or str(exc), sure=False) from None
    if not container.streams.video:
        container.close()
        raise _Permanent("no video stream")
    stream = container.streams.video[0]
    if stream.codec_context.name not in STREAM_CODECS:
        container.close()
        raise _Permanent(f"not a video stream (FFmpeg reads it as {stream.codec_context.name!r})")
    return container, stream, Fraction(stream.average_rate or stream.guessed_rate or 25)


def _ffmpeg_reader(url: str, p: LiveParams,
                   open_timeout: float) -> tuple[Iterator[np.ndarray], Fraction]:
    container, stream, rate = open_stream(url, p, open_timeout)

    def frames() -> Iterator[np.ndarray]:
        try:
            for vf in container.decode(stream):
                yield frame_to_bgr(vf)
        finally:
            container.close()

    return frames(), rate


def _opencv_reader(target: str | int, api: int, p: LiveParams,
                   open_timeout: float) -> tuple[Iterator[np.ndarray], Fraction]:
    import cv2

    cap = cv2.VideoCapture(target, api, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout * 1000),
                                         cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(p.read_timeout * 1000)])
    if not cap.isOpened():
        cap.release()
        raise SourceError("could not open")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, image = cap.read()
                if not ok:
                    raise SourceError("read failed")
                yield image
        finally:
            cap.release()

    return frames(), Fraction(fps).limit_denominator(1001)


def _gstreamer_pipeline(uri: str) -> str:
    if uri.startswith("csi://"):
        sensor = uri.removeprefix("csi://") or "0"
        return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),format=NV12 ! "
                "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
                "appsink drop=true max-buffers=1 sync=false")
    return uri.removeprefix("gst://")


class LiveSource(Source):
    """Frames from a stream or camera; never ends on its own once it has connected."""

    live = True

    def __init__(self, uri: str, source_id: str = "src0", params: LiveParams | None = None,
                 seed: int | None = None, reader: Reader | None = None) -> None:
        """``reader``: opens the stream instead of the built-in readers (NVDEC, for one)."""
        self.uri = uri
        self._reader = reader
        self.target = redact(uri)
        self.source_id = source_id
        self.name = f"source:{source_id}"
        self.params = params or LiveParams()
        self.health = Health()
        self.rate = Fraction(25)
        self.fps = 25.0
        self._backoff = Backoff(self.params.backoff_initial, self.params.backoff_max, seed)
        # the give-up clock starts now, so model loading counts against it: the command as
        # a whole answers within a bounded time (one full attempt is always made)
        self._created = time.monotonic()
        if uri.startswith(("csi://", "gst://")):
            import cv2

            if "GStreamer:                   YES" not in cv2.getBuildInformation():
                raise BackendUnavailable(
                    f"{uri.split('://')[0]}:// needs OpenCV built with GStreamer (JetPack's "
                    "python3-opencv has it; PyPI's opencv-python does not)")

    def __str__(self) -> str:
        return redact(self.uri)

    def _open(self, open_timeout: float) -> tuple[Iterator[np.ndarray], Fraction]:
        import cv2

        uri, p = self.uri, self.params
        if self._reader is not None:
            return self._reader(uri, p, open_timeout)
        if uri.startswith(("csi://", "gst://")):
            return _opencv_reader(_gstreamer_pipeline(uri), cv2.CAP_GSTREAMER, p, open_timeout)
        if uri.startswith(("/dev/video", "v4l2://")):
            return _opencv_reader(uri.removeprefix("v4l2://"), cv2.CAP_V4L2, p, open_timeout)
        return _ffmpeg_reader(uri, p, open_timeout)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        p, h = self.params, self.health
        started = self._created
        seq = 0
        doubt = ""  # an unconfirmed permanent answer of the attempt just made
        while not stop.is_set():
            previous, doubt = doubt, ""
            try:
                open_timeout = p.open_timeout
                if h.frames == 0:  # never connected: stay inside the give-up time
                    left = started + p.first_connect_timeout - time.monotonic()
                    open_timeout = max(1.0, min(open_timeout, left))
                reader, self.rate = self._open(open_timeout)
                self.fps = float(self.rate)
                with h.lock:
                    h.connected, h.connects = True, h.connects + 1
                log.info("%s: connected", self)
                for image in reader:
                    now = time.monotonic()
                    with h.lock:
                        h.frames += 1
                        h.last_frame = now
                    yield Frame(self.source_id, seq, time.time(), time.monotonic_ns(), image)
                    seq += 1
                    self._backoff.reset()
                    if stop.is_set():
                        return
                reason = "stream ended"
            except _Permanent as exc:
                reason = scrub(str(exc), self.uri)
                if h.frames == 0 and (exc.sure or reason == previous):
                    raise SourceError(f"{self}: {reason}") from None
                if not exc.sure:  # said twice in a row before the first frame: believed
                    doubt = reason
            except _reconnectable() as exc:  # a camera or network failure: reconnect
                reason = scrub(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__,
                               self.uri)
            with h.lock:
                h.connected = False
                h.last_error = reason
            if h.frames == 0 and time.monotonic() - started > p.first_connect_timeout:
                raise SourceTimeout(f"{self}: cannot connect ({reason}) after "
                                    f"{p.first_connect_timeout:.0f} s")
            delay = self._backoff.next_delay()
            if h.frames == 0:  # never connected: do not sleep past the give-up time
                delay = min(delay, max(0.0, started + p.first_connect_timeout - time.monotonic()))
            # before the first frame the final error says it all; later, an outage is news
            log.log(logging.WARNING if h.frames else logging.INFO,
                    "%s: %s; reconnecting in %.1f s", self, reason, delay)
            if stop.wait(delay):
                return
            with h.lock:
                h.reconnects += 1
