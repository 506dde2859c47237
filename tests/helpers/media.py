"""Small generated videos, cuts of real ones, ffprobe, and decoded frames."""

from __future__ import annotations

import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np


def pattern(i: int, w: int, h: int) -> np.ndarray:
    """A frame that tells its index and orientation apart: gradient, a block that moves."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[:, :, 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    x = (i * 7) % max(1, w - 16)
    img[4:20, x:x + 16] = (255, 255, 255)
    return img


def make_video(path: Path, n: int = 30, w: int = 160, h: int = 96, rate: Fraction = Fraction(25),
               pts: list[int] | None = None, time_base: Fraction | None = None,
               faststart: bool = False, lossless: bool = True) -> Path:
    """Write an H.264 mp4 of ``n`` pattern frames; ``pts`` in ``time_base`` units for VFR;
    ``faststart`` puts the index first, as cameras and web videos do."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "qp": "0"} if lossless else {"preset": "ultrafast",
                                                                          "crf": "26"}
        if time_base is not None:
            s.time_base = time_base
        for i in range(n):
            f = av.VideoFrame.from_ndarray(pattern(i, w, h), format="bgr24")
            if pts is not None:
                f.pts = pts[i]
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def clip(src: Path, dst: Path, start: int = 0, frames: int = 30,
         size: tuple[int, int] | None = None, t0: float = 0.0) -> Path:
    """Frames ``[start, start + frames)`` of ``src`` re-encoded (H.264) to ``dst``, an mp4
    or an MPEG-TS segment by its suffix, scaled to ``size`` (w, h) if given; its first
    frame's timestamp is ``t0`` seconds (each segment of a recorder starts again near 0)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        rate = Fraction(vin.average_rate or 25)
        s = out.add_stream("libx264", rate=rate)
        s.codec_context.time_base = 1 / rate
        s.width, s.height = size or (vin.codec_context.width, vin.codec_context.height)
        s.pix_fmt, s.options = "yuv420p", {"preset": "ultrafast", "crf": "20"}
        for i, f in enumerate(inp.decode(vin)):
            if i >= start + frames:
                break
            if i >= start:
                f = f.reformat(width=s.width, height=s.height, format="yuv420p")
                f.pts = i - start + round(t0 * rate)
                f.time_base = s.codec_context.time_base
                for p in s.encode(f):
                    out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return dst


def ffprobe(path: Path) -> dict[str, str]:
    """codec, frame count (decoded), and frame rates of the first video stream."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,nb_read_frames,r_frame_rate,avg_frame_rate", "-of",
         "default=noprint_wrappers=1", str(path)],
        capture_output=True, text=True, timeout=60, check=True).stdout
    return dict(line.split("=", 1) for line in out.strip().splitlines())

def sample_frames(path: Path, every: int, limit: int) -> list:
    """Every ``every``-th decoded frame of a video, at most ``limit`` of them."""
    from pipeline.io.sources import VideoFileSource

    src = VideoFileSource(path)
    out = []
    try:
        for f in src.frames(threading.Event()):
            if f.seq % every == 0:
                out.append(f)
            if len(out) == limit:
                break
    finally:
        src.close()
    return out
