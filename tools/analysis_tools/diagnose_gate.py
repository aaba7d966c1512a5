"""What opens Algorithm 1's gate, and what each step does with it.

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
  training statistics transfer to unseen images), and how well ``o_t``
  ranks them: ``auc_t{t}``, the chance that a positive outscores a
  negative of its image;
- what step ``t`` does to the ranking, with inference's scores (every
  residual applied to every anchor): ``gate_neg_below``, the share of the
  gate's negatives that step ``t`` moves below the image's weakest positive;
  ``outside_neg_above``, the share of the negatives outside the gate (which
  the residual was never trained on, but inference moves too) that end at
  or above it; ``pos_up``, the share of positives that step ``t`` raises.

With ``--map`` the checkpoint is also evaluated (mmdet's test loop and
metric on the config's test split) once per step, scored by ``o_t``
(``test_cfg.objectness_step=t``): whether a change of ranking reaches the
AP; for a checkpoint that kept the running gate thresholds, also with the
residuals applied only where they were trained
(``test_cfg.residual_gate='trained'``, rows ``step{t}_trained``).

Prints a table (images averaged) and writes it as json with ``--out``.

Usage::

    python tools/analysis_tools/diagnose_gate.py CONFIG CHECKPOINT \\
        [--split train] [--max-images 64] [--map] [--out gate.json]
"""
import argparse
import json
import statistics

from mmengine.config import DictAction

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
    parser.add_argument('--map', action='store_true',
                        help='also evaluate the checkpoint scored by each '
                        "step's objectness (the config's test split)")
    parser.add_argument('--out', default=None, help='json file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='key=value overrides of the config, as '
                        "mmdet's tools/test.py takes them")
    return parser.parse_args(argv)


def build(config, checkpoint, split, cfg_options):
    """The model in eval mode and a loader of ``split``."""
    from mmengine.config import Config
    from mmengine.runner import Runner, load_checkpoint

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import resobj_mmdet  # noqa: F401
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
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
        # Inference's scores: every residual on every anchor.
        scores = logits[i].cumsum(dim=0)  # (T+1, N)
        row = dict(
            auc=[auc(o[pos], o[neg]) for o in scores],
            gate_neg_below=[], outside_neg_above=[], pos_up=[],
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
            now, before = scores[t], scores[t - 1]
            weakest = now[pos].min()
            gate_neg, out_neg = gates[0, t - 1] & neg, ~gates[0, t - 1] & neg
            row['gate_neg_below'].append(
                float((now[gate_neg] < weakest).float().mean())
                if gate_neg.any() else None)
            row['outside_neg_above'].append(
                float((now[out_neg] >= weakest).float().mean())
                if out_neg.any() else None)
            row['pos_up'].append(float((now[pos] > before[pos]).float().mean()))
        rows.append(row)
    return rows


def auc(pos, neg):
    """The chance that a score of ``pos`` exceeds one of ``neg`` (ties
    count half), from ranks: no pairwise matrix."""
    import torch
    if not len(pos) or not len(neg):
        return None
    both = torch.cat([pos, neg]).double()
    order = both.argsort()
    ranks = torch.empty_like(both)
    ranks[order] = torch.arange(1, len(both) + 1, dtype=both.dtype)
    # Average the ranks of ties.
    uniq, inverse = both.unique(return_inverse=True)
    sums = torch.zeros_like(uniq).index_add_(0, inverse, ranks)
    counts = torch.zeros_like(uniq).index_add_(0, inverse,
                                               torch.ones_like(ranks))
    ranks = (sums / counts)[inverse]
    n_pos, n_neg = len(pos), len(neg)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) /
                 (n_pos * n_neg))


def mean_of(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def map_per_step(config, checkpoint, num_steps, cfg_options,
                 trained_gate=False):
    """``coco/bbox_mAP`` (and AP50) of the checkpoint scored by ``o_t``,
    ``t = 0..T``, with mmdet's test loop on the config's test split; with
    ``trained_gate`` also ``t = 1..T`` under ``residual_gate='trained'``."""
    import tempfile

    from mmengine.config import Config
    from mmengine.runner import Runner
    out = {}
    runs = [(t, 'all') for t in range(num_steps + 1)]
    if trained_gate:
        runs += [(t, 'trained') for t in range(1, num_steps + 1)]
    for t, gate in runs:
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        # What --cfg-options does (the detector merges it into its
        # test_cfg when it builds the head).
        cfg.merge_from_dict({'model.bbox_head.test_cfg.objectness_step': t,
                             'model.bbox_head.test_cfg.residual_gate': gate})
        cfg.load_from = checkpoint
        name = f'step{t}' + ('_trained' if gate == 'trained' else '')
        cfg.work_dir = tempfile.mkdtemp(prefix=f'gate_map_{name}_')
        cfg.visualizer.name = f'gate-map-{name}-{cfg.work_dir}'
        cfg.test_dataloader.num_workers = 0
        cfg.test_dataloader.persistent_workers = False
        metrics = Runner.from_cfg(cfg).test()
        out[name] = {k: metrics.get(k) for k in (
            'coco/bbox_mAP', 'coco/bbox_mAP_50')}
    return out


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
        for key in ('gate_neg_below', 'outside_neg_above', 'pos_up'):
            step[key] = mean_of(r[key][t] for r in rows)
        out[f'step{t + 1}'] = step
    with_neg = [r for r in rows if r['obj_neg'] is not None]
    for t in range(num_steps + 1):
        out[f'auc_t{t}'] = mean_of(r['auc'][t] for r in rows)
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
    summary = summarise(rows, head.num_steps, classes)
    thresholds = head.residual_objectness_modules[0].gate_logit
    trained_gate = not bool(thresholds.isnan().any())
    if trained_gate:
        # What residual_gate='trained' gates with, beside the images' own
        # minp above.
        summary['running_minp'] = thresholds.sigmoid().tolist()
    if args.map:
        summary['map'] = map_per_step(args.config, args.checkpoint,
                                      head.num_steps, args.cfg_options,
                                      trained_gate)
    return report(summary, args.out)


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
