"""Damaged and truncated video files: the frames lost are named (checked against what the
ffprobe command decodes of the same file), the rest goes through, the summary is printed."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading

import numpy as np
import pytest

from pipeline.io.sources import VideoFileSource
from tests.helpers import UDACITY, clip, fixed_yolo_model, needs_fixtures, run_cli

needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")


def packets(path) -> list[tuple[int, int, int]]:
    """(frame number in presentation order, byte position, size) of each video packet."""
    import av

    with av.open(str(path)) as c:
        found = [(p.pts, p.pos, p.size) for p in c.demux(video=0) if p.size]
    order = {pts: i for i, pts in enumerate(sorted(p for p, _, _ in found))}
    return [(order[pts], pos, size) for pts, pos, size in found]


def damage(path, dst, frame: int, n_bytes: int = 40_000, seed: int = 0):
    """A copy of ``path`` with ``n_bytes`` random bytes written inside ``frame``'s packet."""
    at = next(pos for i, pos, _ in packets(path) if i == frame) + 100
    data = bytearray(path.read_bytes())
    data[at:at + n_bytes] = np.random.default_rng(seed).integers(0, 256, n_bytes, np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def ffprobe_lost(original, damaged) -> list[int]:
    """Frame numbers of ``original`` that ffprobe cannot decode from ``damaged``."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=pts", "-of", "csv=p=0", str(damaged)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    decoded = {int(x) for x in out.replace(",", " ").split()}
    import av

    with av.open(str(original)) as c:
        every = sorted(p.pts for p in c.demux(video=0) if p.size)
    return [i for i, pts in enumerate(every) if pts not in decoded]


def ranges(frames: list[int]) -> str:
    """[75, 76, 77, 90] → 'frames 75-77 (…), frame 90 (…)' without the times."""
    out: list[list[int]] = []
    for f in frames:
        if out and out[-1][1] == f - 1:
            out[-1][1] = f
        else:
            out.append([f, f])
    return ", ".join(f"frame {a}" if a == b else f"frames {a}-{b}" for a, b in out)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """150 frames of the dashcam clip, 25 FPS."""
    return clip(UDACITY, tmp_path_factory.mktemp("damage") / "clip.mp4", 0, 150)


@needs_fixtures
@needs_ffprobe
@pytest.mark.parametrize("frame", [30, 75, 120])
def test_damage_in_the_middle_names_the_frames_lost(tmp_path, original, frame) -> None:
    bad = damage(original, tmp_path / "bad.mp4", frame, seed=frame)
    lost = ffprobe_lost(original, bad)
    assert lost and lost[0] == frame  # the reference sees the damage where it was made
    src = VideoFileSource(bad)
    try:
        frames = list(src.frames(threading.Event()))
    finally:
        src.close()
    assert len(frames) == 150 - len(lost)  # decoding went on to the end
    assert frames[-1].pts == pytest.approx(149 / 25)
    expected = ranges(lost).split(", ")[0]
    t0, t1 = lost[0] / 25, lost[-1] / 25
    assert f"damaged: {expected} ({t0:.2f}-{t1:.2f} s) lost" in src.incomplete, src.incomplete
    assert f"{150 - len(lost)} of 150 frame(s) were processed" in src.incomplete


@needs_fixtures
@needs_ffprobe
def test_cli_prints_the_summary_then_where_the_damage_was(tmp_path, original) -> None:
    bad = damage(original, tmp_path / "bad.mp4", 75, seed=75)
    lost = ffprobe_lost(original, bad)
    done = 150 - len(lost)
    meta = tmp_path / "o.jsonl"
    r = run_cli("run", str(bad), "-m", str(fixed_yolo_model(tmp_path / "m.onnx")), "-j",
                str(meta), "--no-progress", timeout=60)
    assert r.returncode == 1
    assert f"frames in {done}, out: o.jsonl {done}" in r.stdout  # the summary, on this exit too
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"maskstream: error: {bad}: damaged: {ranges(lost)} (3.00-")
    assert f"{done} of 150 frame(s) were processed" in lines[0]
    records = [json.loads(line) for line in meta.read_text().splitlines()]
    assert len(records) == done
    # the frames after the damage are there, at their own times
    assert records[-1]["pts"] == pytest.approx(149 / 25)
    assert records[lost[0]]["pts"] == pytest.approx((lost[-1] + 1) / 25)
