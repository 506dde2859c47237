"""ONNX file → torch module (onnx2torch), with the model's tensors and metadata."""

from __future__ import annotations

import logging
import operator
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import fx

from engines.base import TensorInfo
from engines.errors import BackendUnavailable, ModelError
from engines.select import INSTALL_ONNX2TORCH

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """A converted model: ``module(*inputs)`` returns the outputs in ONNX order."""

    module: fx.GraphModule
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: dict[str, str]


def _infos(values: Any, skip: set[str]) -> tuple[TensorInfo, ...]:
    from onnx import helper

    out = []
    for v in values:
        if v.name in skip:
            continue
        t = v.type.tensor_type
        shape = tuple(d.dim_value if d.dim_value > 0 else (d.dim_param or None)
                      for d in t.shape.dim)
        out.append(TensorInfo(v.name, shape, helper.tensor_dtype_to_np_dtype(t.elem_type).name))
    return tuple(out)


def _read(path: Path) -> Any:
    try:
        import onnx
    except ImportError:
        raise BackendUnavailable(f"backend torch needs onnx: {INSTALL_ONNX2TORCH}") from None
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises its own untyped errors
        raise ModelError(f"cannot load ONNX model {path}: {exc}") from None


def _return_in_onnx_order(gm: fx.GraphModule, names: list[str], path: Path) -> None:
    """Make ``gm`` return a tuple with one tensor per ONNX output, in the ONNX order
    (onnx2torch returns one value per producing node, a bare tensor for one output)."""
    producer: dict[str, tuple[fx.Node, int, int]] = {}
    for node in gm.graph.nodes:
        mapping = (getattr(gm.get_submodule(str(node.target)), "onnx_mapping", None)
                   if node.op == "call_module" else None)
        if mapping is not None:
            for i, name in enumerate(mapping.outputs):
                producer[name] = (node, i, len(mapping.outputs))
    missing = [n for n in names if n not in producer]
    if missing:
        raise ModelError(f"{path.name}: output(s) {missing} are not computed by any node "
                         "(an input or a constant passed through); use the onnxruntime backend")
    out = next(n for n in gm.graph.nodes if n.op == "output")
    with gm.graph.inserting_before(out):
        values = [node if count == 1 else gm.graph.call_function(operator.getitem, (node, i))
                  for node, i, count in (producer[n] for n in names)]
    out.args = (tuple(values),)
    gm.graph.eliminate_dead_code()
    gm.recompile()


def load_module(path: Path) -> Loaded:
    """Read, clean up and convert ``path``; ModelError names an op onnx2torch cannot take."""
    from engines.pytorch.converters import register, replace_modules
    from engines.pytorch.onnx2torch_import import import_onnx2torch
    from engines.pytorch.onnx_prep import prepare

    model = _read(path)
    inits = {t.name for t in model.graph.initializer}
    inputs = _infos(model.graph.input, inits)
    outputs = _infos(model.graph.output, set())
    metadata = {p.key: p.value for p in model.metadata_props}
    onnx2torch = import_onnx2torch()
    register()
    prepare(model)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = onnx2torch.convert(model, attach_onnx_mapping=True)
    except (NotImplementedError, KeyError, ValueError) as exc:
        raise ModelError(f"{path.name}: onnx2torch cannot convert it: {exc} "
                         "(use the onnxruntime or tensorrt backend)") from None
    for w in {str(w.message) for w in caught}:  # e.g. Resize modes; the tests compare outputs
        log.debug("onnx2torch: %s", w)
    _return_in_onnx_order(module, [o.name for o in outputs], path)
    replace_modules(module)
    module.eval()
    log.debug("converted %s: %d nodes", path.name, len(module.graph.nodes))
    return Loaded(module, inputs, outputs, metadata)
