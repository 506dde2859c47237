"""ConvInteger chains of dynamically quantized ONNX models → float Conv.

ONNX Runtime's dynamic quantization (``quantize_dynamic``) writes each convolution as::

    xq, xs, xz = DynamicQuantizeLinear(x)          # per-tensor, computed per frame
    y32 = ConvInteger(xq, w_int8, xz, w_zero)       # int32 accumulation
    y = Mul(Cast<float>(y32), Mul(xs, w_scale))     # back to float

onnx2torch has no converter for either integer op. The rewrite replaces the chain with
``y = Conv(x, (w_int8 - w_zero) * w_scale)``: the weights keep their int8 values (the
precision the model was quantized to), the activations stay float. That is not the
int8 arithmetic (which also rounds every activation to 8 bits), so outputs differ a
little from the quantized model's; detections agree (see tests/engines).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_FLOAT = 1  # onnx.TensorProto.FLOAT


def _producers(graph: Any) -> dict[str, Any]:
    return {o: n for n in graph.node for o in n.output}


def _consumers(graph: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _only(nodes: list[Any] | None, op: str) -> Any | None:
    return nodes[0] if nodes and len(nodes) == 1 and nodes[0].op_type == op else None


def _match(conv: Any, graph: Any, inits: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """(float input name, final Mul node, float weight array) when ``conv`` is a known chain."""
    import numpy as np
    from onnx import helper, numpy_helper

    prod, cons = _producers(graph), _consumers(graph)
    dql = prod.get(conv.input[0])
    if dql is None or dql.op_type != "DynamicQuantizeLinear" or conv.input[1] not in inits:
        return None
    if len(conv.input) > 2 and conv.input[2] and conv.input[2] != dql.output[2]:
        return None
    cast = _only(cons.get(conv.output[0]), "Cast")
    if cast is None or helper.get_attribute_value(cast.attribute[0]) != _FLOAT:
        return None
    final = _only(cons.get(cast.output[0]), "Mul")
    if final is None:
        return None
    scale = prod.get(final.input[1] if final.input[0] == cast.output[0] else final.input[0])
    if scale is None or scale.op_type != "Mul" or dql.output[1] not in scale.input:
        return None
    w_scale_name = scale.input[1] if scale.input[0] == dql.output[1] else scale.input[0]
    if w_scale_name not in inits:
        return None
    w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float32)
    zero = (numpy_helper.to_array(inits[conv.input[3]]).astype(np.float32)
            if len(conv.input) > 3 and conv.input[3] else np.zeros(1, np.float32))
    w_scale = numpy_helper.to_array(inits[w_scale_name]).astype(np.float32)
    per_channel = (1, w.shape[0])
    if zero.size not in per_channel or w_scale.size not in per_channel:
        return None
    shape = (-1,) + (1,) * (w.ndim - 1)
    weight = (w - zero.reshape(shape)) * w_scale.reshape(shape)
    return dql.input[0], final, weight.astype(np.float32)


def dequantize_conv_integer(model: Any) -> int:
    """Rewrite every recognised ConvInteger chain in place; returns how many.

    A ConvInteger in another arrangement is left alone (onnx2torch then reports it).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    done = 0
    for conv in [n for n in graph.node if n.op_type == "ConvInteger"]:
        found = _match(conv, graph, inits)
        if found is None:
            log.debug("ConvInteger %s: not a DynamicQuantizeLinear/Cast/Mul chain", conv.name)
            continue
        x, final, weight = found
        w_name = f"{conv.input[1]}_dequantized"
        if w_name not in inits:
            inits[w_name] = numpy_helper.from_array(weight, w_name)
            graph.initializer.append(inits[w_name])
        node = helper.make_node("Conv", [x, w_name], [final.output[0]],
                                name=f"{conv.name}_float")
        node.attribute.extend(conv.attribute)
        cast = next(n for n in graph.node if n.input and n.input[0] == conv.output[0])
        index = list(graph.node).index(final)
        graph.node.insert(index, node)
        for old in (final, cast, conv):
            graph.node.remove(old)
        done += 1
    if done:
        log.info("dequantized %d ConvInteger chain(s) to float Conv", done)
    return done
