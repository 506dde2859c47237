"""Which CUDA device: parse ``cuda`` / ``cuda:N`` and check that torch can use it.

torch provides device memory and streams for TensorRT here (no pycuda, so no CUDA context
is created at import time: torch creates it lazily, on the first CUDA call).
"""

from __future__ import annotations

from engines.errors import BackendUnavailable, ModelError


def cuda_index(device: str) -> int:
    """``"cuda"`` → 0, ``"cuda:1"`` → 1; anything else is a ModelError."""
    head, _, tail = device.partition(":")
    if head != "cuda" or (tail and not tail.isdigit()):
        raise ModelError(f"device: TensorRT runs on cuda or cuda:N, got {device!r}")
    return int(tail or 0)


def require_cuda(device: str) -> int:
    """The index of ``device``, after checking torch has CUDA and that device exists."""
    index = cuda_index(device)
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable("TensorRT needs a CUDA GPU, and torch sees none "
                                 f"(torch {torch.__version__}: a CUDA build of torch is needed)")
    if index >= torch.cuda.device_count():
        raise BackendUnavailable(f"device {device}: only {torch.cuda.device_count()} CUDA "
                                 "device(s) present")
    return index
