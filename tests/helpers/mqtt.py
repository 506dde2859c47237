"""A real MQTT broker (Debian's mosquitto) on 127.0.0.1, and a subscriber."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.cli import stop_process
from tests.helpers.rtsp import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

needs_mosquitto = pytest.mark.skipif(
    not os.path.exists(MOSQUITTO) or shutil.which("mosquitto_passwd") is None
    or importlib.util.find_spec("paho") is None,
    reason="needs the mosquitto broker (.ci/run installs Debian's mosquitto) and paho-mqtt "
    "(pip install 'maskstream[mqtt]')")


class Mosquitto:
    """A broker on 127.0.0.1 with its own config, password file and persistence in
    ``workdir``: started, killed (SIGKILL) and started again on the same port."""

    def __init__(self, workdir: Path, users: dict[str, str] | None = None) -> None:
        self.workdir, self.port = workdir, free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        lines = [f"listener {self.port} 127.0.0.1", "persistence true",
                 f"persistence_location {self.workdir}/", "autosave_interval 1",
                 "max_queued_messages 0", f"log_dest file {self.workdir}/broker.log"]
        if users:
            pwfile = self.workdir / "passwords"
            for k, (user, password) in enumerate(users.items()):
                subprocess.run(["mosquitto_passwd", "-b", *([] if k else ["-c"]), str(pwfile),
                                user, password], check=True, capture_output=True, timeout=30)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to the mosquitto user, who cannot read here
        self.conf = self.workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def url(self, topic: str, user: str = "", password: str = "", query: str = "") -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"mqtt://{auth}127.0.0.1:{self.port}/{topic}" + (f"?{query}" if query else "")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscriber:
    """A paho client that keeps every message it gets (topic, JSON payload), with a
    persistent session (QoS 1) so a broker restart loses nothing queued for it."""

    def __init__(self, broker: Mosquitto, topic: str, user: str = "", password: str = "") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict]] = []
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{free_port()}",
                        clean_session=False)
        if user:
            c.username_pw_set(user, password)
        c.reconnect_delay_set(1, 1)
        c.on_connect = lambda cl, _u, _f, rc, _p: None if rc.is_failure else cl.subscribe(topic, 1)
        c.on_subscribe = lambda *_a: self.subscribed.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        self.client = c
        if not self.subscribed.wait(10):
            raise RuntimeError("subscriber: no SUBACK within 10 s")

    def _on_message(self, _c, _u, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def wait_for(self, n: int, timeout: float) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < n:
            time.sleep(0.05)
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
