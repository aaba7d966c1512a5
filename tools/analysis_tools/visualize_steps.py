"""Draw a detector's results at every refinement step (paper Fig. 5).

Runs the model once on an image and scores the detections with the
objectness of each step ``t = 0..T`` (``o_t = o_0 + r_1 + ... + r_t``),
drawing one panel per step, side by side, with mmdet's
``DetLocalVisualizer``. For ResObj RetinaNet and YOLOv3 the panels are the
detections; for an RPN, its proposals; for Faster R-CNN, the final detections
computed from the step-t proposals.

Usage::

    python tools/analysis_tools/visualize_steps.py CONFIG CHECKPOINT IMAGE \\
        [--out steps.png] [--score-thr 0.3] [--device cpu]
"""
import argparse
from typing import List

import numpy as np


def _head(model):
    head = getattr(model, 'rpn_head', None) or getattr(model, 'bbox_head')
    if not hasattr(head, 'num_steps'):
        raise TypeError(f'{type(head).__name__} is not a ResObj head: '
                        'nothing to show per step')
    return head


def step_results(model, image_path: str) -> List:
    """One ``DetDataSample`` per step, predictions in image coordinates."""
    import torch
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate

    from mmdet.utils import get_test_pipeline_cfg
    pipeline_cfg = [
        t for t in get_test_pipeline_cfg(model.cfg)
        if t['type'] not in ('LoadAnnotations', 'mmdet.LoadAnnotations')
    ]
    data = Compose(pipeline_cfg)(dict(img_path=image_path, img_id=0))
    batch = model.data_preprocessor(pseudo_collate([data]), False)
    head = _head(model)
    samples = []
    with torch.no_grad():
        x = model.extract_feat(batch['inputs'])
        outs = head(x)
        metas = [s.metainfo for s in batch['data_samples']]
        two_stage = getattr(model, 'with_rpn', False) and \
            getattr(model, 'roi_head', None) is not None
        for t in range(head.num_steps + 1):
            sample = batch['data_samples'][0].clone()
            results = head.predict_by_feat(
                *outs, batch_img_metas=metas, rescale=not two_stage,
                step=t)
            if two_stage:
                results = model.roi_head.predict(
                    x, results, batch['data_samples'], rescale=True)
            sample.pred_instances = results[0]
            samples.append(sample)
    return samples


def visualize(config: str, checkpoint: str, image: str, out: str,
              score_thr: float = 0.3, device: str = 'cpu') -> np.ndarray:
    """Write the side-by-side panels to ``out`` and return them (RGB)."""
    import cv2
    import mmcv
    from mmdet.apis import init_detector
    from mmdet.registry import VISUALIZERS
    from mmdet.utils import register_all_modules

    register_all_modules()
    import resobj_mmdet  # noqa: F401
    model = init_detector(config, checkpoint, device=device)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    img = mmcv.imconvert(mmcv.imread(image), 'bgr', 'rgb')
    panels = []
    for t, sample in enumerate(step_results(model, image)):
        visualizer.add_datasample(
            f'step {t}', img, sample, draw_gt=False, show=False,
            pred_score_thr=score_thr)
        panel = visualizer.get_image()
        # A title strip: which step, and how many boxes pass the threshold.
        kept = int((sample.pred_instances.scores >= score_thr).sum())
        strip = np.full((28, panel.shape[1], 3), 255, dtype=np.uint8)
        cv2.putText(strip, f't = {t}: {kept} boxes >= {score_thr}', (6, 20),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                    cv2.LINE_AA)
        panels.append(np.concatenate([strip, panel], axis=0))
    gap = np.full((panels[0].shape[0], 6, 3), 255, dtype=np.uint8)
    canvas = panels[0]
    for panel in panels[1:]:
        canvas = np.concatenate([canvas, gap, panel], axis=1)
    mmcv.imwrite(mmcv.imconvert(canvas, 'rgb', 'bgr'), out)
    return canvas


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out', default='steps.png')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    canvas = visualize(args.config, args.checkpoint, args.image, args.out,
                       args.score_thr, args.device)
    print(f'wrote {args.out} ({canvas.shape[1]}x{canvas.shape[0]})')


if __name__ == '__main__':
    main()
