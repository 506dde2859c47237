"""The ``maskstream`` command end to end: real videos, real models, real outputs."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.helpers import (
    TWINLITE,
    UDACITY,
    YOLO_INT8,
    constant_model,
    ffprobe,
    fixed_yolo_model,
    fixture_videos,
    interrupt,
    make_video,
    needs_fixtures,
    run_cli,
    start_cli,
)

needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def longest_run(frames: list[dict]) -> tuple[int, int]:
    """(track id, number of frames) of the track seen in the most frames."""
    seen = Counter(d["track_id"] for f in frames for d in f["detections"] if d["track_id"] >= 0)
    return seen.most_common(1)[0] if seen else (-1, 0)


@needs_fixtures
@needs_ffprobe
@pytest.mark.parametrize("video", fixture_videos(), ids=lambda p: p.stem)
def test_file_mode_loses_nothing_on_real_videos(tmp_path, video) -> None:
    """Real model, every frame of every fixture video: frames out == frames in."""
    out, meta = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    r = run_cli("run", str(video), "--model", str(YOLO_INT8), "--output", str(out), "--jsonl",
                str(meta), timeout=300)
    assert r.returncode == 0, r.stderr
    src = ffprobe(video)
    info = ffprobe(out)
    assert info["nb_read_frames"] == src["nb_read_frames"]
    assert info["r_frame_rate"] == src["r_frame_rate"]
    frames = jsonl(meta)
    assert [f["frame"] for f in frames] == list(range(int(src["nb_read_frames"])))
    assert f"frames in {src['nb_read_frames']}" in r.stdout
    if video == UDACITY:
        assert info["r_frame_rate"] == "25/1" and info["nb_read_frames"] == "221"
        cars = [d for f in frames for d in f["detections"] if d["class_name"] == "car"]
        assert len(cars) > 221  # more than one car per frame on average
        areas = [mask_utils.area({"size": d["mask"]["size"], "counts": d["mask"]["counts"].encode()})
                 for d in cars]
        assert np.median(areas) > 500
        tid, n = longest_run(frames)
        assert n >= 100, f"track {tid} held for only {n} frames"


@needs_fixtures
@needs_ffprobe
def test_semantic_model_writes_overlay_and_class_maps(tmp_path) -> None:
    import av

    clip = tmp_path / "clip.mp4"
    with av.open(str(UDACITY)) as src, av.open(str(clip), "w") as dst:
        s = dst.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 960, 540, "yuv420p"
        for i, f in enumerate(src.decode(video=0)):
            if i == 8:
                break
            f.pts = None
            for p in s.encode(f):
                dst.mux(p)
        for p in s.encode(None):
            dst.mux(p)
    out, meta = tmp_path / "lanes.mp4", tmp_path / "lanes.jsonl"
    r = run_cli("run", str(clip), "--model", str(TWINLITE), "--output", str(out), "--jsonl",
                str(meta), timeout=200)
    assert r.returncode == 0, r.stderr
    assert ffprobe(out)["nb_read_frames"] == "8"
    frames = jsonl(meta)
    assert len(frames) == 8
    for f in frames:
        heads = f["class_map"]
        assert set(heads) == {"da", "ll"}
        road = next(e for e in heads["da"] if e["class_name"] == "da")
        m = mask_utils.decode({"size": road["mask"]["size"], "counts": road["mask"]["counts"].encode()})
        assert m.shape == (540, 960) and m[400:].mean() > 0.4 and m[:200].mean() < 0.01


def truncated_fixture(tmp_path):
    data = UDACITY.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    return path


def bad_inputs():
    """(name, builder(tmp_path) -> argv, expected text in the one error line)."""
    return [
        ("missing file", lambda t: ["run", str(t / "nope.mp4"), "-m", str(fixed_yolo_model(t / "m.onnx"))],
         "no such file"),
        ("text named .mp4", lambda t: ["run", _text(t), "-m", str(fixed_yolo_model(t / "m.onnx"))],
         "not a readable video"),
        ("unknown outputs", lambda t: ["run", str(make_video(t / "v.mp4")), "-m", str(constant_model(
            t / "odd.onnx", {"scores": np.zeros((1, 10), np.float32)}))],
         "unknown model outputs: scores [1, 10]"),
        ("missing model", lambda t: ["info", str(t / "nope.onnx")], "model file not found"),
        ("unknown config key", lambda t: ["run", "x.mp4", "-m", "m.onnx", "--config", _yaml(
            t, "decode:\n  conff: 0.3\n")], "decode.conff: unknown key"),
        ("wrong config type", lambda t: ["run", "x.mp4", "-m", "m.onnx", "--config", _yaml(
            t, "track:\n  lost_track_buffer: soon\n")], "track.lost_track_buffer: expected int"),
        ("CSI camera without GStreamer", lambda t: ["run", "csi://0", "-m", str(fixed_yolo_model(
            t / "m.onnx"))], "csi:// needs OpenCV built with GStreamer"),
        ("unknown scheme", lambda t: ["run", "ftp://user:pw@host/x.mp4", "-m", str(fixed_yolo_model(
            t / "m.onnx"))], "unsupported source 'ftp://user:***@host/x.mp4'"),
        ("negative confidence", lambda t: ["run", _text(t), "-m", str(fixed_yolo_model(t / "m.onnx")),
                                           "--conf", "-0.5"], "decode.conf: expected a number in [0, 1], got -0.5"),
    ]


def _text(t):
    p = t / "notes.mp4"
    p.write_text("this is not a video\n")
    return str(p)


def _yaml(t, text):
    p = t / "c.yaml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("name, argv, expected", bad_inputs(), ids=[b[0] for b in bad_inputs()])
def test_bad_input_gives_one_clear_line(tmp_path, name, argv, expected) -> None:
    t0 = time.monotonic()
    r = run_cli(*argv(tmp_path), timeout=10)
    assert time.monotonic() - t0 < 10
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("maskstream: error:") and expected in lines[0], lines[0]
    assert "Traceback" not in r.stderr


@needs_fixtures
@needs_ffprobe
def test_truncated_file_processes_every_decodable_frame(tmp_path) -> None:
    src = truncated_fixture(tmp_path)
    out, meta = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    t0 = time.monotonic()
    r = run_cli("run", str(src), "-m", str(fixed_yolo_model(tmp_path / "m.onnx")), "-o", str(out),
                "-j", str(meta), timeout=10)
    assert time.monotonic() - t0 < 10
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated: frames 73-220 (2.92-8.80 s) lost" in lines[0], r.stderr
    assert "73 of 221 frame(s) were processed" in lines[0]
    assert "frames in 73" in r.stdout  # the summary, on this exit too
    assert ffprobe(out)["nb_read_frames"] == "73"  # finalized: playable, every frame in
    assert len(jsonl(meta)) == 73


@needs_fixtures
@needs_ffprobe
def test_sigint_stops_cleanly(tmp_path) -> None:
    out, meta = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    proc = start_cli("run", str(UDACITY), "-m", str(YOLO_INT8), "-o", str(out), "-j", str(meta))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not meta.exists() or len(meta.read_text().splitlines()) < 10):
            time.sleep(0.1)
        assert proc.poll() is None, "finished before it could be interrupted"
        interrupt(proc)
        t0 = time.monotonic()
        stdout, stderr = proc.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    print(f"SIGINT: exit {proc.returncode} after {elapsed:.2f} s, {len(jsonl(meta))} frames written")
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop"
    frames = jsonl(meta)  # every line parses: none cut in half
    assert 10 <= len(frames) < 221
    assert [f["frame"] for f in frames] == list(range(len(frames)))
    assert ffprobe(out)["nb_read_frames"] == str(len(frames))
    assert "stopped early" in stdout


def test_help_and_info(tmp_path) -> None:
    r = run_cli("--help", timeout=30)
    assert r.returncode == 0 and "run" in r.stdout and "info" in r.stdout
    r = run_cli("run", "--help", timeout=30)
    assert "--model" in r.stdout and "--jsonl" in r.stdout and "examples" in r.stdout
    r = run_cli("info", str(fixed_yolo_model(tmp_path / "m.onnx")), timeout=30)
    assert r.returncode == 0 and "instance (yolov8 layout)" in r.stdout and "car, person" in r.stdout


@pytest.mark.parametrize("where", ["before the command", "after it", "info, before"])
def test_debug_is_honoured_wherever_it_is_given(tmp_path, where) -> None:
    model = str(fixed_yolo_model(tmp_path / "m.onnx"))
    missing = str(tmp_path / "nope.mp4")
    argv = {"before the command": ["--debug", "run", missing, "-m", model],
            "after it": ["run", missing, "-m", model, "--debug"],
            "info, before": ["--debug", "info", str(tmp_path / "nope.onnx")]}[where]
    r = run_cli(*argv, timeout=30)
    assert r.returncode == 1
    assert "Traceback" in r.stderr, r.stderr  # the traceback the hint promises
    assert r.stderr.strip().splitlines()[-1].endswith(
        f"no such file: {missing}" if where != "info, before" else "nope.onnx")
    plain = run_cli(*[a for a in argv if a != "--debug"], timeout=30)
    assert "Traceback" not in plain.stderr and len(plain.stderr.strip().splitlines()) == 1


def test_output_is_repeatable(tmp_path) -> None:
    """``-o`` again adds an output: here an mp4 and an mkv of the same run."""
    clip = make_video(tmp_path / "c.mp4", n=20)
    model = fixed_yolo_model(tmp_path / "m.onnx")
    a, b = tmp_path / "a.mp4", tmp_path / "b.mkv"
    done = run_cli("run", str(clip), "-m", str(model), "-o", str(a), "-o", str(b),
                   "--no-progress", timeout=120)
    assert done.returncode == 0, done.stderr
    assert ffprobe(a)["nb_read_frames"] == ffprobe(b)["nb_read_frames"] == "20"
