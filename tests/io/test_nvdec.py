"""NVDEC: NV12 → BGR on torch against OpenCV on real frames, and the fail-fast when NVDEC
is missing. The decoding itself needs a GPU (tests/test_device_gpu.py)."""

from __future__ import annotations

import time

import av
import cv2
import numpy as np
import pytest
import torch

from pipeline.errors import BackendUnavailable
from pipeline.io.nvdec import nvdec_unavailable_reason, open_nvdec_source, require_nvdec
from pipeline.io.yuv import YuvMatrix, nv12_to_bgr
from tests.helpers import UDACITY, fixture_videos, needs_fixtures, run_cli


def nv12_frames(every: int = 40, limit: int = 3):
    """(decoded PyAV frame, its NV12 bytes) from each fixture video."""
    for video in fixture_videos():
        with av.open(str(video)) as c:
            for i, vf in enumerate(c.decode(video=0)):
                if i % every == 0:
                    h, w = vf.height, vf.width
                    i420 = vf.to_ndarray(format="yuv420p")
                    u = i420[h:h + h // 4].reshape(h // 2, w // 2)
                    v = i420[h + h // 4:].reshape(h // 2, w // 2)
                    uv = np.stack([u, v], axis=-1).reshape(h // 2, w)
                    yield vf, np.ascontiguousarray(np.concatenate([i420[:h], uv]))
                if i >= every * (limit - 1):
                    break


@needs_fixtures
def test_nv12_to_bgr_is_opencvs_bt601() -> None:
    n = 0
    for _, nv12 in nv12_frames():
        expected = cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12)
        got = nv12_to_bgr(torch.from_numpy(nv12)).numpy()
        assert np.array_equal(got, expected)
        rgb = nv12_to_bgr(torch.from_numpy(nv12), rgb=True).numpy()
        assert np.array_equal(rgb, expected[..., ::-1])
        n += 1
    assert n >= 8


@needs_fixtures
def test_nv12_to_bgr_bt709_and_full_range_follow_ffmpeg() -> None:
    """Against FFmpeg's swscale told the stream is BT.709 (or full range): it upsamples
    chroma differently, so compare as the CPU path's conversions compare (pixels.py):
    within a level on average, 3 at the 99th percentile."""
    for vf, nv12 in nv12_frames(limit=2):
        for matrix, full, kwargs in ((YuvMatrix.BT709, False, {"src_colorspace": "ITU709"}),
                                     (YuvMatrix.BT601, True, {"src_color_range": "JPEG"})):
            expected = vf.reformat(format="bgr24", **kwargs).to_ndarray()
            got = nv12_to_bgr(torch.from_numpy(nv12), matrix, full_range=full).numpy()
            diff = np.abs(got.astype(np.int16) - expected)
            assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 3, (matrix, full)


def test_nv12_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\(H\*3/2, W\) uint8"):
        nv12_to_bgr(torch.zeros((10, 8), dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        nv12_to_bgr(torch.zeros((12, 8)))


needs_no_nvdec = pytest.mark.skipif(nvdec_unavailable_reason() is None,
                                    reason="NVDEC is usable here")


@needs_no_nvdec
def test_missing_nvdec_is_one_clear_error() -> None:
    reason = nvdec_unavailable_reason()
    assert reason and ("CUDA" in reason or "PyNvVideoCodec" in reason or "Jetson" in reason)
    with pytest.raises(BackendUnavailable, match="NVDEC"):
        require_nvdec()
    with pytest.raises(BackendUnavailable, match="NVDEC"):
        open_nvdec_source(str(UDACITY))


@needs_fixtures
@needs_no_nvdec
def test_cli_decode_nvdec_fails_fast_naming_what_is_missing(tmp_path) -> None:
    t = time.monotonic()
    r = run_cli("run", str(UDACITY), "--model", "model-never-loaded.onnx", "--decode", "nvdec",
                "-o", str(tmp_path / "out.mp4"), timeout=30)
    elapsed = time.monotonic() - t
    lines = [line for line in r.stderr.strip().splitlines() if line]
    assert r.returncode == 1
    assert len(lines) == 1 and "NVDEC" in lines[0], r.stderr
    assert "CUDA" in lines[0] or "PyNvVideoCodec" in lines[0] or "Jetson" in lines[0]
    assert elapsed < 10, f"{elapsed:.1f} s"
    assert not (tmp_path / "out.mp4").exists()
