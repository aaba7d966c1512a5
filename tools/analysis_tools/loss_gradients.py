"""Which loss moves which part of a detector: gradients and assignments.

For a config and one or more checkpoints (``init``: the config's own
initialisation, ImageNet backbone included), runs training batches through
the model in training mode and reports, averaged over the batches:

- every loss term's value and its share of the total;
- the gradient norm of every loss term on every parameter group (backbone,
  neck, the head's class tower, box tower, class and box logits, the
  objectness and residual subnets), and of their sum: which loss drives
  which part, and how hard;
- the assignment the losses see: positive anchors per image, the share of
  the ground-truth boxes that get any positive anchor, that get one at IoU
  >= the assigner's ``pos_iou_thr`` (the others are forced low-quality
  matches), the same for the small boxes (``--small``, sqrt of the area in
  the network's input), and the anchors per image;
- the features: the neck's mean absolute output, the fraction of the
  class and box towers' ReLU outputs that are zero, and of their channels
  that are zero on every position of every image of the batch (dead
  units).

The batches are the training loader's first ``--batches`` with the
config's pipeline and ``--seed`` (the same images for every checkpoint).
Works with any mmdet ``AnchorHead`` (RetinaNet, ResObj heads).

Usage::

    python tools/analysis_tools/loss_gradients.py CONFIG init ckpt1.pth \\
        [--batches 8] [--out grads.json]
"""
import argparse
import copy
import json
import math
import re
from collections import defaultdict

from mmengine.config import DictAction

# Parameter groups, first match wins: (name, regex on the parameter name).
GROUPS = [
    ('backbone', r'^backbone\.'),
    ('neck', r'^neck\.'),
    ('cls tower', r'^bbox_head\.cls_convs\.'),
    ('box tower', r'^bbox_head\.reg_convs\.'),
    ('objectness', r'^bbox_head\.res_obj\.obj_'),
    ('residual', r'^bbox_head\.res_obj\.res_'),
    ('cls logit', r'^bbox_head\.(retina_cls|atss_cls|conv_cls)\.'),
    ('box logit', r'^bbox_head\.(retina_reg|atss_reg|conv_reg)\.'),
    ('head other', r'^bbox_head\.'),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoints', nargs='+',
                        help="checkpoint files, or 'init'")
    parser.add_argument('--batches', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--small', type=float, default=32.0,
                        help='sqrt area (input pixels) under which a box '
                        'counts as small (default 32, COCO)')
    parser.add_argument('--out', default=None, help='json file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='key=value overrides of the config, as '
                        "mmdet's tools/test.py takes them")
    return parser.parse_args(argv)


def group_of(name):
    for group, pattern in GROUPS:
        if re.match(pattern, name):
            return group
    return 'other'


def build(config, cfg_options, seed):
    """The model (not initialised) and a deterministic training loader."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import resobj_mmdet  # noqa: F401
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)

    def loader():
        # A new loader for every checkpoint: AspectRatioBatchSampler keeps
        # what a stopped iteration left in its buckets.
        return Runner.build_dataloader(copy.deepcopy(loader_cfg), seed=seed)

    return cfg, loader, lambda: MODELS.build(cfg.model)


def assignment_stats(head, batch_gt, img_shapes, small):
    """What the head's last target computation assigned, per image."""
    import torch
    from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
    results = head._raw_positive_infos.get('sampling_results')
    thr = head.train_cfg['assigner'].get('pos_iou_thr', 0.5)
    out = defaultdict(float)
    for res, gt in zip(results, batch_gt):
        boxes = get_box_tensor(gt.bboxes)
        num_gt = len(boxes)
        pos_gt = res.pos_assigned_gt_inds
        ious = bbox_overlaps(
            get_box_tensor(res.pos_priors), get_box_tensor(res.pos_gt_bboxes),
            is_aligned=True)
        covered = torch.zeros(num_gt, dtype=torch.bool)
        good = torch.zeros(num_gt, dtype=torch.bool)
        covered[pos_gt.cpu()] = True
        good[pos_gt[ious >= thr].cpu()] = True
        wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)
        is_small = (wh.prod(dim=1).sqrt() < small).cpu()
        out['images'] += 1
        out['gts'] += num_gt
        out['pos'] += len(res.pos_inds)
        out['anchors'] += len(res.pos_inds) + len(res.neg_inds)
        out['gts_covered'] += covered.sum().item()
        out['gts_good'] += good.sum().item()
        out['small_gts'] += is_small.sum().item()
        out['small_covered'] += (covered & is_small).sum().item()
        out['small_good'] += (good & is_small).sum().item()
        out['low_quality_pos'] += (ious < thr).sum().item()
    return out


def measure(model, loader, batches, small):
    """Loss values, per-loss gradient norms per group, assignment and
    feature statistics, summed over ``batches`` batches."""
    import torch
    model.train()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [group_of(n) for n, _ in params]
    head = model.bbox_head
    acts = {}

    def keep(name):
        def hook(module, inputs, output):
            acts.setdefault(name, []).append(output.detach())
        return hook

    handles = [
        tower[-1].register_forward_hook(keep(name))
        for name, tower in (('cls tower', head.cls_convs),
                            ('box tower', head.reg_convs)) if len(tower)
    ]

    def keep_neck(module, inputs, outputs):
        acts['neck'] = [o.detach() for o in outputs]

    handles.append(model.neck.register_forward_hook(keep_neck))
    sums = defaultdict(float)
    grads = defaultdict(lambda: defaultdict(float))
    assign = defaultdict(float)
    feats = defaultdict(float)
    n = 0
    for data in loader:
        if n == batches:
            break
        n += 1
        acts.clear()
        data = model.data_preprocessor(data, True)
        losses = model.loss(data['inputs'], data['data_samples'])
        terms = {
            k: sum(v) if isinstance(v, (list, tuple)) else v
            for k, v in losses.items() if 'loss' in k
        }
        terms['total'] = sum(terms.values())
        for key, loss in terms.items():
            sums[key] += float(loss.detach())
            gs = torch.autograd.grad(
                loss, [p for _, p in params], retain_graph=True,
                allow_unused=True)
            sq = defaultdict(float)
            for g, group in zip(gs, groups):
                if g is not None:
                    sq[group] += float(g.float().pow(2).sum())
            for group, value in sq.items():
                grads[key][group] += math.sqrt(value)
            grads[key]['all'] += math.sqrt(sum(sq.values()))
        gts = [s.gt_instances for s in data['data_samples']]
        shapes = [s.metainfo['batch_input_shape'] for s in data['data_samples']]
        for k, v in assignment_stats(head, gts, shapes, small).items():
            assign[k] += v
        neck = acts.pop('neck', [])
        if neck:
            feats['neck mean |x|'] += sum(
                float(o.abs().mean()) for o in neck) / len(neck)
        for name, outs in acts.items():
            zero = sum(float((o <= 0).float().mean()) for o in outs) / len(outs)
            dead = sum(float((o.amax(dim=(0, 2, 3)) <= 0).float().mean())
                       for o in outs) / len(outs)
            feats[f'{name} zero'] += zero
            feats[f'{name} dead channels'] += dead
    for h in handles:
        h.remove()
    total = sums['total']
    report = dict(
        batches=n,
        losses={k: v / n for k, v in sums.items()},
        loss_share={k: v / total for k, v in sums.items() if k != 'total'},
        grad_norm={k: {g: v / n for g, v in d.items()}
                   for k, d in grads.items()},
        features={k: v / n for k, v in feats.items()})
    a = assign
    report['assignment'] = dict(
        pos_per_image=a['pos'] / a['images'],
        anchors_per_image=a['anchors'] / a['images'],
        gts_per_image=a['gts'] / a['images'],
        gts_with_positive=a['gts_covered'] / max(a['gts'], 1),
        gts_with_iou_thr_positive=a['gts_good'] / max(a['gts'], 1),
        small_share=a['small_gts'] / max(a['gts'], 1),
        small_with_positive=a['small_covered'] / max(a['small_gts'], 1),
        small_with_iou_thr_positive=a['small_good'] / max(a['small_gts'], 1),
        low_quality_share_of_pos=a['low_quality_pos'] / max(a['pos'], 1))
    return report


def print_report(name, report):
    print(f'\n## {name} ({report["batches"]} batches)')
    losses = report['losses']
    print('losses: ' + ', '.join(
        f'{k} {v:.3f}' + (f' ({report["loss_share"][k]:.0%})'
                          if k in report['loss_share'] else '')
        for k, v in losses.items()))
    cols = [g for g, _ in GROUPS if any(
        g in d for d in report['grad_norm'].values())] + ['all']
    print('| grad norm | ' + ' | '.join(cols) + ' |')
    print('|---' * (len(cols) + 1) + '|')
    for key, d in report['grad_norm'].items():
        print(f'| {key} | ' + ' | '.join(
            f'{d[c]:.3g}' if c in d else '—' for c in cols) + ' |')
    print('assignment: ' + ', '.join(
        f'{k} {v:.3g}' for k, v in report['assignment'].items()))
    print('features: ' + ', '.join(
        f'{k} {v:.3f}' for k, v in report['features'].items()))


def main(argv=None):
    args = parse_args(argv)
    import random

    import numpy as np
    import torch
    from mmengine.runner import load_checkpoint
    cfg, loader, make_model = build(args.config, args.cfg_options,
                                    args.seed)
    out = {}
    for ckpt in args.checkpoints:
        torch.manual_seed(args.seed)  # the same flips for every checkpoint
        np.random.seed(args.seed)
        random.seed(args.seed)
        model = make_model()
        if ckpt == 'init':
            model.init_weights()
        else:
            load_checkpoint(model, ckpt, map_location='cpu')
        out[ckpt] = measure(model, loader(), args.batches, args.small)
        print_report(ckpt, out[ckpt])
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == '__main__':
    main()
