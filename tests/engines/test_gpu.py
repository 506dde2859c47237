"""GPU paths: run where CUDA is, skipped (with the reason) everywhere else."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.decode.masks import decode_masks, mask_boxes
from pipeline.types import Letterbox

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_mask_decoding_on_cuda_matches_cpu() -> None:
    g = torch.Generator().manual_seed(0)
    protos = torch.randn(32, 80, 80, generator=g)
    coefs = torch.randn(6, 32, generator=g)
    xyxy = np.array([[10, 20, 300, 200], [0, 0, 50, 40], [500, 300, 959, 539],
                     [100.5, 100.5, 101.2, 103.9], [400, 10, 700, 500], [3, 3, 900, 530]],
                    np.float32)
    box = Letterbox(1 / 3, 1 / 3, 0, 70, (960, 540), (320, 320))
    boxes = mask_boxes(xyxy, box.source_wh)
    cpu = decode_masks(protos, coefs, boxes, box)
    gpu = decode_masks(protos.cuda(), coefs.cuda(), boxes, box)
    for a, b in zip(cpu, gpu, strict=True):
        assert a.shape == b.shape
        assert (a != b).mean() < 1e-3  # float rounding may flip a pixel on the threshold


def test_onnxruntime_cuda_provider_when_installed(tmp_path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is not installed")
    from engines import open_engine
    from tests.helpers import fixed_yolo_model

    engine = open_engine(fixed_yolo_model(tmp_path / "m.onnx"), "onnxruntime", "cuda")
    out = engine.infer({"images": np.zeros((1, 3, 320, 320), np.float32)})
    assert out["output0"].shape == (1, 38, 1600) and out["output1"].shape == (1, 32, 80, 80)
