"""Optimization-profile shapes for a TensorRT build, from the ONNX inputs and ``--batch``.

TensorRT needs, for every input with a dynamic dimension, the smallest, typical and
largest shape it will be given (``IOptimizationProfile.set_shape(name, min, opt, max)``).
maskstream varies only the batch: one to ``batch`` frames per call. Image height and width
are taken from the model, or from its ``imgsz`` metadata where the export left them dynamic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engines.errors import ModelError

Dim = int | str | None  # a fixed size, a symbolic name, or unknown


@dataclass(frozen=True)
class OnnxInput:
    name: str
    shape: tuple[Dim, ...]
    elem_type: int  # onnx.TensorProto data type (1 = FLOAT, 10 = FLOAT16)


@dataclass(frozen=True)
class ProfileShape:
    """One input's min / opt / max shapes."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def as_key(self) -> tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return (self.name, self.min, self.opt, self.max)


def read_onnx_inputs(path: str | Path) -> tuple[OnnxInput, ...]:
    """The graph inputs of an ONNX file (initializers listed as inputs are left out)."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable ONNX model ({exc})") from None
    inits = {i.name for i in model.graph.initializer}
    out = []
    for i in model.graph.input:
        if i.name in inits:
            continue
        tt = i.type.tensor_type
        dims: list[Dim] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param:
                dims.append(str(d.dim_param))
            else:
                dims.append(None)
        out.append(OnnxInput(i.name, tuple(dims), int(tt.elem_type)))
    if not out:
        raise ModelError(f"{path}: the ONNX graph has no inputs")
    return tuple(out)


def _fixed(d: Dim) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


def batch_profiles(inputs: tuple[OnnxInput, ...], batch: int = 1,
                   imgsz: tuple[int, int] | None = None) -> tuple[ProfileShape, ...]:
    """min / opt / max for each input: batch 1..``batch`` (opt = ``batch``) where the batch
    dimension is dynamic; the fixed batch where it is not (then ``batch`` must equal it).

    ``imgsz`` (height, width) fills dynamic spatial dimensions of 4-D image inputs.
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ModelError(f"batch: expected an int >= 1, got {batch!r}")
    profiles = []
    for inp in inputs:
        if not inp.shape:
            raise ModelError(f"input {inp.name}: scalar inputs are not supported "
                             "(expected [B, C, H, W])")
        rest: list[int] = []
        for axis, d in enumerate(inp.shape[1:], start=1):
            size = _fixed(d)
            if size is None and imgsz is not None and len(inp.shape) == 4 and axis in (2, 3):
                size = imgsz[axis - 2]
            if size is None:
                what = "height" if axis == 2 else "width" if axis == 3 else f"dimension {axis}"
                raise ModelError(
                    f"input {inp.name} {list(inp.shape)}: {what} is dynamic ({d!r}); give the "
                    "image size (imgsz) or export the model with a fixed size")
            rest.append(size)
        fixed_batch = _fixed(inp.shape[0])
        if fixed_batch is not None:
            if batch != fixed_batch:
                raise ModelError(
                    f"input {inp.name} {list(inp.shape)} has a fixed batch of {fixed_batch}, "
                    f"got batch {batch}: re-export with a dynamic batch "
                    "(python -m tools.dynamic_batch) or use batch " f"{fixed_batch}")
            lo = hi = fixed_batch
        else:
            lo, hi = 1, batch
        profiles.append(ProfileShape(inp.name, (lo, *rest), (hi, *rest), (hi, *rest)))
    return tuple(profiles)
