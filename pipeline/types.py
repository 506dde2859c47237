"""The records that flow through the pipeline.

A :class:`Frame` is one record; each stage returns an updated copy made with
``dataclasses.replace``. Masks stay compact: every instance mask covers only its
own box (``mask_boxes``), in source pixels.

Records can live on a device: a frame's pixels are a numpy array (host) or a torch tensor
(device, H×W×3 uint8); its size is stored when it is made. Detections' boxes, scores and
ids are always small host arrays (the tracker and the JSONL want them there); their masks
are host arrays or one :class:`~pipeline.decode.device_masks.PackedMasks` on the device,
downloaded only by a consumer that needs them (``host_masks``: RLE, re-identification).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import supervision as sv

    from pipeline.decode.device_masks import PackedMasks
    from pipeline.transfer import Download


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a source image was fitted into the model input.

    ``input = source * scale + (pad_x, pad_y)``; for a plain resize ``scale_x != scale_y``
    and the pads are 0.
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    source_wh: tuple[int, int]
    input_wh: tuple[int, int]

    def to_source(self, xyxy: np.ndarray) -> np.ndarray:
        """Map (N,4) boxes from input pixels to source pixels, clipped to the frame."""
        w, h = self.source_wh
        out = np.empty((len(xyxy), 4), np.float32)
        # basic slices are views, so the clip writes into ``out``; a fancy index
        # (``out[:, [0, 2]]``) is a copy and would clip that copy instead
        xs, ys = out[:, 0::2], out[:, 1::2]
        xs[:] = (xyxy[:, 0::2] - self.pad_x) / self.scale_x
        ys[:] = (xyxy[:, 1::2] - self.pad_y) / self.scale_y
        np.clip(xs, 0, w, out=xs)
        np.clip(ys, 0, h, out=ys)
        return out


@dataclass(frozen=True, slots=True)
class Detections:
    """Instances found in one frame, as parallel arrays.

    xyxy: (N,4) float32, source pixels. scores: (N,) float32. class_ids: (N,) int32.
    track_ids: (N,) int64, -1 when untracked. mask_boxes: (N,4) int32, the integer box
    ``[x0, y0, x1, y1)`` each mask covers. masks: N bool arrays, mask i of shape
    ``(y1-y0, x1-x0)``, or the same N masks packed on a device (:class:`PackedMasks`);
    empty for models without masks. Read them with :meth:`host_masks` unless a consumer
    can use the packed form.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    track_ids: np.ndarray
    mask_boxes: np.ndarray
    masks: tuple[np.ndarray, ...] | PackedMasks = ()
    class_names: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def empty(cls, class_names: tuple[str, ...] = ()) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int32),
            track_ids=np.zeros(0, np.int64),
            mask_boxes=np.zeros((0, 4), np.int32),
            masks=(),
            class_names=class_names,
        )

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> Detections:
        """The detections at ``index`` (an int array), masks carried along."""
        index = np.asarray(index, dtype=np.int64)
        return Detections(
            xyxy=self.xyxy[index],
            scores=self.scores[index],
            class_ids=self.class_ids[index],
            track_ids=self.track_ids[index],
            mask_boxes=self.mask_boxes[index],
            masks=self._take_masks(index),
            class_names=self.class_names,
        )

    def _take_masks(self, index: np.ndarray) -> tuple[np.ndarray, ...] | PackedMasks:
        if isinstance(self.masks, tuple):
            return tuple(self.masks[i] for i in index) if self.masks else ()
        return self.masks.take(index)

    def host_masks(self) -> tuple[np.ndarray, ...]:
        """The masks as host arrays: as they are, or downloaded once from the device."""
        return self.masks if isinstance(self.masks, tuple) else self.masks.to_host()

    def class_name(self, class_id: int) -> str:
        if 0 <= class_id < len(self.class_names):
            return self.class_names[class_id]
        return str(class_id)

    def full_mask(self, i: int, out: np.ndarray) -> np.ndarray:
        """Paste mask ``i`` into ``out`` (H,W uint8, zeroed by the caller) and return it."""
        x0, y0, x1, y1 = self.mask_boxes[i]
        out[y0:y1, x0:x1] = self.host_masks()[i]
        return out

    def to_supervision(self, resolution_wh: tuple[int, int] | None = None) -> sv.Detections:
        """An ``sv.Detections`` for interop; full-frame masks only if ``resolution_wh``."""
        import supervision as sv

        mask = None
        if resolution_wh is not None and self.masks:
            w, h = resolution_wh
            mask = np.zeros((len(self), h, w), bool)
            for i in range(len(self)):
                self.full_mask(i, mask[i])
        return sv.Detections(
            xyxy=self.xyxy.astype(np.float32),
            confidence=self.scores,
            class_id=self.class_ids,
            tracker_id=self.track_ids,
            mask=mask,
        )


@dataclass(frozen=True, slots=True)
class ClassMap:
    """Per-pixel class ids of one semantic head, at model resolution (H×W uint8).

    ``class_ids`` covers the model input; with a plain resize that is the whole source
    frame, so ``resized(source_wh)`` gives source pixels.
    """

    head: str
    class_ids: np.ndarray
    class_names: tuple[str, ...]

    def resized(self, wh: tuple[int, int]) -> np.ndarray:
        import cv2

        if self.class_ids.shape[::-1] == tuple(wh):
            return self.class_ids
        return cv2.resize(self.class_ids, wh, interpolation=cv2.INTER_NEAREST)


@dataclass(frozen=True, slots=True)
class Frame:
    """One video frame and everything the stages have added to it.

    image: H×W×3 uint8 BGR, never modified in place after capture: a numpy array, or a
        torch tensor on the device the data path runs on.
    size: (width, height), stored when the record is made, from the pixels' shape (array
        or tensor metadata: no pixel is read and nothing waits for a device).
    host_image: the host pixels, kept beside device ones where the source decoded on the
        CPU (re-identification and BoT-SORT read them); None otherwise.
    tensor: the preprocessed model input (1×3×h×w float32), set by preprocess.
    outputs: raw engine outputs by tensor name, set by infer.
    rendered: the annotated image, set by render: a host array, or a download in flight
        (:class:`~pipeline.transfer.Download`) that the output waiting for it finishes.
    """

    source_id: str
    seq: int
    pts: float
    t_capture: int
    image: Any
    tensor: Any = None
    letterbox: Letterbox | None = None
    outputs: dict[str, Any] | None = None
    detections: Detections | None = None
    class_maps: tuple[ClassMap, ...] = ()
    rendered: np.ndarray | Download | None = None
    host_image: np.ndarray | None = None
    size: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        # also on dataclasses.replace, so a record never keeps the size of pixels it dropped
        object.__setattr__(self, "size", (int(self.image.shape[1]), int(self.image.shape[0])))

    @property
    def wh(self) -> tuple[int, int]:
        return self.size

    def host_pixels(self) -> np.ndarray:
        """The frame's pixels on the host (a download when they live only on a device)."""
        if isinstance(self.image, np.ndarray):
            return self.image
        if self.host_image is not None:
            return self.host_image
        return self.image.cpu().numpy()  # type: ignore[no-any-return]

    def rendered_pixels(self) -> np.ndarray:
        """The annotated image on the host (waits for its download), else the frame's."""
        if self.rendered is None:
            return self.host_pixels()
        if isinstance(self.rendered, np.ndarray):
            return self.rendered
        return self.rendered.wait()
