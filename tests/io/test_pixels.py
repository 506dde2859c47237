"""OpenCV's colour conversions stand in for swscale only where they agree with it."""

from __future__ import annotations

import av
import numpy as np
import pytest

from pipeline.io.pixels import bgr_to_frame, fast_path, frame_to_bgr
from tests.helpers import fixture_videos, needs_fixtures


def _frames(path, n=5):
    with av.open(str(path)) as c:
        out = []
        for vf in c.decode(video=0):
            out.append(vf)
            if len(out) == n:
                return out
    return out


@needs_fixtures
@pytest.mark.parametrize("video", fixture_videos(), ids=lambda p: p.stem)
def test_decoded_frames_match_swscale(video) -> None:
    for vf in _frames(video):
        assert fast_path(vf)  # BT.601 limited-range 4:2:0: the common camera/dashcam case
        ours = frame_to_bgr(vf).astype(np.int16)
        theirs = vf.to_ndarray(format="bgr24").astype(np.int16)
        diff = np.abs(ours - theirs)
        # same BT.601 arithmetic; only chroma upsampling at sharp colour edges may differ
        assert ours.shape == theirs.shape and diff.mean() < 1.5
        assert np.percentile(diff, 99) <= 3 and np.percentile(diff, 99.9) <= 8


@needs_fixtures
def test_encoded_frames_match_swscale() -> None:
    vf = _frames(fixture_videos()[0], 1)[0]
    image = vf.to_ndarray(format="bgr24")
    ours = bgr_to_frame(image).to_ndarray()  # yuv420p planes stacked, (H*3/2, W)
    theirs = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p").to_ndarray()
    h = image.shape[0]
    luma = np.abs(ours[:h].astype(np.int16) - theirs[:h])
    chroma = np.abs(ours[h:].astype(np.int16) - theirs[h:])
    assert luma.max() <= 2 and chroma.mean() < 1.0


def test_other_formats_take_swscale() -> None:
    full_range = av.VideoFrame(64, 48, "yuvj420p")
    odd = av.VideoFrame(63, 47, "yuv420p")
    assert not fast_path(full_range) and not fast_path(odd)
    assert frame_to_bgr(odd).shape == (47, 63, 3)
    assert bgr_to_frame(np.zeros((47, 63, 3), np.uint8)).format.name == "yuv420p"
