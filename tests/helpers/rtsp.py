"""A real RTSP server on 127.0.0.1 (tools/rtsp_server.py under Debian's Python)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.cli import stop_process
from tests.helpers.paths import ROOT

SYSTEM_PYTHON = "/usr/bin/python3"


def _gi_ok() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    probe = ("import gi; gi.require_version('Gst', '1.0'); "
             "gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer")
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30).returncode == 0


needs_rtsp_server = pytest.mark.skipif(
    not _gi_ok(), reason="needs GStreamer's RTSP server for /usr/bin/python3 (.ci/run installs "
    "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RtspServer:
    """Start, kill, stop and continue a real server on 127.0.0.1."""

    def __init__(self, video: Path, port: int | None = None, mount: str = "/cam",
                 record: str = "") -> None:
        self.video, self.port, self.mount = video, port or free_port(), mount
        self.record, self.record_port = record, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self, timeout: float = 15.0) -> RtspServer:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(ROOT / "tools" / "rtsp_server.py"), "--video", str(self.video),
             "--port", str(self.port), "--mount", self.mount,
             *(["--record", self.record, "--record-port", str(self.record_port)] if self.record else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if line.startswith("ready"):
                return self
            if self.proc.poll() is not None:
                break
        err = self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""
        self.close()
        raise RuntimeError(f"RTSP server did not start: {line!r} {err!r}")

    def signal(self, sig: int) -> None:
        if self.proc is not None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGCONT)
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
