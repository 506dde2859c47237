"""What to ask TensorRT for: network, builder and parser flags and the ONNX rewrite, by
TensorRT version, precision and DLA. Pure (plain data in, plain data out), so every rule
is unit-tested without TensorRT; engines.tensorrt.builder turns the names into enums.

The rules (sources: TensorRT 10.x / 11.x docs and migration guide, NVIDIA.md):

- TensorRT 11: every network is strongly typed (``STRONGLY_TYPED`` is deprecated there and
  ignored, so no flag is passed). ``BuilderFlag.FP16``/``INT8`` no longer exist: FP16 is an
  AutoCast rewrite of the ONNX, INT8 a Q/DQ rewrite (both ModelOpt).
- TensorRT 10.12+: strong typing is opt-in with ``STRONGLY_TYPED``. Used when ModelOpt is
  installed, so one recipe serves 10 and 11; otherwise the weakly typed path below.
- TensorRT 10 weakly typed (``create_network(0)``): FP16 is ``BuilderFlag.FP16`` (no
  ModelOpt needed: JetPack 6's TensorRT 10.3 takes this path). INT8 still needs the Q/DQ
  graph (the implicit-calibrator API is deprecated in 10 and gone in 11); a weakly typed
  network with Q/DQ runs them with ``BuilderFlag.INT8`` set, and ``FP16`` for the layers
  left unquantized.
- DLA (Jetson AGX Orin / Orin NX; Orin Nano has none): TensorRT 10 up to 10.7 ("10.7 was
  the last 10.x release that supported DLA"), weakly typed, FP16 or INT8 flag required,
  ``GPU_FALLBACK``; TensorRT 11.0–11.4.0 have no DLA on Linux; 11.4.1+ has it on AGX Orin
  with JetPack 7.2.2+, strongly typed, ONNX parsed with ``OnnxParserFlag.ADJUST_FOR_DLA``.
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.errors import BackendUnavailable, ModelError
from engines.tensorrt.precision import MODELOPT_HINT, Precision
from engines.tensorrt.version import TrtVersion

FP16_REWRITE = "autocast-fp16"
INT8_REWRITE = "qdq-int8"


@dataclass(frozen=True)
class BuildPlan:
    """Names of enum members to set (``NetworkDefinitionCreationFlag``, ``BuilderFlag``,
    ``OnnxParserFlag``), the ONNX rewrite to run first, and the device type."""

    strongly_typed: bool
    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    parser_flags: tuple[str, ...]
    onnx_rewrite: str  # "" | FP16_REWRITE | INT8_REWRITE
    device_type: str  # "GPU" | "DLA"
    dla_core: int | None
    target_dla: bool  # pass target_dla to ModelOpt


def strong_typing_available(v: TrtVersion) -> bool:
    return v.at_least(10, 12)


def _dla_check(v: TrtVersion, precision: Precision, dla_core: int) -> None:
    if dla_core < 0:
        raise ModelError(f"DLA core: expected an int >= 0, got {dla_core}")
    if precision is Precision.FP32:
        raise ModelError("DLA runs FP16 or INT8 only: add --fp16 or --int8")
    if v.major == 10 and v.at_least(10, 8):
        raise BackendUnavailable(f"TensorRT {v} has no DLA support (10.7 was the last 10.x "
                                 "release with DLA; JetPack 6 ships 10.3; TensorRT 11.4.1+ on "
                                 "JetPack 7.2.2+ brings it back)")
    if v.major >= 11 and not v.at_least(11, 4, 1):
        raise BackendUnavailable(f"TensorRT {v} has no DLA on Linux (DLA returned in 11.4.1, "
                                 "on Jetson AGX Orin with JetPack 7.2.2 or later)")


def plan_build(v: TrtVersion, precision: Precision, dla_core: int | None = None,
               have_modelopt: bool = True, strongly_typed: bool | None = None) -> BuildPlan:
    """The flags and rewrite for building ``precision`` under TensorRT ``v``.

    ``strongly_typed``: None picks (strong where ModelOpt and TensorRT allow it), True
    insists, False asks for the weakly typed TensorRT 10 path.
    """
    dla = dla_core is not None
    if dla:
        _dla_check(v, precision, int(dla_core or 0))
    if v.major >= 11:
        if strongly_typed is False:
            raise BackendUnavailable(f"TensorRT {v} builds strongly typed networks only "
                                     "(weak typing was removed in 11.0)")
        strong = True
    elif strongly_typed is True:
        if not strong_typing_available(v):
            raise BackendUnavailable(f"strongly typed builds need TensorRT 10.12 or newer, "
                                     f"found {v}")
        strong = True
    elif strongly_typed is False:
        strong = False
    else:
        strong = (strong_typing_available(v) and have_modelopt and precision is not Precision.FP32
                  and not dla)  # DLA on 10.x (≤ 10.7) is the weakly typed path
    if dla and v.major == 10 and strong:
        raise BackendUnavailable(f"DLA on TensorRT {v} needs the weakly typed build")

    rewrite = ""
    if precision is Precision.INT8:
        rewrite = INT8_REWRITE
    elif precision is Precision.FP16 and strong:
        rewrite = FP16_REWRITE
    if rewrite and not have_modelopt:
        why = "INT8 (Q/DQ calibration)" if precision is Precision.INT8 else (
            f"FP16 on TensorRT {v} (strongly typed)")
        raise BackendUnavailable(f"{why} needs NVIDIA Model Optimizer: {MODELOPT_HINT}")

    builder: list[str] = []
    if not strong:
        if precision is Precision.FP16:
            builder.append("FP16")
        elif precision is Precision.INT8:
            builder += ["INT8", "FP16"]
    if dla:
        builder.append("GPU_FALLBACK")
    network = ("STRONGLY_TYPED",) if strong and v.major == 10 else ()
    parser = ("ADJUST_FOR_DLA",) if dla and v.major >= 11 else ()
    return BuildPlan(
        strongly_typed=strong, network_flags=network, builder_flags=tuple(builder),
        parser_flags=parser, onnx_rewrite=rewrite, device_type="DLA" if dla else "GPU",
        dla_core=dla_core, target_dla=dla and strong,
    )
