"""Cost of ObjectnessStatsHook's statistics on a training step.

Builds a model from a config (default: the RetinaNet-ResObj demo), then times
full training steps (forward + loss + backward) on a synthetic batch with the
statistics off and on (recorded every iteration, the hook's worst case, plus
the hook's one host sync), interleaved in one process. Prints the medians and
their ratio.

Usage::

    python tools/benchmarks/benchmark_stats_hook.py [CONFIG] [--batch 8] [--repeats 10]
"""
import argparse
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

DEMO = 'configs/demo/resobj-retinanet_r18-w16_fpn_12e_shapes.py'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default=DEMO)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--repeats', type=int, default=10)
    args = parser.parse_args()
    register_all_modules()
    from resobj_mmdet.engine.hooks import ObjectnessStatsHook
    from resobj_mmdet.models.losses import ResidualObjectnessLoss
    torch.manual_seed(0)
    cfg = Config.fromfile(args.config)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    losses = [m for m in model.modules()
              if isinstance(m, ResidualObjectnessLoss)]
    assert losses, 'the model has no ResidualObjectnessLoss'
    s = args.size
    inputs = torch.rand(args.batch, 3, s, s) * 255
    samples = []
    for _ in range(args.batch):
        sample = DetDataSample(metainfo=dict(
            img_shape=(s, s), pad_shape=(s, s), scale_factor=(1.0, 1.0),
            batch_input_shape=(s, s)))
        xy = torch.rand(5, 2) * s * 0.7
        inst = InstanceData(
            bboxes=torch.cat([xy, xy + 16 + torch.rand(5, 2) * s * 0.3], 1),
            labels=torch.randint(0, 4, (5, )))
        sample.gt_instances = inst
        samples.append(sample)

    def step(record: bool) -> float:
        for loss in losses:
            loss.record_stats = record
            loss.stats = None
        start = time.perf_counter()
        out = model.loss(inputs, samples)
        sum(v for k, v in out.items() if 'loss' in k
            for v in (v if isinstance(v, list) else [v])).backward()
        if record:
            for loss in losses:
                ObjectnessStatsHook.to_scalars(loss.stats)
        elapsed = time.perf_counter() - start
        model.zero_grad(set_to_none=True)
        return elapsed

    step(False), step(True)  # warm-up
    off, on = [], []
    for _ in range(args.repeats):
        off.append(step(False))
        on.append(step(True))
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f'{args.config}: batch {args.batch} at {s}x{s}, '
          f'{args.repeats} interleaved repetitions')
    print(f'| statistics | median step (ms) |\n|---|---|\n'
          f'| off | {m_off * 1e3:.1f} |\n| on, every iteration | '
          f'{m_on * 1e3:.1f} |\n| ratio on / off | {m_on / m_off:.3f}x |')


if __name__ == '__main__':
    main()
