"""Export an mmdet detector (ResObj or vanilla) to ONNX with mmdeploy and
check ONNX Runtime against PyTorch.

Writes ``<work-dir>/end2end.onnx``, ``parity.md`` and ``parity.json``: per
image, the largest difference of the top-k scores and of their boxes between
``model.predict`` and the exported model run by ONNX Runtime. The exit code
is 1 when a difference exceeds ``--score-tol`` / ``--box-tol``.

Lite ResObj modules (``residual_objectness.res_convs=0``) are folded before
export (``switch_to_deploy``), so the exported graph of a lite detector has
no residual convs (RetinaNet: exactly the T = 0 graph). ``--no-fuse`` keeps
them.

Needs the ``deploy`` extra: ``WITH_DEPLOY=1 bash tools/setup_env.sh``
(mmdeploy 1.3.1, onnx 1.14.1, onnxruntime 1.15.1).

Usage::

    python tools/deployment/deploy.py configs/deploy/detection_onnxruntime_dynamic.py \\
        configs/demo/resobj-retinanet_r18-w16_fpn_12e_shapes.py \\
        work_dirs/resobj-retinanet_r18-w16_fpn_12e_shapes/epoch_12.pth \\
        --images data/resobj_shapes/val/000000.png data/resobj_shapes/val/000001.png \\
        --work-dir work_dirs/deploy/retinanet
"""
import argparse
import contextlib
import copy
import inspect
import json
import os
import os.path as osp
import sys
import time
from typing import List, Optional

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@contextlib.contextmanager
def torch_onnx_compat():
    """The two fixes mmdeploy 1.3.1 needs on torch >= 2.9, only while active.

    - ``torch.onnx.export`` defaults to the dynamo exporter since torch 2.9;
      mmdeploy 1.3.1 calls it without ``dynamo=`` and relies on TorchScript
      tracing (its function rewriters and symbolics are skipped otherwise,
      and the dynamo path needs ``onnxscript``). Here it defaults to
      ``dynamo=False``.
    - ``torch.onnx.symbolic_opset9._cast_Long``, which mmdeploy 1.3.1's
      RoIAlign symbolic imports, was removed from torch (the private
      ``_cast_*`` helpers). Here it is provided as the ONNX ``Cast`` to
      int64 it was.

    Nothing is changed when torch already behaves as mmdeploy expects, and
    everything is restored on exit: importing ``resobj_mmdet`` patches
    nothing.
    """
    import torch.onnx
    import torch.onnx.symbolic_opset9 as opset9
    original_export = torch.onnx.export
    needs_dynamo_flag = 'dynamo' in inspect.signature(
        original_export).parameters
    had_cast_long = hasattr(opset9, '_cast_Long')

    def export(*args, **kwargs):
        kwargs.setdefault('dynamo', False)
        return original_export(*args, **kwargs)

    def _cast_long(g, input, non_blocking):
        return g.op('Cast', input, to_i=7)  # onnx.TensorProto.INT64

    try:
        if needs_dynamo_flag:
            torch.onnx.export = export
        if not had_cast_long:
            opset9._cast_Long = _cast_long
        yield
    finally:
        torch.onnx.export = original_export
        if not had_cast_long and hasattr(opset9, '_cast_Long'):
            del opset9._cast_Long


def align_postprocessing(deploy_cfg, model_cfg) -> dict:
    """Make mmdeploy's post-processing that of the model's ``test_cfg``.

    mmdeploy replaces mmdet's post-processing with its own, parameterised by
    the deploy config (one IoU and score threshold for every detector);
    mmdet's YOLOv3 uses NMS IoU 0.45, RetinaNet 0.5, Faster R-CNN's R-CNN
    0.5. The exported model is meant to give ``model.predict``'s
    detections, so the thresholds the model's ``test_cfg`` states win.

    Returns:
        dict: The ``post_processing`` keys changed, ``{key: (old, new)}``.
    """
    test_cfg = model_cfg.model.get('test_cfg') or {}
    test_cfg = test_cfg.get('rcnn', test_cfg)
    post = deploy_cfg.codebase_config.post_processing
    wanted = dict(
        score_threshold=test_cfg.get('score_thr'),
        iou_threshold=(test_cfg.get('nms') or {}).get('iou_threshold'),
        keep_top_k=test_cfg.get('max_per_img'))
    changed = {}
    for key, value in wanted.items():
        if value is not None and post.get(key) != value:
            changed[key] = (post.get(key), value)
            post[key] = value
    return changed


def fold_lite(model: torch.nn.Module) -> List[str]:
    """``switch_to_deploy()`` every module that has it; names of the folded
    ones."""
    folded = []
    for name, module in model.named_modules():
        fn = getattr(module, 'switch_to_deploy', None)
        if callable(fn) and fn() is True:
            folded.append(name)
    return folded


def count_convs(model: torch.nn.Module) -> int:
    return sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def export_onnx(deploy_cfg, model_cfg, checkpoint: Optional[str],
                images: List[str], work_dir: str, device: str = 'cpu',
                fuse: bool = True) -> dict:
    """mmdeploy's ``torch2onnx``, with the lite fold before export.

    Returns:
        dict: ``onnx`` path, the PyTorch model used, ``folded`` module names,
        conv counts and the export time.
    """
    from mmdeploy.apis import build_task_processor
    from mmdeploy.apis.core.pipeline_manager import no_mp
    from mmdeploy.apis.onnx import export
    from mmdeploy.utils import (get_backend, get_dynamic_axes,
                                get_input_shape, get_onnx_config)

    os.makedirs(work_dir, exist_ok=True)
    task_processor = build_task_processor(model_cfg, deploy_cfg, device)
    model = task_processor.build_pytorch_model(checkpoint)
    convs_before = count_convs(model)
    folded = fold_lite(model) if fuse else []
    data, inputs = task_processor.create_input(
        images[0], get_input_shape(deploy_cfg),
        data_preprocessor=getattr(model, 'data_preprocessor', None))
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    onnx_cfg = get_onnx_config(deploy_cfg)
    save_file = onnx_cfg.get('save_file', 'end2end.onnx')
    names = onnx_cfg['input_names'] + onnx_cfg['output_names']
    start = time.perf_counter()
    with torch_onnx_compat(), no_mp():
        export(
            # mmdeploy patches the module it exports: keep ours for parity.
            copy.deepcopy(model),
            inputs,
            input_metas=dict(
                data_samples=data['data_samples'], mode='predict'),
            output_path_prefix=osp.join(work_dir,
                                        osp.splitext(save_file)[0]),
            backend=get_backend(deploy_cfg).value,
            input_names=onnx_cfg['input_names'],
            output_names=onnx_cfg['output_names'],
            context_info=dict(deploy_cfg=deploy_cfg),
            opset_version=onnx_cfg.get('opset_version', 11),
            dynamic_axes=get_dynamic_axes(deploy_cfg, names),
            verbose=False,
            keep_initializers_as_inputs=onnx_cfg.get(
                'keep_initializers_as_inputs', True),
            optimize=onnx_cfg.get('optimize', False))
    return dict(
        onnx=osp.join(work_dir, save_file),
        model=model,
        task_processor=task_processor,
        folded=folded,
        convs_before=convs_before,
        convs_after=count_convs(model),
        export_seconds=time.perf_counter() - start)


def _top(instances, k: int):
    scores = instances.scores.detach().float().cpu()
    order = scores.argsort(descending=True)[:k]
    return (scores[order].numpy(),
            instances.bboxes.detach().float().cpu()[order].numpy(),
            instances.labels.detach().cpu()[order].numpy())


def _match(a, b, k: int):
    """Each of PyTorch's top-k detections against its ONNX counterpart.

    The counterpart is the ONNX detection of the same label with the highest
    IoU (ties in score may reorder the two lists, so ranks are not
    compared). Returns the largest score and box differences and how many
    detections found no counterpart (IoU < 0.5).
    """
    from mmdet.structures.bbox import bbox_overlaps
    sa, ba, la = _top(a, k)
    sb = b.scores.detach().float().cpu().numpy()
    bb = b.bboxes.detach().float().cpu()
    lb = b.labels.detach().cpu().numpy()
    if not len(sa):
        return 0.0, 0.0, 0, 0
    ious = bbox_overlaps(torch.from_numpy(ba), bb).numpy()
    ious[la[:, None] != lb[None, :]] = -1
    j = ious.argmax(axis=1) if len(sb) else np.zeros(len(sa), int)
    found = (ious[np.arange(len(sa)), j] >= 0.5) if len(sb) else \
        np.zeros(len(sa), bool)
    if not found.any():
        return float('inf'), float('inf'), len(sa), len(sa)
    score_diff = np.abs(sa[found] - sb[j[found]]).max()
    box_diff = np.abs(ba[found] - bb.numpy()[j[found]]).max()
    return float(score_diff), float(box_diff), int((~found).sum()), len(sa)


def parity(task_processor, model, onnx_file: str, images: List[str],
           deploy_cfg, k: int = 10, batch: int = 1) -> List[dict]:
    """Top-k scores/boxes of PyTorch vs ONNX Runtime, per image.

    Images are fed ``batch`` at a time (a static export takes its own batch
    size only).
    """
    from mmdeploy.utils import get_input_shape
    backend_model = task_processor.build_backend_model([onnx_file])
    rows = []
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch]
        # Raw inputs: each model runs its own data_preprocessor.
        data = task_processor.create_input(chunk,
                                           get_input_shape(deploy_cfg))[0]
        with torch.no_grad():
            ours = model.test_step(copy.deepcopy(data))
            theirs = backend_model.test_step(copy.deepcopy(data))
        for path, a, b in zip(chunk, ours, theirs):
            a, b = a.pred_instances, b.pred_instances
            score_diff, box_diff, unmatched, n = _match(a, b, k)
            rows.append(
                dict(
                    image=osp.basename(path),
                    torch_dets=int(len(a)),
                    onnx_dets=int(len(b)),
                    compared=n,
                    unmatched=unmatched,
                    top_score=float(a.scores.max()) if len(a) else None,
                    score_diff=score_diff,
                    box_diff=box_diff))
    return rows


def markdown(rows: List[dict], info: dict) -> str:
    lines = [
        f'Exported `{info["onnx"]}` in {info["export_seconds"]:.1f} s; '
        f'folded lite modules: {len(info["folded"])} (convs '
        f'{info["convs_before"]} -> {info["convs_after"]}).', '',
        '| image | PyTorch dets | ONNX dets | top-k compared | unmatched | '
        'top score | max score diff | max box diff (px) |',
        '|---|---|---|---|---|---|---|---|'
    ]
    for r in rows:
        top = '—' if r['top_score'] is None else f'{r["top_score"]:.4f}'
        lines.append(
            f'| {r["image"]} | {r["torch_dets"]} | {r["onnx_dets"]} | '
            f'{r["compared"]} | {r["unmatched"]} | {top} | '
            f'{r["score_diff"]:.2e} | {r["box_diff"]:.2e} |')
    return '\n'.join(lines) + '\n'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('deploy_cfg', help='mmdeploy config '
                        '(configs/deploy/)')
    parser.add_argument('model_cfg', help='mmdet config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (default: the config\'s own init)')
    parser.add_argument('--images', nargs='+', required=True)
    parser.add_argument('--work-dir', default='work_dirs/deploy')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=1,
                        help='images per parity call (dynamic exports)')
    parser.add_argument('--top-k', type=int, default=10)
    parser.add_argument('--score-tol', type=float, default=1e-4)
    parser.add_argument('--box-tol', type=float, default=1e-2)
    parser.add_argument('--no-fuse', action='store_true',
                        help='keep lite residual convs unfolded')
    parser.add_argument(
        '--keep-deploy-postprocessing', action='store_true',
        help="use the deploy config's score/IoU thresholds as they are "
        "instead of the model test_cfg's")
    parser.add_argument(
        '--cfg-options', nargs='+', default=[],
        help='key=value overrides of the model config, as mmdet tools take')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config, DictAction
    from mmdeploy.utils import load_config
    missing = [p for p in [args.deploy_cfg, args.model_cfg] + args.images
               if not osp.isfile(p)]
    if args.checkpoint and not osp.isfile(args.checkpoint):
        missing.append(args.checkpoint)
    if missing:
        raise FileNotFoundError(f'deploy.py: no such file: {missing}')
    deploy_cfg, model_cfg = load_config(args.deploy_cfg, args.model_cfg)
    if args.cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        model_cfg.merge_from_dict(
            parser.parse_args(['--o', *args.cfg_options]).o)
    assert isinstance(model_cfg, Config)
    if not args.keep_deploy_postprocessing:
        for key, (old, new) in align_postprocessing(deploy_cfg,
                                                    model_cfg).items():
            print(f'post_processing.{key}: {old} -> {new} (model test_cfg)')
    info = export_onnx(deploy_cfg, model_cfg, args.checkpoint, args.images,
                       args.work_dir, args.device, fuse=not args.no_fuse)
    rows = parity(info['task_processor'], info['model'], info['onnx'],
                  args.images, deploy_cfg, args.top_k, args.batch)
    report = markdown(rows, info)
    with open(osp.join(args.work_dir, 'parity.md'), 'w') as f:
        f.write(report)
    with open(osp.join(args.work_dir, 'parity.json'), 'w') as f:
        json.dump(dict(rows=rows, folded=info['folded'],
                       export_seconds=info['export_seconds'],
                       convs_before=info['convs_before'],
                       convs_after=info['convs_after']), f, indent=1)
    print(report)
    bad = [r for r in rows if r['score_diff'] > args.score_tol
           or r['box_diff'] > args.box_tol or r['unmatched']
           or not r['compared']]
    return 1 if bad else 0


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    sys.exit(main())
