"""Letterbox and tensor layout, against hand-computed Ultralytics numbers."""

from __future__ import annotations

import numpy as np
import pytest

from engines.spec import Layout, ModelSpec, Resize, Task
from pipeline.infer.preprocess import letterbox, stretch, to_tensor


def spec(rgb: bool = True, mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0)) -> ModelSpec:
    return ModelSpec(path="m", task=Task.INSTANCE, layout=Layout.YOLOV8, input_name="images",
                     input_wh=(320, 320), resize=Resize.LETTERBOX, rgb=rgb, mean=mean, std=std,
                     class_names=("a",))


@pytest.mark.parametrize("wh, new_wh, pads", [
    ((960, 540), (320, 180), (0, 70, 0, 70)),  # left, top, right, bottom
    ((426, 241), (320, 181), (0, 69, 0, 70)),  # odd padding: Ultralytics' -0.1/+0.1 rounding
    ((240, 480), (160, 320), (80, 0, 80, 0)),
    ((320, 320), (320, 320), (0, 0, 0, 0)),
    ((100, 50), (320, 160), (0, 80, 0, 80)),  # small frames are scaled up
])
def test_letterbox_geometry(wh, new_wh, pads) -> None:
    w, h = wh
    img = np.full((h, w, 3), 200, np.uint8)
    out, box = letterbox(img, (320, 320))
    assert out.shape == (320, 320, 3)
    left, top, right, bottom = pads
    assert (box.pad_x, box.pad_y) == (left, top)
    assert box.scale_x == box.scale_y == pytest.approx(min(320 / h, 320 / w))
    inner = out[top:320 - bottom, left:320 - right]
    assert inner.shape[1::-1] == new_wh and (inner == 200).all()
    if top:
        assert (out[:top] == 114).all() and (out[320 - bottom:] == 114).all()
    if left:
        assert (out[:, :left] == 114).all()
    # boxes map back: the content's corners land on the source's corners
    back = box.to_source(np.array([[left, top, 320 - right, 320 - bottom]], np.float32))
    np.testing.assert_allclose(back[0], [0, 0, w, h], atol=2.0)


def test_stretch_maps_back_exactly() -> None:
    img = np.zeros((540, 960, 3), np.uint8)
    out, box = stretch(img, (640, 360))
    assert out.shape == (360, 640, 3) and (box.pad_x, box.pad_y) == (0, 0)
    back = box.to_source(np.array([[64, 36, 640, 360]], np.float32))
    np.testing.assert_allclose(back[0], [96, 54, 960, 540], atol=1e-3)


def test_tensor_is_rgb_nchw_normalized() -> None:
    img = np.zeros((4, 6, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    t = to_tensor(img, spec())
    assert t.shape == (1, 3, 4, 6) and t.dtype == np.float32 and t.flags.c_contiguous
    np.testing.assert_allclose(t[0, 2], 1.0)  # blue is the last RGB channel
    np.testing.assert_allclose(t[0, :2], 0.0)
    t = to_tensor(img, spec(rgb=False, mean=(127.5, 0, 0), std=(127.5, 1, 1)))
    np.testing.assert_allclose(t[0, 0], 1.0)  # (255 - 127.5) / 127.5
    np.testing.assert_allclose(t[0, 1], 0.0)
