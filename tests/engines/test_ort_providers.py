"""ONNX Runtime on CUDA: provider lists and options, and the shapes and dtypes of bound
buffers. The session itself needs a GPU (test_gpu_engines.py); this logic does not."""

from __future__ import annotations

import numpy as np
import pytest

from engines.base import TensorInfo
from engines.device import parse_device
from engines.errors import BackendUnavailable, DeviceError, ModelError
from engines.ort_providers import (
    CPU_EP,
    CUDA_EP,
    TENSORRT_EP,
    element_type,
    output_shape,
    provider_list,
)

GPU_BUILD = [TENSORRT_EP, CUDA_EP, CPU_EP]


def test_cpu_device_uses_the_cpu_provider_whatever_is_installed() -> None:
    assert provider_list(parse_device("cpu"), GPU_BUILD) == [CPU_EP]
    assert provider_list(parse_device("cpu"), [CPU_EP], tensorrt=True) == [CPU_EP]


def test_cuda_provider_on_the_engines_stream() -> None:
    providers = provider_list(parse_device("cuda:1"), GPU_BUILD, stream=0x7F00DEAD)
    assert providers == [(CUDA_EP, {"device_id": 1, "user_compute_stream": str(0x7F00DEAD)}),
                         CPU_EP]


def test_tensorrt_provider_first_with_its_cache_then_cuda_then_cpu() -> None:
    providers = provider_list(parse_device("cuda"), GPU_BUILD, tensorrt=True, stream=123,
                              fp16=True, cache_dir="/tmp/trt")
    assert [p if isinstance(p, str) else p[0] for p in providers] == GPU_BUILD
    trt = providers[0][1]
    assert trt == {"device_id": 0, "user_compute_stream": "123", "trt_fp16_enable": True,
                   "trt_timing_cache_enable": True, "trt_engine_cache_enable": True,
                   "trt_engine_cache_path": "/tmp/trt", "trt_timing_cache_path": "/tmp/trt"}
    no_cache = provider_list(parse_device("cuda"), GPU_BUILD, tensorrt=True)[0][1]
    assert "trt_engine_cache_enable" not in no_cache and no_cache["trt_fp16_enable"] is False


@pytest.mark.parametrize(("available", "tensorrt", "message"), [
    ([CPU_EP], False, "pip install onnxruntime-gpu"),
    (["AzureExecutionProvider", CPU_EP], True, "no CUDAExecutionProvider"),
    ([CUDA_EP, CPU_EP], True, "no TensorrtExecutionProvider"),
])
def test_missing_providers_say_what_to_install(available, tensorrt, message) -> None:
    with pytest.raises(BackendUnavailable, match=message):
        provider_list(parse_device("cuda"), available, tensorrt=tensorrt)


def test_the_null_stream_is_refused() -> None:
    """ONNX Runtime ignores a user stream of 0 and would run on its own stream."""
    with pytest.raises(DeviceError, match="null"):
        provider_list(parse_device("cuda"), GPU_BUILD, stream=0)


IMAGES = TensorInfo("images", ("batch", 3, 640, 640), "float32")
FIXED = TensorInfo("images", (1, 3, 320, 320), "float32")


@pytest.mark.parametrize(("declared", "inputs", "shapes", "want"), [
    (TensorInfo("output0", (1, 116, 2100), "float32"), [FIXED],
     {"images": (1, 3, 320, 320)}, (1, 116, 2100)),
    (TensorInfo("output0", ("batch", 116, 8400), "float32"), [IMAGES],
     {"images": (8, 3, 640, 640)}, (8, 116, 8400)),
    (TensorInfo("output1", (None, 32, 160, 160), "float32"), [IMAGES],
     {"images": (4, 3, 640, 640)}, (4, 32, 160, 160)),
    (TensorInfo("da", ("N", 2, "H", "W"), "float32"),
     [TensorInfo("images", ("N", 3, "H", "W"), "float32")],
     {"images": (2, 3, 360, 640)}, (2, 2, 360, 640)),
])
def test_output_shapes_follow_the_inputs(declared, inputs, shapes, want) -> None:
    assert output_shape(declared, inputs, shapes) == want


def test_an_output_shape_that_depends_on_the_data_is_refused() -> None:
    nms = TensorInfo("selected", ("num_selected", 3), "int64")
    with pytest.raises(ModelError, match=r"selected \['num_selected', 3\]: dimension 0"):
        output_shape(nms, [FIXED], {"images": (1, 3, 320, 320)})


def test_element_types() -> None:
    assert element_type("float32") is np.float32 and element_type("float16") is np.float16
    assert element_type("int64") is np.int64 and element_type("uint8") is np.uint8
    with pytest.raises(ModelError, match="'tensor\\(string\\)'"):
        element_type("tensor(string)")
