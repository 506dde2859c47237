"""Which backend runs a model here, and why.

``auto`` takes, for an ``.onnx`` file on a CUDA device: TensorRT > torch (CUDA graphs,
fp16) > ONNX Runtime's CUDA provider; on the CPU always ONNX Runtime (the fastest CPU
engine measured, see MEASURED.md). A TensorRT ``.engine`` / ``.plan`` file runs on
TensorRT only. An explicit backend or device that cannot work here fails at once with
one line naming what to install; the probes only look for packages (``find_spec``)
and ask torch / ONNX Runtime about CUDA, so that answer takes a second or two.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from engines.base import Backend
from engines.device import (
    CPU,
    Device,
    DeviceKind,
    check_cuda_index,
    cuda_device_count,
    parse_device,
)
from engines.errors import BackendUnavailable, DeviceError, ModelError
from engines.tensorrt.version import INSTALL_HINT as INSTALL_TENSORRT

log = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".engine", ".plan")

INSTALL_TORCH_CUDA = ("a CUDA build of torch (https://pytorch.org/get-started/locally; "
                      "NVIDIA's wheel on Jetson)")
INSTALL_ONNX2TORCH = ("pip install 'maskstream[torch]' and pip install --no-deps "
                      "onnx2torch==1.5.15")
INSTALL_ORT_GPU = "pip install onnxruntime-gpu (in place of onnxruntime)"


@dataclass(frozen=True)
class Choice:
    """The backend and device that will run a model, and the reason, for the log."""

    backend: Backend
    device: Device
    reason: str


@dataclass(frozen=True)
class Usability:
    """One row of :func:`usable_backends`: can ``backend`` run on ``device`` here?"""

    backend: Backend
    device: DeviceKind
    problem: str | None  # None: usable

    def describe(self) -> str:
        state = "usable" if self.problem is None else f"not usable: {self.problem}"
        return f"{self.backend.value:<12} {self.device.value:<5} {state}"


def _present(module: str) -> bool:
    """Importable, as a real package: a namespace package (a folder of type stubs, say)
    does not count."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent package missing, or a broken install
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def _cuda_problem() -> str | None:
    if cuda_device_count() > 0:
        return None
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU build; install {INSTALL_TORCH_CUDA}"
    return f"torch {torch.__version__} sees no CUDA device (no GPU, or no driver)"


def tensorrt_problem() -> str | None:
    """Why the TensorRT backend cannot run here, or None."""
    if not _present("tensorrt"):
        return f"the tensorrt package is not installed; {INSTALL_TENSORRT}"
    return _cuda_problem()


def torch_problem(cuda: bool) -> str | None:
    """Why the torch backend (ONNX converted by onnx2torch) cannot run here, or None."""
    missing = [m for m in ("onnx", "onnx2torch") if not _present(m)]
    if missing:
        return f"{' and '.join(missing)} not installed: {INSTALL_ONNX2TORCH}"
    return _cuda_problem() if cuda else None


def onnxruntime_cuda_problem() -> str | None:
    """Why ONNX Runtime cannot use CUDA here, or None. Its inputs and outputs are bound
    to torch CUDA tensors, so torch needs CUDA too."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    if "CUDAExecutionProvider" not in have:
        return f"onnxruntime has no CUDAExecutionProvider (has {', '.join(have)}): {INSTALL_ORT_GPU}"
    return _cuda_problem()


def _onnxruntime_problem(cuda: bool) -> str | None:
    return onnxruntime_cuda_problem() if cuda else None


def usable_backends() -> list[Usability]:
    """Every backend × device this build knows, and whether it is usable here."""
    return [
        Usability(Backend.TENSORRT, DeviceKind.CUDA, tensorrt_problem()),
        Usability(Backend.TORCH, DeviceKind.CUDA, torch_problem(cuda=True)),
        Usability(Backend.ONNXRUNTIME, DeviceKind.CUDA, onnxruntime_cuda_problem()),
        Usability(Backend.TORCH, DeviceKind.CPU, torch_problem(cuda=False)),
        Usability(Backend.ONNXRUNTIME, DeviceKind.CPU, None),
    ]


def _cuda(device: Device) -> Device:
    """``auto`` → ``cuda:0``; a CUDA index checked against the devices present."""
    out = Device(DeviceKind.CUDA, device.index if device.is_cuda else 0)
    check_cuda_index(out, cuda_device_count())
    return out


def _explicit(backend: Backend, device: Device) -> Choice:
    """The user named the backend: use it, on CUDA when asked or (auto) when it can."""
    if backend is Backend.TENSORRT:
        if device.kind is DeviceKind.CPU:
            raise DeviceError("backend tensorrt runs on CUDA devices only, got device cpu")
        problem = tensorrt_problem()
        if problem:
            raise BackendUnavailable(f"backend tensorrt: {problem}")
        return Choice(backend, _cuda(device), "asked for")
    problem_of = torch_problem if backend is Backend.TORCH else _onnxruntime_problem
    if device.kind is DeviceKind.CPU:
        problem = problem_of(False)
        if problem:
            raise BackendUnavailable(f"backend {backend.value}: {problem}")
        return Choice(backend, CPU, "asked for")
    cuda_problem = problem_of(True)
    if cuda_problem is None:
        return Choice(backend, _cuda(device), "asked for")
    if device.is_cuda:
        raise BackendUnavailable(f"backend {backend.value} on {device}: {cuda_problem}")
    problem = problem_of(False)
    if problem:
        raise BackendUnavailable(f"backend {backend.value}: {problem}")
    return Choice(backend, CPU, f"no CUDA for it ({cuda_problem})")


def _automatic(device: Device) -> Choice:
    """Fastest usable: TensorRT > torch CUDA > ONNX Runtime CUDA; CPU: ONNX Runtime."""
    if device.kind is DeviceKind.CPU:
        return Choice(Backend.ONNXRUNTIME, CPU, "device cpu: ONNX Runtime is the fastest "
                      "CPU backend measured")
    skipped: list[str] = []
    for backend, problem_of in ((Backend.TENSORRT, tensorrt_problem),
                                (Backend.TORCH, lambda: torch_problem(cuda=True)),
                                (Backend.ONNXRUNTIME, onnxruntime_cuda_problem)):
        problem = problem_of()
        if problem is None:
            why = "fastest usable on CUDA" + (f"; skipped {'; '.join(skipped)}" if skipped else "")
            return Choice(backend, _cuda(device), why)
        skipped.append(f"{backend.value}: {problem}")
    if device.is_cuda:
        raise BackendUnavailable(f"device {device}: no backend can use CUDA here "
                                 f"({'; '.join(skipped)})")
    return Choice(Backend.ONNXRUNTIME, CPU, "no CUDA backend usable here, ONNX Runtime on "
                  f"the CPU ({skipped[-1]})")


def choose_backend(path: str | Path, backend: Backend | str = Backend.AUTO,
                   device: str | Device = "auto") -> Choice:
    """The backend and device to run ``path`` with; logs the choice and the reason.

    Raises BackendUnavailable (what to install) or DeviceError before anything slow.
    """
    try:
        backend = Backend(backend)
    except ValueError:
        raise ModelError(f"backend: expected one of {', '.join(b.value for b in Backend)}, "
                         f"got {backend!r}") from None
    dev = parse_device(device)
    decided = backend is Backend.AUTO or dev.kind is DeviceKind.AUTO  # else: as asked
    if Path(path).suffix.lower() in ENGINE_SUFFIXES:
        if backend not in (Backend.AUTO, Backend.TENSORRT):
            raise ModelError(f"{Path(path).name}: a TensorRT engine file runs on the tensorrt "
                             f"backend only, got backend {backend.value}")
        backend = Backend.TENSORRT
    choice = _automatic(dev) if backend is Backend.AUTO else _explicit(backend, dev)
    log.log(logging.INFO if decided else logging.DEBUG, "backend %s on %s for %s: %s",
            choice.backend.value, choice.device, Path(path).name, choice.reason)
    return choice
