"""TensorRT data types → torch dtypes, by the enum member's name (``DataType.HALF.name``).

Pure: takes names, so it is tested without TensorRT. The engine's buffers are torch
tensors, so every I/O tensor needs a torch dtype of the same element size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engines.errors import ModelError

if TYPE_CHECKING:
    import torch

# TensorRT DataType member → (torch dtype attribute, numpy-style name for TensorInfo)
_TABLE: dict[str, tuple[str, str]] = {
    "FLOAT": ("float32", "float32"),
    "HALF": ("float16", "float16"),
    "BF16": ("bfloat16", "bfloat16"),
    "INT8": ("int8", "int8"),
    "UINT8": ("uint8", "uint8"),
    "INT32": ("int32", "int32"),
    "INT64": ("int64", "int64"),
    "BOOL": ("bool", "bool"),
    "FP8": ("float8_e4m3fn", "float8_e4m3fn"),  # TensorRT's FP8 is E4M3
}
# INT4 / FP4 / E8M0 are packed or scale-only types: never an engine's image input or output


def dtype_name(trt_name: str) -> str:
    """The dtype name for TensorInfo (``"HALF"`` → ``"float16"``)."""
    try:
        return _TABLE[trt_name][1]
    except KeyError:
        raise ModelError(f"TensorRT I/O data type {trt_name}: expected one of "
                         f"{', '.join(_TABLE)}") from None


def torch_dtype(trt_name: str) -> torch.dtype:
    """The torch dtype of a TensorRT I/O data type (``"FLOAT"`` → ``torch.float32``)."""
    import torch

    try:
        return getattr(torch, _TABLE[trt_name][0])  # type: ignore[no-any-return]
    except KeyError:
        raise ModelError(f"TensorRT I/O data type {trt_name}: expected one of "
                         f"{', '.join(_TABLE)}") from None
