"""Live sources against a real RTSP server on 127.0.0.1: reconnects, stalls, bad URLs,
credentials."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest

from pipeline.config import LiveParams
from pipeline.errors import SourceError
from pipeline.io.live import LiveSource
from pipeline.io.uri import redact
from tests.helpers import (
    RtspServer,
    fixed_yolo_model,
    free_port,
    make_video,
    needs_rtsp_server,
    run_cli,
    start_cli,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """12 s of 320×240 H.264 at 25 FPS, key frame every second."""
    return make_video(tmp_path_factory.mktemp("live") / "clip.mp4", n=300, w=320, h=240,
                      faststart=True)


class Reader:
    """Pulls frames from a LiveSource in a thread and notes when each arrived."""

    def __init__(self, source: LiveSource) -> None:
        self.source, self.times, self.error = source, [], None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for _ in self.source.frames(self.stop):
                self.times.append(time.monotonic())
        except Exception as exc:  # noqa: BLE001 - recorded for the test to assert on
            self.error = exc

    def frames_after(self, t: float) -> list[float]:
        return [x for x in self.times if x > t]

    def wait_for_frames(self, after: float, n: int, timeout: float) -> list[float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.frames_after(after)) < n:
            time.sleep(0.05)
        return self.frames_after(after)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


@needs_rtsp_server
def test_reconnects_within_3_s_of_the_server_coming_back(clip) -> None:
    server = RtspServer(clip).start()
    reader = Reader(LiveSource(server.url, params=LiveParams(), seed=1))
    try:
        assert len(reader.wait_for_frames(0, 25, timeout=10)) >= 25
        server.kill()  # SIGKILL
        killed = time.monotonic()
        time.sleep(3.0)
        server.start()
        back = time.monotonic()
        after = reader.wait_for_frames(back, 10, timeout=10)
        assert after, f"no frame after the server came back ({reader.source.health.describe()})"
        print(f"reconnected {after[0] - back:.2f} s after the server came back")
        assert after[0] - back <= 3.0, f"reconnected {after[0] - back:.2f} s after the restart"
        assert reader.source.health.reconnects >= 1
        assert reader.error is None and reader.thread.is_alive()  # never exits on its own
        assert not reader.frames_after(killed + 0.5) or reader.frames_after(killed + 0.5)[0] >= back
    finally:
        reader.close()
        server.close()


@needs_rtsp_server
def test_stalled_server_is_detected_and_frames_flow_after_it_resumes(clip) -> None:
    server = RtspServer(clip).start()
    params = LiveParams(read_timeout=2.0, open_timeout=3.0)
    source = LiveSource(server.url, params=params, seed=2)
    reader = Reader(source)
    try:
        assert len(reader.wait_for_frames(0, 25, timeout=10)) >= 25
        server.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        while time.monotonic() - stopped < 8 and source.health.connected:
            time.sleep(0.05)
        detected = time.monotonic() - stopped
        print(f"stall detected {detected:.2f} s after SIGSTOP")
        assert not source.health.connected and detected <= 5.0, f"stall seen after {detected:.1f} s"
        server.signal(signal.SIGCONT)
        resumed = time.monotonic()
        flowing = reader.wait_for_frames(resumed, 10, timeout=20)
        print(f"frames again {flowing[0] - resumed:.2f} s after SIGCONT" if flowing else "no frames")
        assert len(flowing) >= 10
        assert reader.error is None
    finally:
        reader.close()
        server.close()


@needs_rtsp_server
def test_password_never_reaches_logs_summary_metrics_or_jsonl(clip, tmp_path) -> None:
    """Also: the Prometheus endpoint reports the camera's health while it runs."""
    import urllib.request

    model = fixed_yolo_model(tmp_path / "m.onnx")
    port = free_port()
    with RtspServer(clip) as server:
        url = server.url.replace("rtsp://", "rtsp://admin:hunter2@")
        meta = tmp_path / "o.jsonl"
        proc = start_cli("--debug", "run", f"door={url}", "-m", str(model), "-j", str(meta),
                         "--workers", "1", "--metrics-port", str(port))
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (not meta.exists() or len(meta.read_text()) < 2000):
                time.sleep(0.1)
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=15)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert "admin:***@" in out
    assert 'maskstream_source_connected{source="door"} 1.0' in metrics
    frames = next(line for line in metrics.splitlines()
                  if line.startswith('maskstream_source_frames_total{source="door"}'))
    assert float(frames.split()[-1]) >= 1
    assert 'maskstream_source_last_frame_age_seconds{source="door"}' in metrics
    for text in (out, err, meta.read_text(), metrics):
        assert "hunter2" not in text


def _http_text_server(tmp_path):
    import functools
    import http.server

    (tmp_path / "notes.txt").write_text("not a video\n" * 100)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@needs_rtsp_server
@pytest.mark.parametrize("case", ["refused", "wrong path", "not video"])
def test_bad_live_urls_fail_fast_with_one_line(clip, tmp_path, case) -> None:
    model = fixed_yolo_model(tmp_path / "m.onnx")
    server = http = None
    if case == "refused":
        url = f"rtsp://127.0.0.1:{free_port()}/cam"
    elif case == "wrong path":
        server = RtspServer(clip).start()
        url = server.url.replace("/cam", "/nope")
    else:
        http = _http_text_server(tmp_path)
        url = f"http://127.0.0.1:{http.server_address[1]}/notes.txt"
    try:
        t0 = time.monotonic()
        r = run_cli("run", url, "-m", str(model), "-j", str(tmp_path / "o.jsonl"), timeout=20)
        elapsed = time.monotonic() - t0
    finally:
        if server:
            server.close()
        if http:
            http.shutdown()
    print(f"{case}: exit {r.returncode} after {elapsed:.1f} s: {r.stderr.strip()}")
    assert r.returncode == 1 and elapsed < 10, (elapsed, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maskstream: error:"), r.stderr
    assert redact(url) in lines[0]


def test_never_connected_source_gives_up_in_time() -> None:
    params = LiveParams(first_connect_timeout=1.5, open_timeout=0.5, backoff_initial=0.2)
    source = LiveSource(f"rtsp://127.0.0.1:{free_port()}/x", params=params)
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="cannot connect"):
        next(iter(source.frames(threading.Event())))
    assert time.monotonic() - t0 < 3
    assert source.health.reconnects >= 2


@pytest.mark.parametrize("uri, shown", [
    ("rtsp://admin:hunter2@10.0.0.5:554/stream1", "rtsp://admin:***@10.0.0.5:554/stream1"),
    ("rtsp://10.0.0.5/stream1", "rtsp://10.0.0.5/stream1"),
    ("http://user@cam.local/mjpg", "http://user@cam.local/mjpg"),
    ("rtsp://u:p@ss@10.0.0.5/s", "rtsp://u:***@10.0.0.5/s"),  # an @ in the password
    ("gst://rtspsrc location=rtsp://admin:pw@cam/s latency=100 ! rtph264depay",
     "gst://rtspsrc location=rtsp://admin:***@cam/s latency=100 ! rtph264depay"),
    ("rtsp://admin:pw@cam:notaport/s", "rtsp://admin:***@cam:notaport/s"),
])
def test_redact(uri, shown) -> None:
    assert redact(uri) == shown


@needs_rtsp_server
def test_rtsp_output_is_readable_while_it_runs(clip, tmp_path) -> None:
    """Camera in, annotated H.264 published back out; ffprobe reads it mid-run."""
    import subprocess

    model = fixed_yolo_model(tmp_path / "m.onnx")
    with RtspServer(clip, record="/publish") as server:
        out_url = f"rtsp://127.0.0.1:{server.port}/publish"
        proc = start_cli("run", server.url, "-m", str(model), "-o", out_url, "--workers", "1")
        try:
            probe = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(1.0)
                probe = subprocess.run(
                    ["ffprobe", "-v", "error", "-rw_timeout", "3000000", "-show_entries",
                     "stream=codec_name,width,height", "-of", "csv=p=0",
                     f"tcp://127.0.0.1:{server.record_port}"],
                    capture_output=True, text=True, timeout=15)
                if probe.returncode == 0 and "h264" in probe.stdout:
                    break
            assert proc.poll() is None, "the pipeline ended early"
            assert probe is not None and "h264,320,240" in probe.stdout, probe
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
        finally:
            proc.kill()
    assert proc.returncode == 0, err


@needs_rtsp_server
def test_latency_stays_bounded_when_the_model_is_slower_than_the_camera(tmp_path) -> None:
    """25 FPS camera, a model slower than 40 ms: frames are dropped and counted, and
    capture-to-sink latency stays under 3 frame periods + the engine's latency, flat."""
    import json

    from engines import open_engine

    clip = make_video(tmp_path / "long.mp4", n=1000, w=320, h=240, faststart=True, lossless=False)
    # about twice the camera's frame period on this machine when it is quiet (work=4 was
    # only just slower, and too few frames were dropped to tell)
    model = fixed_yolo_model(tmp_path / "slow.onnx", work=7)
    engine = open_engine(model, "onnxruntime", "cpu")
    x = {"images": np.zeros((1, 3, 320, 320), np.float32)}
    engine.infer(x)
    t0 = time.perf_counter()
    for _ in range(5):
        engine.infer(x)
    engine_s = (time.perf_counter() - t0) / 5
    engine.close()
    assert engine_s > 0.04, f"the model must be slower than the camera ({engine_s * 1000:.0f} ms)"

    meta = tmp_path / "o.jsonl"
    with RtspServer(clip) as server:
        proc = start_cli("run", server.url, "-m", str(model), "-j", str(meta), "--workers", "1")
        seen: list[tuple[float, float]] = []  # (arrival, capture) wall-clock seconds
        try:
            offset = 0
            # watch 31 s of frames after warm-up, however long start-up took on a busy
            # machine (36 s from launch fell short once); a stalled stream ends at 60 s
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (len(seen) <= 10
                                                   or seen[-1][1] - seen[10][1] < 31):
                time.sleep(0.01)
                if not meta.exists():
                    continue
                with meta.open() as f:
                    f.seek(offset)
                    chunk = f.read()
                now = time.time()
                complete = chunk[: chunk.rfind("\n") + 1]
                offset += len(complete.encode())
                seen += [(now, json.loads(line)["pts"]) for line in complete.splitlines()]
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=15)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    lat = np.array([a - c for a, c in seen[10:]])  # after warm-up
    span = seen[-1][1] - seen[10][1]
    assert span >= 30, f"only {span:.0f} s of frames"
    bound = 3 * 0.04 + engine_s + 0.03  # + the 10 ms polling of this test and file flushes
    p99 = float(np.percentile(lat, 99))
    print(f"engine {engine_s * 1000:.0f} ms, {len(seen)} frames over {span:.0f} s, latency p50 "
          f"{float(np.median(lat)) * 1000:.0f} ms p99 {p99 * 1000:.0f} ms "
          f"(bound {bound * 1000:.0f} ms), first/last third {lat[:len(lat) // 3].mean() * 1000:.0f}"
          f"/{lat[-(len(lat) // 3):].mean() * 1000:.0f} ms")
    assert p99 < bound, f"p99 {p99 * 1000:.0f} ms over {bound * 1000:.0f} ms"
    third = len(lat) // 3
    assert lat[-third:].mean() < lat[:third].mean() * 1.25 + 0.02, "latency grows"
    dropped = int(out.split("dropped ")[1].split(";")[0])
    assert dropped > 0.2 * len(seen), out  # the camera outran the model: frames were dropped


@needs_rtsp_server
def test_two_cameras_and_a_file_at_once(clip, tmp_path) -> None:
    """Each source its own outputs; the file loses no frame while the cameras stream."""
    import json

    from tests.helpers import ffprobe

    model = fixed_yolo_model(tmp_path / "m.onnx")
    video = make_video(tmp_path / "file.mp4", n=120, w=200, h=120)
    meta = tmp_path / "all.jsonl"
    with RtspServer(clip) as cam1, RtspServer(clip) as cam2:
        proc = start_cli("run", f"cam1={cam1.url}", f"cam2={cam2.url}", f"clip={video}",
                         "-m", str(model), "-o", str(tmp_path / "out_{source}.mp4"),
                         "-j", str(meta))
        try:
            deadline = time.monotonic() + 60
            counts: dict[str, int] = {}
            while time.monotonic() < deadline:
                time.sleep(0.2)
                if meta.exists():
                    lines = [json.loads(x) for x in meta.read_text().splitlines()]
                    counts = {s: sum(f["source"] == s for f in lines) for s in ("cam1", "cam2", "clip")}
                    if counts["clip"] == 120 and min(counts["cam1"], counts["cam2"]) >= 25:
                        break
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert counts["clip"] == 120 and counts["cam1"] >= 25 and counts["cam2"] >= 25, counts
    frames = [json.loads(x) for x in meta.read_text().splitlines()]
    clip_frames = [f["frame"] for f in frames if f["source"] == "clip"]
    assert clip_frames == list(range(120))  # in order, none lost
    assert ffprobe(tmp_path / "out_clip.mp4")["nb_read_frames"] == "120"
    for cam in ("cam1", "cam2"):
        info = ffprobe(tmp_path / f"out_{cam}.mp4")
        assert int(info["nb_read_frames"]) == sum(f["source"] == cam for f in frames)
    assert "cam1" in out and "cam2" in out  # per-source health in the summary
