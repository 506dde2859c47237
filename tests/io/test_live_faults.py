"""Fault injection: a real RTSP camera is killed (SIGKILL) at seeded random moments, while
the command connects to it and while it streams, and comes back each time. The command
must never exit while the camera can come back, and must carry on (frames, tracks) once
it is back."""

from __future__ import annotations

import itertools
import json
import random
import re
import signal
import time
from pathlib import Path

import pytest

from tests.helpers import RtspServer, fixed_yolo_model, make_video, needs_rtsp_server, start_cli

SEED = 20240
KILLS = 24
# quick reconnects keep the test short; the rules are the same as with the defaults.
# first_connect_timeout is long enough that the camera always comes back within it.
CONFIG = """\
live:
  open_timeout: 2.0
  read_timeout: 1.0
  backoff_initial: 0.2
  backoff_max: 1.0
  first_connect_timeout: 20.0
"""


def server_connections(port: int) -> int:
    """Established TCP connections to ``port`` on 127.0.0.1 (the server's side)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if int(local.split(":")[1], 16) == port and state == "01":
            count += 1
    return count


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_until(check, timeout: float, proc) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        assert proc.poll() is None, "the command exited while the camera could come back"
        time.sleep(0.002)
    return False


@needs_rtsp_server
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs /proc/net/tcp")
def test_command_outlives_a_camera_killed_at_random_moments(tmp_path) -> None:
    rng = random.Random(SEED)
    clip = make_video(tmp_path / "cam.mp4", n=250, w=320, h=240, faststart=True)
    model = fixed_yolo_model(tmp_path / "m.onnx")
    config, meta = tmp_path / "live.yaml", tmp_path / "o.jsonl"
    config.write_text(CONFIG)
    server = RtspServer(clip).start()
    proc = start_cli("run", f"cam={server.url}", "-m", str(model), "-j", str(meta), "-c",
                     str(config), "--workers", "1")
    moments: list[str] = []
    try:
        for k in range(KILLS):
            # the first kill always lands in the first connect; then at random: in a
            # connect, before the command reconnects, or while frames flow
            kind = "connect" if k == 0 else rng.choice(["connect", "early", "streaming"])
            if kind == "connect":
                # the RTSP handshake takes a few ms after the TCP connection is made
                wait_until(lambda: server_connections(server.port) > 0, 10, proc)
                time.sleep(rng.uniform(0.0, 0.01))
            elif kind == "early":
                time.sleep(rng.uniform(0.0, 0.3))
            else:
                seen = lines(meta)
                assert wait_until(lambda seen=seen: lines(meta) > seen, 15, proc), \
                    f"no frame after the camera came back (kill {k})"
                time.sleep(rng.uniform(0.0, 1.5))
            server.kill()
            moments.append(kind)
            time.sleep(rng.uniform(0.1, 1.5))
            assert proc.poll() is None, f"exited after kill {k} ({kind})"
            server.start()
        # the camera is back for good: frames flow and objects are tracked again
        back = lines(meta)
        assert wait_until(lambda: lines(meta) >= back + 25, 20, proc), "no frames at the end"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
    print(f"kills: {len(moments)} ({', '.join(f'{m} {moments.count(m)}' for m in set(moments))})")
    print(err)
    assert proc.returncode == 0, err
    assert moments.count("connect") >= 5 and moments.count("streaming") >= 5
    assert "Traceback" not in err and "Skipping update" not in err
    summary = re.search(r"source:cam \(.*\): connected, (\d+) reconnect\(s\)", out)
    assert summary and int(summary.group(1)) >= KILLS - moments.count("early"), out
    records = [json.loads(line) for line in meta.read_text().splitlines()]
    assert all(a["frame"] < b["frame"] for a, b in itertools.pairwise(records))
    tail = records[back + 2:]
    assert tail and all(sorted(d["track_id"] for d in r["detections"])[0] >= 0 for r in tail)


def test_a_server_that_always_answers_nonsense_still_fails_fast() -> None:
    """"Invalid data" is believed once two attempts in a row get it: a real answer, not a
    camera that died mid-handshake."""
    import socket
    import threading

    from pipeline.errors import SourceError
    from pipeline.io.live import LiveParams, LiveSource

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 5\r\n\r\nhello")

    threading.Thread(target=answer, daemon=True).start()
    source = LiveSource(f"rtsp://127.0.0.1:{port}/cam", params=LiveParams(), seed=3)
    t0 = time.monotonic()
    try:
        with pytest.raises(SourceError, match="Invalid data found when processing input"):
            next(iter(source.frames(threading.Event())))
    finally:
        listener.close()
    assert time.monotonic() - t0 < 2.0
    assert source.health.reconnects == 1  # asked twice, then believed
