"""Per-class recall of a two-stage detector's proposals.

For a Faster R-CNN(-ResObj) checkpoint, runs the images of a split
(training pipeline without its random transforms, so that the boxes are in
the coordinates the RPN sees) through the RPN with its test settings and
reports, per class and for the best ``k`` proposals of each image (``k`` in
``--topk``, proposals ordered by score as the RoI head receives them):

- ``recall@k/iou``: the share of the class's ground-truth boxes that a
  proposal among the first ``k`` covers with IoU >= ``iou`` (``--ious``);
- ``best_iou@k``: the mean over the class's boxes of the best IoU among the
  first ``k`` proposals (how tight the proposals the RoI head refines are).

The RPN objectness decides which anchors become proposals. A class that
the RoI head detects poorly may be missed already here (low recall) or
covered only loosely (low best IoU): this tells the two apart.

Prints the summary as json and writes it to ``--out``.

Usage::

    python tools/analysis_tools/proposal_recall.py CONFIG CHECKPOINT \\
        [--split val] [--topk 100 300 1000] [--ious 0.5 0.7] [--out r.json]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from diagnose_gate import build, report  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--split', choices=['train', 'val'], default='val')
    parser.add_argument('--topk', type=int, nargs='+',
                        default=[100, 300, 1000])
    parser.add_argument('--ious', type=float, nargs='+', default=[0.5, 0.7])
    parser.add_argument('--max-images', type=int, default=None,
                        help='stop after this many images (default: all)')
    parser.add_argument('--out', default=None, help='json file')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value overrides of the config')
    return parser.parse_args(argv)


def best_ious(proposals, gt_boxes, topk):
    """Best IoU of every ground-truth box among the first ``k`` proposals.

    Args:
        proposals (Tensor): (P, 4) boxes, best score first.
        gt_boxes (Tensor): (G, 4) boxes.
        topk (list[int]): The ``k`` values.

    Returns:
        Tensor: (len(topk), G); 0 where an image has no proposal.
    """
    import torch
    from mmdet.structures.bbox import bbox_overlaps
    best = gt_boxes.new_zeros((len(topk), len(gt_boxes)))
    if len(proposals) == 0 or len(gt_boxes) == 0:
        return best
    ious = bbox_overlaps(proposals, gt_boxes)  # (P, G)
    # The running maximum over proposals: row k-1 is the best of the first k.
    running = torch.cummax(ious, dim=0).values
    for i, k in enumerate(topk):
        best[i] = running[min(k, len(proposals)) - 1]
    return best


def summarise(best, labels, topk, ious, classes):
    """Per class (and ``all``): recall at every ``k`` and IoU, mean best IoU.

    Args:
        best (Tensor): (len(topk), G) best IoUs of every ground-truth box
            of the split.
        labels (Tensor): (G, ) their classes.

    Returns:
        dict: ``{name: {'boxes': n, 'recall@k/iou': r, 'best_iou@k': m}}``.
    """
    out = {}
    groups = [(name, labels == c) for c, name in enumerate(classes)]
    groups.append(('all', labels >= 0))
    for name, mask in groups:
        n = int(mask.sum())
        row = dict(boxes=n)
        for i, k in enumerate(topk):
            b = best[i][mask]
            for thr in ious:
                row[f'recall@{k}/{thr}'] = float((b >= thr).float().mean()) \
                    if n else float('nan')
            row[f'best_iou@{k}'] = float(b.mean()) if n else float('nan')
        out[name] = row
    return out


def main(argv=None):
    import torch
    from mmdet.structures.bbox import get_box_tensor
    args = parse_args(argv)
    if any(k < 1 for k in args.topk):
        raise SystemExit(f'--topk: every k must be >= 1, got {args.topk}')
    model, loader = build(args.config, args.checkpoint, args.split,
                          args.cfg_options)
    if not getattr(model, 'with_rpn', False):
        raise SystemExit(f'{args.config}: {type(model).__name__} has no RPN '
                         '(rpn_head); proposal recall needs a two-stage '
                         'detector')
    topk = sorted(set(args.topk))
    bests, labels, seen = [], [], 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            feats = model.extract_feat(data['inputs'])
            results = model.rpn_head.predict(
                feats, data['data_samples'], rescale=False)
            for sample, result in zip(data['data_samples'], results):
                gt = sample.gt_instances
                order = result.scores.argsort(descending=True)
                bests.append(
                    best_ious(result.bboxes[order],
                              get_box_tensor(gt.bboxes), topk))
                labels.append(gt.labels)
            seen += len(data['data_samples'])
            if args.max_images is not None and seen >= args.max_images:
                break
    classes = loader.dataset.metainfo['classes']
    summary = summarise(
        torch.cat(bests, dim=1), torch.cat(labels), topk, args.ious, classes)
    summary['images'] = seen
    return report(summary, args.out)


if __name__ == '__main__':
    main()
