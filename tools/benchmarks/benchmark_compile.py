"""torch.compile of a training step: graph breaks and step time.

mmengine compiles ``model.train_step`` (data preprocessor, forward, losses,
backward and optimizer step) with ``torch.compile`` when a config sets
``compile=True`` or ``compile=dict(backend=...)``. This builds each config's
model, optimizer wrapper and a few batches of the embedded shapes dataset,
then, side by side in one process:

- runs ``torch._dynamo.explain`` on one step and attributes every graph
  break to the innermost frame of mmdet, mmcv, mmengine, resobj_mmdet or
  torch that caused it;
- times the eager step and the compiled step (the first compiled call,
  which compiles, separately) on two copies of the same initial model, and
  compares their first losses.

Usage::

    python tools/benchmarks/benchmark_compile.py \\
        [--configs configs/demo/retinanet_r18-w16_fpn_12e_shapes.py \\
                   configs/demo/resobj-retinanet_r18-w16_fpn_12e_shapes.py] \\
        [--backend inductor] [--iters 10] [--batch 2] [--out FILE.md]

Timings are void while anything else runs on the machine.
"""
import argparse
import collections
import copy
import os.path as osp
import statistics
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo')
DEFAULT_CONFIGS = [
    osp.join(DEMO, 'retinanet_r18-w16_fpn_12e_shapes.py'),
    osp.join(DEMO, 'resobj-retinanet_r18-w16_fpn_12e_shapes.py'),
]
PACKAGES = ('resobj_mmdet', 'mmdet', 'mmcv', 'mmengine', 'torch')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    parser.add_argument('--backend', default='inductor',
                        help="torch.compile backend ('inductor', "
                        "'aot_eager', 'eager')")
    parser.add_argument('--iters', type=int, default=10,
                        help='timed steps after the warm-up')
    # 8 = every one of the 4 batches twice: dynamo compiles static shapes
    # for a batch's GT count, recompiles with dynamic ones when the count
    # changes, and later batches reuse them. With 2, the timed steps still
    # compiled (inductor: 461 ms against 53 ms a step with 8).
    parser.add_argument('--warmup', type=int, default=8,
                        help='untimed steps after the first (compiling) one')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--breaks', type=int, default=8,
                        help='graph-break reasons listed per config')
    parser.add_argument('--out', default=None, help='markdown table')
    args = parser.parse_args(argv)
    for name in ('iters', 'batch'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.warmup < 0:
        parser.error(f'--warmup must be >= 0, got {args.warmup}')
    return args


def build(config, data_root, batch):
    """Model, optimizer wrapper and ``batch``-image batches of ``config``
    on the shapes copy in ``data_root`` (CPU, no pretrained weights)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS
    from mmengine.runner import Runner

    cfg = Config.fromfile(config)
    loader = cfg.train_dataloader
    loader.batch_size = batch
    loader.num_workers = 0
    loader.persistent_workers = False
    loader.dataset.data_root = data_root
    loader.dataset.generate = dict(splits=dict(train=4 * batch, val=2))
    backbone = cfg.model.get('backbone', {})
    if 'init_cfg' in backbone:
        backbone.init_cfg = None  # never download weights
    model = MODELS.build(cfg.model)
    model.init_weights()
    batches = list(Runner.build_dataloader(loader))
    return model, cfg.optim_wrapper, batches


def attribute(frames):
    """The innermost frame of a graph break's user stack in one of
    :data:`PACKAGES`, as ``package/…/file.py:line (function)``."""
    for frame in reversed(frames or []):
        path = frame.filename.replace('\\', '/')
        for package in PACKAGES:
            marker = f'/{package}/'
            if marker in path:
                rel = package + '/' + path.split(marker, 1)[1]
                return f'{rel}:{frame.lineno} ({frame.name})'
    return 'unknown'


def explain(model, optim_wrapper, data):
    """Graph and graph-break counts of one step, and where breaks come
    from."""
    import torch
    torch._dynamo.reset()
    out = torch._dynamo.explain(model.train_step)(data, optim_wrapper)
    where = collections.Counter()
    reasons = collections.Counter()
    for br in out.break_reasons:
        site = attribute(br.user_stack)
        where[site.split('/', 1)[0]] += 1
        reasons[(site, br.reason.split('\n')[0][:110])] += 1
    return dict(graphs=out.graph_count, breaks=out.graph_break_count,
                ops=out.op_count, where=where, reasons=reasons)


def timed_steps(step, batches, warmup, iters):
    """First-call seconds, the first loss and the median step seconds."""
    first = time.perf_counter()
    log = step(batches[0])
    first = time.perf_counter() - first
    for i in range(warmup):
        step(batches[(i + 1) % len(batches)])
    times = []
    for i in range(iters):
        start = time.perf_counter()
        step(batches[(i + 1 + warmup) % len(batches)])
        times.append(time.perf_counter() - start)
    loss = float(sum(v for k, v in log.items() if 'loss' in k))
    return first, loss, statistics.median(times)


def bench(config, args, data_root):
    import torch
    from mmengine.optim import build_optim_wrapper

    model, optim_cfg, batches = build(config, data_root, args.batch)
    model.train()
    compiled_model = copy.deepcopy(model)
    probe_model = copy.deepcopy(model)

    def step_of(m, train_step):
        wrapper = build_optim_wrapper(m, copy.deepcopy(optim_cfg))
        wrapper.initialize_count_status(m, 0, 10**6)
        return lambda data: train_step(copy.deepcopy(data), wrapper)

    info = explain(probe_model,
                   build_optim_wrapper(probe_model, copy.deepcopy(optim_cfg)),
                   copy.deepcopy(batches[0]))
    del probe_model
    eager = timed_steps(step_of(model, model.train_step), batches,
                        args.warmup, args.iters)
    torch._dynamo.reset()
    compiled_step = torch.compile(compiled_model.train_step,
                                  backend=args.backend)
    compiled = timed_steps(step_of(compiled_model, compiled_step), batches,
                           args.warmup, args.iters)
    return dict(
        config=osp.basename(config),
        eager_ms=eager[2] * 1e3,
        compiled_ms=compiled[2] * 1e3,
        compile_s=compiled[0],
        loss_diff=abs(eager[1] - compiled[1]),
        **info)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmdet.utils import register_all_modules
    register_all_modules()
    import resobj_mmdet  # noqa: F401
    from resobj_mmdet.datasets import ensure_shapes

    torch.manual_seed(0)
    lines = [
        f'torch {torch.__version__}, backend {args.backend}, '
        f'{torch.get_num_threads()} threads, batch {args.batch}; '
        f'median of {args.iters} steps', '',
        '| config | graphs | graph breaks (by package) | eager step (ms) | '
        'compiled step (ms) | ratio | first call (s) | first-loss diff |',
        '|---|---|---|---|---|---|---|---|'
    ]
    details = []
    with tempfile.TemporaryDirectory() as tmp:
        data_root = osp.join(tmp, 'shapes') + '/'
        ensure_shapes(data_root, splits=dict(train=4 * args.batch, val=2))
        for config in args.configs:
            r = bench(config, args, data_root)
            where = ', '.join(f'{k} {v}' for k, v in r['where'].most_common())
            lines.append(
                f'| {r["config"]} | {r["graphs"]} | {r["breaks"]} ({where}) '
                f'| {r["eager_ms"]:.0f} | {r["compiled_ms"]:.0f} | '
                f'{r["compiled_ms"] / r["eager_ms"]:.2f} | '
                f'{r["compile_s"]:.1f} | {r["loss_diff"]:.1e} |')
            print(lines[-1], flush=True)
            details += ['', f'Graph breaks of {r["config"]} (most frequent '
                        'first):', '']
            for (site, reason), n in r['reasons'].most_common(args.breaks):
                details.append(f'- {n}x `{site}`: {reason}')
    text = '\n'.join(lines + details) + '\n'
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
