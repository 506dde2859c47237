"""Outputs that fail: a dying RTSP server, nothing listening, a read-only folder, a full
disk. A failing output never stops the others; a network output reconnects; every failure
is one line naming the output; no half JSONL line, no mp4 without an index."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import (
    RtspServer,
    ffprobe,
    fixed_yolo_model,
    free_port,
    make_video,
    needs_rtsp_server,
    run_cli,
    start_cli,
)

FRAMES = 150


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("faults") / "clip.mp4", n=FRAMES, w=320, h=240,
                      faststart=True)


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory) -> Path:
    """A model that takes a few tens of ms a frame: a 150-frame run lasts several seconds."""
    return fixed_yolo_model(tmp_path_factory.mktemp("m") / "slow.onnx", work=6)


def _wait_until_published(server: RtspServer, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until the server relays MPEG-TS bytes of the published stream (it is publishing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", server.record_port), timeout=2) as sock:
                sock.settimeout(2)
                if len(sock.recv(4096)) >= 188:
                    return
        except OSError:  # not listening yet, or nothing relayed within the timeout
            time.sleep(0.2)
    raise AssertionError("the output never published")


def _lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the JSONL ends with half a line"
    return [json.loads(line) for line in text.splitlines()]


class Tmpfs:
    """A small tmpfs (a full disk) or a read-only one, mounted for one test (needs root)."""

    def __init__(self, where: Path, size_kb: int, read_only: bool = False) -> None:
        self.where = where
        where.mkdir()
        opts = f"size={size_kb}k" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); CI runs as root")

    def __enter__(self) -> Path:
        return self.where

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", "-l", str(self.where)], capture_output=True, timeout=30)


@needs_rtsp_server
def test_losing_the_rtsp_output_mid_run_loses_no_jsonl_frame(clip, slow_model, tmp_path) -> None:
    """The RTSP server that receives the annotated stream is killed mid-run: the run goes on,
    the JSONL gets every frame, the summary counts what the RTSP output dropped, exit 0."""
    jsonl = tmp_path / "out.jsonl"
    long_clip = make_video(tmp_path / "long.mp4", n=2 * FRAMES, w=320, h=240, faststart=True)
    with RtspServer(clip, record="/publish") as server:
        out_url = f"rtsp://127.0.0.1:{server.port}/publish"
        proc = start_cli("run", str(long_clip), "-m", str(slow_model), "-o", out_url, "-j",
                         str(jsonl), "--no-progress")
        try:
            _wait_until_published(server, proc)
            assert proc.poll() is None, "the run ended before the server was killed"
            server.kill()
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert len(_lines(jsonl)) == 2 * FRAMES
    m = re.search(r"127\.0\.0\.1:\d+/publish (\d+) \(\+(\d+) dropped\)", out)
    assert m is not None, out
    assert int(m.group(1)) + int(m.group(2)) == 2 * FRAMES and int(m.group(2)) > 0
    assert "disconnected" in out and "frames are dropped until it is back" in err
    # the rate is the pipeline's (frames it processed), not the dying output's
    rate = re.search(r"dropped (\d+); ([\d.]+) s, ([\d.]+) FPS", out)
    assert rate is not None, out
    done, wall, fps = 2 * FRAMES - int(rate.group(1)), float(rate.group(2)), float(rate.group(3))
    assert fps == pytest.approx(done / wall, rel=0.02, abs=0.1)


@needs_rtsp_server
def test_the_rtsp_output_reconnects_when_its_server_comes_back(tmp_path) -> None:
    """Live camera in, RTSP out. The output's server dies and comes back on the same port:
    the process never exits on its own and the output publishes again."""
    cam_clip = make_video(tmp_path / "cam.mp4", n=250, w=320, h=240, faststart=True)
    model = fixed_yolo_model(tmp_path / "m.onnx")
    port = free_port()
    with RtspServer(cam_clip) as camera:
        out_server = RtspServer(cam_clip, port=port, mount="/unused", record="/publish").start()
        proc = start_cli("run", camera.url, "-m", str(model), "-o",
                         f"rtsp://127.0.0.1:{port}/publish", "--workers", "1")
        try:
            _wait_until_published(out_server, proc)
            out_server.kill()
            time.sleep(4.0)
            assert proc.poll() is None, "losing the output ended the run"
            out_server = RtspServer(cam_clip, port=port, mount="/unused", record="/publish").start()
            _wait_until_published(out_server, proc)  # published again
            assert proc.poll() is None
            proc.send_signal(2)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
            out_server.close()
    assert proc.returncode == 0, err
    health = re.search(r"127\.0\.0\.1:\d+/publish: (\w+), (\d+) reconnect", out)
    assert health is not None, out
    assert int(health.group(2)) >= 1, out


def test_rtsp_output_with_nothing_listening_is_one_line_and_the_jsonl_finishes(
        clip, tmp_path) -> None:
    jsonl = tmp_path / "out.jsonl"
    model = fixed_yolo_model(tmp_path / "m.onnx")
    url = f"rtsp://127.0.0.1:{free_port()}/nobody"
    done = run_cli("run", str(clip), "-m", str(model), "-o", url, "-j", str(jsonl), timeout=120)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"maskstream: error: cannot write {url}: "), done.stderr
    assert "refused" in last.lower() and "internal error" not in done.stderr
    assert len(_lines(jsonl)) == FRAMES  # the other output finished
    assert f"frames in {FRAMES}" in done.stdout  # and the summary was printed


def test_read_only_video_folder_is_one_line_naming_the_output(clip, tmp_path) -> None:
    model = fixed_yolo_model(tmp_path / "m.onnx")
    with Tmpfs(tmp_path / "ro", 64, read_only=True) as ro:
        jsonl = tmp_path / "out.jsonl"
        done = run_cli("run", str(clip), "-m", str(model), "-o", str(ro / "out.mp4"),
                       "-j", str(jsonl), timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"maskstream: error: cannot write {ro / 'out.mp4'}: Read-only file system"), done.stderr
    assert len(_lines(jsonl)) == FRAMES


def test_full_disk_for_the_jsonl_keeps_whole_lines_and_the_video_finishes(clip, tmp_path) -> None:
    model = fixed_yolo_model(tmp_path / "m.onnx")
    video = tmp_path / "out.mp4"
    with Tmpfs(tmp_path / "small", 24) as small:
        jsonl = small / "out.jsonl"
        done = run_cli("run", str(clip), "-m", str(model), "-o", str(video), "-j", str(jsonl),
                       timeout=120)
        lines = _lines(jsonl)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"maskstream: error: cannot write {jsonl}: No space left on device"), last
    assert 0 < len(lines) < FRAMES and [r["frame"] for r in lines] == list(range(len(lines)))
    assert int(ffprobe(video)["nb_read_frames"]) == FRAMES  # the other output is whole


def test_full_disk_for_the_video_removes_it_and_the_jsonl_finishes(clip, tmp_path) -> None:
    model = fixed_yolo_model(tmp_path / "m.onnx")
    jsonl = tmp_path / "out.jsonl"
    with Tmpfs(tmp_path / "small", 12) as small:
        video = small / "out.mp4"
        done = run_cli("run", str(clip), "-m", str(model), "-o", str(video), "-j", str(jsonl),
                       timeout=120)
        left = video.exists()
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"maskstream: error: cannot write {video}: No space left on device"), last
    assert "removed" in last and not left  # no mp4 without its index left behind
    assert len(_lines(jsonl)) == FRAMES
