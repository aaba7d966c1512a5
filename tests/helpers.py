"""Shared helpers of the end-to-end and config tests."""
import os.path as osp

import cv2
import numpy as np
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_RESOBJ = osp.join(REPO, 'configs/demo/resobj-retinanet_r18-w16_fpn_12e_shapes.py')
DEMO_VANILLA = osp.join(REPO, 'configs/demo/retinanet_r18-w16_fpn_12e_shapes.py')
TINY_SPLITS = dict(train=16, val=8)


def tiny_shapes_cfg_options(root: str):
    """``--cfg-options`` that point a demo config at the tiny shapes copy in
    ``root`` and train it for one epoch with a checkpoint (mim tests)."""
    root = root.rstrip('/') + '/'
    opts = []
    for loader in ('train', 'val', 'test'):
        opts.append(f'{loader}_dataloader.dataset.data_root={root}')
        for split, n in TINY_SPLITS.items():
            opts.append(
                f'{loader}_dataloader.dataset.generate.splits.{split}={n}')
        opts += [f'{loader}_dataloader.num_workers=0',
                 f'{loader}_dataloader.persistent_workers=False']
    return opts + [
        f'val_evaluator.ann_file={root}annotations/val.json',
        f'test_evaluator.ann_file={root}annotations/val.json',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'model.test_cfg.score_thr=0.0',
        'default_hooks.checkpoint.interval=1',
    ]


def use_tiny_data(cfg: Config, root: str, work_dir: str, max_iters: int,
                  val_interval: int = None, ckpt_interval: int = None) -> Config:
    """Point a config at the tiny dataset and a short iteration schedule."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[key]
        dl.dataset.data_root = root + '/'
        dl.dataset.generate = dict(splits=TINY_SPLITS)
        dl.batch_size = 2
        dl.num_workers = 0
        dl.persistent_workers = False
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = osp.join(root, 'annotations/val.json')
    cfg.work_dir = work_dir
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=val_interval or max_iters)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1,
                                by_epoch=False, begin=0, end=2)]
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=ckpt_interval or max_iters,
        by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0)
    # mmengine reuses a visualizer instance of the same name across runners
    # of one process; a unique name keeps each run's scalars in its work_dir.
    cfg.visualizer.name = f'visualizer-{work_dir}'

    # A barely trained model scores below mmdet's 0.05: keep every box so
    # that the metric has something to evaluate.
    cfg.model.test_cfg.score_thr = 0.0
    return cfg


VOC = """<annotation><size><width>{w}</width><height>{h}</height>
<depth>3</depth></size>{objects}</annotation>"""
OBJ = ('<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}'
       '</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>')


def write_voc_scene(folder, name, w, h, boxes, names=None):
    """A noise image ``name.png`` with Pascal VOC boxes ``name.xml`` (the
    layout of the deepforest wheel's data)."""
    rng = np.random.RandomState(len(name))
    cv2.imwrite(osp.join(folder, name + '.png'),
                rng.randint(0, 255, (h, w, 3), dtype=np.uint8))
    names = names or ['Tree'] * len(boxes)
    objects = ''.join(
        OBJ.format(name=n, x1=b[0], y1=b[1], x2=b[2], y2=b[3])
        for n, b in zip(names, boxes))
    with open(osp.join(folder, name + '.xml'), 'w') as f:
        f.write(VOC.format(w=w, h=h, objects=objects))


def write_bccd_clone(root, splits=None):
    """A miniature clone of Shenggan/BCCD_Dataset at ``root``: noise JPEGs
    with VOC files under ``BCCD/``, image sets ``train`` and ``val``.

    Default: 3 images (2 train, 1 val) of 64x48 px; ``img0`` carries a
    degenerate box (a one-pixel point, as two of the real files do) and a
    box touching the image border.

    Returns:
        dict: image id -> list of (name, x1, y1, x2, y2) as written (VOC's
        1-based pixels).
    """
    import os
    splits = splits or dict(train=['img0', 'img1'], val=['img2'])
    boxes = {
        'img0': [('RBC', 5, 5, 25, 25), ('RBC', 30, 30, 30, 30),
                 ('WBC', 40, 20, 64, 48)],
        'img1': [('Platelets', 10, 12, 18, 20), ('RBC', 20, 1, 44, 21)],
        'img2': [('WBC', 3, 4, 33, 40), ('Platelets', 50, 30, 58, 38)],
    }
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        os.makedirs(osp.join(root, 'BCCD', sub), exist_ok=True)
    rng = np.random.RandomState(0)
    for img_id in boxes:
        cv2.imwrite(osp.join(root, 'BCCD', 'JPEGImages', img_id + '.jpg'),
                    rng.randint(0, 255, (48, 64, 3), dtype=np.uint8))
        objects = ''.join(
            OBJ.format(name=n, x1=x1, y1=y1, x2=x2, y2=y2)
            for n, x1, y1, x2, y2 in boxes[img_id])
        with open(osp.join(root, 'BCCD', 'Annotations', img_id + '.xml'),
                  'w') as f:
            f.write(VOC.format(w=64, h=48, objects=objects))
    for split, ids in splits.items():
        with open(osp.join(root, 'BCCD', 'ImageSets', 'Main',
                           split + '.txt'), 'w') as f:
            f.write('\n'.join(ids) + '\n')
    return boxes


def per_level_targets(head, featmaps, gts, metas):
    """mmdet's own per-level ``AnchorHead`` targets of ``head``: the
    reference that the ResObj heads' all-level targets are checked against.

    Returns:
        tuple: ``(anchors, labels, label_weights, bbox_targets,
        bbox_weights, avg_factor)``, each a list with one (N, H*W*A, ...)
        tensor per level.
    """
    import torch
    from mmdet.models.utils import images_to_levels
    anchor_list, flags = head.get_anchors(
        [f.shape[-2:] for f in featmaps], metas, device='cpu')
    targets = head.get_targets(anchor_list, flags, gts, metas)
    anchors = images_to_levels([torch.cat(a) for a in anchor_list],
                               [a.size(0) for a in anchor_list[0]])
    return (anchors, *targets[:5])
