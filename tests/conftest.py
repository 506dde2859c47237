"""Shared test helpers: the fixture folder, small generated videos, running the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("MASKSTREAM_FIXTURES", ROOT.parent / "shared" / "fixtures"))
VIDEOS = FIXTURES / "videos"
MODELS = FIXTURES / "models"
UDACITY = VIDEOS / "udacity_solidWhiteRight.mp4"
YOLO_INT8 = MODELS / "yolov8n-seg_int8.onnx"
TWINLITE = MODELS / "twinlitenet_best.onnx"

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"real fixtures not found at {FIXTURES} (they sit beside "
    "the project in CI; set MASKSTREAM_FIXTURES to use another folder)")


def fixture_videos() -> list[Path]:
    return sorted(VIDEOS.glob("*.mp4")) if VIDEOS.is_dir() else []


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


def ffprobe(path: Path) -> dict[str, str]:
    """codec, frame count (decoded), and frame rates of the first video stream."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,nb_read_frames,r_frame_rate,avg_frame_rate", "-of",
         "default=noprint_wrappers=1", str(path)],
        capture_output=True, text=True, timeout=60, check=True).stdout
    return dict(line.split("=", 1) for line in out.strip().splitlines())


def run_cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in a fresh process, killed if it overruns ``timeout``."""
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kw)


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def interrupt(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
