"""TensorRT runtime backend: an engine file run on a CUDA stream, buffers bound by name.

- Memory and streams come from torch (no pycuda): every input and output is a torch CUDA
  tensor allocated once, at the largest shape of the optimization profile, and bound with
  ``set_tensor_address(name, tensor.data_ptr())``. A smaller batch uses the front of the
  same buffers (contiguous), so addresses never change.
- Work is enqueued with ``execute_async_v3`` on a non-default ``torch.cuda.Stream`` (on the
  default stream TensorRT adds device-wide synchronizations). ``infer`` returns views of
  the output buffers without synchronizing: they are ready once the engine's ``stream``
  has run, and hold the result only until the next ``infer`` (``outputs_reused``).
- CUDA graphs: after one plain enqueue and a synchronize (flushes TensorRT's deferred
  initialisation), one enqueue is captured with ``torch.cuda.graph(g, stream=s)`` and each
  call replays it. A change of input shape recaptures. If capture fails (data-dependent
  shapes, e.g. NMS inside the engine; loops; anything that syncs or allocates), the error
  is logged once and the engine runs without a graph from then on.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.base import Backend, IoKind, TensorInfo
from engines.errors import EngineError, ModelError
from engines.tensorrt.dtypes import dtype_name, torch_dtype
from engines.tensorrt.gpu import require_cuda
from engines.tensorrt.header import metadata_strings, read_engine_file
from engines.tensorrt.network import logged_errors, make_logger
from engines.tensorrt.version import import_tensorrt, installed_version

if TYPE_CHECKING:
    import tensorrt as trt
    import torch

log = logging.getLogger(__name__)
MAX_GRAPHS = 8  # CUDA graphs kept, one per input shape (least recently used goes)


def _dims(shape: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


class TensorRTEngine:
    """One deserialized engine, one execution context, one stream.

    ``cuda_graph``: replay a captured CUDA graph per call (falls back to plain enqueues
    where capture fails).
    """

    def __init__(self, path: str | Path, device: str = "cuda:0", cuda_graph: bool = True) -> None:
        version = installed_version(import_tensorrt())  # or: what to install
        import tensorrt as trt
        import torch

        self._index = require_cuda(device)
        self.device = f"cuda:{self._index}"
        self.path = Path(path)
        file = read_engine_file(self.path)
        self.metadata: dict[str, str] = metadata_strings(file.metadata)
        self.backend = Backend.TENSORRT
        self.io = IoKind.TORCH
        self.outputs_reused = True
        self._logger = make_logger()
        self._graph: Any = None  # the graph of the current shapes, if any
        self._graph_shapes: tuple[tuple[int, ...], ...] | None = None
        # one graph per input shape (batch size), kept: a pipeline batching cameras swaps
        # between a few batch sizes, and a recapture synchronizes the host. Each graph was
        # captured with its shapes set on the context; buffers never move (allocated once
        # at the profile's largest shapes). Not verified on a GPU here.
        self._graphs: OrderedDict[tuple[tuple[int, ...], ...], Any] = OrderedDict()
        self._use_graph = cuda_graph
        with torch.cuda.device(self._index):
            self._runtime: trt.Runtime | None = trt.Runtime(self._logger)
            if "dla" in file.metadata:  # built for a DLA core (Ultralytics' convention)
                self._runtime.DLA_core = int(file.metadata["dla"])
            ours = file.metadata.get("maskstream")
            if isinstance(ours, dict) and ours.get("version_compatible"):
                # a version-compatible plan embeds its lean runtime (host code): TensorRT
                # loads it only when allowed; these are engines built by maskstream itself
                self._runtime.engine_host_code_allowed = True
            engine: trt.ICudaEngine | None = self._runtime.deserialize_cuda_engine(file.plan)
            if engine is None:
                raise ModelError(
                    f"{self.path}: TensorRT {version} cannot load this engine "
                    f"({logged_errors(self._logger, 3)}). Engines run only with the TensorRT "
                    "version and GPU type that built them: rebuild it here "
                    "(maskstream build-engine MODEL.onnx)")
            self._engine: trt.ICudaEngine | None = engine
            context: trt.IExecutionContext | None = engine.create_execution_context()
            if context is None:
                raise EngineError(f"{self.path}: could not create an execution context "
                                  "(out of GPU memory?)")
            self._context: trt.IExecutionContext | None = context
            self.stream = torch.cuda.Stream(device=self._index)
            self._bind_buffers(engine, context)

    def _bind_buffers(self, engine: trt.ICudaEngine, context: trt.IExecutionContext) -> None:
        """Allocate every I/O tensor at the profile's largest shape and bind it by name."""
        import tensorrt as trt
        import torch

        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        in_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        out_names = [n for n in names if n not in in_names]
        self._limits: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        inputs, outputs = [], []
        for n in in_names:
            shape = _dims(engine.get_tensor_shape(n))
            if any(d < 0 for d in shape):
                lo, _opt, hi = (_dims(s) for s in engine.get_tensor_profile_shape(n, 0))
            else:
                lo = hi = shape
            self._limits[n] = (lo, hi)
            if not context.set_input_shape(n, hi):
                raise EngineError(f"{self.path}: input {n} rejects its own largest shape {hi}")
            inputs.append(TensorInfo(n, tuple(None if d < 0 else d for d in shape),
                                     dtype_name(engine.get_tensor_dtype(n).name)))
        for n in out_names:
            shape = _dims(engine.get_tensor_shape(n))
            outputs.append(TensorInfo(n, tuple(None if d < 0 else d for d in shape),
                                      dtype_name(engine.get_tensor_dtype(n).name)))
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        first = self._limits[in_names[0]] if in_names else ((1,), (1,))
        self.batch_range = (first[0][0], first[1][0]) if first[0] else (1, 1)
        self._buffers: dict[str, torch.Tensor] = {}
        dev = torch.device(self.device)
        for n in names:
            shape = self._limits[n][1] if n in self._limits else _dims(context.get_tensor_shape(n))
            if any(d < 0 for d in shape):
                raise EngineError(f"{self.path}: output {n} has a data-dependent shape {shape}; "
                                  "engines with NMS inside are not supported")
            buf = torch.empty(shape, dtype=torch_dtype(engine.get_tensor_dtype(n).name),
                              device=dev)
            self._buffers[n] = buf
            if not context.set_tensor_address(n, buf.data_ptr()):
                raise EngineError(f"{self.path}: TensorRT refused the buffer for {n}")
        self._shapes = {n: self._limits[n][1] for n in in_names}
        self._out_shapes = {n: _dims(context.get_tensor_shape(n)) for n in out_names}

    def _set_shape(self, name: str, shape: tuple[int, ...]) -> None:
        lo, hi = self._limits[name]
        if len(shape) != len(hi) or any(s < a or s > b for s, a, b in zip(shape, lo, hi,
                                                                          strict=True)):
            raise EngineError(f"input {name}: shape {list(shape)} is outside the engine's "
                              f"profile {list(lo)}..{list(hi)}")
        if self._shapes[name] != shape:
            if not self._live_context().set_input_shape(name, shape):
                raise EngineError(f"input {name}: TensorRT rejected shape {list(shape)}")
            self._shapes[name] = shape

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run once. feeds: name → numpy array or torch tensor (any device; copied into the
        static input, converted to its dtype). Returns views of the static output buffers
        (torch, on ``device``), valid until the next call; ready when ``stream`` has run."""
        import torch

        context = self._live_context()
        missing = [t.name for t in self.inputs if t.name not in feeds]
        if missing:
            raise EngineError(f"missing input(s) {missing}; the engine takes "
                              f"{[t.name for t in self.inputs]}")
        # work the caller queued on its stream (a GPU preprocess) comes first
        self.stream.wait_stream(torch.cuda.current_stream(self._index))
        with torch.cuda.stream(self.stream):
            for name, value in feeds.items():
                if name not in self._limits:
                    raise EngineError(f"unknown input {name!r}; the engine takes "
                                      f"{[t.name for t in self.inputs]}")
                src = value if isinstance(value, torch.Tensor) else torch.from_numpy(
                    np.ascontiguousarray(value))
                shape = tuple(int(d) for d in src.shape)
                self._set_shape(name, shape)
                self._front(name, shape).copy_(src, non_blocking=True)
            shapes = tuple(self._shapes[t.name] for t in self.inputs)
            if shapes != self._graph_shapes:
                self._out_shapes = {t.name: _dims(context.get_tensor_shape(t.name))
                                    for t in self.outputs}
            self._run(shapes)
        return {t.name: self._front(t.name, self._out_shapes[t.name]) for t in self.outputs}

    def _front(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """The first ``prod(shape)`` elements of a static buffer, viewed as ``shape``."""
        buf = self._buffers[name]
        return buf.view(-1)[:int(np.prod(shape))].view(shape)

    def _live_context(self) -> trt.IExecutionContext:
        if self._context is None:
            raise EngineError(f"{self.path}: engine is closed")
        return self._context

    def _enqueue(self) -> None:
        if not self._live_context().execute_async_v3(self.stream.cuda_stream):
            raise EngineError(f"{self.path}: TensorRT execute_async_v3 failed: "
                              f"{logged_errors(self._logger, 3)}")

    def _run(self, shapes: tuple[tuple[int, ...], ...]) -> None:
        if not self._use_graph:
            self._enqueue()
            return
        if self._graph is None or shapes != self._graph_shapes:
            graph = self._graphs.get(shapes)
            if graph is None:
                graph = self._capture()
                if graph is None:
                    self._enqueue()
                    return
                self._graphs[shapes] = graph
                if len(self._graphs) > MAX_GRAPHS:
                    self._graphs.popitem(last=False)
            self._graphs.move_to_end(shapes)
            self._graph, self._graph_shapes = graph, shapes
        self._graph.replay()

    def _capture(self) -> Any:
        """A CUDA graph of one enqueue at the current shapes, or None where capture fails."""
        import torch

        self._graph = None
        self._enqueue()  # flush deferred initialisation before capturing
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: other pipeline threads may use CUDA while this one captures
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                self._enqueue()
        except (RuntimeError, EngineError) as exc:
            # Clearing the error: torch offers no cudaGetLastError; an invalidated capture
            # is not a sticky CUDA error, and synchronizing lets torch's next check consume
            # it. Not verified on a GPU here.
            self._use_graph = False
            try:
                self.stream.synchronize()
            except RuntimeError as again:
                log.debug("error after failed capture cleared: %s", again)
            log.warning("CUDA graph capture failed for %s (%s): running without a graph",
                        self.path.name, str(exc).splitlines()[0] if str(exc) else exc)
            return None
        log.debug("captured a CUDA graph for %s at %s", self.path.name, self._shapes)
        return graph

    @property
    def uses_cuda_graph(self) -> bool:
        return self._graph is not None

    def warmup(self) -> None:
        """One call on zeros at the largest batch: kernels load and the graph is captured."""
        import torch

        feeds = {t.name: torch.zeros(self._limits[t.name][1], device=self.device,
                                     dtype=self._buffers[t.name].dtype) for t in self.inputs}
        self.infer(feeds)
        self.stream.synchronize()

    def close(self) -> None:
        """Free the graph, context, engine, runtime and buffers (in that order)."""
        if getattr(self, "_engine", None) is None:
            return
        self.stream.synchronize()
        self._graph = None
        self._graphs.clear()
        self._context = None
        self._engine = None
        self._runtime = None
        self._buffers = {}

    def __enter__(self) -> TensorRTEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
