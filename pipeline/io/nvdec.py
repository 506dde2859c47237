"""NVDEC sources: files and streams decoded on the GPU through PyNvVideoCodec.

Demuxing is PyAV's (files, RTSP, HTTP — with the live sources' timeouts, so a silent
camera is a stall, not a hang); H.264/HEVC packets go through FFmpeg's
``*_mp4toannexb`` filter (a pass-through for streams already in Annex B) into
PyNvVideoCodec's core decoder (``CreateDecoder``), which hands each decoded NV12 surface
over as a CUDA tensor (DLPack). NV12 becomes BGR on the GPU with OpenCV's arithmetic
(:mod:`pipeline.io.yuv`), so the pixels equal the CPU path's. Each frame keeps its
presentation time: the packet's pts goes through the decoder with the frame.

Live streams reuse :class:`~pipeline.io.live.LiveSource` whole (reconnect with backoff,
stall watchdog, give-up time); only the reader differs.

Where NVDEC cannot work, :func:`nvdec_unavailable_reason` says why in one line, without
touching the GPU: no CUDA device, no PyNvVideoCodec, or a Jetson (Orin has no
PyNvVideoCodec: use a ``gst://`` pipeline with ``nvv4l2decoder``).

Written to PyNvVideoCodec 2.2's documented API (``CreateDecoder(gpuid, codec, cudacontext,
cudastream, usedevicememory)``, ``Decode(PacketData)`` returning frames that export
DLPack, ``DecodedFrame.getPTS()``); not run here: the development machines have no GPU.
A container's display rotation is not applied on this path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from pipeline.config import LiveParams
from pipeline.errors import BackendUnavailable, SourceError
from pipeline.io.live import LiveSource, Reader, open_stream
from pipeline.io.uri import is_live, redact
from pipeline.io.yuv import YuvMatrix, nv12_to_bgr
from pipeline.runtime.stage import Source
from pipeline.types import Frame

log = logging.getLogger(__name__)

# FFmpeg codec name → PyNvVideoCodec's cudaVideoCodec member
CODECS = {"h264": "H264", "hevc": "HEVC", "av1": "AV1", "vp9": "VP9", "vp8": "VP8",
          "mpeg2video": "MPEG2", "mpeg4": "MPEG4", "mjpeg": "JPEG"}
_BT709 = 1  # FFmpeg AVColorSpace
_FULL_RANGE = 2  # FFmpeg AVColorRange (JPEG)


def nvdec_unavailable_reason(gpu_id: int = 0) -> str | None:
    """Why NVDEC cannot decode here, in one line; None when it can. Fast (no decoding)."""
    if Path("/etc/nv_tegra_release").exists():
        return ("Jetson has no PyNvVideoCodec; decode with GStreamer instead "
                "(gst://… nvv4l2decoder …, or csi://N)")
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch (NVDEC needs an NVIDIA GPU and torch built with CUDA)"
    if gpu_id >= torch.cuda.device_count():
        return f"no GPU {gpu_id} (torch sees {torch.cuda.device_count()})"
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError:
        return "PyNvVideoCodec is not installed (pip install pynvvideocodec)"
    except (OSError, RuntimeError) as exc:  # a driver library missing (libnvcuvid)
        return f"PyNvVideoCodec cannot load: {exc}"
    return None


def require_nvdec(gpu_id: int = 0) -> None:
    """Raise :class:`BackendUnavailable` naming what is missing, unless NVDEC is usable."""
    reason = nvdec_unavailable_reason(gpu_id)
    if reason is not None:
        raise BackendUnavailable(f"NVDEC decoding: {reason}")


class NvdecDecoder:
    """Packets of one PyAV video stream → (H, W, 3) uint8 BGR frames on ``cuda:gpu_id``
    with their pts (in the stream's time base, None when the packet had none).

    The decoder runs on the current torch stream, so converting a surface is ordered
    before the decoder may reuse it.
    """

    def __init__(self, stream: Any, gpu_id: int = 0, rgb: bool = False) -> None:
        import av
        import PyNvVideoCodec as nvc

        name = stream.codec_context.name
        if name not in CODECS:
            raise BackendUnavailable(f"NVDEC cannot decode {name!r} (it takes "
                                     f"{', '.join(sorted(CODECS))})")
        self.device = torch.device("cuda", gpu_id)
        self.rgb = rgb
        ctx = stream.codec_context
        self.matrix = YuvMatrix.BT709 if int(getattr(ctx, "colorspace", 2)) == _BT709 \
            else YuvMatrix.BT601
        self.full_range = int(getattr(ctx, "color_range", 0)) == _FULL_RANGE
        self._bsf = (av.BitStreamFilterContext(f"{name}_mp4toannexb", stream)
                     if name in ("h264", "hevc") else None)
        self._nvc = nvc
        codec = getattr(nvc.cudaVideoCodec, CODECS[name])
        self._own_stream = False  # True: the decoder has its own stream (see below)
        with torch.cuda.device(self.device):
            self._stream = torch.cuda.current_stream(self.device)
            try:
                self._decoder = nvc.CreateDecoder(
                    gpuid=gpu_id, codec=codec, cudacontext=0,
                    cudastream=self._stream.cuda_stream, usedevicememory=True)
            except Exception as exc:  # noqa: BLE001 - the binding's own error types
                # a stream the binding will not share: decode on its own and wait for each
                # conversion before the next Decode may reuse the surface (a sync a frame)
                log.warning("NVDEC would not share torch's CUDA stream (%s); waiting for each "
                            "frame's conversion instead", exc)
                self._own_stream = True
                self._decoder = nvc.CreateDecoder(gpuid=gpu_id, codec=codec,
                                                  usedevicememory=True)

    def _packet(self, data: np.ndarray, pts: int | None) -> Any:
        pkt = self._nvc.PacketData()
        pkt.bsl_data = data.ctypes.data
        pkt.bsl = int(data.size)
        if pts is not None:
            pkt.pts = int(pts)
        return pkt

    def decode(self, packet: Any) -> Iterator[tuple[torch.Tensor, int | None]]:
        """Frames completed by ``packet`` (a PyAV packet; None flushes at the end)."""
        if self._bsf is not None:
            packets = self._bsf.filter(packet)
        else:
            packets = [packet] if packet is not None else []
        for p in packets:
            data = np.frombuffer(bytes(p), np.uint8)  # alive until Decode returns
            if data.size:
                yield from self._frames(self._packet(data, p.pts))
        if packet is None:  # an empty packet tells the decoder the stream ended
            yield from self._frames(self._packet(np.zeros(0, np.uint8), None))

    def _frames(self, pkt: Any) -> Iterator[tuple[torch.Tensor, int | None]]:
        with torch.cuda.device(self.device):
            for frame in self._decoder.Decode(pkt):
                nv12 = torch.from_dlpack(frame)
                if nv12.dim() == 3:  # (H*3/2, W, 1)
                    nv12 = nv12[..., 0]
                image = nv12_to_bgr(nv12, self.matrix, self.full_range, self.rgb)
                if self._own_stream:
                    self._stream.synchronize()
                pts = frame.getPTS() if hasattr(frame, "getPTS") else None
                yield image, (int(pts) if pts is not None else None)


class NvdecFileSource(Source):
    """The frames of a video file decoded by NVDEC, in order, with container timestamps;
    images are CUDA tensors (H, W, 3) uint8 BGR. Nothing is dropped."""

    live = False

    def __init__(self, path: str | Path, source_id: str = "src0", gpu_id: int = 0) -> None:
        import av

        require_nvdec(gpu_id)
        self.path = Path(path)
        self.source_id = source_id
        self.name = f"source:{source_id}"
        if not self.path.is_file():
            raise SourceError(f"no such file: {self.path}")
        try:
            self._container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise SourceError(f"{self.path}: not a readable video ({exc})") from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(30)
        self.rate = Fraction(rate)
        self.fps = float(rate)
        self.total_frames = int(self._stream.frames) or None
        self._decoder = NvdecDecoder(self._stream, gpu_id)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        import av

        seq = 0
        tb = self._stream.time_base

        def packets() -> Iterator[Any]:
            for packet in self._container.demux(self._stream):
                if packet.size:
                    yield packet
            yield None  # flush the decoder

        try:
            for packet in packets():
                if stop.is_set():
                    return
                for image, pts in self._decoder.decode(packet):
                    t = float(pts * tb) if pts is not None and tb else seq / self.fps
                    # device pixels: Frame.image is typed for host arrays until the record
                    # carries either kind
                    yield Frame(self.source_id, seq, t, time.monotonic_ns(), cast(Any, image))
                    seq += 1
        except av.FFmpegError as exc:
            raise SourceError(f"{self.path}: demuxing failed after frame {seq} ({exc})") from None
        if seq == 0:
            raise SourceError(f"{self.path}: no decodable video frames")

    def close(self) -> None:
        self._container.close()


def nvdec_reader(gpu_id: int = 0) -> Reader:
    """A :class:`LiveSource` reader that decodes the stream with NVDEC."""

    def reader(url: str, p: LiveParams, open_timeout: float) -> tuple[Iterator[Any], Fraction]:
        container, stream, rate = open_stream(url, p, open_timeout)
        try:
            decoder = NvdecDecoder(stream, gpu_id)
        except BackendUnavailable:
            container.close()
            raise

        def frames() -> Iterator[torch.Tensor]:
            try:
                for packet in container.demux(stream):
                    if packet.size:
                        for image, _ in decoder.decode(packet):
                            yield image
            finally:
                container.close()

        return frames(), rate

    return reader


def open_nvdec_source(uri: str, source_id: str = "src0", live: LiveParams | None = None,
                      gpu_id: int = 0) -> Source:
    """An NVDEC source for a file or a network stream (``rtsp://``, ``http(s)://``, …)."""
    require_nvdec(gpu_id)
    if uri.startswith(("/dev/video", "v4l2://", "csi://", "gst://")):
        raise BackendUnavailable(f"NVDEC decodes files and network streams, not {redact(uri)} "
                                 "(cameras give raw frames; gst:// pipelines decode themselves)")
    if is_live(uri):
        return LiveSource(uri, source_id, live, reader=nvdec_reader(gpu_id))
    return NvdecFileSource(uri.removeprefix("file://"), source_id, gpu_id)
