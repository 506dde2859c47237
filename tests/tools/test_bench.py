"""tools/bench: the cut clip holds exactly the original's first frames, and a short run of
the CLI measures what it says (every frame through every contender, per-stage rows, the
Ultralytics section skipped with its reason where Ultralytics is missing). Speed itself is
not asserted: that is the benchmark's business."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, VIDEOS, make_video, needs_fixtures
from tools.bench_clip import count_frames, load_frames, trim_clip

DEMO = ROOT / "engines" / "models" / "demo-seg.onnx"


@pytest.mark.parametrize("keep", [1, 7, 40])
def test_trimmed_clip_is_the_first_frames_unchanged(tmp_path, keep: int) -> None:
    src = make_video(tmp_path / "src.mp4", n=30, w=160, h=96, lossless=False)
    out = trim_clip(src, tmp_path / "cut.mp4", keep)
    want = min(keep, 30)
    assert count_frames(out) == want
    cut, full = load_frames(out), load_frames(src, want)
    assert len(cut) == want
    for a, b in zip(cut, full, strict=True):
        np.testing.assert_array_equal(a.image, b.image)  # packets copied, not re-encoded
        assert a.pts == pytest.approx(b.pts)


@needs_fixtures
def test_trimmed_clip_with_b_frames_decodes_to_source_frames(tmp_path) -> None:
    src = VIDEOS / "udacity_solidWhiteRight_1080p.mp4"  # H.264 with B-frames
    cut = load_frames(trim_clip(src, tmp_path / "cut.mp4", 10))
    assert len(cut) == 10
    by_pts = {round(f.pts, 4): f.image for f in load_frames(src, 16)}
    for f in cut:  # each the source's frame of that timestamp, decoded alike
        np.testing.assert_array_equal(f.image, by_pts[round(f.pts, 4)])


def test_short_run_measures_every_frame_of_each_contender(tmp_path) -> None:
    video = make_video(tmp_path / "v.mp4", n=12, w=320, h=192, lossless=False)
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--model", str(DEMO), "--video", str(video),
         "--sections", "decode,jsonl,streams,sequential,ultralytics", "--streams", "2",
         "--frames", "9", "--repeat", "2", "--json", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(done.stdout)
    assert r["frames"] == 9 and r["load_per_round"] and len(r["load_per_round"]) == 2
    meta = "pipeline JSONL only"
    streams = next(k for k in r["fps"] if "2 streams" in k)
    for name in (meta, streams, "sequential loop", "decode cpu source x1", "decode cpu source x2"):
        assert len(r["fps_per_round"][name]) == 2 and r["fps"][name] > 0, name
    # every frame went through the engine: 9 for one stream, 18 for two
    infer = {k: next(s for s in rows if s["stage"] == "infer") for k, rows in r["stages"].items()}
    assert infer[meta]["items"] == 9 and infer[streams]["items"] == 18
    assert r["ratios_per_round"]["JSONL only / decode x1"] and "2 streams / decode x2" in r["ratios"]
    if importlib.util.find_spec("ultralytics") is None:
        assert any(n.startswith("Ultralytics skipped: ultralytics is not importable")
                   for n in r["notes"])
    md = (tmp_path / "out" / "bench.md").read_text()
    assert "| pipeline JSONL only |" in md and "Stages of 'pipeline JSONL only'" in md
    assert json.loads((tmp_path / "out" / "bench.json").read_text())["fps"] == r["fps"]


def test_a_contender_that_failed_one_round_counts_again_in_the_next() -> None:
    from tools.bench import Rounds

    r = Rounds()
    r.loads.append(0.0)  # round 1: the pipeline ran, Ultralytics failed
    r.add("pipeline", 10.0)
    assert r.last("ultralytics") is None
    r.loads.append(0.0)  # round 2: both ran
    r.add("pipeline", 12.0)
    r.add("ultralytics", 4.0)
    assert r.last("pipeline") == 12.0 and r.last("ultralytics") == 4.0
    r.ratio("pipeline / ultralytics", r.last("pipeline"), r.last("ultralytics"))
    assert r.ratios["pipeline / ultralytics"] == [3.0]
    r.loads.append(0.0)  # round 3: Ultralytics failed again; its round-2 figure is not this one's
    r.add("pipeline", 11.0)
    assert r.last("ultralytics") is None
