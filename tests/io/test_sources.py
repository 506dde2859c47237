"""Sources on generated videos: timestamps (also variable frame rate), rotation, folders, errors."""

from __future__ import annotations

import shutil
import subprocess
import threading
from fractions import Fraction

import cv2
import numpy as np
import pytest

from pipeline.errors import SourceError
from pipeline.io.sources import VideoFileSource, open_source
from tests.helpers import make_video, pattern


def read_all(src):
    try:
        return list(src.frames(threading.Event()))
    finally:
        src.close()


def test_constant_rate_file(tmp_path) -> None:
    path = make_video(tmp_path / "c.mp4", n=30, rate=Fraction(25))
    src = open_source(str(path))
    assert (src.total_frames, src.fps, src.live) == (30, 25.0, False)
    frames = read_all(src)
    assert [f.seq for f in frames] == list(range(30))
    np.testing.assert_allclose([f.pts for f in frames], np.arange(30) / 25, atol=1e-6)
    # lossless encode: pixels survive up to colour conversion rounding
    assert np.abs(frames[7].image.astype(int) - pattern(7, 160, 96)).mean() < 3


def test_variable_frame_rate_keeps_container_timestamps(tmp_path) -> None:
    pts = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21]  # in 1/30 s
    path = make_video(tmp_path / "v.mp4", n=len(pts), rate=Fraction(30), pts=pts,
                      time_base=Fraction(1, 30))
    frames = read_all(open_source(str(path)))
    assert len(frames) == len(pts)
    np.testing.assert_allclose([f.pts for f in frames], np.array(pts) / 30, atol=1e-6)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotation_metadata_matches_ffmpeg_autorotate(tmp_path, rotate: int) -> None:
    plain = make_video(tmp_path / "p.mp4", n=3, w=64, h=32)
    rotated = tmp_path / "r.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(plain), "-c", "copy", "-metadata:s:v",
                    f"rotate={rotate}", str(rotated)], check=True, timeout=60)
    ours = read_all(VideoFileSource(rotated))[0].image
    # ffmpeg's own autorotation is the reference
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(rotated), "-frames:v", "1", "-f",
                          "rawvideo", "-pix_fmt", "bgr24", "-"], capture_output=True,
                         check=True, timeout=60).stdout
    h, w = (64, 32) if rotate in (90, 270) else (32, 64)
    ref = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
    assert ours.shape == ref.shape
    assert np.abs(ours.astype(int) - ref).mean() < 3


def test_image_folder(tmp_path) -> None:
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), pattern(i, 40, 30))
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(str(tmp_path), fps=10)
    frames = read_all(src)
    assert [f.seq for f in frames] == list(range(5)) and src.total_frames == 5
    np.testing.assert_allclose([f.pts for f in frames], [0, 0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(frames[3].image, pattern(3, 40, 30))


def test_truncated_file_delivers_what_decodes_then_says_so(tmp_path) -> None:
    path = make_video(tmp_path / "t.mp4", n=60, w=320, h=240, faststart=True)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    src = VideoFileSource(cut)
    frames = read_all(src)
    assert 5 < len(frames) < 60
    assert [f.seq for f in frames] == list(range(len(frames)))
    n = len(frames)
    assert src.incomplete is not None and src.incomplete.startswith(
        f"{cut}: truncated: frames {n}-59 ({n / 25:.2f}-2.36 s) lost ({60 - n} frame(s); ")
    assert src.incomplete.endswith(f"the file ends early); {n} of 60 frame(s) were processed")


def test_index_at_the_end_and_cut_off_is_unreadable(tmp_path) -> None:
    data = make_video(tmp_path / "t.mp4", n=30).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="not a readable video"):
        open_source(str(tmp_path / "cut.mp4"))


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.mp4", "no such file"),
    (lambda p: (p / "text.mp4").write_text("hello") and p / "text.mp4", "not a readable video"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "folder holds no images"),
])
def test_bad_sources(tmp_path, make, message) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(str(make(tmp_path)))


def test_stop_event_ends_a_file_early(tmp_path) -> None:
    stop = threading.Event()
    src = VideoFileSource(make_video(tmp_path / "s.mp4", n=30))
    seen = 0
    for _ in src.frames(stop):
        seen += 1
        if seen == 4:
            stop.set()
    src.close()
    assert seen == 4
