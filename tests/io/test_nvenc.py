"""Encoding: libx264 threads by frame size, the NVENC fallback, and the Annex B muxer the
NVENC path writes with (fed here with libx264's Annex B output on the CPU)."""

from __future__ import annotations

import os
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from pipeline.errors import SinkError
from pipeline.io.nvenc import AnnexBMuxer, is_idr, nvenc_unavailable_reason
from pipeline.io.pixels import bgr_to_frame
from pipeline.io.sources import VideoFileSource
from pipeline.io.video_sink import VideoSink, x264_threads
from pipeline.types import Frame
from tests.helpers import VIDEOS, ffprobe, needs_fixtures


@pytest.mark.parametrize("wh, threads", [
    ((426, 240), 1), ((960, 540), 1), ((1280, 720), 1),
    ((1920, 1080), min(os.cpu_count() or 1, 4)), ((3840, 2160), min(os.cpu_count() or 1, 4)),
])
def test_x264_threads_by_frame_size(wh, threads) -> None:
    assert x264_threads(*wh) == threads


def real_frames(video, n: int) -> list[np.ndarray]:
    src = VideoFileSource(video)
    try:
        return [f.image for f, _ in zip(src.frames(threading.Event()), range(n), strict=False)]
    finally:
        src.close()


@needs_fixtures
def test_1080p_file_is_written_with_several_threads(tmp_path) -> None:
    frames = real_frames(VIDEOS / "udacity_solidWhiteRight_1080p.mp4", 12)
    sink = VideoSink(tmp_path / "out.mp4", Fraction(25))
    for i, image in enumerate(frames):
        sink.write(Frame("s", i, i / 25, 0, image))
    sink.close()
    info = ffprobe(tmp_path / "out.mp4")
    assert info["codec_name"] == "h264" and info["nb_read_frames"] == "12"
    assert info["avg_frame_rate"] == "25/1"


@pytest.mark.skipif(nvenc_unavailable_reason() is None, reason="NVENC may be usable here")
def test_nvenc_requested_where_impossible_is_an_error_and_auto_is_libx264(tmp_path) -> None:
    with pytest.raises(SinkError, match=r"nvenc: (no CUDA GPU|PyNvVideoCodec)"):
        VideoSink(tmp_path / "out.mp4", Fraction(25), codec="nvenc")
    with pytest.raises(SinkError, match="RTSP outputs use libx264"):
        VideoSink("rtsp://127.0.0.1:1/x", Fraction(25), codec="nvenc")
    sink = VideoSink(tmp_path / "out.mp4", Fraction(25))
    assert not sink.nvenc and sink.codec == "libx264"


def annexb_packets(frames: list[np.ndarray], rate: Fraction) -> list[bytes]:
    """H.264 access units in Annex B, as an encoder without a container gives them."""
    h, w = frames[0].shape[:2]
    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
    cc.time_base, cc.framerate = 1 / rate, rate
    cc.options = {"preset": "ultrafast", "bf": "0", "g": "10"}
    out = []
    for i, image in enumerate(frames):
        vf = bgr_to_frame(image)
        vf.pts = i
        out += [bytes(p) for p in cc.encode(vf)]
    return out + [bytes(p) for p in cc.encode(None)]


@needs_fixtures
def test_annexb_muxer_writes_a_playable_mp4(tmp_path) -> None:
    rate = Fraction(25)
    frames = real_frames(VIDEOS / "intel_car-detection.mp4", 24)
    packets = annexb_packets(frames, rate)
    assert packets[0].startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01")) and is_idr(packets[0])
    muxer = AnnexBMuxer(str(tmp_path / "nv.mp4"), rate)
    for i, data in enumerate(packets):
        muxer.mux(data, i)
    muxer.close()
    info = ffprobe(tmp_path / "nv.mp4")
    assert info["codec_name"] == "h264" and info["nb_read_frames"] == str(len(frames))
    assert info["avg_frame_rate"] == "25/1"
    with av.open(str(tmp_path / "nv.mp4")) as c:
        packets_out = list(c.demux(video=0))
        index_keys = sum(p.is_keyframe for p in packets_out if p.size)
    with av.open(str(tmp_path / "nv.mp4")) as c:
        decoded = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    for a, b in zip(decoded, frames, strict=True):  # in order, each close to its source
        assert np.abs(a.astype(np.int16) - b).mean() < 3
    assert sum(is_idr(p) for p in packets) == index_keys == 3  # every 10 frames: seekable
