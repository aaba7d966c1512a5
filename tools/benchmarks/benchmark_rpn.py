"""Step time and memory of the ResObj RPN against mmdet's RPN.

Both heads see the same FPN features of an 800x1333 batch (COCO's training
size) and the same GT boxes. Each repetition runs forward + loss + backward of
the head, alternating the two heads so that machine noise hits both alike.
Printed (markdown), with their ratio ResObj / vanilla:

- step time: median over the repetitions;
- activation memory: bytes autograd saves for backward during the step
  (exact and allocator-independent, so comparable on CPU);
- CUDA peak: ``torch.cuda.max_memory_allocated`` of the step (CUDA only).

Usage::

    python tools/benchmarks/benchmark_rpn.py [--device cpu|cuda] [--shape 800 1333]
        [--batch 2] [--repeats 5] [--num-steps 2]
"""
import argparse
import statistics
import time

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

STRIDES = [4, 8, 16, 32, 64]


def rpn_cfg(resobj: bool, num_steps: int) -> dict:
    sampler = dict(type='PseudoSampler') if resobj else dict(
        type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
        add_gt_as_proposals=False)
    cfg = dict(
        type='ResObjRPNHead' if resobj else 'RPNHead',
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=STRIDES),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=ConfigDict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=sampler,
            allowed_border=-1,
            pos_weight=-1,
            debug=False))
    if resobj:
        cfg['residual_objectness'] = dict(
            num_steps=num_steps,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
    return cfg


def make_inputs(batch, shape, device, num_gts=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    feats = [
        torch.randn(batch, 256, -(-h // s), -(-w // s), generator=g).to(
            device) for s in STRIDES
    ]
    gts, metas = [], []
    for _ in range(batch):
        xy = torch.rand(num_gts, 2, generator=g) * torch.tensor([w, h]) * 0.8
        wh = 16 + torch.rand(num_gts, 2, generator=g) * 300
        inst = InstanceData()
        inst.bboxes = torch.cat([xy, xy + wh], 1).to(device)
        inst.labels = torch.zeros(num_gts, dtype=torch.long, device=device)
        gts.append(inst)
        metas.append(dict(img_shape=(h, w), pad_shape=(h, w),
                          scale_factor=(1.0, 1.0)))
    return feats, gts, metas


def step(head, feats, gts, metas):
    """Forward + loss + backward; returns saved-activation bytes."""
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    feats = [f.detach().requires_grad_() for f in feats]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outs = head(feats)
        losses = head.loss_by_feat(*outs, gts, metas)
    total = sum(
        sum(v) if isinstance(v, (list, tuple)) else v
        for k, v in losses.items() if 'loss' in k)
    total.backward()
    head.zero_grad(set_to_none=True)
    return saved[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1333])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--num-steps', type=int, default=2)
    args = parser.parse_args()
    register_all_modules()
    import resobj_mmdet  # noqa: F401
    torch.manual_seed(0)
    device = torch.device(args.device)
    heads = {
        'vanilla RPN (RandomSampler 256)':
        MODELS.build(rpn_cfg(False, args.num_steps)).to(device),
        f'ResObj RPN (T={args.num_steps}, all anchors)':
        MODELS.build(rpn_cfg(True, args.num_steps)).to(device),
    }
    for head in heads.values():
        head.init_weights()
        head.train()
    feats, gts, metas = make_inputs(args.batch, args.shape, device)
    times = {k: [] for k in heads}
    saved = {}
    peak = {}
    for name, head in heads.items():  # warm-up
        step(head, feats, gts, metas)
    for _ in range(args.repeats):
        for name, head in heads.items():
            if device.type == 'cuda':
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            saved[name] = step(head, feats, gts, metas)
            if device.type == 'cuda':
                torch.cuda.synchronize()
                peak[name] = torch.cuda.max_memory_allocated()
            times[name].append(time.perf_counter() - start)
    names = list(heads)
    num_anchors = sum(3 * f.shape[-2] * f.shape[-1] for f in feats)
    print(f'RPN head step (forward + loss + backward), batch {args.batch} at '
          f'{args.shape[0]}x{args.shape[1]}, {num_anchors} anchors/image, '
          f'{args.repeats} interleaved repetitions on {device}\n')
    cols = ['median step (ms)', 'saved activations (MiB)']
    if peak:
        cols.append('CUDA peak (MiB)')
    print('| head | ' + ' | '.join(cols) + ' |')
    print('|---' * (len(cols) + 1) + '|')
    rows = {}
    for name in names:
        vals = [statistics.median(times[name]) * 1e3, saved[name] / 2**20]
        if peak:
            vals.append(peak[name] / 2**20)
        rows[name] = vals
        print(f'| {name} | ' + ' | '.join(f'{v:.1f}' for v in vals) + ' |')
    ratio = [r / v for r, v in zip(rows[names[1]], rows[names[0]])]
    print('| ratio ResObj / vanilla | ' + ' | '.join(f'{r:.2f}x'
                                                      for r in ratio) + ' |')


if __name__ == '__main__':
    main()
