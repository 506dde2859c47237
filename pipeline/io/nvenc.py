"""NVENC: H.264 encoded on the GPU through PyNvVideoCodec, muxed by PyAV.

Frames (a rendered host array today: the device path's overlay is downloaded before the
output, so NVENC costs one upload a frame; a CUDA tensor is also taken) become NV12 on the
GPU with OpenCV's arithmetic (:func:`pipeline.io.yuv.bgr_to_nv12`, the YUV the CPU encoder
is given), are encoded by NVENC (no B-frames, so packets come out in input order and each
takes the next input pts), and the Annex B packets are muxed by FFmpeg: the first packet
(SPS, PPS, IDR) is read by FFmpeg's H.264 parser to make the output stream's template,
and the mp4 muxer rewrites Annex B into its own format.

Many GPUs have no NVENC (A100, H100, H200, Jetson Orin Nano): opening the encoder fails
there, and :class:`pipeline.io.video_sink.VideoSink` falls back to libx264 with one log
line. The encoder calls follow PyNvVideoCodec 2.2's samples (``CreateEncoder(w, h,
"NV12", False, **config)``, ``Encode(frame_with_cai)`` returning packets as dicts with
``data``, ``EndEncode()``); not run here: no GPU. :class:`AnnexBMuxer` is tested on the
CPU with libx264's Annex B output.
"""

from __future__ import annotations

import io
import logging
from collections import deque
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import torch

from pipeline.errors import BackendUnavailable
from pipeline.io.yuv import bgr_to_nv12
from pipeline.transfer import upload

log = logging.getLogger(__name__)


def nvenc_unavailable_reason() -> str | None:
    """Why NVENC cannot even be tried here (no CUDA, no PyNvVideoCodec); None otherwise.
    Whether the GPU has an encoder is known only when one is opened."""
    if not torch.cuda.is_available():
        return "no CUDA GPU"
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError:
        return "PyNvVideoCodec is not installed (pip install pynvvideocodec)"
    except (OSError, RuntimeError) as exc:
        return f"PyNvVideoCodec cannot load: {exc}"
    return None


def is_idr(packet: bytes) -> bool:
    """Whether an Annex B H.264 access unit holds an IDR slice (NAL type 5)."""
    at = packet.find(b"\x00\x00\x01")
    while 0 <= at < len(packet) - 3:
        if packet[at + 3] & 0x1F == 5:
            return True
        at = packet.find(b"\x00\x00\x01", at + 3)
    return False


class AnnexBMuxer:
    """Writes Annex B H.264 access units into a container (mp4, mkv, …) with PyAV."""

    def __init__(self, target: str, rate: Fraction) -> None:
        self.target = target
        self.rate = rate
        self._container: Any = None
        self._template: Any = None
        self._stream: Any = None

    def mux(self, data: bytes, pts: int) -> None:
        if self._stream is None:  # the first access unit carries SPS/PPS: the template
            self._template = av.open(io.BytesIO(data), format="h264")
            self._container = av.open(self.target, mode="w")
            self._stream = self._container.add_stream_from_template(
                self._template.streams.video[0])
            self._stream.time_base = 1 / self.rate
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.pts = packet.dts = pts
        packet.time_base = 1 / self.rate
        packet.is_keyframe = is_idr(data)
        self._container.mux(packet)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        if self._template is not None:
            self._template.close()
        self._container = self._template = self._stream = None


class NvencEncoder:
    """Frames in, an H.264 file out; the interface of the sink's libx264 encoder
    (``encode(image, pts)``, ``finish()``, ``abandon()``). Raises
    :class:`BackendUnavailable` when NVENC cannot be opened."""

    def __init__(self, target: str, rate: Fraction, w: int, h: int, gpu_id: int = 0) -> None:
        reason = nvenc_unavailable_reason()
        if reason is not None:
            raise BackendUnavailable(f"NVENC: {reason}")
        import PyNvVideoCodec as nvc

        self.device = torch.device("cuda", gpu_id)
        self.w, self.h = w - w % 2, h - h % 2
        config = {"codec": "h264", "preset": "P4", "tuning_info": "high_quality", "bf": "0",
                  "gop": str(max(1, round(rate)) * 2), "fps": str(max(1, round(rate))),
                  "gpu_id": gpu_id}
        try:
            self._encoder = nvc.CreateEncoder(self.w, self.h, "NV12", False, **config)
        except Exception as exc:  # noqa: BLE001 - the binding's own types: no NVENC here
            raise BackendUnavailable(f"NVENC: cannot open an encoder on GPU {gpu_id} "
                                     f"({exc})") from None
        self._nv12 = torch.empty((self.h * 3 // 2, self.w), dtype=torch.uint8, device=self.device)
        self._muxer = AnnexBMuxer(target, rate)
        self._pts: deque[int] = deque()

    def _frame(self) -> Any:
        """The NV12 buffer as the two planes NVENC reads (CUDA array interfaces)."""
        h, w = self.h, self.w
        return SimpleNamespace(cai=[self._nv12[:h].view(h, w, 1),
                                    self._nv12[h:].view(h // 2, w // 2, 2)])

    def _write(self, packets: Any) -> None:
        for p in packets:
            data = bytes(p["data"]) if isinstance(p, dict) else bytes(p)
            if data:
                self._muxer.mux(data, self._pts.popleft() if self._pts else 0)

    def encode(self, image: np.ndarray | torch.Tensor, pts: int) -> None:
        """``image``: (H, W, 3) uint8 BGR on the host or on the GPU."""
        frame = image if isinstance(image, torch.Tensor) else upload(image, self.device)
        bgr_to_nv12(frame[:self.h, :self.w].contiguous(), out=self._nv12)
        # NVENC reads the buffer on its own stream: the conversion must have run
        torch.cuda.current_stream(self.device).synchronize()
        self._pts.append(pts)
        self._write(self._encoder.Encode(self._frame()))

    def finish(self) -> None:
        try:
            self._write(self._encoder.EndEncode())
        finally:
            self._muxer.close()

    def abandon(self) -> None:
        self._muxer.close()
