"""The engine cache: a key that holds everything a built engine depends on, and a folder.

A TensorRT engine runs only under exactly the TensorRT version that built it (unless it
was built version-compatible), on the same platform, and on the same GPU architecture
(unless a hardware-compatibility level was set). So the key hashes: the ONNX bytes and the
precision recipe · the full TensorRT version · GPU name · compute capability · SM count ·
CUDA and driver major versions · platform and L4T release · the optimization profile ·
precision · builder optimization level · hardware-compatibility level · DLA core · the
version-compatible flag. Change any one and the engine is rebuilt; change none and the
cached file is reused.

Files are written to a temporary name in the same folder and renamed into place, so a
reader never sees half an engine and two builders racing leave one whole file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

L4T_RELEASE_FILE = Path("/etc/nv_tegra_release")
ENV_CACHE_DIR = "MASKSTREAM_ENGINE_CACHE"


def default_cache_dir() -> Path:
    """``$MASKSTREAM_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/maskstream/engines``, else
    ``~/.cache/maskstream/engines``."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "maskstream" / "engines"


@dataclass(frozen=True)
class DeviceFacts:
    """What an engine is tied to on the machine that builds it (see :func:`device_facts`)."""

    trt_version: str  # full: "10.13.0.35"
    gpu_name: str  # "NVIDIA H200", "Orin"
    compute_capability: tuple[int, int]  # (9, 0)
    sm_count: int
    cuda_major: int  # the CUDA runtime torch was built with
    driver_major: int  # 0 where unknown (Jetson: the L4T release says it)
    platform: str  # "Linux-x86_64", "Linux-aarch64"
    l4t_release: str = ""  # "R36 (release), REVISION: 4.3" on Jetson, else ""


@dataclass(frozen=True)
class BuildSettings:
    """The builder's choices that change the engine."""

    profile: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]
    precision: str  # "fp32" | "fp16" | "int8"
    optimization_level: int = 3
    hardware_compat: str = "NONE"  # HardwareCompatibilityLevel member name
    dla_core: int | None = None
    version_compatible: bool = False


def read_l4t_release(path: Path = L4T_RELEASE_FILE) -> str:
    """The L4T release from the first line of ``/etc/nv_tegra_release`` (Jetson), e.g.
    ``"R36 (release), REVISION: 4.3"``; ``""`` where the file does not exist."""
    try:
        first = path.read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return ""
    fields = [f.strip() for f in first.lstrip("# ").split(",")]
    return ", ".join(f for f in fields[:2] if f)


def _driver_major() -> int:
    """The NVIDIA kernel driver's major version from /proc (desktop Linux); 0 if unknown."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return 0
    for word in text.split():
        head = word.split(".")[0]
        if "." in word and head.isdigit() and int(head) >= 100:
            return int(head)
    return 0


def device_facts(device_index: int, trt_version: str) -> DeviceFacts:
    """Facts about CUDA device ``device_index`` (needs torch with CUDA)."""
    import torch

    props = torch.cuda.get_device_properties(device_index)
    cuda = torch.version.cuda or "0"
    return DeviceFacts(
        trt_version=trt_version, gpu_name=str(props.name),
        compute_capability=(int(props.major), int(props.minor)),
        sm_count=int(props.multi_processor_count), cuda_major=int(cuda.split(".")[0]),
        driver_major=_driver_major(), platform=f"{platform.system()}-{platform.machine()}",
        l4t_release=read_l4t_release(),
    )


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(onnx_sha256: str, recipe: str, facts: DeviceFacts, settings: BuildSettings) -> str:
    """A hex key over everything an engine depends on. ``recipe`` describes how the ONNX
    was rewritten before the build (precision pass, calibration data, tool versions)."""
    doc = {
        "onnx_and_recipe": hashlib.sha256(f"{onnx_sha256}\n{recipe}".encode()).hexdigest(),
        "device": dataclasses.asdict(facts),
        "settings": dataclasses.asdict(settings),
    }
    text = json.dumps(doc, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def timing_cache_name(facts: DeviceFacts) -> str:
    """Timing caches are per device and TensorRT version (another device's is rejected)."""
    text = json.dumps(dataclasses.asdict(facts), sort_keys=True, default=list)
    return f"timing-{hashlib.sha256(text.encode()).hexdigest()[:16]}.cache"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class EngineCache:
    """Built engines as ``<root>/<stem>-<key>.engine``, and timing caches beside them."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def path_for(self, key: str, stem: str = "model") -> Path:
        return self.root / f"{stem}-{key}.engine"

    def lookup(self, key: str, stem: str = "model") -> Path | None:
        path = self.path_for(key, stem)
        if path.is_file() and path.stat().st_size > 0:
            log.debug("engine cache hit: %s", path)
            return path
        return None

    def store(self, key: str, data: bytes, stem: str = "model") -> Path:
        path = self.path_for(key, stem)
        atomic_write(path, data)
        log.info("engine cached at %s (%.1f MB)", path, len(data) / 1e6)
        return path

    def timing_cache_path(self, facts: DeviceFacts) -> Path:
        return self.root / timing_cache_name(facts)
