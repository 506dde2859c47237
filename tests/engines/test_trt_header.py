"""Engine files with and without Ultralytics' metadata header; dtype mapping; version parsing.

The plan bytes here are made up (no TensorRT on CI): what is under test is the framing.
"""

from __future__ import annotations

import json

import pytest
import torch

from engines.errors import BackendUnavailable, ModelError
from engines.tensorrt.dtypes import dtype_name, torch_dtype
from engines.tensorrt.header import (
    join_header,
    metadata_strings,
    read_engine_file,
    split_header,
)
from engines.tensorrt.version import parse_version

# a stand-in for a serialized plan: TensorRT plans start with a binary magic tag
FAKE_PLAN = bytes([0x66, 0x74, 0x72, 0x74, 0x00, 0x00, 0x00, 0x00]) + bytes(range(256)) * 4

META = {"names": {"0": "person", "1": "car"}, "imgsz": [320, 320], "stride": 32,
        "task": "segment", "batch": 1, "dla": "0"}


def ultralytics_bytes(meta: dict, plan: bytes) -> bytes:
    """Written the way Ultralytics' exporter writes a .engine (length, JSON, plan)."""
    text = json.dumps(meta)
    return len(text).to_bytes(4, byteorder="little", signed=True) + text.encode() + plan


def test_ultralytics_header_is_stripped(tmp_path) -> None:
    path = tmp_path / "m.engine"
    path.write_bytes(ultralytics_bytes(META, FAKE_PLAN))
    f = read_engine_file(path)
    assert f.plan == FAKE_PLAN
    assert f.metadata == META and f.has_header


def test_plain_plan_is_kept_whole() -> None:
    f = split_header(FAKE_PLAN)
    assert f.plan == FAKE_PLAN and f.metadata == {} and not f.has_header


@pytest.mark.parametrize("data", [
    (40).to_bytes(4, "little") + b"[1, 2, 3]" + bytes(40),        # JSON, but not an object
    (9).to_bytes(4, "little") + b"{not json" + FAKE_PLAN,          # starts like one, is not
    (10**9).to_bytes(4, "little") + b"{}" + FAKE_PLAN,             # length past the end
    (-5).to_bytes(4, "little", signed=True) + b"{}" + FAKE_PLAN,   # negative length
    (4).to_bytes(4, "little") + b"\xff\xfe{}" + FAKE_PLAN,         # not UTF-8
])
def test_things_that_only_look_like_a_header_stay_plan(data: bytes) -> None:
    f = split_header(data)
    assert f.plan == data and f.metadata == {}


def test_round_trip_and_errors(tmp_path) -> None:
    blob = join_header(FAKE_PLAN, META)
    assert split_header(blob).plan == FAKE_PLAN and split_header(blob).metadata == META
    assert join_header(FAKE_PLAN, {}) == FAKE_PLAN
    with pytest.raises(ModelError, match="too short"):
        split_header(b"ab")
    with pytest.raises(ModelError, match="no plan"):
        split_header(ultralytics_bytes(META, b""))
    with pytest.raises(ModelError, match="not found"):
        read_engine_file(tmp_path / "missing.engine")


def test_metadata_reads_like_onnx_metadata_in_model_spec() -> None:
    from engines.spec import _parse_names

    meta = metadata_strings(META)
    assert meta["task"] == "segment" and meta["imgsz"] == "[320, 320]"
    assert _parse_names(meta["names"]) == ("person", "car")


@pytest.mark.parametrize(("trt", "name", "torch_type"), [
    ("FLOAT", "float32", torch.float32), ("HALF", "float16", torch.float16),
    ("BF16", "bfloat16", torch.bfloat16), ("INT8", "int8", torch.int8),
    ("UINT8", "uint8", torch.uint8), ("INT32", "int32", torch.int32),
    ("INT64", "int64", torch.int64), ("BOOL", "bool", torch.bool),
    ("FP8", "float8_e4m3fn", torch.float8_e4m3fn),
])
def test_dtype_table(trt: str, name: str, torch_type: torch.dtype) -> None:
    assert dtype_name(trt) == name and torch_dtype(trt) == torch_type
    # element sizes agree, so a TensorRT binding and its torch buffer have the same bytes
    assert torch.empty(0, dtype=torch_type).element_size() in (1, 2, 4, 8)


@pytest.mark.parametrize("trt", ["INT4", "FP4", "E8M0", "float"])
def test_dtype_unknown(trt: str) -> None:
    with pytest.raises(ModelError, match=trt):
        dtype_name(trt)
    with pytest.raises(ModelError, match=trt):
        torch_dtype(trt)


@pytest.mark.parametrize(("text", "parts"), [
    ("10.13.0.35", (10, 13, 0)), ("11.4.1.2", (11, 4, 1)), ("10.3.0", (10, 3, 0)),
    ("10.12", (10, 12, 0)), ("11.0.0.post1", (11, 0, 0)),
])
def test_parse_version(text: str, parts: tuple[int, int, int]) -> None:
    v = parse_version(text)
    assert (v.major, v.minor, v.patch) == parts and str(v) == text


@pytest.mark.parametrize("text", ["", "ten", "8.6.1.6"])
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(BackendUnavailable):
        parse_version(text)
