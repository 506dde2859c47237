"""INT8 calibration sampling on real frames of a fixture video (decoded with PyAV here)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from engines.errors import ModelError
from engines.spec import Layout, ModelSpec, Resize, Task
from engines.tensorrt.calibration import CalibrationSampler, collect, even_indices
from pipeline.infer.preprocess import letterbox, to_tensor
from tests.helpers import UDACITY, needs_fixtures

SPEC = ModelSpec(path="m.onnx", task=Task.INSTANCE, layout=Layout.YOLOV8, input_name="images",
                 input_wh=(160, 96), resize=Resize.LETTERBOX, rgb=True, mean=(0.0, 0.0, 0.0),
                 std=(255.0, 255.0, 255.0), class_names=("car",))


def udacity_tensors() -> list[np.ndarray]:
    """Every frame of the 221-frame fixture clip, letterboxed and normalized as the pipeline
    does (1×3×96×160 float32), decoded with PyAV directly."""
    import av

    out = []
    with av.open(str(UDACITY)) as c:
        for vf in c.decode(video=0):
            image, _ = letterbox(vf.to_ndarray(format="bgr24"), SPEC.input_wh)
            out.append(to_tensor(image, SPEC))
    return out


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    if not UDACITY.is_file():
        pytest.skip(f"fixture video not found: {UDACITY}")
    return udacity_tensors()


@needs_fixtures
def test_known_total_takes_evenly_spaced_frames(frames) -> None:
    assert len(frames) == 221
    sampler = CalibrationSampler(count=32, total=len(frames))
    for i, f in enumerate(frames):
        sampler.add(i, f)
    arr = sampler.array()
    idx = np.array(sampler.indices)
    assert arr.shape == (32, 3, 96, 160) and arr.dtype == np.float32
    assert idx[0] == 0 and idx[-1] == 220  # spans the whole clip
    gaps = np.diff(idx)
    assert gaps.min() >= 6 and gaps.max() <= 8  # 220 / 31 ≈ 7.1
    for k, i in enumerate(idx):  # each slot holds exactly the frame it says
        np.testing.assert_array_equal(arr[k], frames[i][0])


@needs_fixtures
def test_unknown_total_still_spans_the_whole_video(frames) -> None:
    sampler = CalibrationSampler(count=20)
    for i, f in enumerate(frames):
        sampler.add(i, f)
    arr, idx = sampler.array(), np.array(sampler.indices)
    # 221 frames into 20 slots: the stride doubled to 16; indices 0, 16, …, 208
    assert sampler.stride == 16
    assert idx.tolist() == list(range(0, 221, 16))
    assert idx[-1] >= 221 - sampler.stride  # reaches the end of the clip
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(arr[k], frames[i][0])
    # deterministic: the same frames give the same array
    again = collect(iter(frames), count=20)
    np.testing.assert_array_equal(arr, again)


@needs_fixtures
def test_fewer_frames_than_asked_warns(frames, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="engines.tensorrt.calibration"):
        arr = collect(frames[:50], count=512, total=50)
    assert arr.shape[0] == 50
    assert any("50 frames" in r.getMessage() and "500" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("total", "count", "expected"), [
    (10, 3, [0, 4, 9]), (5, 10, [0, 1, 2, 3, 4]), (1, 1, [0]), (1000, 2, [0, 999]),
])
def test_even_indices(total, count, expected) -> None:
    assert even_indices(total, count).tolist() == expected


def test_errors() -> None:
    with pytest.raises(ModelError, match="count"):
        CalibrationSampler(count=0)
    with pytest.raises(ModelError, match="no frames"):
        collect([], count=4)
    s = CalibrationSampler(count=4)
    with pytest.raises(ModelError, match=r"float32, got \(3, 8\) float32"):
        s.add(0, np.zeros((3, 8), np.float32))
    with pytest.raises(ModelError, match="uint8"):
        s.add(0, np.zeros((1, 3, 8, 8), np.uint8))
    s.add(0, np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(ModelError, match="differs from the first frame"):
        s.add(1, np.zeros((1, 3, 8, 9), np.float32))
    with pytest.raises(ModelError, match="total >= 1"):
        even_indices(0, 3)
