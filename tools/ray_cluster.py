"""A real two-node Ray cluster on 127.0.0.1 for tests and benchmarks: a head and a worker
node, each a ``ray start --block`` process (one CPU each by default), in a temporary
directory, with token authentication on a token of its own.

Every process the cluster starts (GCS, raylets, workers, actors) inherits a marker in its
environment; teardown kills exactly the processes that carry it, so it never touches
another Ray cluster on the machine (``ray stop`` would).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

__all__ = ["RayCluster", "free_port", "marked_pids"]

RAY = Path(sys.executable).with_name("ray")
MARKER = "MASKSTREAM_TEST_RAY_CLUSTER"
# a lost node is declared dead after ~3 s instead of Ray's default ~15 s
SYSTEM_CONFIG = ('{"health_check_initial_delay_ms":1000,"health_check_period_ms":1000,'
                 '"health_check_timeout_ms":1000,"health_check_failure_threshold":3}')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def marked_pids(marker: str) -> list[int]:
    """Processes whose environment holds ``MARKER=marker``."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


class RayCluster:
    def __init__(self, workdir: Path, cpus_per_node: int = 1) -> None:
        self.workdir, self.cpus = workdir, cpus_per_node
        self.port = free_port()
        self.marker = uuid.uuid4().hex
        self.token = uuid.uuid4().hex + uuid.uuid4().hex
        self.head: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.temp_dir: Path | None = None  # short: Ray's socket paths must fit 107 bytes

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        """What a driver needs to connect: the cluster's own token (Ray's token auth, not a
        token file in the home folder that another cluster may have left there)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                "RAY_USAGE_STATS_ENABLED": "0"}

    def _env(self) -> dict[str, str]:
        return {**os.environ, **self.client_env(), MARKER: self.marker}

    def _start(self, name: str, args: list[str], timeout: float) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(RAY), "start", "--block", "--node-ip-address=127.0.0.1",
                 f"--num-cpus={self.cpus}", "--disable-usage-stats",
                 "--object-store-memory=100000000", *args],
                stdout=out, stderr=subprocess.STDOUT, env=self._env(), start_new_session=True,
                cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Ray runtime started" in log.read_text():
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"ray {name} node did not start: {log.read_text()[-2000:]}")

    def start(self, timeout: float = 60.0) -> RayCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-"))
        try:
            self.head = self._start("head", [
                "--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}",
                "--include-dashboard=false", f"--system-config={SYSTEM_CONFIG}"], timeout)
            self.worker = self._start("worker", [f"--address={self.address}"], timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def worker_pids(self) -> set[int]:
        """The worker node's processes: its raylet and everything under it."""
        out: set[int] = set()
        todo = [self.worker.pid] if self.worker else []
        while todo:
            pid = todo.pop()
            out.add(pid)
            todo += _children(pid)
        return out

    def kill_worker_raylet(self) -> int:
        """SIGKILL the worker node's raylet (its workers lose it and exit)."""
        raylets = [p for p in _children(self.worker.pid) if _comm(p) == "raylet"] \
            if self.worker else []
        if not raylets:
            raise RuntimeError("the worker node has no raylet")
        os.kill(raylets[0], signal.SIGKILL)
        return raylets[0]

    def stop(self) -> None:
        """Kill every process this cluster started (they carry its marker)."""
        for _ in range(3):
            pids = marked_pids(self.marker)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            time.sleep(0.3)
        for proc in (self.head, self.worker):
            if proc is not None:
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.head = self.worker = None
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None

    def __enter__(self) -> RayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
