"""Converters onnx2torch 1.5.15 lacks for opsets 18–22, added to its registry once.

onnx2torch looks a converter up by the op's schema version (``since_version``). Most
newer schemas only widened the accepted element types (bfloat16, float8, int4); for
those the older converter is registered again under the new version, behind a check of
whatever the new schema did add (an attribute or input with another meaning). Split-18
moved the split sizes to an input (which onnx2torch's Split-13 converter already takes)
and added ``num_outputs``, converted here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from engines.pytorch.onnx2torch_import import import_onnx2torch


def _resize_problem(node: Any) -> str | None:
    a = node.attributes
    if a.get("antialias", 0):
        return "antialias=1 is not supported"
    if a.get("axes") is not None:
        return "the axes attribute is not supported"
    if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        return f"keep_aspect_ratio_policy={a['keep_aspect_ratio_policy']} is not supported"
    if a.get("coordinate_transformation_mode") == "half_pixel_symmetric":
        return "coordinate_transformation_mode=half_pixel_symmetric is not supported"
    return None


def _pad_problem(node: Any) -> str | None:
    if len(node.input_values) > 3 and node.input_values[3]:
        return "the axes input is not supported"
    if node.attributes.get("mode", "constant") == "wrap":
        return "mode=wrap is not supported"
    return None


def _pool_problem(node: Any) -> str | None:
    if any(d != 1 for d in node.attributes.get("dilations", [])):
        return "dilations other than 1 are not supported"
    return None


# (op, newer schema version) → (older version whose converter fits, check or None)
_SAME_AS: dict[tuple[str, int], tuple[int, Callable[[Any], str | None] | None]] = {
    ("Reshape", 19): (14, None), ("Reshape", 21): (14, None),
    ("Identity", 19): (16, None), ("Identity", 21): (16, None),
    ("Cast", 19): (13, None), ("Cast", 21): (13, None),
    ("Shape", 19): (15, None), ("Shape", 21): (15, None),
    ("Constant", 19): (13, None), ("Constant", 21): (13, None),
    ("Transpose", 21): (13, None), ("Unsqueeze", 21): (13, None), ("Flatten", 21): (13, None),
    ("Conv", 22): (11, None), ("ConvTranspose", 22): (11, None),
    ("MaxPool", 22): (12, None), ("Softplus", 22): (1, None),
    ("AveragePool", 19): (11, _pool_problem), ("AveragePool", 22): (11, _pool_problem),
    ("Resize", 18): (13, _resize_problem), ("Resize", 19): (13, _resize_problem),
    ("Pad", 18): (13, _pad_problem), ("Pad", 19): (13, _pad_problem),
    ("Pad", 21): (13, _pad_problem),
}


class SplitEven(nn.Module):
    """ONNX Split-18 with ``num_outputs``: chunks of ceil(n / k), the last one smaller.

    x: any tensor; returns a tuple of ``k`` tensors along ``axis``.
    """

    def __init__(self, axis: int, num_outputs: int) -> None:
        super().__init__()
        self.axis, self.num_outputs = axis, num_outputs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(x, math.ceil(x.shape[self.axis] / self.num_outputs), dim=self.axis)


def _checked(convert: Callable[[Any, Any], Any],
             problem: Callable[[Any], str | None] | None) -> Callable[[Any, Any], Any]:
    def converter(node: Any, graph: Any) -> Any:
        why = problem(node) if problem else None
        if why:
            raise NotImplementedError(f"{node.operation_type} (opset {node.domain or 'ai.onnx'}): {why}")
        return convert(node, graph)

    return converter


def _split18(node: Any, graph: Any) -> Any:
    from onnx2torch.node_converters.split import OnnxSplit13
    from onnx2torch.utils.common import OperationConverterResult, onnx_mapping_from_node

    axis = node.attributes.get("axis", 0)
    outputs = len(node.output_values)
    has_sizes = len(node.input_values) > 1 and bool(node.input_values[1])
    module: nn.Module = (OnnxSplit13(num_splits=outputs, axis=axis) if has_sizes
                         else SplitEven(axis, node.attributes.get("num_outputs", outputs)))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


def _missing(op: str, version: int) -> bool:
    from onnx2torch.node_converters.registry import get_converter

    try:
        get_converter(operation_type=op, version=version)
    except NotImplementedError:
        return True
    return False


def register() -> None:
    """Add the converters above where onnx2torch has none (idempotent)."""
    import_onnx2torch()
    from onnx2torch.node_converters.registry import add_converter, get_converter

    for (op, version), (older, problem) in _SAME_AS.items():
        if _missing(op, version):
            add_converter(operation_type=op, version=version)(
                _checked(get_converter(operation_type=op, version=older), problem))
    if _missing("Split", 18):
        add_converter(operation_type="Split", version=18)(_split18)


class TupleSlice(nn.Module):
    """onnx2torch's Slice, indexing with a tuple of slices.

    onnx2torch 1.5.15 indexes with a *list* of slices, which torch deprecates (a list
    index is to become a tensor index). Same arguments as ONNX Slice-10+:
    x, starts, ends, axes, steps (int64 tensors). Returns the slice of x.
    """

    def forward(self, input_tensor: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor,
                axes: torch.Tensor | None = None, steps: torch.Tensor | None = None,
                ) -> torch.Tensor:
        from onnx2torch.node_converters.slice import _get_slices

        flip, positive, negative = _get_slices(starts, ends, axes, steps)
        x = torch.flip(input_tensor, dims=flip) if flip else input_tensor
        if positive:
            x = x[tuple(positive)]
        if negative:
            x = x[tuple(negative)]
        return x


def replace_modules(gm: Any) -> int:
    """Swap onnx2torch modules that have a drop-in fix here (:class:`TupleSlice`)."""
    swapped = 0
    for node in gm.graph.nodes:
        if node.op == "call_module" and type(gm.get_submodule(node.target)).__name__ == "OnnxSlice":
            parent, _, name = str(node.target).rpartition(".")
            setattr(gm.get_submodule(parent) if parent else gm, name, TupleSlice())
            swapped += 1
    return swapped
