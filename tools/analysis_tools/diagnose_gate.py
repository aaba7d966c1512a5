"""What opens Algorithm 1's gate: the weakest positive of each image.

For a RetinaNet- or ATSS-ResObj checkpoint, runs the training images
(training pipeline without its random transforms) through the head, assigns the anchors with
the head's own assigner and reports, per refinement step ``t``:

- ``minp``: the score of the weakest positive of an image
  (``sigmoid(o_{t-1})``), which opens the gate ``S_t``, and the share of the
  non-ignored anchors in ``S_t``;
- what sets ``minp``: the IoU of that positive with its ground truth,
  whether it is a forced low-quality match (IoU below the assigner's
  ``pos_iou_thr``, made a positive only because it is its ground truth's
  best anchor: ``min_pos_iou``/``match_low_quality``), and its class;
- the gate's share under other rules of the same kind: the minimum over
  the positives with IoU >= ``pos_iou_thr`` only, and quantiles of the
  positives' scores;
- for every ``t = 0..T`` the mean objectness ``sigmoid(o_t)`` of the
  positives and of the negatives (``ObjectnessStatsHook``'s ``obj_pos_t{t}``
  / ``obj_neg_t{t}``, here on any split: ``--split val`` shows how far the
  training statistics transfer to unseen images).

Prints a table (images averaged) and writes it as json with ``--out``.

Usage::

    python tools/analysis_tools/diagnose_gate.py CONFIG CHECKPOINT \\
        [--split train] [--max-images 64] [--out gate.json]
"""
import argparse
import json
import statistics

QUANTILES = (0.1, 0.25)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--split', choices=['train', 'val'], default='train',
                        help='images and boxes of this split (default: '
                        'train, where the gate acts)')
    parser.add_argument('--max-images', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--out', default=None, help='json file')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value overrides of the config')
    return parser.parse_args(argv)


def build(config, checkpoint, split, cfg_options):
    """The model in eval mode and a loader of ``split``."""
    from mmengine.config import Config, DictAction
    from mmengine.runner import Runner, load_checkpoint

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import resobj_mmdet  # noqa: F401
    cfg = Config.fromfile(config)
    if cfg_options:
        action = DictAction(option_strings=[], dest='x')
        ns = argparse.Namespace()
        action(None, ns, cfg_options)
        cfg.merge_from_dict(ns.x)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    loader_cfg = cfg.val_dataloader.copy()
    dataset = (cfg.train_dataloader if split == 'train' else
               cfg.val_dataloader).dataset.copy()
    # The training pipeline without its random transforms: boxes in the
    # coordinates the assigner sees (a test pipeline loads them unscaled).
    dataset.pipeline = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if not t['type'].startswith(('Random', 'mmdet.Random'))
    ]
    dataset.test_mode = True
    loader_cfg.dataset = dataset
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    return model, Runner.build_dataloader(loader_cfg)


def gate_stats(head, outs, samples):
    """Per image and step, the quantities of the module docstring.

    Returns:
        list[dict]: One dict per image with positives: ``minp`` (T, ),
        ``frac`` (T, ) gate share, ``iou``/``low_quality``/``label`` of the
        positive that sets ``minp`` per step, ``frac_hq`` and
        ``frac_q{q}`` (T, ) the gate share under the alternative rules,
        ``low_quality_share`` of the positives, ``obj_pos``/``obj_neg``
        (T + 1, ) the mean ``sigmoid(o_t)`` of the positives / negatives.
    """
    import torch
    from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
    from mmengine.structures import InstanceData

    from resobj_mmdet.models.layers.residual_objectness import \
        flatten_objectness
    from resobj_mmdet.models.losses.residual_objectness_loss import \
        refine_objectness

    cls_scores, obj_preds = outs[0], outs[-1]
    metas = [s.metainfo for s in samples]
    sizes = [c.shape[-2:] for c in cls_scores]
    anchors, flags = head.get_anchors(sizes, metas, device='cpu')
    num_steps = head.num_steps
    logits = flatten_objectness(obj_preds, num_steps)  # (B, T+1, N)
    thr = head.assigner.pos_iou_thr if hasattr(head.assigner,
                                               'pos_iou_thr') else None
    rows = []
    for i, sample in enumerate(samples):
        prior = torch.cat(anchors[i])
        gt = sample.gt_instances
        if len(gt) == 0:
            continue
        ignore = getattr(sample, 'ignored_instances', None)
        result = head.assigner.assign(
            InstanceData(priors=prior), gt,
            ignore if ignore is not None and len(ignore) else None)
        pos = result.gt_inds > 0
        if not pos.any():
            continue
        neg = result.gt_inds == 0
        valid = pos | neg
        iou = torch.zeros(len(prior))
        boxes = get_box_tensor(gt.bboxes)
        iou[pos] = bbox_overlaps(
            prior[pos], boxes[result.gt_inds[pos] - 1], is_aligned=True)
        label = torch.full((len(prior), ), -1, dtype=torch.long)
        label[pos] = gt.labels[result.gt_inds[pos] - 1]
        low = pos & (iou < thr) if thr is not None else torch.zeros_like(pos)
        refined, gates = refine_objectness(
            logits[i:i + 1], pos[None].float(), valid[None].float())
        row = dict(
            minp=[], frac=[], iou=[], low_quality=[], label=[], frac_hq=[],
            low_quality_share=float(low.sum() / pos.sum()),
            obj_pos=refined[0][:, pos].sigmoid().mean(1).tolist(),
            obj_neg=(refined[0][:, neg].sigmoid().mean(1).tolist()
                     if neg.any() else None),
            **{f'frac_q{q}': [] for q in QUANTILES})
        nvalid = float(valid.sum())
        for t in range(1, num_steps + 1):
            prev = refined[0, t - 1]
            k = int(torch.nonzero(pos)[prev[pos].argmin()])
            row['minp'].append(float(prev[k].sigmoid()))
            row['frac'].append(float(gates[0, t - 1].sum()) / nvalid)
            row['iou'].append(float(iou[k]))
            row['low_quality'].append(bool(low[k]))
            row['label'].append(int(label[k]))
            hq = pos & ~low
            bar = prev[hq].min() if hq.any() else prev[pos].min()
            row['frac_hq'].append(float(((prev >= bar) & valid).sum()) /
                                  nvalid)
            for q in QUANTILES:
                bar = torch.quantile(prev[pos], q)
                row[f'frac_q{q}'].append(
                    float(((prev >= bar) & valid).sum()) / nvalid)
        rows.append(row)
    return rows


def summarise(rows, num_steps, classes):
    """Means over images, per step."""
    out = dict(images=len(rows),
               low_quality_share=statistics.mean(
                   r['low_quality_share'] for r in rows))
    for t in range(num_steps):
        step = dict(
            minp=statistics.mean(r['minp'][t] for r in rows),
            gate_frac=statistics.mean(r['frac'][t] for r in rows),
            minp_iou=statistics.mean(r['iou'][t] for r in rows),
            minp_low_quality=statistics.mean(
                float(r['low_quality'][t]) for r in rows),
            gate_frac_high_quality=statistics.mean(r['frac_hq'][t]
                                                   for r in rows),
            minp_class={
                name: sum(r['label'][t] == c for r in rows) / len(rows)
                for c, name in enumerate(classes)
            })
        for q in QUANTILES:
            step[f'gate_frac_q{q}'] = statistics.mean(r[f'frac_q{q}'][t]
                                                      for r in rows)
        out[f'step{t + 1}'] = step
    with_neg = [r for r in rows if r['obj_neg'] is not None]
    for t in range(num_steps + 1):
        out[f'obj_pos_t{t}'] = statistics.mean(r['obj_pos'][t] for r in rows)
        if with_neg:
            out[f'obj_neg_t{t}'] = statistics.mean(r['obj_neg'][t]
                                                   for r in with_neg)
    return out


def main(argv=None):
    import torch
    args = parse_args(argv)
    model, loader = build(args.config, args.checkpoint, args.split,
                          args.cfg_options)
    head = model.bbox_head
    if not hasattr(head, 'num_steps') or head.num_steps == 0:
        raise SystemExit(f'{type(head).__name__}: no residual step, no gate')
    rows, seen = [], 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            outs = head(model.extract_feat(data['inputs']))
            rows += gate_stats(head, outs, data['data_samples'])
            seen += len(data['data_samples'])
            if seen >= args.max_images:
                break
    classes = loader.dataset.metainfo['classes']
    return report(summarise(rows, head.num_steps, classes), args.out)


def report(summary, out=None):
    """Print ``summary`` as json, also write it to ``out`` when given, and
    return it."""
    print(json.dumps(summary, indent=1))
    if out:
        with open(out, 'w') as f:
            json.dump(summary, f, indent=1)
    return summary


if __name__ == '__main__':
    main()
