"""NV12 → BGR (or RGB) in torch, on whatever device the NV12 frame is (NVDEC's output).

The arithmetic is OpenCV's ``cvtColor(..., COLOR_YUV2BGR_NV12)`` (BT.601, limited range,
20-bit fixed point, each 2×2 block sharing its chroma sample), so a frame decoded on the
GPU is the CPU path's frame to the grey level. BT.709 and full-range streams use the same
fixed-point scheme with their own coefficients. A fixed handful of kernels per frame.
"""

from __future__ import annotations

import enum

import torch

SHIFT = 20
# OpenCV's ITUR_BT_601_* constants (modules/imgproc/src/color_yuv.simd.hpp)
_BT601_LIMITED = (1220542, 2116026, -409993, -852492, 1673527)  # CY, CUB, CUG, CVG, CVR


class YuvMatrix(enum.Enum):
    BT601 = "bt601"
    BT709 = "bt709"


def _coefficients(matrix: YuvMatrix, full_range: bool) -> tuple[int, int, int, int, int]:
    """(CY, CUB, CUG, CVG, CVR) in 2^20 units."""
    if matrix is YuvMatrix.BT601 and not full_range:
        return _BT601_LIMITED
    kr, kb = (0.299, 0.114) if matrix is YuvMatrix.BT601 else (0.2126, 0.0722)
    kg = 1 - kr - kb
    y_scale, c_scale = (1.0, 1.0) if full_range else (255 / 219, 255 / 224)
    one = 1 << SHIFT
    return (round(y_scale * one), round(2 * (1 - kb) * c_scale * one),
            round(-2 * kb * (1 - kb) / kg * c_scale * one),
            round(-2 * kr * (1 - kr) / kg * c_scale * one), round(2 * (1 - kr) * c_scale * one))


def nv12_to_bgr(nv12: torch.Tensor, matrix: YuvMatrix = YuvMatrix.BT601,
                full_range: bool = False, rgb: bool = False,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """(H·3/2, W) uint8 NV12 (the Y plane, then interleaved U,V rows; views with a row
    pitch are fine) → (H, W, 3) uint8 BGR, or RGB when ``rgb``; into ``out`` if given."""
    rows, w = int(nv12.shape[0]), int(nv12.shape[1])
    h = rows * 2 // 3
    if nv12.dim() != 2 or nv12.dtype != torch.uint8 or h * 3 != rows * 2 or h % 2 or w % 2:
        raise ValueError(f"nv12: expected an (H*3/2, W) uint8 tensor with H and W even, got "
                         f"{tuple(nv12.shape)} {nv12.dtype}")
    cy, cub, cug, cvg, cvr = _coefficients(matrix, full_range)
    dev = nv12.device
    # chroma weights per output channel, in output order
    cu = torch.tensor([cub, cug, 0], dtype=torch.int32, device=dev)
    cv = torch.tensor([0, cvg, cvr], dtype=torch.int32, device=dev)
    if rgb:
        cu, cv = cu.flip(0), cv.flip(0)
    uv = nv12[h:].reshape(h // 2, w // 2, 2).to(torch.int32) - 128
    chroma = uv[..., :1] * cu + uv[..., 1:] * cv + (1 << (SHIFT - 1))  # (h/2, w/2, 3)
    chroma = chroma[:, None, :, None].expand(h // 2, 2, w // 2, 2, 3).reshape(h, w, 3)
    y = nv12[:h].to(torch.int32)
    if not full_range:
        y = (y - 16).clamp_(min=0)
    value = torch.bitwise_right_shift(chroma.add_((y * cy)[..., None]), SHIFT).clamp_(0, 255)
    if out is None:
        return value.to(torch.uint8)
    return out.copy_(value)
