"""The configuration, one frozen dataclass per section (a YAML mapping each).

Every value is checked where it is made (``__post_init__``), with the key and the range in
the message; modes are enums (:mod:`pipeline.config.modes`). Nothing here imports torch or
stage code: the stages import their parameters from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.config.checks import in_range
from pipeline.config.modes import (
    Backend,
    DataPath,
    Overflow,
    Similarity,
    TrackerKind,
    Transport,
    VideoDecoder,
)
from pipeline.errors import ConfigError

# A ring slot can hold a decoded frame (6 MB at 1080p, 25 MB at 4K): more slots than this
# only buy memory and latency.
MAX_QUEUE_SIZE = 64
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class SourceConfig:
    uri: str = ""
    fps: float = 0.0  # image folders only: frames per second to stamp (0 → 30)
    decode_threads: int = 1  # FFmpeg decoder threads; 1 leaves the cores to inference
    decode: VideoDecoder = VideoDecoder.AUTO  # auto | cpu | nvdec (files and streams)

    def __post_init__(self) -> None:
        in_range("source.fps", self.fps, 0)
        in_range("source.decode_threads", self.decode_threads, 0, 64)


@dataclass(frozen=True)
class LiveParams:
    """Live sources: connecting, stalls and reconnecting with backoff."""

    transport: Transport = Transport.TCP  # RTSP lower transport
    open_timeout: float = 5.0  # seconds to connect and read the stream header
    read_timeout: float = 2.0  # a read silent this long is a stall → reconnect
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    first_connect_timeout: float = 5.0  # never connected this long after start → error

    def __post_init__(self) -> None:
        for key in ("open_timeout", "read_timeout", "backoff_initial", "backoff_max",
                    "first_connect_timeout"):
            in_range(f"live.{key}", getattr(self, key), 0, above=True)


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""
    backend: Backend = Backend.AUTO  # auto | onnxruntime | torch | tensorrt
    device: str = "auto"  # auto (CUDA where available, else CPU) | cpu | cuda | cuda:N
    workers: int = 0  # engine instances run side by side; 0 → one per core on CPU, 1 on GPU
    threads: int = 1  # intra-op threads per instance
    # frames per engine call, taken across sources; > 1 needs a model with a dynamic batch
    # (python -m tools.dynamic_batch). It pays on GPUs with several cameras; on CPUs the
    # worker pool already keeps the cores busy.
    batch: int = 1
    batch_timeout_ms: float = 10.0  # longest a frame waits for a batch to fill

    def __post_init__(self) -> None:
        if not _DEVICE.match(self.device):
            raise ConfigError(f"model.device: expected auto, cpu, cuda or cuda:N, got "
                              f"{self.device!r}")
        in_range("model.workers", self.workers, 0, 64)
        in_range("model.threads", self.threads, 1, 256)
        in_range("model.batch", self.batch, 1, 256)
        in_range("model.batch_timeout_ms", self.batch_timeout_ms, 0, 10_000)


@dataclass(frozen=True)
class DecodeParams:
    """Defaults are Ultralytics' predict defaults."""

    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    classes: tuple[int, ...] = ()  # keep only these class ids; empty keeps all
    agnostic: bool = False  # NMS across classes (Ultralytics' agnostic_nms)
    mask_threshold: float = 0.5
    # drop a detection when more than this share of its mask lies under the mask of a
    # higher-scoring one (of its class, or any class when agnostic); 1 keeps all, as
    # Ultralytics does
    mask_overlap: float = 1.0

    def __post_init__(self) -> None:
        for key in ("conf", "iou", "mask_overlap"):
            in_range(f"decode.{key}", getattr(self, key), 0.0, 1.0)
        in_range("decode.mask_threshold", self.mask_threshold, 0.0, 1.0, above=True, below=True)
        in_range("decode.max_det", self.max_det, 1)


@dataclass(frozen=True)
class ReidParams:
    """Re-identification across short gaps (pipeline/track/reid.py). ``track.reid: true``
    is short for ``{enabled: true}``."""

    enabled: bool = False
    window: float = 2.0  # seconds a lost track can be given back its id
    min_similarity: float = 0.8  # Bhattacharyya coefficient of colour histograms
    max_distance: float = 2.0  # in diagonals of the lost track's last box
    # hue × saturation × value bins; hue carries most of an object's identity, value the
    # least (lighting changes it)
    bins: tuple[int, ...] = (16, 4, 2)
    ema: float = 0.2  # weight of the newest frame in a track's signature
    # an untracked detection continues a track lost at most bridge_s seconds ago if it
    # covers the track's predicted box by at least bridge_iou and looks the same
    bridge_s: float = 0.2
    bridge_iou: float = 0.5
    # a continuing track whose detection matches its own signature less than this has
    # jumped onto another object if that object is a track that just vanished; 0 turns the
    # repair off
    hijack_sim: float = 0.7
    swap_gain: float = 0.2  # two tracks that each look more like the other, by this much
    # summed, are swapped back
    # a track that merely looks less like itself than min_similarity loses its detection
    # only to a lost track near it that looks clearly more like it (by take_margin)
    take_margin: float = 0.15
    # a lost track last seen touching the border (within edge_px) whose predicted box now
    # lies less than left_share inside the frame has left it and is not brought back
    left_share: float = 0.5
    edge_px: float = 2.0

    def __post_init__(self) -> None:
        for key in ("min_similarity", "bridge_iou", "hijack_sim", "ema", "left_share"):
            in_range(f"track.reid.{key}", getattr(self, key), 0.0, 1.0)
        for key in ("window", "max_distance", "bridge_s", "swap_gain", "take_margin"):
            in_range(f"track.reid.{key}", getattr(self, key), 0.0)
        if len(self.bins) != 3 or min(self.bins) < 1:
            raise ConfigError(f"track.reid.bins: expected three ints >= 1, got {list(self.bins)}")


@dataclass(frozen=True)
class TrackParams:
    """Defaults follow Ultralytics' bytetrack.yaml, not the package's (activation 0.7
    would leave most detections of a conf-0.25 detector untracked)."""

    kind: TrackerKind = TrackerKind.BYTETRACK
    lost_track_buffer: int = 30  # frames at 30 FPS (the trackers package scales it by rate)
    track_activation_threshold: float = 0.25
    high_conf_det_threshold: float = 0.25  # = decode.conf: every detection is "high"
    minimum_iou_threshold: float = 0.1
    minimum_consecutive_frames: int = 1
    similarity: Similarity = Similarity.IOU
    # classes tracked apart: each group its own tracker, so an id never passes from a person
    # to the car it walks in front of; e.g. [[car, truck, bus], [person]]. Classes in no
    # group share one more tracker. Empty: one tracker for every class.
    class_groups: tuple[tuple[str, ...], ...] = ()
    reid: ReidParams = field(default_factory=ReidParams)
    # seconds: timestamps that jump forward further than this (a gap in a recording, a
    # camera that reconnected) restart tracking; 0 never does. Timestamps that go back
    # (joined MPEG-TS segments) never stop it (pipeline/track/clock.py)
    max_gap: float = 2.0

    def __post_init__(self) -> None:
        for key in ("track_activation_threshold", "high_conf_det_threshold",
                    "minimum_iou_threshold"):
            in_range(f"track.{key}", getattr(self, key), 0.0, 1.0)
        in_range("track.lost_track_buffer", self.lost_track_buffer, 0)
        in_range("track.max_gap", self.max_gap, 0)
        in_range("track.minimum_consecutive_frames", self.minimum_consecutive_frames, 1)


@dataclass(frozen=True)
class RenderParams:
    masks: bool = True
    boxes: bool = True
    labels: bool = True
    trail_length: int = 30  # points per track; 0 turns trails off
    mask_alpha: float = 0.45
    class_map_alpha: float = 0.4
    line_width: int = 0  # box and trail thickness in pixels; 0: scale with the frame
    text_scale: float = 0.0  # OpenCV font scale of labels; 0: scale with the frame

    def __post_init__(self) -> None:
        in_range("render.mask_alpha", self.mask_alpha, 0.0, 1.0)
        in_range("render.class_map_alpha", self.class_map_alpha, 0.0, 1.0)
        in_range("render.trail_length", self.trail_length, 0, 10_000)
        in_range("render.line_width", self.line_width, 0, 64)
        in_range("render.text_scale", self.text_scale, 0.0, 20.0)


@dataclass(frozen=True)
class OutputConfig:
    video: str = ""  # out.mp4, rtsp://…, display:// or null://
    jsonl: str = ""
    more: tuple[str, ...] = ()  # further outputs of any kind (an mp4 and an mqtt:// at once)
    codec: str = "auto"  # auto: NVENC (files, where the GPU has one), else libx264, else mpeg4


@dataclass(frozen=True)
class RuntimeConfig:
    queue_size: int = 2  # capacity of each ring between stages
    # auto: block for files (nothing lost), drop_oldest for live sources; or one policy for
    # every ring
    overflow: Overflow = Overflow.AUTO
    # auto: the device data path when the engine runs on CUDA, else the host one; device
    # also runs on a CPU (torch), which is how the device code is tested
    datapath: DataPath = DataPath.AUTO

    def __post_init__(self) -> None:
        in_range("runtime.queue_size", self.queue_size, 1, MAX_QUEUE_SIZE)


@dataclass(frozen=True)
class MetricsConfig:
    port: int = 0  # Prometheus /metrics on this port while running; 0 → off
    host: str = "127.0.0.1"  # 0.0.0.0 to let other machines scrape it

    def __post_init__(self) -> None:
        in_range("metrics.port", self.port, 0, 65535)


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    sources: tuple[str, ...] = ()  # several sources: "uri" or "name=uri"; overrides source.uri
    live: LiveParams = field(default_factory=LiveParams)
    model: ModelConfig = field(default_factory=ModelConfig)
    decode: DecodeParams = field(default_factory=DecodeParams)
    track: TrackParams = field(default_factory=TrackParams)
    render: RenderParams = field(default_factory=RenderParams)
    output: OutputConfig = field(default_factory=OutputConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
