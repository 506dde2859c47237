"""Decode-only throughput, for tools/bench.py: nothing but the decoder runs.

- ``bench_decode_libs``: PyAV and OpenCV straight, one thread and automatic threads.
- ``bench_sources``: maskstream's own sources (what the pipeline's capture stage does:
  frames with timestamps, BGR), ``sessions`` of them side by side in threads, each reading
  the whole clip: ``cpu`` (PyAV, one thread each) or ``nvdec`` (PyNvVideoCodec,
  frames left on the GPU; the clock stops after the GPU has finished).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2

__all__ = ["bench_decode_libs", "bench_sources"]


def bench_decode_libs(video: Path) -> dict[str, float]:
    """FPS of PyAV and OpenCV decoding the whole clip, by thread setting."""
    import av

    out = {}
    for threads in (1, 0):
        with av.open(str(video)) as c:
            s = c.streams.video[0]
            if threads != 1:
                s.thread_type = "AUTO"
            s.thread_count = threads
            t, n = time.perf_counter(), 0
            for f in c.decode(s):
                f.to_ndarray(format="bgr24")
                n += 1
            out[f"pyav threads={threads or 'auto'}"] = n / (time.perf_counter() - t)
        cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_N_THREADS, threads] if threads else [])
        t, n = time.perf_counter(), 0
        while cap.read()[0]:
            n += 1
        cap.release()
        out[f"opencv threads={threads or 'auto'}"] = n / (time.perf_counter() - t)
    return out


def _open(video: Path, decoder: str, sid: str):  # type: ignore[no-untyped-def]
    if decoder == "nvdec":
        from pipeline.io.nvdec import NvdecFileSource, require_nvdec

        require_nvdec()
        return NvdecFileSource(video, sid)
    from pipeline.io.sources import VideoFileSource

    return VideoFileSource(video, sid)


def bench_sources(video: Path, decoder: str, sessions: int) -> float:
    """Frames per second in all of ``sessions`` sources decoding ``video`` side by side."""
    import torch

    sources = [_open(video, decoder, f"s{i}") for i in range(sessions)]
    counts = [0] * sessions
    errors: list[BaseException] = []
    stop = threading.Event()

    def read(i: int) -> None:
        try:
            for _ in sources[i].frames(stop):
                counts[i] += 1
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(sessions)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if decoder == "nvdec":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    for s in sources:
        s.close()
    if errors:
        raise errors[0]
    return sum(counts) / wall
