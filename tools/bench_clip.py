"""The benchmark's input: a clip cut to ``--frames`` (so every contender sees the same
frames), its decoded frames, and a few facts about the machine for the record."""

from __future__ import annotations

import os
import platform
import threading
from pathlib import Path

from pipeline.io.sources import VideoFileSource
from pipeline.types import Frame

__all__ = ["count_frames", "describe_machine", "load_average", "load_frames", "machine", "trim_clip"]


def trim_clip(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` packets of ``src``'s video stream copied (not re-encoded) into
    ``dst``. Packets are taken in decode order, where every reference comes before the
    frame that uses it, so the copy decodes to exactly ``frames`` frames (fewer only when
    the clip is shorter), each the source's frame of the same timestamp; with B-frames the
    last few are not the very next ones in display order. Audio is left out."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        n = 0
        for packet in inp.demux(vin):
            if packet.size == 0:  # the demuxer's flush packet
                continue
            packet.stream = vout
            out.mux(packet)
            n += 1
            if n == frames:
                break
    return dst


def count_frames(video: Path) -> int:
    """Frames in ``video``'s first video stream, counted from its packets (no decoding)."""
    import av

    with av.open(str(video)) as c:
        s = c.streams.video[0]
        return sum(1 for p in c.demux(s) if p.size)


def load_frames(video: Path, frames: int = 10**9) -> list[Frame]:
    """The first ``frames`` frames of ``video``, decoded as the pipeline decodes them."""
    src = VideoFileSource(video)
    out = []
    try:
        for f in src.frames(threading.Event()):
            out.append(f)
            if len(out) == frames:
                break
    finally:
        src.close()
    return out


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    import torch

    info: dict[str, object] = {
        "cores": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    for module in ("onnxruntime", "av", "cv2"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


def describe_machine(info: dict[str, object]) -> str:
    gpu = f", {info['gpu']} (CUDA {info['cuda']})" if info.get("gpu") else ", no GPU"
    return f"{info['cores']} cores{gpu}, torch {info['torch']}"


def load_average() -> float:
    """The 1-minute load average (what else the machine was doing)."""
    return os.getloadavg()[0]
