"""Freeze a converted model's shape arithmetic for one input shape (an FX pass).

ONNX exports compute shapes at run time: ``Shape → Gather → Concat → Reshape`` chains
on int64 tensors. onnx2torch keeps them as tensors on the model's device, so every
forward reads them back to the host (62 synchronizations per forward for YOLOv8n-seg
on an H200) and the module cannot be captured in a CUDA graph.

For a given input shape those values are constants. :func:`freeze` evaluates every node
that depends only on weights, constants and the input's *shape* (never its values) once,
and replaces it:

- where a module takes it as a shape-like argument (``shape``, ``split``, ``starts``,
  ``scales``, ``pads``… — :data:`HOST_PARAMS`, onnx2torch's parameter names), by a
  constant held on the host inside a :class:`HostArgs` wrapper, which ``.to(device)``
  leaves where it is, so reading it never touches the device;
- anywhere else, by a buffer on the model's device (it moves and casts with the model).

The frozen module takes inputs of that one shape only; it shares the original's weights.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import fx, nn
from torch.utils._pytree import tree_leaves, tree_map

log = logging.getLogger(__name__)

# onnx2torch's names for arguments that carry shapes, sizes, indices of axes or counts:
# read on the host by the module, so their constants live on the host
HOST_PARAMS = frozenset({"shape", "split", "starts", "ends", "axes", "steps", "roi", "scales",
                         "sizes", "pads", "constant_value", "repeats", "k", "start", "limit",
                         "delta"})


class HostArgs(nn.Module):
    """Calls ``inner`` with some arguments fixed to host (CPU) constants.

    The constants sit in plain dicts, not buffers: ``.to()``, ``.half()`` and
    ``state_dict`` do not see them, so they stay on the host in their own dtype.
    """

    def __init__(self, inner: nn.Module, by_position: dict[int, Any],
                 by_name: dict[str, Any]) -> None:
        super().__init__()
        self.inner = inner
        self.by_position = by_position
        self.by_name = by_name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        full = [self.by_position.get(i, a) for i, a in enumerate(args)]
        return self.inner(*full, **{**kwargs, **self.by_name})


def static_nodes(gm: fx.GraphModule) -> set[fx.Node]:
    """Nodes whose value depends only on weights, constants and input shapes."""
    static: set[fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        if node.op == "get_attr":
            static.add(node)
            continue
        if node.op == "call_module":
            kind = type(gm.get_submodule(str(node.target))).__name__
            if kind == "OnnxShape":  # only the input's shape, never its values
                static.add(node)
                continue
            if "Random" in kind:
                continue
        if node.op == "call_method" and node.target in ("size", "dim"):
            static.add(node)
            continue
        if all(i in static for i in node.all_input_nodes):
            static.add(node)
    return static


class _Recorder(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule, keep: set[fx.Node]) -> None:
        super().__init__(gm)
        self.keep = keep
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        if n in self.keep:
            self.values[n] = out
        return out


def _param_names(module: nn.Module) -> list[str]:
    return [p.name for p in inspect.signature(module.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _host(value: Any) -> Any:
    return value.detach().to("cpu") if isinstance(value, torch.Tensor) else value


def freeze(gm: fx.GraphModule, inputs: Sequence[torch.Tensor]) -> fx.GraphModule:
    """A copy of ``gm`` specialised to the shapes of ``inputs``, with its shape arithmetic
    replaced by constants (see the module docstring). ``inputs`` are example tensors on
    the model's device and in its dtype (their values do not matter)."""
    static = static_nodes(gm)
    boundary = {n for n in static if any(u not in static for u in n.users)}
    recorder = _Recorder(gm, boundary)
    with torch.no_grad():
        recorder.run(*inputs)
    graph = fx.Graph()
    remap: dict[fx.Node, fx.Node] = {}
    graph.output(graph.graph_copy(gm.graph, remap))
    remap[next(n for n in gm.graph.nodes if n.op == "output")] = next(
        n for n in graph.nodes if n.op == "output")
    root: dict[str, Any] = {str(n.target): (gm.get_submodule(str(n.target))
                                            if n.op == "call_module" else _fetch(gm, str(n.target)))
                            for n in gm.graph.nodes if n.op in ("call_module", "get_attr")}
    pinned = _Pinned(graph, root, remap, recorder.values)
    for old in gm.graph.nodes:
        if old in static or old.op == "placeholder":
            continue
        if any(i in boundary for i in old.all_input_nodes):
            pinned.rewrite(old, gm)
    frozen = fx.GraphModule(root, graph)
    frozen.graph.eliminate_dead_code()
    frozen.graph.lint()
    frozen.delete_all_unused_submodules()
    frozen.recompile()
    frozen.train(gm.training)
    log.debug("froze %d static nodes: %d values, %d host-argument modules", len(static),
              len(boundary), pinned.wrapped)
    return frozen


def _fetch(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _has_tensor(value: Any) -> bool:
    return any(isinstance(v, torch.Tensor) for v in tree_leaves(value))


class _Pinned:
    """Puts frozen values into the copied graph: host constants or device buffers."""

    def __init__(self, graph: fx.Graph, root: dict[str, Any], remap: dict[fx.Node, fx.Node],
                 values: dict[fx.Node, Any]) -> None:
        self.graph, self.root, self.remap, self.values = graph, root, remap, values
        self.buffers: dict[fx.Node, fx.Node] = {}
        self.wrapped = 0

    def rewrite(self, old: fx.Node, gm: fx.GraphModule) -> None:
        """Replace ``old``'s frozen inputs in its copy."""
        new = self.remap[old]
        names = (_param_names(gm.get_submodule(str(old.target))) if old.op == "call_module"
                 else [])
        args, kwargs = list(new.args), dict(new.kwargs)
        host_pos: dict[int, Any] = {}
        host_kw: dict[str, Any] = {}
        for i, a in enumerate(old.args):
            if isinstance(a, fx.Node) and a in self.values:
                if i < len(names) and names[i] in HOST_PARAMS:
                    host_pos[i], args[i] = tree_map(_host, self.values[a]), None
                else:
                    args[i] = self.device_value(a, new)
        for k, a in old.kwargs.items():
            if isinstance(a, fx.Node) and a in self.values:
                if old.op == "call_module" and k in HOST_PARAMS:
                    host_kw[k] = tree_map(_host, self.values[a])
                    del kwargs[k]
                else:
                    kwargs[k] = self.device_value(a, new)
        if old.op == "output":  # the output node's one argument is a tuple of nodes
            args = [fx.node.map_arg(old.args[0], lambda n: self.device_value(n, new)
                                    if n in self.values else self.remap[n])]
        new.args, new.kwargs = tuple(args), kwargs
        if host_pos or host_kw:
            name = f"frozen_host_{self.wrapped}"
            self.root[name] = HostArgs(self.root[str(old.target)], host_pos, host_kw)
            new.target = name
            self.wrapped += 1

    def device_value(self, old: fx.Node, user: fx.Node) -> Any:
        """A frozen value as a literal (ints, tuples of ints) or a device buffer."""
        value = self.values[old]
        if old.op == "get_attr":  # a weight already: keep reading it where it is
            return self.remap[old]
        if not _has_tensor(value):
            return value
        if not isinstance(value, torch.Tensor):  # a tuple of tensors: leave it computed
            log.debug("not freezing %s: its value is a %s of tensors", old.name,
                      type(value).__name__)
            return self.remap[old]
        if old not in self.buffers:
            name = f"frozen_buffer_{len(self.buffers)}"
            self.root[name] = value.detach().clone()
            with self.graph.inserting_before(user):
                self.buffers[old] = self.graph.get_attr(name)
        return self.buffers[old]
