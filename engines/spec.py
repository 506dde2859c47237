"""What a model is, read from the model itself: input, task, output layout, class names.

Recognised output layouts (B = batch, nm = mask coefficients, nc = classes):

- ``yolov8``: YOLOv8 / YOLO11 seg, ``[B, 4+nc+nm, N]`` + prototypes ``[B, nm, h, w]``
- ``yolov5``: YOLOv5 seg, ``[B, N, 5+nc+nm]`` (with objectness) + prototypes
- ``end2end``: NMS-free exports, ``[B, K, 6+nm]`` (x1, y1, x2, y2, score, class, coefs)
  + prototypes
- ``semantic``: one or more ``[B, C, H, W]`` heads at the input size (argmax over C,
  C = 1 is a sigmoid)

Anything else is a :class:`ModelError` that names the shapes found.
"""

from __future__ import annotations

import ast
import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engines.base import Engine, TensorInfo
from engines.errors import ModelError


class Task(enum.Enum):
    INSTANCE = "instance"
    SEMANTIC = "semantic"


class Layout(enum.Enum):
    YOLOV8 = "yolov8"
    YOLOV5 = "yolov5"
    END2END = "end2end"
    SEMANTIC = "semantic"


class Resize(enum.Enum):
    LETTERBOX = "letterbox"  # keep aspect, pad with gray 114, centred (Ultralytics)
    STRETCH = "stretch"  # plain resize to the input size


@dataclass(frozen=True)
class ModelSpec:
    """Everything the pipeline needs to know about a model."""

    path: str
    task: Task
    layout: Layout
    input_name: str
    input_wh: tuple[int, int]
    resize: Resize
    rgb: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...]
    # instance models
    preds_name: str = ""
    protos_name: str = ""
    num_masks: int = 0
    # semantic models: head name → class names
    heads: tuple[tuple[str, tuple[str, ...]], ...] = ()
    batch: int | None = 1  # the input's fixed batch size; None when it is dynamic

    def describe(self) -> str:
        lines = [
            f"model:   {self.path}",
            f"task:    {self.task.value} ({self.layout.value} layout)",
            f"input:   {self.input_name} {self.batch or 'N'}x3x{self.input_wh[1]}x{self.input_wh[0]} "
            f"({'RGB' if self.rgb else 'BGR'}, mean {list(self.mean)}, std {list(self.std)}, "
            f"{self.resize.value})",
        ]
        if self.task is Task.INSTANCE:
            lines.append(f"outputs: {self.preds_name} (predictions), {self.protos_name} "
                         f"(prototypes, {self.num_masks} masks)")
            shown = ", ".join(self.class_names[:12])
            more = f", … ({len(self.class_names)} in all)" if len(self.class_names) > 12 else ""
            lines.append(f"classes: {shown}{more}")
        else:
            for head, names in self.heads:
                lines.append(f"head:    {head}: {len(names)} classes ({', '.join(names)})")
        return "\n".join(lines)


def _shapes(tensors: tuple[TensorInfo, ...]) -> str:
    return ", ".join(f"{t.name} {list(t.shape)}" for t in tensors)


def _parse_names(raw: object) -> tuple[str, ...]:
    """Class names from Ultralytics metadata (a dict literal string) or a YAML value."""
    if isinstance(raw, str):
        text = raw
        try:
            raw = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            try:
                raw = json.loads(text)
            except ValueError:
                raise ModelError(f"cannot read class names from metadata: {text[:80]!r}") from None
    if isinstance(raw, dict):
        return tuple(str(raw[k]) for k in sorted(raw, key=int))
    if isinstance(raw, (list, tuple)):
        return tuple(str(n) for n in raw)
    raise ModelError(f"class names: expected a dict or list, got {type(raw).__name__}")


def _sidecar(path: Path) -> dict:
    """Optional ``<model>.yaml`` beside the model: names, mean, std, rgb, resize, heads."""
    side = path.with_suffix(".yaml")
    if not side.is_file():
        return {}
    try:
        data = yaml.safe_load(side.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"{side}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{side}: expected a mapping at the top level")
    known = {"names", "mean", "std", "rgb", "resize", "heads", "imgsz"}
    unknown = set(data) - known
    if unknown:
        raise ModelError(f"{side}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    return data


def _static_int(d: object) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


def _input_wh(path: Path, inp: TensorInfo, side: dict, meta: dict[str, str],
              outs: tuple[TensorInfo, ...]) -> tuple[int, int]:
    """The input size (w, h): the input's own where static; else ``imgsz`` from the
    sidecar or the Ultralytics metadata; else, for a YOLO-seg model whose prototype
    output is static, four times its size (prototypes are at stride 4). Otherwise there
    is no size to run at: a ModelError, not a guess that fails inside the runtime."""
    h, w = _static_int(inp.shape[2]), _static_int(inp.shape[3])
    if h is not None and w is not None:
        return w, h
    imgsz: Any = side.get("imgsz")
    if imgsz is None and "imgsz" in meta:
        try:
            imgsz = ast.literal_eval(meta["imgsz"])
        except (ValueError, SyntaxError):
            raise ModelError(f"{path.name}: cannot read imgsz from metadata: "
                             f"{meta['imgsz'][:40]!r}") from None
    if imgsz is not None:
        if isinstance(imgsz, int) and imgsz > 0:
            return imgsz, imgsz
        if (isinstance(imgsz, (list, tuple)) and len(imgsz) == 2
                and all(isinstance(v, int) and v > 0 for v in imgsz)):
            return int(imgsz[1]), int(imgsz[0])
        raise ModelError(f"{path.name}: imgsz: expected a size or [height, width], got {imgsz!r}")
    protos = [o for o in outs if len(o.shape) == 4]
    if len(outs) == 2 and len(protos) == 1 and sum(len(o.shape) == 3 for o in outs) == 1:
        ph, pw = _static_int(protos[0].shape[2]), _static_int(protos[0].shape[3])
        if ph is not None and pw is not None:
            return 4 * pw, 4 * ph
    raise ModelError(
        f"{path.name}: input {inp.name} {list(inp.shape)} has a dynamic size and the model "
        f"does not say which to use; put 'imgsz: [height, width]' in {path.with_suffix('.yaml')} "
        "(or export it with Ultralytics, which records imgsz in the metadata)")


def read_spec(engine: Engine, path: str | Path) -> ModelSpec:
    """Work out the :class:`ModelSpec` of a loaded model; raise ModelError if unknown."""
    path = Path(path)
    side = _sidecar(path)
    meta = engine.metadata
    if len(engine.inputs) != 1 or len(engine.inputs[0].shape) != 4:
        raise ModelError(
            f"{path.name}: expected one image input [B,3,H,W], found {_shapes(engine.inputs)}"
        )
    inp = engine.inputs[0]
    outs = engine.outputs
    w, h = _input_wh(path, inp, side, meta, outs)
    names = _parse_names(side["names"]) if "names" in side else (
        _parse_names(meta["names"]) if "names" in meta else ()
    )
    mean = tuple(float(x) for x in side.get("mean", (0.0, 0.0, 0.0)))
    std = tuple(float(x) for x in side.get("std", (255.0, 255.0, 255.0)))
    common: dict[str, Any] = dict(
        path=str(path), input_name=inp.name, input_wh=(w, h), rgb=bool(side.get("rgb", True)),
        mean=mean, std=std, batch=_static_int(inp.shape[0]),
    )
    three_d = [o for o in outs if len(o.shape) == 3]
    four_d = [o for o in outs if len(o.shape) == 4]

    if len(outs) == 2 and len(three_d) == 1 and len(four_d) == 1:
        preds, protos = three_d[0], four_d[0]
        nm = _static_int(protos.shape[1])
        d1, d2 = _static_int(preds.shape[1]), _static_int(preds.shape[2])
        if nm is None or (d1 is None and d2 is None):
            raise ModelError(
                f"{path.name}: cannot tell the YOLO-seg layout from dynamic shapes "
                f"{_shapes(outs)}"
            )
        end2end = meta.get("end2end", "").lower() == "true"
        nc = len(names) if names else None
        if not end2end and d1 is not None and d1 > 4 + nm and (d2 is None or d1 < d2):
            layout, nc_found = Layout.YOLOV8, d1 - 4 - nm
        elif d2 is not None and d2 == 6 + nm and (end2end or nc != 1):
            layout, nc_found = Layout.END2END, nc or 0
        elif d2 is not None and d2 > 5 + nm:
            layout, nc_found = Layout.YOLOV5, d2 - 5 - nm
        else:
            raise ModelError(
                f"{path.name}: unknown instance-segmentation layout: {_shapes(outs)} "
                "(expected [B,4+nc+nm,N], [B,N,5+nc+nm] or [B,K,6+nm] with [B,nm,h,w])"
            )
        if layout is not Layout.END2END and names and len(names) != nc_found:
            raise ModelError(
                f"{path.name}: {len(names)} class names but the output has {nc_found} classes"
            )
        if not names:
            names = tuple(str(i) for i in range(nc_found))
        resize = Resize(side.get("resize", Resize.LETTERBOX.value))
        return ModelSpec(
            task=Task.INSTANCE, layout=layout, resize=resize, class_names=names,
            preds_name=preds.name, protos_name=protos.name, num_masks=nm, **common,
        )

    if outs and len(four_d) == len(outs):
        heads_side = side.get("heads", {})
        heads = []
        for o in outs:
            c = _static_int(o.shape[1])
            if c is None:
                raise ModelError(f"{path.name}: semantic head {o.name} has a dynamic class "
                                 f"dimension: {_shapes(outs)}")
            if o.name in heads_side:
                head_names = _parse_names(heads_side[o.name])
            elif names and len(outs) == 1:
                head_names = names
            elif c <= 2:
                head_names = ("background", o.name)
            else:
                head_names = tuple(f"{o.name}_{i}" for i in range(c))
            if len(head_names) != max(c, 2):
                raise ModelError(f"{path.name}: head {o.name} has {c} channels but "
                                 f"{len(head_names)} names")
            heads.append((o.name, head_names))
        resize = Resize(side.get("resize", Resize.STRETCH.value))
        return ModelSpec(
            task=Task.SEMANTIC, layout=Layout.SEMANTIC, resize=resize, class_names=(),
            heads=tuple(heads), **common,
        )

    raise ModelError(
        f"{path.name}: unknown model outputs: {_shapes(outs)} (expected YOLO-seg "
        "predictions + prototypes, or semantic [B,C,H,W] heads)"
    )


def check_runs(engine: Engine, spec: ModelSpec) -> None:
    """Run ``engine`` once on a blank input of ``spec``'s size (batch 1); a model that
    cannot (an ``imgsz`` that does not fit its graph) is a ModelError here, at start-up,
    instead of a runtime failure on the first frame after the outputs were opened."""
    import numpy as np

    w, h = spec.input_wh
    dtype = next((t.dtype for t in engine.inputs if t.name == spec.input_name), "float32")
    try:
        blank = np.zeros((1, 3, h, w), np.dtype(dtype))
    except TypeError:  # a type numpy does not name: the pipeline feeds float32
        blank = np.zeros((1, 3, h, w), np.float32)
    try:
        engine.infer({spec.input_name: blank})
    except Exception as exc:  # backends raise their own untyped errors
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        if len(first) > 300:  # the runtime's messages quote its source; keep both ends
            first = f"{first[:150]} … {first[-150:]}"
        raise ModelError(f"{Path(spec.path).name} does not run at its input size {w}x{h} "
                         f"(set imgsz in {Path(spec.path).with_suffix('.yaml')} to the size it "
                         f"was exported at): {first}") from exc
