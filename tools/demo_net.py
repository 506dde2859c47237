"""maskstream's own small instance-segmentation network and its training loss.

Anchor-free, two output strides (8 and 16), YOLACT-style masks: per-anchor coefficients
times shared prototypes at stride 4. ``ExportWrapper`` turns its outputs into exactly the
YOLOv8-seg ONNX layout (``output0 [1, 4+nc+nm, N]``, ``output1 [1, nm, H/4, W/4]``), so the
pipeline decodes it with the same code as any Ultralytics model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STRIDES = (8, 16)
NUM_MASKS = 32
MAX_SIDE_STRIDE8 = 64  # objects up to this many input pixels go to the stride-8 level


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.SiLU(inplace=True))


class Block(nn.Module):
    """Two 3×3 convolutions with a residual connection."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b = conv(c, c), conv(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x))


class DemoSegNet(nn.Module):
    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 32, 48, 80, 112)) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.nc = num_classes
        self.stem = conv(3, w0, 2)                                  # /2
        self.s4 = nn.Sequential(conv(w0, w1, 2), Block(w1))         # /4
        self.s8 = nn.Sequential(conv(w1, w2, 2), Block(w2))         # /8
        self.s16 = nn.Sequential(conv(w2, w3, 2), Block(w3))        # /16
        self.s32 = nn.Sequential(conv(w3, w4, 2), Block(w4))        # /32
        self.lat16 = conv(w4 + w3, w3)
        self.lat8 = conv(w3 + w2, w2)
        self.proto = nn.Sequential(conv(w2 + w1, w1), conv(w1, w1), nn.Conv2d(w1, NUM_MASKS, 1))
        self.heads = nn.ModuleList(
            nn.ModuleDict({
                "stem": nn.Sequential(conv(c, c), conv(c, c)),
                "box": nn.Conv2d(c, 4, 1), "cls": nn.Conv2d(c, num_classes, 1),
                "coef": nn.Conv2d(c, NUM_MASKS, 1),
            }) for c in (w2, w3))
        for h in self.heads:
            nn.init.constant_(h["cls"].bias, -4.0)  # start with low scores everywhere

    def forward(self, x: torch.Tensor):
        """Returns per level (box ltrb raw, class logits, coefs) and prototypes."""
        p4 = self.s4(self.stem(x))
        p8 = self.s8(p4)
        p16 = self.s16(p8)
        p32 = self.s32(p16)
        n16 = self.lat16(torch.cat([F.interpolate(p32, size=p16.shape[2:], mode="nearest"), p16], 1))
        n8 = self.lat8(torch.cat([F.interpolate(n16, size=p8.shape[2:], mode="nearest"), p8], 1))
        protos = self.proto(torch.cat([F.interpolate(n8, size=p4.shape[2:], mode="nearest"), p4], 1))
        levels = []
        for feat, head in zip((n8, n16), self.heads, strict=True):
            f = head["stem"](feat)
            levels.append((head["box"](f), head["cls"](f), head["coef"](f)))
        return levels, protos


def grid(h: int, w: int, stride: int, device: torch.device) -> torch.Tensor:
    """Cell centres (h*w, 2) in input pixels, row-major."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                            indexing="ij")
    return (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * stride


def flatten(levels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate levels: boxes xyxy (B,N,4), logits (B,N,nc), coefs (B,N,nm), centres, strides."""
    boxes, logits, coefs, centres, strides = [], [], [], [], []
    for (box, cls, coef), s in zip(levels, STRIDES, strict=True):
        b, _, h, w = box.shape
        c = grid(h, w, s, box.device)
        d = F.softplus(box.permute(0, 2, 3, 1).reshape(b, -1, 4)) * s
        boxes.append(torch.cat([c - d[..., :2], c + d[..., 2:]], -1))
        logits.append(cls.permute(0, 2, 3, 1).reshape(b, h * w, -1))
        coefs.append(coef.permute(0, 2, 3, 1).reshape(b, h * w, -1))
        centres.append(c)
        strides.append(torch.full((h * w,), float(s), device=box.device))
    return (torch.cat(boxes, 1), torch.cat(logits, 1), torch.cat(coefs, 1), torch.cat(centres),
            torch.cat(strides))


class ExportWrapper(nn.Module):
    """The YOLOv8-seg output layout: [cx, cy, w, h, class scores, mask coefs] × N."""

    def __init__(self, net: DemoSegNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor):
        levels, protos = self.net(images)
        boxes, logits, coefs, _, _ = flatten(levels)
        cxcywh = torch.cat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], -1)
        out = torch.cat([cxcywh, logits.sigmoid(), coefs], -1).permute(0, 2, 1)
        return out, protos


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalized IoU of matching rows of two (N,4) xyxy tensors."""
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    union = area_a + area_b - inter + 1e-7
    iou = inter / union
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).prod(1) + 1e-7
    return iou - (hull - union) / hull


def assign(gt_boxes: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """Index of the GT each anchor learns (-1: background), for one image.

    A GT goes to stride 8 if its longer side is at most MAX_SIDE_STRIDE8 pixels, else to 16;
    its positives are that level's cells whose centre lies inside the box and within 1.5
    strides of the box centre (always at least the cell under the centre). Where GTs
    compete, the smaller one wins.
    """
    n = len(centres)
    owner = torch.full((n,), -1, dtype=torch.long, device=centres.device)
    if len(gt_boxes) == 0:
        return owner
    best_area = torch.full((n,), float("inf"), device=centres.device)
    sizes = gt_boxes[:, 2:] - gt_boxes[:, :2]
    for g in range(len(gt_boxes)):
        s = 8.0 if float(sizes[g].max()) <= MAX_SIDE_STRIDE8 else 16.0
        on_level = strides == s
        cxy = (gt_boxes[g, :2] + gt_boxes[g, 2:]) / 2
        inside = ((centres >= gt_boxes[g, :2]) & (centres <= gt_boxes[g, 2:])).all(1)
        near = ((centres - cxy).abs() <= 1.5 * s).all(1)
        pos = on_level & inside & near
        if not pos.any():  # tiny box: take the nearest cell of the level
            d = ((centres - cxy) ** 2).sum(1) + (~on_level) * 1e9
            pos = torch.zeros_like(on_level)
            pos[d.argmin()] = True
        area = float(sizes[g].prod())
        take = pos & (area < best_area)
        owner[take] = g
        best_area[take] = area
    return owner


def loss(levels, protos, targets) -> tuple[torch.Tensor, dict[str, float]]:
    """targets: per image, (boxes (G,4) xyxy input px, classes (G,), masks (G, H/4, W/4) float)."""
    boxes, logits, coefs, centres, strides = flatten(levels)
    cls_target = torch.zeros_like(logits)
    l_box = l_mask = logits.new_zeros(())
    num_pos = 0
    ph, pw = protos.shape[2:]
    for i, (gt_boxes, gt_cls, gt_masks) in enumerate(targets):
        owner = assign(gt_boxes, centres, strides)
        pos = torch.nonzero(owner >= 0).flatten()
        if len(pos) == 0:
            continue
        g = owner[pos]
        num_pos += len(pos)
        cls_target[i, pos, gt_cls[g]] = 1.0
        l_box = l_box + (1 - giou(boxes[i, pos], gt_boxes[g])).sum()
        # masks: coefficients · prototypes, BCE inside the GT box at prototype resolution
        pred = (coefs[i, pos] @ protos[i].reshape(NUM_MASKS, -1)).reshape(-1, ph, pw)
        box4 = gt_boxes[g] / 4
        xs = torch.arange(pw, device=pred.device).float()[None, None, :] + 0.5
        ys = torch.arange(ph, device=pred.device).float()[None, :, None] + 0.5
        inside = ((xs >= box4[:, 0, None, None]) & (xs <= box4[:, 2, None, None])
                  & (ys >= box4[:, 1, None, None]) & (ys <= box4[:, 3, None, None])).float()
        bce = F.binary_cross_entropy_with_logits(pred, gt_masks[g], reduction="none")
        l_mask = l_mask + ((bce * inside).sum((1, 2)) / inside.sum((1, 2)).clamp(min=1)).sum()
    num_pos = max(num_pos, 1)
    l_cls = F.binary_cross_entropy_with_logits(logits, cls_target, reduction="sum") / num_pos
    l_box = l_box / num_pos
    l_mask = l_mask / num_pos
    total = l_cls + 5.0 * l_box + 2.0 * l_mask
    return total, {"cls": float(l_cls.detach()), "box": float(l_box.detach()),
                   "mask": float(l_mask.detach())}
