"""What ResObj costs: parameters, FLOPs, latency, memory and host syncs.

For each family (RetinaNet, YOLOv3, RPN, Faster R-CNN) the benchmark builds
the COCO models that users train - mmdet's vanilla config and ours with
``T = 0..3`` and a *lite* T = 2 whose residual subnets have no C->C conv -
with the same backbone and input size (random init, no download), and
measures them side by side in one process, interleaving the variants in
every repetition so that machine noise hits all of them alike:

- params and FLOPs (mmengine's ``get_model_complexity_info`` on the
  ``mode='tensor'`` forward, as mmdet's ``tools/analysis_tools/get_flops.py``);
- inference latency (``mode='predict'``, post-processing and NMS included,
  batch 1) and training-step latency (``mode='loss'`` + backward, ``--batch``
  images with random GT boxes), medians, as ratios to vanilla;
- the share of the step spent in the ResObj loss: ``objectness_losses``
  (flattening, Algorithm 1's gated refinement, the BCE terms) forward +
  backward on the step's own tensors, timed alone;
- peak memory of the training step above the memory held before it: CUDA
  ``max_memory_allocated``; on CPU the process's peak RSS (``VmHWM``, reset
  through ``/proc/self/clear_refs``), with glibc's mmap threshold pinned so
  that freed activations leave the RSS; plus the bytes autograd saves for
  backward (exact, allocator-independent);
- host-device syncs per ResObj loss call and per training step. On CUDA:
  ``torch.cuda.set_sync_debug_mode`` warnings. On CPU, where nothing syncs,
  the operators that would on an accelerator are counted instead: scalar
  reads (``.item()``, ``bool(t)``), data-dependent shapes (``nonzero``,
  boolean indexing, ``masked_select``, ``unique``) and tensors created from
  host data (``torch.tensor``/``new_tensor``: a blocking host-to-device copy).

Targets, printed as held / NOT held for every ResObj row: inference ratio
<= FLOP ratio + 0.02, training-step ratio <= FLOP ratio + 0.03, ResObj loss
<= 3 % of the step, at most one sync per loss call.

Usage::

    python tools/benchmarks/benchmark_overhead.py [--device cpu|cuda]
        [--families retinanet yolov3 rpn faster-rcnn] [--steps 0 1 2 3]
        [--no-lite] [--scale 0.5] [--batch 2] [--repeats 5] [--out FILE.md]

Default input: 800x1333 (RetinaNet, RPN, Faster R-CNN) and 608x608
(YOLOv3); ``--scale`` multiplies both sides.
"""
import argparse
import copy
import gc
import json
import logging
import os
import os.path as osp
import statistics
import sys
import time
import warnings
from functools import partial

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

FAMILIES = {
    'retinanet': dict(
        vanilla='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
        resobj='configs/resobj/resobj-retinanet_r50_fpn_1x_coco.py',
        head='bbox_head',
        shape=(800, 1333)),
    'yolov3': dict(
        vanilla='mmdet::yolo/yolov3_d53_8xb8-ms-608-273e_coco.py',
        resobj='configs/resobj/resobj-yolov3_d53_8xb8-ms-608-273e_coco.py',
        head='bbox_head',
        shape=(608, 608)),
    'rpn': dict(
        vanilla='mmdet::rpn/rpn_r50_fpn_1x_coco.py',
        resobj='configs/resobj/resobj-rpn_r50_fpn_1x_coco.py',
        head='rpn_head',
        shape=(800, 1333)),
    'faster-rcnn': dict(
        vanilla='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
        resobj='configs/resobj/resobj-faster-rcnn_r50_fpn_1x_coco.py',
        head='rpn_head',
        shape=(800, 1333)),
    'atss': dict(
        vanilla='mmdet::atss/atss_r50_fpn_1x_coco.py',
        resobj='configs/resobj/resobj-atss_r50_fpn_1x_coco.py',
        head='bbox_head',
        shape=(800, 1333)),
    'ssd': dict(
        vanilla='mmdet::ssd/ssd300_coco.py',
        resobj='configs/resobj/resobj-ssd300_coco.py',
        head='bbox_head',
        # mmdet 3.3.0's SSDHead cannot predict (mmdetection#11780): its
        # registered twin with the missing attribute, otherwise identical.
        vanilla_head_type='SSDHeadCompat',
        shape=(300, 300),
        # SSD300's last extra layers (3x3, no padding) reduce 300 px to
        # 1x1: a smaller input does not run. --scale leaves it at 300.
        scalable=False),
    'yolox': dict(
        vanilla='mmdet::yolox/yolox_s_8xb8-300e_coco.py',
        resobj='configs/resobj/resobj-yolox_s_8xb8-300e_coco.py',
        head='bbox_head',
        shape=(640, 640)),
}
TARGETS = dict(infer=0.02, train=0.03, loss_share=0.03, syncs=1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--families', nargs='+', choices=list(FAMILIES),
                        default=list(FAMILIES))
    parser.add_argument('--steps', type=int, nargs='+', default=[0, 1, 2, 3],
                        help='ResObj T values to build')
    parser.add_argument('--no-lite', action='store_true',
                        help='skip the lite T=2 variants (res_convs=0, '
                        'plain and folded for inference)')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='input size factor (1.0: 800x1333 / 608x608)')
    parser.add_argument('--batch', type=int, default=2,
                        help='training-step batch size (inference: 1)')
    parser.add_argument('--num-gts', type=int, default=8,
                        help='random GT boxes per training image')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (CPU)')
    parser.add_argument('--out', default=None,
                        help='also write the markdown table (and .json) here')
    parser.add_argument(
        '--profile', default=None, metavar='DIR',
        help='also profile one inference and one training step of vanilla '
        'and of every ResObj variant (torch.profiler, CUDA activity on a '
        'GPU): DIR/<family>.txt holds the top operators of each, by self '
        'device time on a GPU and self CPU time otherwise')
    args = parser.parse_args(argv)
    if any(t < 0 for t in args.steps):
        parser.error(f'--steps must be >= 0, got {args.steps}')
    if args.scale <= 0 or args.batch < 1 or args.repeats < 1:
        parser.error('--scale must be > 0, --batch and --repeats >= 1')
    return args


# ----------------------------------------------------------------- counting
class SyncCounter:
    """Counts host-device synchronisations inside a ``with`` block.

    On CUDA tensors, torch's own sync debug mode reports every blocking
    synchronisation. Everywhere, a dispatch mode counts the operators that
    need the host to see device data (on CPU this is the only count).
    """
    SCALAR = {'aten::_local_scalar_dense', 'aten::is_nonzero',
              'aten::equal'}
    DATA_SHAPE = {'aten::nonzero', 'aten::masked_select', 'aten::_unique2',
                  'aten::unique_consecutive', 'aten::unique_dim',
                  'aten::nonzero_static'}

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.ops = {}
        self.cuda_syncs = 0

    def _mode(self):
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode
        counter = self

        class Mode(TorchDispatchMode):

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                name = func._schema.name
                hit = name in counter.SCALAR or name in counter.DATA_SHAPE \
                    or name == 'aten::lift_fresh'
                if name in ('aten::index', 'aten::index_put',
                            'aten::index_put_') and len(args) > 1:
                    hit = any(
                        isinstance(i, torch.Tensor) and i.dtype in (
                            torch.bool, torch.uint8) for i in args[1] or ())
                if name == 'aten::repeat_interleave' and \
                        kwargs.get('output_size') is None:
                    hit = True
                if hit:
                    counter.ops[name] = counter.ops.get(name, 0) + 1
                return func(*args, **kwargs)

        return Mode()

    def __enter__(self):
        import torch
        self._dispatch = self._mode()
        self._dispatch.__enter__()
        if self.cuda:
            self._warn = warnings.catch_warnings(record=True)
            self._records = self._warn.__enter__()
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
        return self

    def __exit__(self, *exc):
        import torch
        if self.cuda:
            torch.cuda.set_sync_debug_mode('default')
            self.cuda_syncs = sum('synchroniz' in str(w.message)
                                  for w in self._records)
            self._warn.__exit__(*exc)
        self._dispatch.__exit__(*exc)
        return False

    @property
    def count(self) -> int:
        return self.cuda_syncs if self.cuda else sum(self.ops.values())


def saved_bytes(fn):
    """Bytes autograd saves for backward while ``fn`` runs (and fn's out)."""
    import torch
    total = [0]
    seen = set()

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.dtype)
        if key not in seen:  # several ops often save the same tensor
            seen.add(key)
            total[0] += t.untyped_storage().nbytes()
        # Not ``t`` itself: a saved output would then hold its own grad_fn,
        # a cycle through C++ that gc never frees (GPU OOM across families).
        return t.detach()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return total[0], out


def _proc_status(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    return None


def peak_memory(fn, device):
    """Peak bytes above the memory held before ``fn`` (None if unknown)."""
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current RSS
    except OSError:
        fn()
        return None
    base = _proc_status('VmRSS')
    fn()
    return _proc_status('VmHWM') - base


# ------------------------------------------------------------------ models
def variants(args):
    """``(name, residual_objectness overrides, fold for inference)``."""
    out = [('vanilla', None, False)]
    out += [(f'T={t}', dict(num_steps=t), False) for t in args.steps]
    if not args.no_lite:
        lite = dict(num_steps=2, res_convs=0)
        out.append(('T=2 lite', lite, False))
        # switch_to_deploy: inference only (a folded model cannot train).
        out.append(('T=2 lite folded', lite, True))
    return out


def build_model(family, overrides, device):
    import torch
    from mmengine.config import Config
    from mmengine.logging import MMLogger

    from mmdet.registry import MODELS
    spec = FAMILIES[family]
    if overrides is None:  # mmdet's own config, from its installed copy
        import mmdet
        path = osp.join(
            osp.dirname(mmdet.__file__), '.mim', 'configs',
            spec['vanilla'][len('mmdet::'):])
    else:
        path = osp.join(ROOT, spec['resobj'])
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None  # never download weights
    if overrides is None and 'vanilla_head_type' in spec:
        import resobj_mmdet  # noqa: F401  (registers the compat head)
        cfg.model[spec['head']].type = spec['vanilla_head_type']
    if overrides is not None:
        cfg.model[spec['head']].residual_objectness.update(overrides)
    # Keep every candidate box (an untrained model scores below 0.05) so
    # that post-processing and NMS see the same, realistic workload -
    # nms_pre boxes per level - in every variant.
    test_cfg = cfg.model.test_cfg
    for part in (test_cfg, test_cfg.get('rcnn')):
        if part is not None and 'score_thr' in part:
            part.score_thr = 0.0
        if part is not None and 'conf_thr' in part:
            part.conf_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)  # init_weights logs every parameter
    try:
        model.init_weights()  # priors: comparable score levels in NMS
    finally:
        logger.setLevel(level)
    return model.to(device)


def make_batch(shape, batch, num_gts, device, seed=0):
    """Normalised random images padded to 32 and random GT boxes."""
    import torch
    from mmengine.structures import InstanceData

    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
    inputs = torch.randn(batch, 3, ph, pw, generator=g).to(device)
    samples = []
    for _ in range(batch):
        sample = DetDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                          pad_shape=(ph, pw), batch_input_shape=(ph, pw),
                          scale_factor=(1.0, 1.0)))
        size = torch.rand(num_gts, 2, generator=g) * (min(h, w) / 2 - 16) + 16
        xy = torch.rand(num_gts, 2, generator=g) * (
            torch.tensor([w, h]) - size)
        gt = InstanceData()
        gt.bboxes = torch.cat([xy, xy + size], dim=1).to(device)
        gt.labels = torch.randint(0, 80, (num_gts, ), generator=g).to(device)
        sample.gt_instances = gt
        samples.append(sample)
    return inputs, samples


def count_flops(model, inputs, samples):
    from mmengine.analysis import get_model_complexity_info
    forward = model.forward
    model.eval()
    model.forward = partial(forward, data_samples=samples, mode='tensor')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            info = get_model_complexity_info(
                model, inputs=inputs, show_table=False, show_arch=False)
    finally:
        del model.forward  # back to the class's forward
    return info['flops'], info['params']


def head_of(model, family):
    return getattr(model, 'rpn_head' if family == 'faster-rcnn' else
                   'bbox_head')


class LossProbe:
    """Wraps a ResObj head's ``objectness_losses``: counts its syncs and
    keeps the last call's arguments to time the loss alone afterwards."""

    def __init__(self, head, cuda):
        self.head, self.cuda = head, cuda
        self.orig = head.objectness_losses
        self.counting = False
        self.calls, self.syncs, self.ops = 0, 0, {}
        self.last = None
        head.objectness_losses = self

    def __call__(self, loss, obj_preds, labels, weights, avg_factor=None,
                 **kwargs):
        # obj_preds: per-level maps, or already flattened (YOLOX, T = 0).
        preds = obj_preds.detach() if hasattr(obj_preds, 'detach') else [
            p.detach() for p in obj_preds]
        self.last = (loss, preds, labels.detach(),
                     None if weights is None else weights.detach(),
                     avg_factor, kwargs)
        if not self.counting:
            return self.orig(loss, obj_preds, labels, weights, avg_factor,
                             **kwargs)
        with SyncCounter(self.cuda) as counter:
            out = self.orig(loss, obj_preds, labels, weights, avg_factor,
                            **kwargs)
        self.calls += 1
        self.syncs += counter.count
        for k, v in counter.ops.items():
            self.ops[k] = self.ops.get(k, 0) + v
        return out

    def leaves(self):
        """The last call's arguments, its predictions as fresh leaves."""
        loss, preds, labels, weights, avg_factor, kwargs = self.last
        preds = preds.clone().requires_grad_() if hasattr(
            preds, 'requires_grad_') else [
                p.clone().requires_grad_() for p in preds]
        return (loss, preds, labels, weights, avg_factor), kwargs

    def run_alone(self):
        args, kwargs = self.leaves()
        losses = self.orig(*args, **kwargs)
        sum(losses.values()).backward()


# --------------------------------------------------------------- benchmark
def sync(device):
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def bench_family(family, args, device):
    import torch
    scale = args.scale if FAMILIES[family].get('scalable', True) else 1.0
    shape = tuple(int(round(s * scale)) for s in FAMILIES[family]['shape'])
    cuda = device.type == 'cuda'
    infer_in, infer_samples = make_batch(shape, 1, args.num_gts, device)
    train_in, train_samples = make_batch(shape, args.batch, args.num_gts,
                                         device, seed=1)
    rows = []
    for name, overrides, fold in variants(args):
        model = build_model(family, overrides, device)
        if overrides is None:
            shared = model.state_dict()
        else:
            # Same weights wherever the variants share a layer (backbone,
            # neck, box branch, RoI head): only ResObj's layers differ.
            own = model.state_dict()
            model.load_state_dict(
                {k: v for k, v in shared.items()
                 if k in own and own[k].shape == v.shape}, strict=False)
        if fold:
            for module in model.modules():
                if hasattr(module, 'switch_to_deploy'):
                    module.switch_to_deploy()
        flops, params = count_flops(model, infer_in, infer_samples)
        probe = None if overrides is None or fold else LossProbe(
            head_of(model, family), cuda)
        rows.append(dict(family=family, variant=name, model=model,
                         probe=probe, flops=flops, params=params,
                         infer=[], train=[], peak=[], loss=[],
                         inference_only=fold))
        print(f'  built {family} {name}: {params / 1e6:.2f} M params, '
              f'{flops / 1e9:.1f} GFLOPs', flush=True)

    def infer(row):
        row['model'].eval()
        with torch.no_grad():
            row['model'](infer_in, copy.deepcopy(infer_samples),
                         mode='predict')

    def train(row):
        model = row['model']
        model.train()
        losses = model(train_in, copy.deepcopy(train_samples), mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        model.zero_grad(set_to_none=True)

    for rep in range(args.warmup + args.repeats):
        # Rotate the order so that no variant always runs first or last.
        order = rows[rep % len(rows):] + rows[:rep % len(rows)]
        for row in order:
            t_inf = timed(partial(infer, row), device)
            gc.collect()
            t_train = [None]

            def step(row=row):
                t_train[0] = timed(partial(train, row), device)

            peak = None if row['inference_only'] else peak_memory(
                step, device)
            if row['probe'] is not None:
                t_loss = timed(row['probe'].run_alone, device)
            if rep >= args.warmup:
                row['infer'].append(t_inf)
                row['train'].append(t_train[0])
                row['peak'].append(peak)
                if row['probe'] is not None:
                    row['loss'].append(t_loss)
        print(f'  repetition {rep + 1}/{args.warmup + args.repeats} done',
              flush=True)

    if args.profile:
        profile_rows(family, rows, infer, train, device, args.profile)

    for row in rows:  # one more step each, counted (slower: not timed)
        model = row['model']
        if row['inference_only']:
            row['saved'] = row['step_syncs'] = None
            del row['model'], row['probe']
            continue
        act, _ = saved_bytes(partial(
            model, train_in, copy.deepcopy(train_samples), mode='loss'))
        model.zero_grad(set_to_none=True)
        row['saved'] = act
        if row['probe'] is not None:
            row['probe'].counting = True
        with SyncCounter(cuda) as counter:
            train(row)
        row['step_syncs'] = counter.count
        if row['probe'] is not None:
            p = row['probe']
            row['loss_syncs'] = p.syncs / max(p.calls, 1)
            row['loss_sync_ops'] = p.ops
        del row['model'], row['probe']
        gc.collect()
    return shape, rows


def profile_rows(family, rows, infer, train, device, out_dir, top=25):
    """Write the top operators of one inference and one training step of
    every variant to ``out_dir/<family>.txt`` (where the ratios come from).

    Args:
        family (str): Family name (file name).
        rows (list[dict]): The family's variants (``model`` still built).
        infer, train (callable): ``fn(row)``, as timed by the benchmark.
        device (torch.device): Where the models run.
        out_dir (str): Output directory.
        top (int): Operators listed per table.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile
    cuda = device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA]
                                           if cuda else [])
    key = 'self_cuda_time_total' if cuda else 'self_cpu_time_total'
    parts = []
    for row in rows:
        for phase, fn in (('inference', infer), ('training step', train)):
            if phase == 'training step' and row['inference_only']:
                continue
            sync(device)
            with profile(activities=activities) as prof:
                fn(row)
                sync(device)
            events = prof.key_averages()
            launches = sum(e.count for e in events
                           if e.key in ('cudaLaunchKernel',
                                        'cudaLaunchKernelExC',
                                        'cuLaunchKernel', 'cuLaunchKernelEx'))
            parts.append(
                f'## {family} {row["variant"]}: {phase}\n'
                f'operator calls: {sum(e.count for e in events)}'
                + (f', kernel launches: {launches}' if cuda else '') + '\n\n'
                + events.table(sort_by=key, row_limit=top) + '\n')
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, f'{family}.txt')
    with open(path, 'w') as f:
        f.write('\n'.join(parts))
    print(f'  profile: {path}', flush=True)


def summarise(rows):
    base = rows[0]
    med = statistics.median
    out = []
    for row in rows:
        r = dict(
            family=row['family'], variant=row['variant'],
            params_m=row['params'] / 1e6, gflops=row['flops'] / 1e9,
            flop_ratio=row['flops'] / base['flops'],
            infer_ms=1e3 * med(row['infer']),
            infer_ratio=med(row['infer']) / med(base['infer']),
            train_ms=None, train_ratio=None, saved_ratio=None,
            step_syncs=row['step_syncs'],
            peak_ratio=None, loss_share=None, loss_syncs=None)
        if row['inference_only']:
            # A folded lite model: inference as cheap as T = 0.
            r['targets'] = 'held' if r['infer_ratio'] <= r[
                'flop_ratio'] + TARGETS['infer'] else 'NOT held: infer'
            out.append(r)
            continue
        r.update(
            train_ms=1e3 * med(row['train']),
            train_ratio=med(row['train']) / med(base['train']),
            saved_ratio=row['saved'] / base['saved'])
        if None not in row['peak'] and None not in base['peak']:
            r['peak_mb'] = med(row['peak']) / 2**20
            # A small model's vanilla step can stay inside the RSS it
            # already had (peak 0 above it): no ratio then.
            if med(base['peak']) > 0:
                r['peak_ratio'] = med(row['peak']) / med(base['peak'])
        if row['loss']:
            r['loss_ms'] = 1e3 * med(row['loss'])
            r['loss_share'] = med(row['loss']) / med(row['train'])
            r['loss_syncs'] = row['loss_syncs']
            r['loss_sync_ops'] = row['loss_sync_ops']
            failed = []
            if r['infer_ratio'] > r['flop_ratio'] + TARGETS['infer']:
                failed.append('infer')
            if r['train_ratio'] > r['flop_ratio'] + TARGETS['train']:
                failed.append('train')
            if r['loss_share'] > TARGETS['loss_share']:
                failed.append('loss share')
            if r['loss_syncs'] > TARGETS['syncs']:
                failed.append('syncs')
            r['targets'] = 'held' if not failed else 'NOT held: ' + ', '.join(
                failed)
        out.append(r)
    return out


def markdown(results, header):
    lines = [
        header, '',
        '| family | variant | params (M) | GFLOPs | FLOP ratio | infer ratio '
        '| train-step ratio | ResObj loss share | peak mem ratio | saved-act. '
        'ratio | syncs / loss call | syncs / step | targets |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
    ]

    def f(v, fmt):
        return '—' if v is None else format(v, fmt)

    for r in results:
        lines.append(
            f"| {r['family']} | {r['variant']} | {r['params_m']:.2f} | "
            f"{r['gflops']:.1f} | {r['flop_ratio']:.3f} | "
            f"{r['infer_ratio']:.3f} | {f(r['train_ratio'], '.3f')} | "
            f"{f(r['loss_share'] and 100 * r['loss_share'], '.2f')}"
            f"{'' if r['loss_share'] is None else ' %'} | "
            f"{f(r['peak_ratio'], '.3f')} | {f(r['saved_ratio'], '.3f')} | "
            f"{f(r['loss_syncs'], '.0f')} | {f(r['step_syncs'], 'd')} | "
            f"{r.get('targets', '—')} |")
    lines.append('')
    lines.append('Absolute medians (vanilla): ' + '; '.join(
        f"{r['family']} infer {r['infer_ms']:.0f} ms, train step "
        f"{r['train_ms']:.0f} ms" for r in results if r['variant'] ==
        'vanilla'))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cpu' and sys.platform.startswith('linux') and \
            'MALLOC_MMAP_THRESHOLD_' not in os.environ:
        # Pin glibc's mmap threshold (it otherwise grows to 32 MB and keeps
        # freed activations in the heap), so that the RSS follows the live
        # tensors and per-step peaks can be compared. Re-exec to apply it.
        os.environ['MALLOC_MMAP_THRESHOLD_'] = str(1 << 20)
        os.execv(sys.executable, [sys.executable] + sys.argv)
    import torch
    from mmengine.registry import init_default_scope

    import resobj_mmdet  # noqa: F401  (registers the ResObj modules)
    init_default_scope('mmdet')
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: torch.cuda.is_available() is False')
    results, shapes = [], {}
    where = (torch.cuda.get_device_name(device) if device.type == 'cuda' else
             f'CPU, {torch.get_num_threads()} threads')
    for family in args.families:
        print(f'{family}:', flush=True)
        shape, rows = bench_family(family, args, device)
        shapes[family] = shape
        results += summarise(rows)
        header = (
            f'torch {torch.__version__}, {where}; inputs ' + ', '.join(
                f'{k} {h}x{w}' for k, (h, w) in shapes.items()) +
            f'; inference batch 1, training batch {args.batch} with '
            f'{args.num_gts} GT boxes per image; median of {args.repeats} '
            f'interleaved repetitions.')
        table = markdown(results, header)
        if args.out:  # after every family: a run cut short keeps its rows
            os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
            with open(args.out, 'w') as f:
                f.write(table + '\n')
            with open(osp.splitext(args.out)[0] + '.json', 'w') as f:
                json.dump(results, f, indent=1)
    print('\n' + table)
    failed = [r for r in results if r.get('targets', 'held') != 'held']
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
