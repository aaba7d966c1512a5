# Copyright (c) resobj-mmdet contributors.
"""Watch residual objectness learn (paper Fig. 2/4) in the training log."""
from typing import List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS
from ...models.losses import ResidualObjectnessLoss


@HOOKS.register_module()
class ObjectnessStatsHook(Hook):
    """Log per-step objectness statistics of the training batches.

    Every ``interval`` iterations it records, for each refinement step
    ``t = 0..T``, the mean objectness score (``sigmoid(o_t)``, as inference
    computes it) of the positive and of the negative anchors of the batch,
    and for ``t >= 1`` the mean size of the training gate ``S_t`` per image,
    its share of the non-ignored anchors and the score ``sigmoid(minp_t)``
    that opens it (mean over the images with positives). The values go to
    mmengine's MessageHub as ``train/obj_pos_t{t}``, ``train/obj_neg_t{t}``,
    ``train/gate_t{t}``, ``train/gate_frac_t{t}`` and ``train/minp_t{t}``, so they appear in the
    text log, the work_dir's ``vis_data/scalars.json`` and any visualizer
    backend (TensorBoard, ...). ``tools/analysis_tools/plot_objectness_stats.py`` draws
    them.

    Statistics are computed only on the iterations that log them (one host
    sync each); the other iterations run exactly as without the hook. It
    reads the losses, so it does nothing during validation, where no loss is
    computed.

    Enable it with one line in a config::

        custom_hooks = [dict(type='ObjectnessStatsHook', interval=10)]

    Args:
        interval (int): Record every ``interval`` training iterations.
            Defaults to 10.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL) logs the iter

    def __init__(self, interval: int = 10) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or \
                interval < 1:
            raise ValueError('ObjectnessStatsHook: `interval` must be a '
                             f'positive int, got {interval!r}')
        self.interval = interval
        self._losses: List[ResidualObjectnessLoss] = []

    def before_train(self, runner) -> None:
        """Find the model's residual objectness losses."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._losses = [
            m for m in model.modules()
            if isinstance(m, ResidualObjectnessLoss)
        ]
        if not self._losses:
            runner.logger.warning(
                'ObjectnessStatsHook: the model has no '
                'ResidualObjectnessLoss; nothing will be logged.')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """Record statistics only on the iterations that log them."""
        on = self.every_n_train_iters(runner, self.interval)
        for loss in self._losses:
            loss.record_stats = on
            loss.stats = None

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Push the recorded statistics to the MessageHub."""
        for idx, loss in enumerate(self._losses):
            stats, loss.stats = loss.stats, None
            if stats is None:
                continue
            prefix = 'train/' if len(self._losses) == 1 else f'train/{idx}.'
            for key, value in self.to_scalars(stats).items():
                runner.message_hub.update_scalar(prefix + key, value)
        for loss in self._losses:
            loss.record_stats = False

    @staticmethod
    def to_scalars(stats: dict) -> dict:
        """Flatten recorded statistics into named floats (one host sync).

        Means over an empty set (a batch without positives) are left out
        rather than logged as NaN.
        """
        num_steps = stats['pos_mean'].numel() - 1
        t1 = num_steps + 1
        flat = torch.cat([
            stats['pos_mean'], stats['neg_mean'], stats['gate_size'],
            stats['gate_frac'], stats['minp'],
            torch.stack([stats['num_pos'], stats['num_neg']])
        ]).tolist()
        pos, neg = flat[:t1], flat[t1:2 * t1]
        gate = flat[2 * t1:2 * t1 + num_steps]
        frac = flat[2 * t1 + num_steps:2 * t1 + 2 * num_steps]
        minp = flat[2 * t1 + 2 * num_steps:2 * t1 + 3 * num_steps]
        num_pos, num_neg = flat[-2:]
        scalars = {}
        for t in range(num_steps + 1):
            if num_pos > 0:
                scalars[f'obj_pos_t{t}'] = pos[t]
            if num_neg > 0:
                scalars[f'obj_neg_t{t}'] = neg[t]
            if t > 0:
                scalars[f'gate_t{t}'] = gate[t - 1]
                scalars[f'gate_frac_t{t}'] = frac[t - 1]
                if num_pos > 0:
                    scalars[f'minp_t{t}'] = minp[t - 1]
        return scalars
