"""Shared test helpers, in one module: the real fixtures, small generated videos, tiny
ONNX models for layouts the fixtures do not cover, a real RTSP server, a real MQTT broker,
running the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("MASKSTREAM_FIXTURES", ROOT.parent / "shared" / "fixtures"))
VIDEOS = FIXTURES / "videos"
MODELS = FIXTURES / "models"
UDACITY = VIDEOS / "udacity_solidWhiteRight.mp4"
YOLO_INT8 = MODELS / "yolov8n-seg_int8.onnx"
TWINLITE = MODELS / "twinlitenet_best.onnx"

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"real fixtures not found at {FIXTURES} (they sit beside "
    "the project in CI; set MASKSTREAM_FIXTURES to use another folder)")


def fixture_videos() -> list[Path]:
    return sorted(VIDEOS.glob("*.mp4")) if VIDEOS.is_dir() else []


def pattern(i: int, w: int, h: int) -> np.ndarray:
    """A frame that tells its index and orientation apart: gradient, a block that moves."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[:, :, 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    x = (i * 7) % max(1, w - 16)
    img[4:20, x:x + 16] = (255, 255, 255)
    return img


def make_video(path: Path, n: int = 30, w: int = 160, h: int = 96, rate: Fraction = Fraction(25),
               pts: list[int] | None = None, time_base: Fraction | None = None,
               faststart: bool = False, lossless: bool = True) -> Path:
    """Write an H.264 mp4 of ``n`` pattern frames; ``pts`` in ``time_base`` units for VFR;
    ``faststart`` puts the index first, as cameras and web videos do."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "qp": "0"} if lossless else {"preset": "ultrafast",
                                                                          "crf": "26"}
        if time_base is not None:
            s.time_base = time_base
        for i in range(n):
            f = av.VideoFrame.from_ndarray(pattern(i, w, h), format="bgr24")
            if pts is not None:
                f.pts = pts[i]
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def clip(src: Path, dst: Path, start: int = 0, frames: int = 30,
         size: tuple[int, int] | None = None, t0: float = 0.0) -> Path:
    """Frames ``[start, start + frames)`` of ``src`` re-encoded (H.264) to ``dst``, an mp4
    or an MPEG-TS segment by its suffix, scaled to ``size`` (w, h) if given; its first
    frame's timestamp is ``t0`` seconds (each segment of a recorder starts again near 0)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        rate = Fraction(vin.average_rate or 25)
        s = out.add_stream("libx264", rate=rate)
        s.codec_context.time_base = 1 / rate
        s.width, s.height = size or (vin.codec_context.width, vin.codec_context.height)
        s.pix_fmt, s.options = "yuv420p", {"preset": "ultrafast", "crf": "20"}
        for i, f in enumerate(inp.decode(vin)):
            if i >= start + frames:
                break
            if i >= start:
                f = f.reformat(width=s.width, height=s.height, format="yuv420p")
                f.pts = i - start + round(t0 * rate)
                f.time_base = s.codec_context.time_base
                for p in s.encode(f):
                    out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return dst


def ffprobe(path: Path) -> dict[str, str]:
    """codec, frame count (decoded), and frame rates of the first video stream."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,nb_read_frames,r_frame_rate,avg_frame_rate", "-of",
         "default=noprint_wrappers=1", str(path)],
        capture_output=True, text=True, timeout=60, check=True).stdout
    return dict(line.split("=", 1) for line in out.strip().splitlines())


def run_cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in a fresh process, killed if it overruns ``timeout``."""
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kw)


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def interrupt(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)


# -- tiny ONNX models (onnx.helper): fixed outputs, for layouts the fixtures lack ----

def constant_model(path: Path, outputs: dict[str, np.ndarray], input_hw: tuple[int, int] = (320, 320),
                   metadata: dict[str, str] | None = None, work: int = 0) -> Path:
    """``work`` > 0 adds that many 3×3 convolutions over the input (32 channels) whose
    result is multiplied by 0 and added to the first output: a model that costs time."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = input_hw
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w])
    nodes, outs, inits = [], [], []
    for i, (name, value) in enumerate(outputs.items()):
        value = np.ascontiguousarray(value, dtype=np.float32)
        const = name if not (work and i == 0) else name + "_const"
        nodes.append(helper.make_node("Constant", [], [const],
                                      value=numpy_helper.from_array(value, name + "_value")))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
        if work and i == 0:
            x = "images"
            for k in range(work):
                c_in = 3 if k == 0 else 32
                w = np.random.default_rng(k).normal(0, 0.1, (32, c_in, 3, 3)).astype(np.float32)
                inits.append(numpy_helper.from_array(w, f"w{k}"))
                nodes.append(helper.make_node("Conv", [x, f"w{k}"], [f"c{k}"], pads=[1, 1, 1, 1]))
                x = f"c{k}"
            inits.append(numpy_helper.from_array(np.zeros(1, np.float32), "zero"))
            nodes += [helper.make_node("ReduceMean", [x], ["m"], keepdims=0),
                      helper.make_node("Mul", ["m", "zero"], ["m0"]),
                      helper.make_node("Add", [const, "m0"], [name])]
    graph = helper.make_graph(nodes, "constant", [image], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


def fixed_yolo_model(path: Path, input_size: int = 320, work: int = 0) -> Path:
    """A YOLOv8-seg layout model that always 'finds' the same two instances (fast to run).

    For pipeline tests where what matters is the flow of frames, not the model's quality.
    """
    n, nm, nc = input_size // 8 * (input_size // 8), 32, 2
    preds = np.zeros((1, 4 + nc + nm, n), np.float32)
    preds[0, :4, 0], preds[0, 4, 0], preds[0, 4 + nc, 0] = (100, 160, 80, 60), 0.9, 1.0
    preds[0, :4, 1], preds[0, 5, 1], preds[0, 4 + nc + 1, 1] = (220, 150, 60, 90), 0.8, 1.0
    mh = input_size // 4
    protos = np.full((1, nm, mh, mh), -1.0, np.float32)
    protos[0, 0, 30:50, 17:33] = 4.0
    protos[0, 1, 28:48, 50:60] = 4.0
    return constant_model(path, {"output0": preds, "output1": protos}, (input_size, input_size),
                          metadata={"names": "{0: 'car', 1: 'person'}"}, work=work)


# -- a real RTSP server (tools/rtsp_server.py under Debian's Python) -----------------

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
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- what torch operations a piece of device-path code issues -------------------------

# aten ops that make the host wait for the device on CUDA (a value read back, or an
# output whose size depends on the data)
SYNC_OPS = {"_local_scalar_dense", "item", "nonzero", "masked_select", "is_nonzero", "equal",
            "allclose", "_unique", "_unique2", "unique_dim", "unique_consecutive",
            "bincount", "histc", "argwhere"}


# metadata-only ops: views and the like, which launch no kernel
VIEW_OPS = {"view", "_unsafe_view", "reshape", "select", "slice", "expand", "alias", "as_strided",
            "permute", "t", "transpose", "unsqueeze", "squeeze", "detach", "lift_fresh",
            "unbind", "split", "split_with_sizes", "chunk", "narrow", "view_as_real", "unfold"}


class OpLog:
    """Records the aten operations dispatched while active, and the ones that would
    synchronize on CUDA (see SYNC_OPS; also boolean-mask indexing and
    ``repeat_interleave`` without ``output_size``). Works on the CPU."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        log = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                name = func.overloadpacket.__name__
                log.ops.append(name)
                if log._syncs(name, args, kwargs):
                    log.syncs.append(name)
                return func(*args, **kwargs)

        self.ops: list[str] = []
        self.syncs: list[str] = []
        self._mode = _Mode()

    @staticmethod
    def _syncs(name: str, args, kwargs) -> bool:
        import torch

        base = name.rstrip("_")
        if base in SYNC_OPS:
            return True
        if base == "repeat_interleave":
            return kwargs.get("output_size") is None and (len(args) < 3 or args[-1] is None)
        if base in ("index", "index_put"):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            return any(isinstance(t, torch.Tensor) and t.dtype == torch.bool
                       for t in indices or ())
        return False

    @property
    def kernels(self) -> list[str]:
        """The ops that do work on the device (views left out)."""
        return [op for op in self.ops if op.rstrip("_") not in VIEW_OPS]

    def __enter__(self) -> OpLog:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)


# -- frames, masks and models shared by several test files ---------------------------


def sample_frames(path: Path, every: int, limit: int) -> list:
    """Every ``every``-th decoded frame of a video, at most ``limit`` of them."""
    import threading

    from pipeline.io.sources import VideoFileSource

    src = VideoFileSource(path)
    out = []
    try:
        for f in src.frames(threading.Event()):
            if f.seq % every == 0:
                out.append(f)
            if len(out) == limit:
                break
    finally:
        src.close()
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def spec_of(path: Path) -> tuple:
    """(ModelSpec, engine) of a model read with ONNX Runtime on the CPU."""
    from engines import open_engine, read_spec

    engine = open_engine(path, "onnxruntime", "cpu")
    try:
        return read_spec(engine, path), engine
    except Exception:
        engine.close()
        raise



# -- a real MQTT broker (Debian's mosquitto) and a subscriber -------------------------

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
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
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
