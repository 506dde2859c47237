"""NV12 → BGR (or RGB) in torch, on whatever device the NV12 frame is (NVDEC's output).

The arithmetic is OpenCV's ``cvtColor(..., COLOR_YUV2BGR_NV12)`` (BT.601, limited range,
20-bit fixed point, each 2×2 block sharing its chroma sample), so a frame decoded on the
GPU is the CPU path's frame to the grey level. BT.709 and full-range streams use the same
fixed-point scheme with their own coefficients. A fixed handful of kernels per frame.
"""

from __future__ import annotations

import enum
import functools

import torch

from pipeline.errors import ConfigError

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


@functools.lru_cache(maxsize=32)
def _chroma_weights(device: torch.device, matrix: YuvMatrix, full_range: bool,
                    rgb: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """U and V weights per output channel (int32, on ``device``), made once: a tensor
    built from a list per frame would be a blocking upload."""
    _, cub, cug, cvg, cvr = _coefficients(matrix, full_range)
    cu, cv = [cub, cug, 0], [0, cvg, cvr]
    if rgb:
        cu, cv = cu[::-1], cv[::-1]
    return (torch.tensor(cu, dtype=torch.int32).to(device),
            torch.tensor(cv, dtype=torch.int32).to(device))


@functools.lru_cache(maxsize=8)
def _to_yuv_weights(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor(_TO_Y, dtype=torch.int32).to(device),
            torch.tensor([_TO_U, _TO_V], dtype=torch.int32).to(device))


def nv12_to_bgr(nv12: torch.Tensor, matrix: YuvMatrix = YuvMatrix.BT601,
                full_range: bool = False, rgb: bool = False,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """(H·3/2, W) uint8 NV12 (the Y plane, then interleaved U,V rows; views with a row
    pitch are fine) → (H, W, 3) uint8 BGR, or RGB when ``rgb``; into ``out`` if given."""
    rows, w = int(nv12.shape[0]), int(nv12.shape[1])
    h = rows * 2 // 3
    if nv12.dim() != 2 or nv12.dtype != torch.uint8 or h * 3 != rows * 2 or h % 2 or w % 2:
        raise ConfigError(f"nv12: expected an (H*3/2, W) uint8 tensor with H and W even, got "
                         f"{tuple(nv12.shape)} {nv12.dtype}")
    cy = _coefficients(matrix, full_range)[0]
    cu, cv = _chroma_weights(nv12.device, matrix, full_range, rgb)
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


# OpenCV's BGR → YUV 4:2:0 constants (ITUR_BT_601_C*: RGB → Y, U, V), 2^20 units
_TO_Y = (102760, 528482, 269484)  # B, G, R
_TO_U = (460324, -305135, -155188)
_TO_V = (-74448, -385875, 460324)


def bgr_to_nv12(bgr: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """(H, W, 3) uint8 BGR (H, W even) → (H·3/2, W) uint8 NV12, BT.601 limited range, with
    OpenCV's ``COLOR_BGR2YUV_I420`` arithmetic (chroma from each 2×2 block's top-left
    pixel), so an NVENC encode starts from the very YUV the CPU encoder gets."""
    h, w = int(bgr.shape[0]), int(bgr.shape[1])
    if bgr.dim() != 3 or bgr.shape[2] != 3 or bgr.dtype != torch.uint8 or h % 2 or w % 2:
        raise ConfigError(f"bgr: expected an (H, W, 3) uint8 tensor with H and W even, got "
                         f"{tuple(bgr.shape)} {bgr.dtype}")
    dev = bgr.device
    half = 1 << (SHIFT - 1)
    if out is None:
        out = torch.empty((h * 3 // 2, w), dtype=torch.uint8, device=dev)
    px = bgr.to(torch.int32)
    to_y, to_uv = _to_yuv_weights(dev)
    # multiply and sum, not matmul: CUDA has no integer matmul
    y = (px * to_y).sum(-1, dtype=torch.int32)
    out[:h].copy_(torch.bitwise_right_shift(y + (half + (16 << SHIFT)), SHIFT).clamp_(0, 255))
    corner = px[::2, ::2]
    uv = (corner[:, :, None, :] * to_uv).sum(-1, dtype=torch.int32)
    uv = torch.bitwise_right_shift(uv + (half + (128 << SHIFT)), SHIFT).clamp_(0, 255)
    out[h:].view(h // 2, w // 2, 2).copy_(uv)
    return out
