"""ONNX graph clean-ups that let onnx2torch take real exports.

- Identity nodes whose input is an initializer (Ultralytics' opset-18 exports alias
  shared weights this way) are inlined: onnx2torch looks convolution weights up among
  the initializers by name and fails on the alias.
- Constant nodes become initializers, and nodes whose inputs are all initializers are
  computed once (ONNX's reference evaluator), so converters see plain weights.
- Nodes whose outputs nobody uses are dropped.

ConvInteger rewriting is in :mod:`engines.pytorch.dequantize`. All functions take and
return an ``onnx.ModelProto`` (edited in place) and import onnx lazily.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# folding a node whose output is larger than this would only bloat the model
_FOLD_MAX_ELEMENTS = 1 << 22
# ops that must not be folded: random, or with effects beyond their outputs
_NO_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
            "Multinomial", "Bernoulli", "DynamicQuantizeLinear", "If", "Loop", "Scan"}


def rename_input(graph: Any, old: str, new: str) -> None:
    """Every node that reads ``old`` reads ``new`` instead."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def inline_identity_initializers(model: Any) -> int:
    """Drop ``Identity(initializer)`` nodes, pointing their readers at the initializer.

    Returns the number of nodes removed. An Identity that feeds a graph output stays.
    """
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    doomed = [n for n in graph.node
              if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs]
    for node in doomed:
        rename_input(graph, node.output[0], node.input[0])
        graph.node.remove(node)
    return len(doomed)


def constants_to_initializers(model: Any) -> int:
    """Turn ``Constant`` nodes holding a tensor or numbers into initializers."""
    from onnx import helper, numpy_helper

    graph = model.graph
    outputs = {o.name for o in graph.output}
    done = 0
    for node in list(graph.node):
        if node.op_type != "Constant" or len(node.attribute) != 1 or node.output[0] in outputs:
            continue
        attr = node.attribute[0]
        if attr.name == "value":
            tensor = attr.t
        elif attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            import numpy as np

            value = helper.get_attribute_value(attr)
            dtype = np.float32 if "float" in attr.name else np.int64
            tensor = numpy_helper.from_array(np.asarray(value, dtype))
        else:  # strings, sparse tensors: leave them to onnx2torch
            continue
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        graph.node.remove(node)
        done += 1
    return done


def fold_constant_nodes(model: Any) -> int:
    """Compute, once, every node whose inputs are all initializers; returns how many.

    Uses ``onnx.reference.ReferenceEvaluator`` node by node; a node it cannot evaluate
    is left as it is (logged at debug level).
    """
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    opset = {o.domain: o.version for o in model.opset_import}.get("", 0)
    folded = 0
    for node in list(graph.node):
        if (node.op_type in _NO_FOLD or node.domain not in ("", "ai.onnx") or not node.input
                or not all(i in inits for i in node.input if i)
                or any(o in outputs for o in node.output)):
            continue
        try:
            feeds = {i: numpy_helper.to_array(inits[i]) for i in node.input if i}
            results = ReferenceEvaluator(node, opsets={"": opset}).run(None, feeds)
        except Exception as exc:  # noqa: BLE001 - the evaluator raises anything; skip the node
            log.debug("cannot fold %s %s: %s", node.op_type, node.name, exc)
            continue
        if any(getattr(r, "size", _FOLD_MAX_ELEMENTS + 1) > _FOLD_MAX_ELEMENTS for r in results):
            continue
        for name, value in zip(node.output, results, strict=True):
            tensor = numpy_helper.from_array(value, name)
            graph.initializer.append(tensor)
            inits[name] = tensor
        graph.node.remove(node)
        folded += 1
    return folded


def drop_dead_nodes(model: Any) -> int:
    """Remove nodes (and initializers) that no graph output depends on."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    dropped = len(graph.node) - len(keep)
    if dropped:
        del graph.node[:]
        graph.node.extend(reversed(keep))
    unused = [t for t in graph.initializer if t.name not in needed]
    for t in unused:
        graph.initializer.remove(t)
    return dropped


def prepare(model: Any) -> Any:
    """All clean-ups above, in order; returns ``model`` (edited in place)."""
    from engines.pytorch.dequantize import dequantize_conv_integer

    steps = {
        "identity": inline_identity_initializers(model),
        "constants": constants_to_initializers(model),
        "convinteger": dequantize_conv_integer(model),
    }
    steps["dead"] = drop_dead_nodes(model)
    steps["folded"] = fold_constant_nodes(model)
    steps["dead"] += drop_dead_nodes(model)
    log.debug("onnx prepared: %s", ", ".join(f"{k} {v}" for k, v in steps.items()))
    return model
