"""Device preprocessing (torch, run here on the CPU) against the CPU letterbox on real
frames: within one grey level, same geometry, no host synchronization, fixed op count."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from engines.spec import Layout, ModelSpec, Resize, Task
from pipeline.errors import ConfigError
from pipeline.infer.device_preprocess import DevicePreprocess
from pipeline.infer.preprocess import letterbox, stretch, to_tensor
from pipeline.io.sources import VideoFileSource
from tests.helpers import OpLog, fixture_videos, needs_fixtures


def spec(input_wh, resize=Resize.LETTERBOX, rgb=True, mean=(0.0, 0.0, 0.0),
         std=(255.0, 255.0, 255.0)) -> ModelSpec:
    return ModelSpec(path="m", task=Task.INSTANCE, layout=Layout.YOLOV8, input_name="images",
                     input_wh=input_wh, resize=resize, rgb=rgb, mean=mean, std=std,
                     class_names=("a",))


def first_frames(every: int = 60, limit: int = 2) -> list[np.ndarray]:
    out = []
    for video in fixture_videos():
        src = VideoFileSource(video)
        try:
            for f in src.frames(threading.Event()):
                if f.seq % every == 0:
                    out.append(f.image)
                if f.seq >= every * (limit - 1):
                    break
        finally:
            src.close()
    return out


@needs_fixtures
@pytest.mark.parametrize("input_wh", [(320, 320), (640, 640), (640, 384)])
@pytest.mark.parametrize("resize", [Resize.LETTERBOX, Resize.STRETCH])
def test_matches_cpu_letterbox(input_wh, resize) -> None:
    fit = letterbox if resize is Resize.LETTERBOX else stretch
    worst = 0.0
    for image in first_frames():  # 426×240 (upscaled) to 1920×1080, four videos
        for dtype, rgb, mean, std in ((torch.float32, True, (0, 0, 0), (255, 255, 255)),
                                      (torch.float16, False, (103.5, 116.3, 123.7), (57, 57, 58))):
            s = spec(input_wh, resize, rgb, mean, std)
            ref_image, ref_box = fit(image, input_wh)
            ref = to_tensor(ref_image, s)[0]
            static = torch.full((2, 3, input_wh[1], input_wh[0]), 7.0, dtype=dtype)
            box = DevicePreprocess(s, static)(torch.from_numpy(image), slot=1)
            assert box == ref_box
            assert (static[0] == 7).all(), "another slot was written"
            levels = np.abs(static[1].float().numpy() - ref) * np.array(std)[:, None, None]
            worst = max(worst, float(levels.max()))
    print(f"{input_wh} {resize.value}: max difference {worst:.4f} grey levels")
    assert worst <= 0.1  # OpenCV's arithmetic: equal up to the float rounding of (x - mean) / std


@needs_fixtures
def test_no_sync_and_fixed_op_count() -> None:
    s = spec((640, 640))
    static = torch.zeros((1, 3, 640, 640))
    pre = DevicePreprocess(s, static)
    counts = []
    for image in first_frames(limit=1):
        img = torch.from_numpy(image)
        pre(img)  # buffers for this size
        with OpLog() as log:
            pre(img)
        assert not log.syncs, log.syncs
        counts.append(len(log.kernels))
    print("kernels per frame by video:", counts, log.kernels)
    assert max(counts) <= 15  # 2 gathers, 8 integer ops, 1 multiply-add, <= 4 pads


def test_buffers_are_reused_and_errors_name_the_shape() -> None:
    s = spec((320, 320))
    pre = DevicePreprocess(s, torch.zeros((1, 3, 320, 320)))
    img = torch.zeros((240, 426, 3), dtype=torch.uint8)
    pre(img)
    buffers = {k: v.out for k, v in pre._resamplers.items()}
    pre(img)
    assert all(pre._resamplers[k].out is v for k, v in buffers.items())
    with pytest.raises(ConfigError, match=r"expected \(B, 3, 320, 320\)"):
        DevicePreprocess(s, torch.zeros((1, 3, 640, 640)))
    with pytest.raises(ConfigError, match="float"):
        DevicePreprocess(s, torch.zeros((1, 3, 320, 320), dtype=torch.uint8))
    with pytest.raises(ConfigError, match=r"\(H, W, 3\) uint8"):
        pre(torch.zeros((240, 426, 3)))


def test_buffers_are_kept_for_a_few_frame_sizes_only() -> None:
    """A folder of images of every size keeps buffers for the last few sizes, not all."""
    from pipeline.lru import SIZES_KEPT

    pre = DevicePreprocess(spec((320, 320)), torch.zeros((1, 3, 320, 320)))
    for k in range(3 * SIZES_KEPT):
        pre(torch.zeros((100 + 2 * k, 160 + 2 * k, 3), dtype=torch.uint8))
    assert len(pre._resamplers) == SIZES_KEPT
