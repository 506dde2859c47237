"""Every mode a config or flag can choose, as an enum (values are what YAML and the CLI
spell). They live with the config so that reading a config imports no stage code."""

from __future__ import annotations

import enum

from engines.base import Backend
from engines.spec import Resize
from pipeline.runtime.ring import Overflow

__all__ = ["Backend", "DataPath", "Overflow", "Resize", "Similarity", "TrackerKind", "Transport",
           "VideoDecoder"]


class TrackerKind(enum.Enum):
    BYTETRACK = "bytetrack"
    OCSORT = "ocsort"
    BOTSORT = "botsort"
    SORT = "sort"
    NONE = "none"


class Similarity(enum.Enum):
    """How a track's predicted box is compared with a detection (the trackers package's
    metrics): plain IoU, or variants that still score boxes that barely overlap and
    penalise distance (GIoU, DIoU, CIoU) or widen the boxes first (BIoU)."""

    IOU = "iou"
    GIOU = "giou"
    DIOU = "diou"
    CIOU = "ciou"
    BIOU = "biou"


class DataPath(enum.Enum):
    """Where a frame's pixels, masks and overlay live between decode and the outputs."""

    AUTO = "auto"  # the device when the engine runs on CUDA, else the host
    HOST = "host"  # numpy and OpenCV on the CPU
    DEVICE = "device"  # torch on the engine's device: one upload, one download a frame


class Transport(enum.Enum):
    """RTSP lower transport for live sources."""

    TCP = "tcp"
    UDP = "udp"


class VideoDecoder(enum.Enum):
    """Where video is decoded: ``cpu`` (FFmpeg through PyAV), ``nvdec`` (the GPU's decoder
    through PyNvVideoCodec: files and network streams; frames stay on the GPU), ``auto``
    (the CPU: NVDEC is chosen explicitly, since it takes only the codecs the GPU decodes
    and no image folders)."""

    AUTO = "auto"
    CPU = "cpu"
    NVDEC = "nvdec"
