# Copyright (c) resobj-mmdet contributors.
"""A deterministic synthetic detection dataset, generated on first use.

Images show filled shapes (the classes) in random colours on textured
backgrounds: sizes from a few pixels to a third of the image, overlapping
objects, images without any object, and "crowd" regions (a cluster of tiny
shapes annotated with one ``iscrowd=1`` box, which mmdet ignores in training
and COCO evaluation ignores in matching). Annotations are COCO json, so
mmdet's ``CocoDataset`` and ``CocoMetric`` are used unchanged.
"""
import json
import logging
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from .utils import prepare_once

SHAPES_VERSION = 1
CLASSES = ('circle', 'square', 'triangle', 'star')
PALETTE = [(220, 20, 60), (0, 128, 255), (60, 179, 75), (255, 165, 0)]
DEFAULT_SPLITS = dict(train=600, val=120)
MARKER = '.resobj_shapes_complete'


def _background(rng: np.random.RandomState, size: int) -> np.ndarray:
    """Smooth colour gradient with low-frequency blobs and pixel noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0, c1, c2 = (rng.uniform(40, 200, 3) for _ in range(3))
    img = (c0[None, None] + (c1 - c0)[None, None] * xx[..., None] +
           (c2 - c0)[None, None] * yy[..., None] * 0.5)
    low = cv2.resize(
        rng.uniform(-30, 30, (6, 6, 3)).astype(np.float32), (size, size),
        interpolation=cv2.INTER_CUBIC)
    img = img + low + rng.normal(0, 6, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _polygon(cls: str, cx: float, cy: float, r: float,
             angle: float) -> np.ndarray:
    if cls == 'square':
        pts = [(angle + math.pi / 4 + k * math.pi / 2, r) for k in range(4)]
    elif cls == 'triangle':
        pts = [(angle + k * 2 * math.pi / 3, r) for k in range(3)]
    else:  # star
        pts = [(angle + k * math.pi / 5, r if k % 2 == 0 else r * 0.45)
               for k in range(10)]
    return np.array([(cx + rad * math.cos(a), cy + rad * math.sin(a))
                     for a, rad in pts], dtype=np.float32)


def _draw(img: np.ndarray, cls: str, cx: float, cy: float, r: float,
          angle: float, color: Tuple[int, int, int]) -> List[float]:
    """Draw one shape; return its tight xywh box clipped to the image."""
    size = img.shape[0]
    if cls == 'circle':
        cv2.circle(img, (int(round(cx * 16)), int(round(cy * 16))),
                   int(round(r * 16)), color, -1, cv2.LINE_AA, shift=4)
        x0, y0, x1, y1 = cx - r, cy - r, cx + r, cy + r
    else:
        pts = _polygon(cls, cx, cy, r, angle)
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], color,
                     cv2.LINE_AA, shift=4)
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    x0, y0 = max(0.0, float(x0)), max(0.0, float(y0))
    x1, y1 = min(float(size), float(x1)), min(float(size), float(y1))
    return [x0, y0, x1 - x0, y1 - y0]


def _color(rng: np.random.RandomState, bg: np.ndarray, cx: float,
           cy: float) -> Tuple[int, int, int]:
    """A random colour that contrasts with the local background."""
    ref = bg[int(min(max(cy, 0), bg.shape[0] - 1)),
             int(min(max(cx, 0), bg.shape[1] - 1))].astype(np.float32)
    for _ in range(20):
        c = rng.randint(0, 256, 3).astype(np.float32)
        if np.abs(c - ref).sum() > 180:
            break
    return tuple(int(v) for v in c)


def _iou(a: List[float], b: List[float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def make_image(rng: np.random.RandomState, size: int
               ) -> Tuple[np.ndarray, List[dict]]:
    """Render one image and its annotations (COCO dicts without ids)."""
    img = _background(rng, size)
    bg = img.copy()
    anns: List[dict] = []
    u = rng.uniform()
    num_objects = 0 if u < 0.08 else int(rng.randint(1, 9))
    boxes: List[List[float]] = []
    for _ in range(num_objects):
        for _attempt in range(10):
            # Log-uniform radius: 4..48 px (boxes ~8..96 px) at size 256.
            r = math.exp(rng.uniform(math.log(4), math.log(48))) * size / 256
            cx, cy = rng.uniform(r * 0.6, size - r * 0.6, 2)
            label = int(rng.randint(len(CLASSES)))
            probe = [cx - r, cy - r, 2 * r, 2 * r]
            # Allow overlap, but keep every object mostly visible.
            if all(_iou(probe, b) < 0.35 for b in boxes):
                break
        else:
            continue
        angle = rng.uniform(0, 2 * math.pi)
        box = _draw(img, CLASSES[label], cx, cy, r, angle,
                    _color(rng, bg, cx, cy))
        if box[2] < 1 or box[3] < 1:
            continue
        boxes.append(box)
        anns.append(dict(category_id=label, bbox=box, iscrowd=0))
    if rng.uniform() < 0.12:  # a crowd region of tiny shapes
        w, h = rng.uniform(0.2, 0.35, 2) * size
        x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        label = int(rng.randint(len(CLASSES)))
        color = _color(rng, bg, x0 + w / 2, y0 + h / 2)
        for _ in range(int(rng.randint(6, 14))):
            r = rng.uniform(2, 4) * size / 256
            _draw(img, CLASSES[label], rng.uniform(x0 + r, x0 + w - r),
                  rng.uniform(y0 + r, y0 + h - r), r,
                  rng.uniform(0, 2 * math.pi), color)
        anns.append(
            dict(category_id=label, bbox=[x0, y0, w, h], iscrowd=1))
    return img, anns


def generate_shapes(root: str,
                    splits: Optional[Dict[str, int]] = None,
                    img_size: int = 256,
                    seed: int = 0) -> None:
    """Write the dataset under ``root`` (images and COCO json per split).

    Layout: ``root/{split}/{id:06d}.png`` and
    ``root/annotations/{split}.json``. Deterministic for given arguments.
    """
    splits = DEFAULT_SPLITS if splits is None else splits
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    # 1-based category ids, as in COCO.
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    for split_idx, (split, count) in enumerate(sorted(splits.items())):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            rng = np.random.RandomState(
                (seed * 1000003 + split_idx * 7919 + i) % (2**32))
            img, anns = make_image(rng, img_size)
            name = f'{i:06d}.png'
            cv2.imwrite(osp.join(root, split, name), img)
            images.append(
                dict(id=i, file_name=name, width=img_size, height=img_size))
            for ann in anns:
                x, y, w, h = ann['bbox']
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=i,
                        category_id=ann['category_id'] + 1,
                        bbox=[round(v, 2) for v in ann['bbox']],
                        area=round(w * h, 2),
                        iscrowd=ann['iscrowd']))
        with open(osp.join(root, 'annotations', f'{split}.json'), 'w') as f:
            # `info` too: pycocotools 2.0.10's loadRes reads it.
            json.dump(
                dict(
                    info=dict(
                        description='resobj_mmdet synthetic shapes',
                        split=split),
                    images=images,
                    annotations=annotations,
                    categories=categories), f)


def ensure_shapes(root: str,
                  splits: Optional[Dict[str, int]] = None,
                  img_size: int = 256,
                  seed: int = 0) -> str:
    """Generate the dataset at ``root`` unless a complete copy is there.

    Generation happens in a temporary sibling directory that is renamed into
    place, so concurrent processes (distributed launch) never see a partial
    dataset and an interrupted run leaves nothing behind. An existing
    directory that this function did not create is never touched.

    Returns:
        str: ``root``.
    """
    splits = DEFAULT_SPLITS if splits is None else dict(splits)
    stamp = dict(
        version=SHAPES_VERSION, splits=splits, img_size=img_size, seed=seed)
    return prepare_once(
        root, stamp, lambda tmp: generate_shapes(tmp, splits, img_size, seed),
        'ShapesDataset', MARKER)


@DATASETS.register_module()
class ShapesDataset(CocoDataset):
    """COCO-format synthetic shapes, generated into ``data_root`` if absent.

    Args:
        data_root (str): Where the dataset lives / is generated.
        generate (dict, optional): Arguments of :func:`ensure_shapes`
            (``splits``, ``img_size``, ``seed``).
        **kwargs: :class:`CocoDataset` arguments (``ann_file``,
            ``data_prefix``, ``pipeline``...).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self,
                 data_root: str = 'data/resobj_shapes/',
                 generate: Optional[dict] = None,
                 **kwargs) -> None:
        ensure_shapes(data_root.rstrip('/') or '.', **(generate or {}))
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """mmdet's loading, plus one warning if annotations were dropped.

        ``CocoDataset.parse_data_info`` silently skips boxes with zero
        area, under 1 px wide or high, outside the image or of an unknown
        category. The generator never writes such boxes, so a dropped one
        means an edited or foreign annotation file: say so once.
        """
        self._dropped_anns: List[Tuple[int, int]] = []
        data_list = super().load_data_list()
        if self._dropped_anns:
            total = sum(n for _, n in self._dropped_anns)
            print_log(
                f'{type(self).__name__}: {self.ann_file}: dropped {total} '
                f'annotation(s) in {len(self._dropped_anns)} image(s) '
                f'(zero area, under 1 px, outside the image or unknown '
                f'category_id); (img_id, dropped): '
                f'{self._dropped_anns[:10]}'
                f'{" ..." if len(self._dropped_anns) > 10 else ""}',
                logger='current',
                level=logging.WARNING)
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """``CocoDataset.parse_data_info``, counting what it drops."""
        data_info = super().parse_data_info(raw_data_info)
        wanted = [a for a in raw_data_info['raw_ann_info']
                  if not a.get('ignore', False)]
        dropped = len(wanted) - len(data_info['instances'])
        if dropped > 0:
            self._dropped_anns.append(
                (raw_data_info['raw_img_info']['img_id'], dropped))
        return data_info
