"""Which flags and ONNX rewrite each TensorRT version, precision and DLA choice gets."""

from __future__ import annotations

import pytest

from engines.errors import BackendUnavailable, ModelError
from engines.tensorrt.plan import FP16_REWRITE, INT8_REWRITE, plan_build
from engines.tensorrt.precision import Precision
from engines.tensorrt.version import parse_version

FP32, FP16, INT8 = Precision.FP32, Precision.FP16, Precision.INT8


def plan(version: str, precision: Precision, **kw):
    p = plan_build(parse_version(version), precision, **kw)
    return (p.strongly_typed, p.network_flags, p.builder_flags, p.parser_flags, p.onnx_rewrite,
            p.device_type)


# (version, precision, kwargs) → (strong, network flags, builder flags, parser flags, rewrite, device)
CASES = [
    # TensorRT 11: always strongly typed, no STRONGLY_TYPED flag (deprecated, ignored), no
    # precision builder flags (removed): precision is the ONNX rewrite
    ("11.4.1.2", FP32, {}, (True, (), (), (), "", "GPU")),
    ("11.4.1.2", FP16, {}, (True, (), (), (), FP16_REWRITE, "GPU")),
    ("11.0.0", INT8, {}, (True, (), (), (), INT8_REWRITE, "GPU")),
    # TensorRT 10.12+ with ModelOpt: the same graphs, strong typing opted in
    ("10.13.0.35", FP16, {}, (True, ("STRONGLY_TYPED",), (), (), FP16_REWRITE, "GPU")),
    ("10.12.0", INT8, {}, (True, ("STRONGLY_TYPED",), (), (), INT8_REWRITE, "GPU")),
    # TensorRT 10.12+ without ModelOpt: FP16 by the builder flag
    ("10.13.0.35", FP16, {"have_modelopt": False}, (False, (), ("FP16",), (), "", "GPU")),
    # FP32 on 10: plain weakly typed network, nothing to rewrite
    ("10.13.0.35", FP32, {}, (False, (), (), (), "", "GPU")),
    # TensorRT 10.3 (JetPack 6): weakly typed; INT8 is a Q/DQ graph built with INT8 + FP16
    ("10.3.0.30", FP16, {}, (False, (), ("FP16",), (), "", "GPU")),
    ("10.3.0.30", INT8, {}, (False, (), ("INT8", "FP16"), (), INT8_REWRITE, "GPU")),
    ("10.13.0.35", INT8, {"strongly_typed": False},
     (False, (), ("INT8", "FP16"), (), INT8_REWRITE, "GPU")),
    # DLA on JetPack 6 (TensorRT 10.3): weakly typed, precision flag + GPU fallback
    ("10.3.0.30", FP16, {"dla_core": 0}, (False, (), ("FP16", "GPU_FALLBACK"), (), "", "DLA")),
    ("10.7.0", INT8, {"dla_core": 1},
     (False, (), ("INT8", "FP16", "GPU_FALLBACK"), (), INT8_REWRITE, "DLA")),
    # DLA on TensorRT 11.4.1+: strongly typed, parser adjusts the graph for DLA
    ("11.4.1.2", FP16, {"dla_core": 0},
     (True, (), ("GPU_FALLBACK",), ("ADJUST_FOR_DLA",), FP16_REWRITE, "DLA")),
]


@pytest.mark.parametrize(("version", "precision", "kw", "expected"), CASES)
def test_plan(version, precision, kw, expected) -> None:
    assert plan(version, precision, **kw) == expected


def test_dla_plan_carries_core_and_target() -> None:
    p = plan_build(parse_version("11.4.1"), INT8, dla_core=1)
    assert (p.dla_core, p.target_dla) == (1, True)
    p = plan_build(parse_version("10.3.0"), FP16, dla_core=0)
    assert (p.dla_core, p.target_dla) == (0, False)


@pytest.mark.parametrize(("version", "precision", "kw", "error", "match"), [
    ("11.4.1", FP16, {"have_modelopt": False}, BackendUnavailable, r"nvidia-modelopt\[onnx\]"),
    ("10.3.0", INT8, {"have_modelopt": False}, BackendUnavailable, r"INT8.*nvidia-modelopt"),
    ("11.0.0", FP16, {"strongly_typed": False}, BackendUnavailable, "strongly typed networks only"),
    ("10.11.0", FP16, {"strongly_typed": True}, BackendUnavailable, "10.12 or newer"),
    ("10.3.0", FP32, {"dla_core": 0}, ModelError, "FP16 or INT8 only"),
    ("10.3.0", FP16, {"dla_core": -1}, ModelError, "expected an int >= 0"),
    ("10.13.0", FP16, {"dla_core": 0}, BackendUnavailable, "10.7 was the last"),
    ("11.3.0", FP16, {"dla_core": 0}, BackendUnavailable, "11.4.1"),
    ("11.4.0", INT8, {"dla_core": 0}, BackendUnavailable, "JetPack 7.2.2"),
    ("10.3.0", FP16, {"dla_core": 0, "strongly_typed": True}, BackendUnavailable,
     "10.12 or newer"),
])
def test_plan_errors(version, precision, kw, error, match) -> None:
    with pytest.raises(error, match=match):
        plan_build(parse_version(version), precision, **kw)
