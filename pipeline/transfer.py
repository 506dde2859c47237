"""Host ↔ device copies without hidden synchronizations, and pooled host frames.

- :func:`upload` copies a small CPU array to the device through pinned memory with
  ``non_blocking=True``: a copy from pageable memory, or a blocking one, makes the host
  wait for the stream (``torch.cuda.set_sync_debug_mode`` reports it). torch's caching
  host allocator recycles the pinned block once the copy that used it has run.
- :class:`HostFramePool` hands out H×W×3 uint8 host arrays for rendered frames, pinned
  where CUDA exists, reused once nothing outside the pool refers to them any more (a frame
  dropped by every sink frees its slot). So the steady state allocates no frame-sized
  host memory, and a download is one DMA into page-locked memory.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np
import torch

from pipeline.lru import Lru

log = logging.getLogger(__name__)


def is_cuda(device: torch.device | str) -> bool:
    return torch.device(device).type == "cuda"


def upload(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """``array`` (any shape, numeric dtype) as a tensor on ``device``; never syncs the host.

    On the CPU the tensor shares ``array``'s memory; the caller must not change the array
    afterwards.
    """
    t = torch.from_numpy(np.ascontiguousarray(array))
    if not is_cuda(device):
        return t
    return t.pin_memory().to(device, non_blocking=True)


class HostFramePool:
    """Reusable host frames of one shape (H×W×3 uint8), pinned when ``pin`` is true.

    ``acquire`` returns a numpy array; its slot is free again once no reference to that
    array (or a view of it) is held outside the pool. Up to ``size`` slots are kept; past
    that a frame is allocated unpooled and a warning is logged once.
    """

    def __init__(self, shape: tuple[int, ...], pin: bool, size: int = 16) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.pin = pin
        self.size = size
        self._slots: list[tuple[torch.Tensor, np.ndarray]] = []
        self._warned = False

    def _free(self, array: np.ndarray) -> bool:
        # the pool's list and getrefcount's argument are the only references left
        return sys.getrefcount(array) <= 3

    def acquire(self) -> tuple[torch.Tensor, np.ndarray]:
        """A free slot: the tensor (pinned where CUDA) and the numpy array over it."""
        for slot in self._slots:
            if self._free(slot[1]):
                return slot
        tensor = torch.empty(self.shape, dtype=torch.uint8, pin_memory=self.pin)
        slot = (tensor, tensor.numpy())
        if len(self._slots) < self.size:
            self._slots.append(slot)
        elif not self._warned:
            self._warned = True
            log.warning("all %d pooled %s frames are still held downstream; allocating "
                        "unpooled frames", self.size, "x".join(map(str, self.shape)))
        return slot


class PoolSet:
    """One :class:`HostFramePool` per frame shape, for the last few shapes seen (a few
    sources of a few sizes; a folder of images of every size keeps only the last ones)."""

    def __init__(self, pin: bool, size: int = 16) -> None:
        self.pin = pin
        self.size = size
        self._pools: Lru[tuple[int, ...], HostFramePool] = Lru()

    def acquire(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray]:
        return self._pools.get(shape, lambda: HostFramePool(shape, self.pin, self.size)).acquire()


class Download:
    """A device → host copy in flight. ``wait()`` blocks until it has landed (on CUDA, on
    an event recorded after the copy: the one host synchronization of a rendered frame)
    and returns the host array."""

    def __init__(self, array: np.ndarray, event: Any = None) -> None:
        self.array = array
        self._event = event

    def wait(self) -> np.ndarray:
        # several outputs (threads) may wait on one frame: read the event once
        event, self._event = self._event, None
        if event is not None:
            event.synchronize()
        return self.array


def download(src: torch.Tensor, pools: PoolSet) -> Download:
    """Start copying ``src`` (uint8, any device) into a pooled host array."""
    tensor, array = pools.acquire(tuple(src.shape))
    if not src.is_cuda:
        tensor.copy_(src)
        return Download(array)
    tensor.copy_(src, non_blocking=True)
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(src.device))
    return Download(array, event)
