"""Host work of a training step: dispatched operators and syncs, per variant.

A GPU training step of a detector at mmdet's sizes is often bound by the
host (Python and eager dispatch: on an H100 SSD300's kernels take 8 ms of a
42 ms step, see docs/benchmarks/cost.md section 3), so the number of operators a
step dispatches predicts its cost there better than FLOPs do. This counts
them on any device, deterministically and without timing: every ATen
operator call of one training step (forward + backward; a dispatch mode
sees each call once, composite operators as their parts), and the calls
that would synchronise host and device (``benchmark_overhead.SyncCounter``).
Optionally the forward calls are attributed to the innermost mmdet / mmcv /
resobj_mmdet function that made them (``--where``), to find what to batch.

Beside each step count: its ratio to vanilla's, the FLOP ratio of the same
two models at the same input (mmengine's counter, batch 1) and whether the
operator-call ratio stays within it (the target: the host's work should not
grow faster than the device's), and the operator calls of the ResObj loss
alone (``objectness_losses``: flattening, Algorithm 1's gates, every BCE
term), forward and backward, on the step's own tensors.

Usage::

    python tools/benchmarks/count_ops.py [--families retinanet atss ssd rpn]
        [--steps 0 1 2 3] [--no-lite] [--scale 0.4] [--batch 2] [--where 15]
        [--out FILE.md] [--flops-cache FILE.json | --no-flops]

Models and inputs are those of ``benchmark_overhead.py`` (mmdet's vanilla
COCO config vs ours, random init, random GT boxes); operator counts do not
depend on the input size, so ``--scale`` only saves time.
"""
import argparse
import collections
import copy
import json
import os.path as osp
import sys
import traceback

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import benchmark_overhead as bo  # noqa: E402

OWN_CODE = ('mmdet', 'mmcv', 'mmengine', 'resobj_mmdet')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--families', nargs='+', choices=list(bo.FAMILIES),
                        default=list(bo.FAMILIES))
    parser.add_argument('--steps', type=int, nargs='+', default=[0, 1, 2, 3],
                        help='ResObj T values next to vanilla')
    parser.add_argument('--no-lite', action='store_true',
                        help='leave out T = 2 lite (res_convs=0)')
    parser.add_argument('--scale', type=float, default=0.4,
                        help='input size factor (counts do not depend on '
                        'it); SSD and YOLOX keep their size')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--num-gts', type=int, default=8)
    parser.add_argument('--where', type=int, default=0, metavar='N',
                        help='also list the N functions making the most '
                        'forward calls, per variant')
    parser.add_argument('--out', default=None, help='markdown table')
    parser.add_argument(
        '--flops-cache', default=None, metavar='FILE.json',
        help='reuse FLOP counts saved here (keyed by family, variant and '
        'input shape) and add new ones: tracing FLOPs takes most of the '
        'run, and they do not change when only the operators do')
    parser.add_argument('--no-flops', action='store_true',
                        help='count operators only (no FLOP ratio)')
    return parser.parse_args(argv)


def _counting_mode(where):
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):

        def __init__(self):
            super().__init__()
            self.calls = 0
            self.callers = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.calls += 1
            if where:
                frames = [
                    f for f in traceback.extract_stack()[:-1]
                    if any(f'/{name}/' in f.filename for name in OWN_CODE)
                ]
                self.callers[f'{osp.basename(frames[-1].filename)}:'
                             f'{frames[-1].name}' if frames else
                             '(outside mmdet)'] += 1
            return func(*args, **(kwargs or {}))

    return Count()


def count_step(model, inputs, samples, where=0):
    """Operators and sync operators of one training step.

    Returns:
        dict: ``forward`` and ``backward`` operator calls, ``syncs`` (sync
        operators, forward + backward) and ``callers`` (a Counter of the
        forward calls per function, empty unless ``where``).
    """
    model.train()
    syncs = bo.SyncCounter(cuda=False)
    with syncs:
        with _counting_mode(where) as fwd:
            losses = model(inputs, copy.deepcopy(samples), mode='loss')
            loss, _ = model.parse_losses(losses)
        with _counting_mode(0) as bwd:
            loss.backward()
    model.zero_grad(set_to_none=True)
    return dict(forward=fwd.calls, backward=bwd.calls, syncs=syncs.count,
                callers=fwd.callers)


def count_loss(probe):
    """Forward and backward operator calls of the ResObj loss alone, on
    the arguments of its last call (``benchmark_overhead.LossProbe``)."""
    args, kwargs = probe.leaves()
    with _counting_mode(0) as fwd:
        losses = probe.orig(*args, **kwargs)
    total = sum(losses.values())  # not the loss's: parse_losses' work
    with _counting_mode(0) as bwd:
        total.backward()
    return fwd.calls, bwd.calls


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmdet.utils import register_all_modules
    register_all_modules()
    import resobj_mmdet  # noqa: F401
    device = torch.device('cpu')
    lines = ['| family | variant | forward ops | backward ops | step ops | '
             'ratio | FLOP ratio | within | ResObj loss ops (fwd + bwd) | '
             'sync ops |', '|---|---|---|---|---|---|---|---|---|---|']
    variants = [('vanilla', None)] + [(f'T={t}', dict(num_steps=t))
                                      for t in args.steps]
    if not args.no_lite:
        variants.append(('T=2 lite', dict(num_steps=2, res_convs=0)))
    cache = {}
    if args.flops_cache and osp.isfile(args.flops_cache):
        with open(args.flops_cache) as f:
            cache = json.load(f)
    for family in args.families:
        spec = bo.FAMILIES[family]
        scale = args.scale if spec.get('scalable', True) else 1.0
        shape = tuple(int(round(s * scale)) for s in spec['shape'])
        inputs, samples = bo.make_batch(shape, args.batch, args.num_gts,
                                        device, seed=1)
        flop_in, flop_samples = bo.make_batch(shape, 1, args.num_gts, device)
        base = base_flops = None

        def flops_of(model, key):
            if args.no_flops:
                return float('nan')
            if key not in cache:
                cache[key] = bo.count_flops(model, flop_in, flop_samples)[0]
                if args.flops_cache:
                    with open(args.flops_cache, 'w') as f:
                        json.dump(cache, f, indent=0, sort_keys=True)
            return cache[key]

        for name, overrides in variants:
            model = bo.build_model(family, overrides, device)
            flops = flops_of(model, f'{family}|{name}|{shape}')
            count_step(model, inputs, samples)  # lazy init off the count
            probe = None
            if overrides is not None:  # the loss's arguments, then unwrap
                head = bo.head_of(model, family)
                probe = bo.LossProbe(head, cuda=False)
                count_step(model, inputs, samples)
                del head.objectness_losses
            c = count_step(model, inputs, samples, args.where)
            total = c['forward'] + c['backward']
            base = base or total
            base_flops = base_flops or flops
            ratio, flop_ratio = total / base, flops / base_flops
            loss = '—'
            if probe is not None and probe.last is not None:
                lf, lb = count_loss(probe)
                loss = f'{lf} + {lb}'
            within = '—' if overrides is None or args.no_flops else (
                'yes' if ratio <= flop_ratio + 5e-4 else 'no')
            lines.append(f'| {family} | {name} | {c["forward"]} | '
                         f'{c["backward"]} | {total} | {ratio:.3f} | '
                         f'{flop_ratio:.3f} | {within} | {loss} | '
                         f'{c["syncs"]} |')
            print(lines[-1], flush=True)
            for caller, n in c['callers'].most_common(args.where):
                print(f'    {n:6d}  {caller}')
    table = '\n'.join(lines) + '\n'
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)
    return 0


if __name__ == '__main__':
    sys.exit(main())
