"""Find the host synchronizations a converted module would make on a GPU, on a CPU.

A forward on CUDA waits for the device whenever the host reads a device tensor's values
(``.item()``, ``.tolist()``, ``bool()``, ``torch.nonzero``, shapes that depend on data)
or uploads host data with a blocking copy (``torch.tensor(..., device=...)``,
``.to(device)`` of a CPU tensor). The probe runs the module node by node twice: on real
CPU tensors (for the values), and on the *meta* device, where tensors have shapes but
no data. A node that reads device values fails on meta; an upload is seen by a
``TorchFunctionMode`` as a host tensor or list becoming a meta tensor. Host constants
that :func:`engines.pytorch.freeze.freeze` keeps inside :class:`HostArgs` stay on the
CPU, as they do on a GPU, so a frozen module shows exactly the syncs left in it.

A test tool and a diagnostic (``tools/bench.py`` prints it); it is not on the
inference path. On a real GPU, ``torch.cuda.set_sync_debug_mode("error")`` is the
ground truth (tests/engines marks that test gpu).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

_UPLOADS = {torch.tensor, torch.as_tensor, torch.Tensor.new_tensor, torch.Tensor.to,
            torch.Tensor.cuda, torch.Tensor.copy_}


@dataclass(frozen=True)
class SyncSite:
    """One node that synchronizes: ``kind`` is "read" (device → host) or "upload"."""

    node: str
    module: str
    kind: str
    detail: str


def _host_source(func: Any, args: tuple[Any, ...]) -> bool:
    if func in (torch.tensor, torch.as_tensor, torch.Tensor.new_tensor):
        data = args[1] if func is torch.Tensor.new_tensor else args[0]
        return not isinstance(data, torch.Tensor) or data.device.type == "cpu"
    src = args[1] if func is torch.Tensor.copy_ else args[0]
    return isinstance(src, torch.Tensor) and src.device.type == "cpu"


class _UploadCounter(TorchFunctionMode):
    """Counts host data turned into meta tensors (uploads, on a real device)."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if (func in _UPLOADS and isinstance(out, torch.Tensor) and out.device.type == "meta"
                and _host_source(func, args)):
            self.uploads.append(getattr(func, "__name__", str(func)))
        return out


def _to_meta(value: Any) -> Any:
    return tree_map(lambda v: torch.empty_like(v, device="meta")
                    if isinstance(v, torch.Tensor) else v, value)


def find_host_syncs(gm: fx.GraphModule, inputs: Sequence[torch.Tensor]) -> list[SyncSite]:
    """Every node of ``gm`` that would synchronize with the host; ``inputs`` on the CPU.

    Returns one :class:`SyncSite` per read or upload (a node can have several).
    """
    meta = copy.deepcopy(gm).to("meta")
    sites: list[SyncSite] = []
    real = fx.Interpreter(gm)
    env: dict[fx.Node, Any] = {}
    todo = iter(inputs)
    with torch.no_grad():
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                env[node] = next(todo)
                continue
            if node.op == "output":
                break
            args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda n: env[n])
            env[node] = getattr(real, node.op)(node.target, args, kwargs)
            if node.op == "get_attr":
                continue
            module = (type(meta.get_submodule(str(node.target))).__name__
                      if node.op == "call_module" else str(node.target))
            counter = _UploadCounter()
            try:
                with counter:
                    _run_meta(meta, node, _to_meta(args), _to_meta(kwargs))
            except (RuntimeError, NotImplementedError, TypeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                sites.append(SyncSite(node.name, module, "read", first[:120]))
            sites += [SyncSite(node.name, module, "upload", u) for u in counter.uploads]
    return sites


def _run_meta(meta: fx.GraphModule, node: fx.Node, args: Any, kwargs: Any) -> Any:
    if node.op == "call_module":
        return meta.get_submodule(str(node.target))(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)  # type: ignore[operator]
    self_obj, *rest = args
    return getattr(self_obj, str(node.target))(*rest, **kwargs)
