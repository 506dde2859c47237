"""Timestamps that go back or jump: joined MPEG-TS segments on the real model and video,
and the tracker's clock on its own."""

from __future__ import annotations

import itertools
import json

import pytest

from pipeline.errors import ConfigError
from pipeline.track.clock import Jump, TrackClock
from pipeline.track.tracker import TrackParams
from tests.helpers import MODELS, UDACITY, clip, needs_fixtures, run_cli

YOLO_320 = MODELS / "yolov8n-seg-320.onnx"
SEGMENT = 50  # frames per segment (2 s at 25 FPS)


def joined_segments(tmp_path, second_t0: float):
    """Two MPEG-TS segments of the dashcam clip, back to back in one file, as ``cat a.ts
    b.ts`` makes them: the first starts at 0 s, the second at ``second_t0``."""
    a = clip(UDACITY, tmp_path / "a.ts", 0, SEGMENT)
    b = clip(UDACITY, tmp_path / "b.ts", SEGMENT, SEGMENT, t0=second_t0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    return joined


def run_and_read(tmp_path, video):
    meta = tmp_path / "o.jsonl"
    r = run_cli("run", str(video), "-m", str(YOLO_320), "-j", str(meta), "--no-progress",
                timeout=120)
    assert r.returncode == 0, r.stderr
    return r, [json.loads(line) for line in meta.read_text().splitlines()]


def tracked_share(frames) -> float:
    dets = [d for f in frames for d in f["detections"]]
    return sum(d["track_id"] >= 0 for d in dets) / max(1, len(dets))


@needs_fixtures
@pytest.mark.parametrize("second_t0, jump, message", [
    (0.0, "back", "timestamps go back 1.96 s (1.960 -> 0.000 s"),
    (60.0, "gap", "timestamps jump forward 58.04 s (1.960 -> 60.000 s"),
])
def test_joined_mpegts_segments_keep_tracking(tmp_path, second_t0, jump, message) -> None:
    r, frames = run_and_read(tmp_path, joined_segments(tmp_path, second_t0))
    assert len(frames) == 2 * SEGMENT
    assert frames[SEGMENT]["pts"] == second_t0  # the source's own timestamps stay
    before, after = frames[:SEGMENT], frames[SEGMENT:]
    # one line about it, no library warnings
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Skipping update" not in r.stderr and "UserWarning" not in r.stderr
    # every frame after the join where the model finds something has tracked detections,
    # as many of them tracked as before it. After a restart the tracker confirms new
    # tracks on their second frame, as at the start of any video
    seen = [f for f in (after if jump == "back" else after[1:]) if f["detections"]]
    assert len(seen) > SEGMENT * 0.8
    assert all(any(d["track_id"] >= 0 for d in f["detections"]) for f in seen)
    assert tracked_share(after) >= 0.8 * tracked_share(before)
    ids_before = {d["track_id"] for f in before for d in f["detections"]} - {-1}
    ids_after = {d["track_id"] for f in after for d in f["detections"]} - {-1}
    if jump == "back":  # the scene goes on across the join: so does the car's track
        last = {d["track_id"] for d in before[-1]["detections"]} - {-1}
        first = {d["track_id"] for d in after[0]["detections"]} - {-1}
        assert last & first, (before[-1], after[0])
    else:  # a real gap: tracking restarts with ids never given before
        assert ids_after and not ids_after & ids_before


def test_clock_continues_across_backward_jumps_and_flags_gaps() -> None:
    clock = TrackClock(frame_rate=25, max_gap=2.0)
    times, events = [], []
    for pts in [1.4, 1.44, 1.48, 0.2, 0.24, 0.24, 0.28, 0.68, 5.0, 5.04]:
        t, event = clock(pts)
        times.append(t)
        events.append(event.jump if event else None)
    assert all(b > a for a, b in itertools.pairwise(times))  # strictly increasing
    assert times[3] == pytest.approx(1.52) and times[4] == pytest.approx(1.56)  # one frame on
    assert times[7] - times[6] == pytest.approx(0.4)  # ordinary gaps are kept as they are
    assert events == [None, None, None, Jump.BACK, None, None, None, None, Jump.GAP, None]


def test_clock_leaves_a_time_lapse_alone() -> None:
    clock = TrackClock(frame_rate=0.2, max_gap=2.0)  # a frame every 5 s
    assert [clock(5.0 * i)[1] for i in range(5)] == [None] * 5
    assert clock(200.0)[1].jump is Jump.GAP  # 39 frame periods: a gap


def test_max_gap_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match=r"track\.max_gap"):
        TrackParams(max_gap=-1)
