"""Validate resobj-mmdet on a GPU (or, scaled down, on the CPU here).

Every check writes a PASS / FAIL / SKIP line with its figures to a markdown
report (``--out``, default ``$OUT/gpu_report.md``); the exit code is 1 if a
check failed. Checks (``--only`` picks some; each fits one device command):

- ``env``: torch, the device, mmcv's compiled ops on the device.
- ``precision``: every ResObj demo detector (RetinaNet, YOLOv3, Faster
  R-CNN, ATSS, SSD, YOLOX) trained a few iterations through mmengine's
  Runner with ``AmpOptimWrapper`` fp16 (CUDA) and under bf16 autocast:
  finite losses and gradients, and the ResObj loss computed in fp32.
- ``syncs``: the ResObj loss (``objectness_losses``) of every head under
  ``torch.cuda.set_sync_debug_mode('error')``: zero host syncs. On the CPU
  the benchmark's dispatch counter counts the ops that would sync.
- ``pytest``: ``pytest -m cuda`` (the CUDA-only tests).
- ``train``: each ResObj demo and its vanilla twin trained with mmdet's
  ``tools/train.py --amp`` on the embedded dataset and evaluated; mAP next
  to the CPU figures of the README.
- ``cross``: a checkpoint trained on the device tested on the CPU, and one
  trained on the CPU tested on the device (mmdet's ``tools/test.py``).
- ``overhead``: ``tools/benchmarks/benchmark_overhead.py --device cuda`` at
  the full default sizes, 15 repetitions; its table is written family by
  family to ``<report>_table.md`` (kept when a command is cut) and appended
  to the report, its ``--profile`` tables go to ``<report>_profile.txt``.

``--dry`` scales everything down (2-iteration trainings, 1 repetition,
``--scale 0.1``) so that the kit runs here in minutes; a test runs it.

Usage on the device (after ``tools/gpu/build_mmcv.sh``)::

    PYTHONPATH=/tmp/resobj-site:. python3 tools/gpu/validate.py --only env precision syncs pytest
    PYTHONPATH=/tmp/resobj-site:. python3 tools/gpu/validate.py --only train cross
    PYTHONPATH=/tmp/resobj-site:. python3 tools/gpu/validate.py --only overhead
    # --families retinanet yolov3 ...: a subset of the detectors, so that a
    # check longer than one device command (train, overhead) is split

Here::

    python tools/gpu/validate.py --device cpu --dry --out work_dirs/gpu_dry.md
"""
import argparse
import copy
import glob
import json
import math
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmarks'))
DEMO = osp.join(ROOT, 'configs', 'demo')
# (ResObj demo, vanilla twin, head attribute)
DETECTORS = [
    ('resobj-retinanet_r18-w16_fpn_12e_shapes.py',
     'retinanet_r18-w16_fpn_12e_shapes.py', 'bbox_head'),
    ('resobj-yolov3_r18-w16_12e_shapes.py', 'yolov3_r18-w16_12e_shapes.py',
     'bbox_head'),
    ('resobj-faster-rcnn_r18-w16_fpn_12e_shapes.py',
     'faster-rcnn_r18-w16_fpn_12e_shapes.py', 'rpn_head'),
    ('resobj-atss_r18-w16_fpn_12e_shapes.py', 'atss_r18-w16_fpn_12e_shapes.py',
     'bbox_head'),
    ('resobj-ssd_r18-w16_12e_shapes.py', 'ssd_r18-w16_12e_shapes.py',
     'bbox_head'),
    ('resobj-yolox_r18-w16_12e_shapes.py', 'yolox_r18-w16_12e_shapes.py',
     'bbox_head'),
]


def family_of(config):
    """``'resobj-faster-rcnn_r18-...py'`` -> ``'faster-rcnn'``."""
    return osp.basename(config).split('_')[0].replace('resobj-', '')


# `rpn` (RPN alone) is a family of the overhead benchmark only.
FAMILIES = [family_of(c) for c, _, _ in DETECTORS] + ['rpn']
CHECKS = ['env', 'precision', 'syncs', 'pytest', 'train', 'cross',
          'overhead']


class Report:
    """Markdown report: one line per check, figures after it."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.failed = False

    def add(self, status, name, detail=''):
        self.failed |= status == 'FAIL'
        line = f'- **{status}** {name}' + (f': {detail}' if detail else '')
        print(line, flush=True)
        self.lines.append(line)
        self.write()

    def block(self, text):
        self.lines += ['', text, '']
        self.write()

    def write(self):
        os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
        with open(self.path, 'w') as f:
            f.write('\n'.join(self.lines) + '\n')


def _tiny_cfg(config, work_dir, iters, device):
    """A demo config on a small generated copy of the embedded data, as a
    short iteration-based run without evaluation."""
    from mmengine.config import Config
    from resobj_mmdet.datasets import ensure_shapes
    root = osp.join(tempfile.gettempdir(), 'resobj_gpu_tiny_shapes')
    splits = dict(train=16, val=8)
    ensure_shapes(root, splits=splits)
    cfg = Config.fromfile(osp.join(DEMO, config))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[key]
        dl.dataset.data_root = root + '/'
        dl.dataset.generate = dict(splits=splits)
        dl.batch_size = 2
        dl.num_workers = 0
        dl.persistent_workers = False
    cfg.work_dir = work_dir
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=iters + 1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=iters + 1, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0)
    cfg.visualizer.name = f'visualizer-{work_dir}'
    cfg.custom_hooks = []
    if not device.startswith('cuda'):
        cfg.env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(
            backend='gloo'), mp_cfg=dict(mp_start_method='fork'))
    return cfg


# ------------------------------------------------------------------ checks
def check_env(report, args):
    import torch
    import mmcv
    import mmdet
    import mmengine
    dev = args.device
    if dev.startswith('cuda'):
        if not torch.cuda.is_available():
            report.add('FAIL', 'env', 'torch.cuda.is_available() is False')
            return
        name = torch.cuda.get_device_name()
        cap = '%d.%d' % torch.cuda.get_device_capability()
    else:
        name, cap = 'CPU', '-'
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10]], device=dev)
    keep = nms(boxes, torch.tensor([0.9, 0.8], device=dev), 0.5)[1]
    roi = RoIAlign((2, 2), 1.0, 0, aligned=True)(
        torch.rand(1, 1, 8, 8, device=dev),
        torch.tensor([[0., 0, 0, 4, 4]], device=dev))
    ok = keep.tolist() == [0] and roi.shape == (1, 1, 2, 2)
    report.add(
        'PASS' if ok else 'FAIL', 'env',
        f'{name} (sm {cap}), torch {torch.__version__}, mmcv '
        f'{mmcv.__version__} (nms/RoIAlign on {dev}: '
        f'{"ok" if ok else "wrong"}), mmengine {mmengine.__version__}, '
        f'mmdet {mmdet.__version__}')


def _finite_losses(work_dir):
    values = []
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data',
                                   'scalars.json')):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                values += [v for k, v in rec.items() if k.startswith('loss')]
    return values, all(math.isfinite(v) for v in values)


def _precision_run(config, mode, args):
    """Train ``config`` a few iterations under ``mode``; return the error
    (or None), the logged losses' finiteness, the final gradients'
    finiteness, the ResObj loss output dtypes and the seconds taken."""
    import torch
    from mmengine.runner import Runner
    from resobj_mmdet.models.losses import ResidualObjectnessLoss
    work = tempfile.mkdtemp(prefix='prec-')
    cfg = _tiny_cfg(config, work, args.iters, args.device)
    if mode == 'fp16-amp':
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.dtype = 'float16'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    dtypes, grads_ok, err = set(), True, None
    start = time.perf_counter()
    handles = []
    try:
        runner = Runner.from_cfg(cfg)

        def hook(module, inputs, output):
            dtypes.update(v.dtype for v in output.values())

        handles = [m.register_forward_hook(hook)
                   for m in runner.model.modules()
                   if isinstance(m, ResidualObjectnessLoss)]
        if mode == 'bf16-autocast':
            with torch.autocast(args.device.split(':')[0],
                                dtype=torch.bfloat16):
                runner.train()
        else:
            runner.train()
        grads_ok = all(torch.isfinite(p.grad).all()
                       for p in runner.model.parameters()
                       if p.grad is not None)
    except Exception as e:  # reported, not raised
        err = repr(e)[:300]
    finally:
        for h in handles:
            h.remove()
    values, finite = _finite_losses(work)
    return err, values, finite, grads_ok, dtypes, time.perf_counter() - start


def check_precision(report, args):
    import torch
    cuda = args.device.startswith('cuda')
    modes = (['fp16-amp', 'bf16-autocast'] if cuda else ['bf16-autocast'])
    for config, vanilla, _ in args.detectors:
        for mode in modes:
            err, values, finite, grads_ok, dtypes, secs = _precision_run(
                config, mode, args)
            ok = err is None and finite and grads_ok and values and \
                dtypes == {torch.float32}
            status = 'PASS' if ok else 'FAIL'
            detail = err or (f'{len(values)} logged losses finite={finite}, '
                             f'final grads finite={grads_ok}, ResObj loss '
                             f'dtypes {sorted(str(d) for d in dtypes)}, '
                             f'{secs:.1f} s')
            if err is not None:
                # Not ours if the vanilla twin fails the same way (e.g. an
                # mmcv op without a kernel for this dtype on this device).
                v_err = _precision_run(vanilla, mode, args)[0]
                if v_err is not None and \
                        v_err.split('(')[0] == err.split('(')[0]:
                    status = 'SKIP'
                    detail = (f'mmdet/mmcv\'s own: the vanilla {vanilla} '
                              f'fails identically: {v_err}')
            report.add(status, f'precision {config} {mode}', detail)


def check_syncs(report, args):
    import torch
    from mmengine.config import Config
    from benchmark_overhead import SyncCounter, make_batch
    from mmdet.registry import MODELS
    cuda = args.device.startswith('cuda')
    for config, _, head_name in args.detectors:
        cfg = Config.fromfile(osp.join(DEMO, config))
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).to(args.device)
        model.init_weights()
        model.train()
        head = getattr(model, head_name)
        calls = []
        orig = head.objectness_losses

        def probe(*a, **k):
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.set_sync_debug_mode('error')
                try:
                    out = orig(*a, **k)
                    sum(out.values()).backward(retain_graph=True)
                finally:
                    torch.cuda.set_sync_debug_mode(0)
                calls.append(0)  # an error would have been raised
            else:
                with SyncCounter(False) as counter:
                    out = orig(*a, **k)
                    sum(out.values()).backward(retain_graph=True)
                calls.append(counter.count)
            return out

        head.objectness_losses = probe
        inputs, samples = make_batch((128, 128), 2, 4, args.device)
        for s in samples:
            s.gt_instances.labels = s.gt_instances.labels % 4
        try:
            model(inputs, samples, mode='loss')
            err = None
        except RuntimeError as e:
            err = repr(e)[:300]
        ok = err is None and calls and not any(calls)
        report.add('PASS' if ok else 'FAIL', f'syncs {config}',
                   err or f'{sum(calls)} host syncs in {len(calls)} ResObj '
                   f'loss call(s) (forward + backward)')


def check_pytest(report, args):
    if not args.device.startswith('cuda'):
        report.add('SKIP', 'pytest -m cuda', 'no CUDA device (dry run)')
        return
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', '-m', 'cuda', '-q', '--tb=line',
         '-p', 'no:warnings',
         '-p', 'no:cacheprovider', 'tests'], cwd=ROOT, capture_output=True,
        text=True)
    tail = (proc.stdout or proc.stderr).strip().splitlines()[-1:]
    report.add('PASS' if proc.returncode == 0 else 'FAIL', 'pytest -m cuda',
               ' '.join(tail))
    if proc.returncode:
        report.block('```\n' + proc.stdout[-6000:] + '\n```')


def _run(cmd, env=None):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env=env)
    return proc, time.perf_counter() - start


def _metric(text):
    found = re.findall(r'coco/(bbox_mAP|AR@100): ([0-9.]+)', text)
    return float(found[-1][1]) if found else None


def _tools():
    import mmdet
    base = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
    return osp.join(base, 'train.py'), osp.join(base, 'test.py')


# A model trained for two iterations scores below mmdet's 0.05: keep every
# box in the dry run so that the metric has something to evaluate. (The dry
# run trains the RetinaNet pair only.)
DRY_TEST_OPTS = ['model.test_cfg.score_thr=0.0']


def _train(config, work, args, amp):
    train_py, _ = _tools()
    opts = ['randomness.seed=0']
    if args.dry:
        opts += ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                 'default_hooks.checkpoint.interval=1',
                 f'train_dataloader.dataset.indices={args.iters * 2}',
                 'val_dataloader.dataset.indices=4'] + DRY_TEST_OPTS
    if args.workers:
        opts += [f'train_dataloader.num_workers={args.workers}',
                 f'val_dataloader.num_workers={args.workers}']
    cmd = [sys.executable, train_py, osp.join(DEMO, config), '--work-dir',
           work, '--cfg-options', *opts]
    if amp:
        cmd.append('--amp')
    env = dict(os.environ)
    if not args.device.startswith('cuda'):
        env['CUDA_VISIBLE_DEVICES'] = ''
    return _run(cmd, env)


def check_train(report, args):
    cuda = args.device.startswith('cuda')
    rows = []
    # The dry run trains one pair: the kit's code path, not the figures.
    for pair in args.detectors[:1] if args.dry else args.detectors:
        for config in pair[:2]:
            work = osp.join(args.work_dir, 'train', osp.splitext(config)[0])
            proc, secs = _train(config, work, args, amp=cuda)
            value = _metric(proc.stdout + proc.stderr)
            ok = proc.returncode == 0 and value is not None
            rows.append((config, value, secs))
            report.add('PASS' if ok else 'FAIL', f'train {config}'
                       f'{" --amp" if cuda else ""}',
                       f'metric {value}, {secs:.0f} s' if ok else
                       (proc.stdout + proc.stderr)[-300:])
    lines = ['| config | metric on ' + args.device + ' | train + eval s |',
             '|---|---|---|']
    lines += [f'| {c} | {"—" if v is None else f"{v:.3f}"} | {s:.0f} |'
              for c, v, s in rows]
    report.block('\n'.join(lines))


def check_cross(report, args):
    """Device-trained checkpoint tested on CPU, and the reverse."""
    _, test_py = _tools()
    config = DETECTORS[0][0]
    cuda = args.device.startswith('cuda')
    for train_on, test_on in (('device', 'cpu'), ('cpu', 'device')):
        work = osp.join(args.work_dir, 'cross', f'{train_on}_trained')
        trained_args = copy.copy(args)
        if train_on == 'cpu':
            trained_args.device = 'cpu'
        proc, _ = _train(config, work, trained_args, amp=False)
        ckpts = sorted(glob.glob(osp.join(work, 'epoch_*.pth')))
        if proc.returncode or not ckpts:
            report.add('FAIL', f'cross {train_on}-trained',
                       (proc.stdout + proc.stderr)[-300:])
            continue
        env = dict(os.environ)
        if test_on == 'cpu' or not cuda:
            env['CUDA_VISIBLE_DEVICES'] = ''
        cmd = [sys.executable, test_py, osp.join(DEMO, config), ckpts[-1],
               '--work-dir', osp.join(work, 'test_' + test_on)]
        if args.dry:
            cmd += ['--cfg-options', 'test_dataloader.dataset.indices=4',
                    *DRY_TEST_OPTS]
        proc, secs = _run(cmd, env)
        value = _metric(proc.stdout + proc.stderr)
        ok = proc.returncode == 0 and value is not None
        report.add('PASS' if ok else 'FAIL',
                   f'cross {train_on}-trained, tested on {test_on}',
                   f'metric {value}, {secs:.0f} s' if ok else
                   (proc.stdout + proc.stderr)[-300:])


def check_overhead(report, args):
    # Next to the report (under $OUT on the device): the benchmark writes
    # its table after every family, so a command cut at the device's
    # 10-minute limit still returns the families it finished.
    out = osp.splitext(args.out)[0] + '_table.md'
    prof_dir = osp.join(args.work_dir, 'overhead_profile')
    shutil.rmtree(prof_dir, ignore_errors=True)  # no stale family files
    cmd = [sys.executable,
           osp.join(ROOT, 'tools', 'benchmarks', 'benchmark_overhead.py'),
           '--device', args.device, '--out', out]
    if args.dry:
        cmd += ['--families', 'retinanet', '--steps', '2', '--scale', '0.1',
                '--repeats', '1', '--warmup', '0', '--batch', '1',
                '--no-lite', '--profile', prof_dir]
    else:
        # A GPU step takes tens of ms, launch-bound and jittery: 15
        # repetitions cost ~20 s a family (3 left ATSS's inference ratios
        # spread over 0.68-0.92). The profile says where a ratio comes from.
        cmd += ['--families', *args.families,
                '--repeats', '15', '--profile', prof_dir]
    proc, secs = _run(cmd)
    profiles = sorted(glob.glob(osp.join(prof_dir, '*.txt')))
    if profiles:  # one file back through $OUT (the tool returns 8 at most)
        path = osp.splitext(args.out)[0] + '_profile.txt'
        with open(path, 'w') as f:
            for name in profiles:
                with open(name) as part:
                    f.write(part.read() + '\n')
    ok = osp.isfile(out)
    held = proc.returncode == 0
    # The dry run checks that the benchmark runs and reports: its timings
    # (tiny inputs, one repetition, a shared CPU) say nothing of the targets.
    report.add('PASS' if ok and (held or args.dry) else 'FAIL',
               'overhead benchmark',
               f'{secs:.0f} s, targets {"held" if held else "NOT all held"}'
               if ok else (proc.stdout + proc.stderr)[-300:])
    if ok:
        with open(out) as f:
            report.block(f.read())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--only', nargs='+', choices=CHECKS, default=CHECKS)
    parser.add_argument('--dry', action='store_true',
                        help='scaled down: 2-iteration trainings, tiny data')
    parser.add_argument('--iters', type=int, default=None,
                        help='iterations of the precision checks')
    parser.add_argument('--out', default=None,
                        help='report path (default $OUT/gpu_report.md)')
    parser.add_argument('--work-dir', default=None)
    parser.add_argument(
        '--families', nargs='+', choices=FAMILIES, default=FAMILIES,
        help='detectors of the precision / syncs / train / overhead checks '
        '(to split a long check over several device commands)')
    parser.add_argument(
        '--workers', type=int, default=None,
        help='dataloader workers of the `train` / `cross` runs (default: '
        '8 on a GPU, the config\'s 1 on the CPU: 12 epochs of a demo took '
        'about 140 s on an H100 with one worker, data-bound)')
    args = parser.parse_args(argv)
    args.detectors = [d for d in DETECTORS
                      if family_of(d[0]) in args.families]
    if args.workers is None and args.device.startswith('cuda'):
        args.workers = min(8, os.cpu_count() or 1)
    if args.iters is None:
        args.iters = 2 if args.dry else 5
    out_dir = os.environ.get('OUT') or osp.join(ROOT, 'work_dirs', 'gpu')
    if args.out is None:
        args.out = osp.join(out_dir, 'gpu_report.md')
    if args.work_dir is None:
        args.work_dir = osp.join(ROOT, 'work_dirs', 'gpu_validate')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmdet.utils import register_all_modules
    register_all_modules()
    import resobj_mmdet  # noqa: F401
    report = Report(args.out)
    report.lines = [f'# resobj-mmdet validation on {args.device}'
                    f'{" (dry run)" if args.dry else ""}', '']
    for name in CHECKS:
        if name in args.only:
            try:
                globals()[f'check_{name}'](report, args)
            except Exception as e:  # one broken check must not hide others
                report.add('FAIL', name, repr(e)[:500])
    return 1 if report.failed else 0


if __name__ == '__main__':
    sys.exit(main())
