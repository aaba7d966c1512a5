# Copyright (c) resobj-mmdet contributors.
"""Loss of residual objectness (paper Algorithm 1), shared by every head."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS

NO_POS_GATES = ('all', 'none')


def refine_objectness(logits: Tensor,
                      labels: Tensor,
                      weights: Tensor,
                      no_pos_gate: str = 'all',
                      detach_prev: bool = True) -> Tuple[Tensor, Tensor]:
    """Algorithm 1's gated refinement of the objectness logits.

    For ``t = 1..T``, per image::

        minp_t = min over positive anchors of o_{t-1}
        S_t    = {i : o_{t-1,i} >= minp_t}          (non-ignored anchors)
        o_t    = o_{t-1} + r_t on S_t, o_{t-1} elsewhere

    ``S_t`` always holds every positive and the negatives scored at least as
    high as the weakest positive of the image. The gate is computed on
    detached logits (sigmoid is monotonic, so comparing logits equals
    comparing scores and avoids fp16 saturation ties). The loop runs over the
    T steps only; every step is vectorised over images and anchors, with no
    host-device synchronisation.

    Args:
        logits (Tensor): ``[o_0, r_1, ..., r_T]`` of shape (B, T+1, N).
        labels (Tensor): Binary objectness targets, shape (B, N).
        weights (Tensor): Per-anchor weights, 0 for ignored anchors, (B, N).
        no_pos_gate (str): ``'all'``: an image without positive anchors gates
            all its non-ignored anchors; ``'none'``: none of them.
        detach_prev (bool): Gradient isolation: detach ``o_{t-1}`` in
            ``o_t = o_{t-1} + r_t``.

    Returns:
        tuple[Tensor, Tensor]: The refined logits ``o_0..o_T`` (B, T+1, N)
        and the gates ``S_1..S_T`` as a bool mask (B, T, N).
    """
    valid = weights > 0
    pos = (labels > 0) & valid
    no_pos = ~pos.any(dim=1, keepdim=True)
    o = logits[:, 0]
    refined, gates = [o], []
    for t in range(1, logits.size(1)):
        prev = o.detach()
        big = torch.finfo(prev.dtype).max
        # masked_fill with a Python scalar: no host-to-device copy (a
        # `new_tensor` here would be a synchronising copy on CUDA).
        minp = prev.masked_fill(~pos, big).amin(dim=1, keepdim=True)
        if no_pos_gate == 'all':
            minp = minp.masked_fill(no_pos, -big)
        gate = (prev >= minp) & valid
        base = prev if detach_prev else o
        o = torch.where(gate, base + logits[:, t], base)
        refined.append(o)
        gates.append(gate)
    if not gates:
        return logits, logits.new_zeros((*labels.shape[:1], 0,
                                         labels.shape[1]), dtype=torch.bool)
    return torch.stack(refined, dim=1), torch.stack(gates, dim=1)


@MODELS.register_module()
class ResidualObjectnessLoss(nn.Module):
    """Objectness + gated residual objectness BCE losses (Algorithm 1).

    Given ``o_0`` and the residual logits ``r_1..r_T`` of every anchor of a
    batch, it computes::

        L_obj   = BCE(o_0, l)   over every non-ignored anchor
        L_res_t = BCE(o_t, l)   over the gate S_t (see refine_objectness)

    Images without any positive anchor have no minimum positive score. With
    ``no_pos_gate='all'`` (default) every non-ignored anchor of such an image
    is in the gate (no positive to rank against, so every negative counts as
    hard): pure-background images keep training the residual subnets, which
    inference applies to every anchor. ``'none'`` gives such an image no
    residual loss.

    Normalisation follows mmdet's ``avg_factor`` convention (RetinaNet: number
    of positive anchors in the batch), except that ``avg_factor`` is clamped to
    at least 1: the objectness loss is non-zero without positives, and
    mmdet's ``sum / (0 + eps)`` would blow it up by ~1e7.

    Args:
        loss_weight (float): Weight of the objectness loss. Defaults to 1.0.
        res_loss_weight (float): Weight of every residual step's loss.
            Defaults to 1.0.
        no_pos_gate (str): ``'all'`` or ``'none'``, see above.
        reduction (str): ``'mean'`` (default; sum / avg_factor, or the mean
            over all elements when no avg_factor is given) or ``'sum'``.
        avg_factor_momentum (float, optional): When set, training normalises
            by an exponential moving average of ``avg_factor`` (this
            momentum) instead of the batch's own value. See
            :class:`ResObjHead`. None: the batch's ``avg_factor``, as mmdet.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 res_loss_weight: float = 1.0,
                 no_pos_gate: str = 'all',
                 reduction: str = 'mean',
                 avg_factor_momentum: Optional[float] = None) -> None:
        super().__init__()
        if no_pos_gate not in NO_POS_GATES:
            raise ValueError(f'ResidualObjectnessLoss: unknown `no_pos_gate` '
                             f'{no_pos_gate!r}; expected one of '
                             f'{NO_POS_GATES}')
        if reduction not in ('mean', 'sum'):
            raise ValueError('ResidualObjectnessLoss: `reduction` must be '
                             f"'mean' or 'sum', got {reduction!r}")
        if avg_factor_momentum is not None and (
                isinstance(avg_factor_momentum, bool)
                or not isinstance(avg_factor_momentum, (int, float))
                or not 0.0 <= avg_factor_momentum < 1.0):
            raise ValueError('ResidualObjectnessLoss: `avg_factor_momentum` '
                             'must be None or a float in [0, 1), got '
                             f'{avg_factor_momentum!r}')
        self.loss_weight = loss_weight
        self.res_loss_weight = res_loss_weight
        self.no_pos_gate = no_pos_gate
        self.reduction = reduction
        self.avg_factor_momentum = avg_factor_momentum
        # Running normaliser (negative: not started). Persistent when used,
        # so that --resume continues it; otherwise kept out of checkpoints.
        self.register_buffer(
            'avg_factor_ema',
            torch.tensor(-1.0),
            persistent=avg_factor_momentum is not None)
        # Set by ObjectnessStatsHook; off by default (no cost when off).
        self.record_stats = False
        self.stats: Optional[Dict[str, Tensor]] = None

    def forward(self,
                logits: Tensor,
                labels: Tensor,
                weights: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                detach_prev: bool = True) -> Dict[str, Tensor]:
        """Compute the objectness and per-step residual losses.

        Args:
            logits (Tensor): ``[o_0, r_1, ..., r_T]`` of shape (B, T+1, N)
                for B images and N anchors (all levels).
            labels (Tensor): Binary objectness targets (1 = foreground) of
                shape (B, N).
            weights (Tensor, optional): Per-anchor loss weights of shape
                (B, N); 0 marks ignored anchors, which never enter a loss or a
                gate. Defaults to all ones.
            avg_factor (float, optional): Normaliser of the ``'mean'``
                reduction (clamped to >= 1). None averages over elements.
            reduction_override (str, optional): ``'mean'`` or ``'sum'`` for
                this call instead of ``self.reduction``.
            detach_prev (bool): Gradient isolation of ``o_{t-1}``; heads pass
                their :class:`ResidualObjectness` ``detach_residual``.

        Returns:
            dict[str, Tensor]: ``loss_obj`` and ``loss_res{t}`` for
            ``t = 1..T`` (scalars).
        """
        if logits.dim() != 3:
            raise ValueError('ResidualObjectnessLoss: `logits` must have shape '
                             f'(B, T+1, N), got {tuple(logits.shape)}')
        b, steps, n = logits.shape
        if tuple(labels.shape) != (b, n):
            raise ValueError('ResidualObjectnessLoss: `labels` must have shape '
                             f'{(b, n)}, got {tuple(labels.shape)}')
        if weights is None:
            weights = logits.new_ones((b, n), dtype=torch.float32)
        elif tuple(weights.shape) != (b, n):
            raise ValueError('ResidualObjectnessLoss: `weights` must have '
                             f'shape {(b, n)}, got {tuple(weights.shape)}')
        if reduction_override not in (None, 'mean', 'sum'):
            raise ValueError('ResidualObjectnessLoss: `reduction_override` '
                             f"must be 'mean' or 'sum', got "
                             f'{reduction_override!r}')
        reduction = reduction_override or self.reduction
        if reduction == 'sum':
            avg_factor = None
        elif avg_factor is not None and self.avg_factor_momentum is not None \
                and self.training:
            avg_factor = self._running_avg_factor(avg_factor)
        elif isinstance(avg_factor, Tensor):
            avg_factor = avg_factor.float().clamp(min=1.0)
        elif avg_factor is not None:
            avg_factor = max(float(avg_factor), 1.0)

        # Losses in fp32 whatever the autocast/AMP dtype of the head.
        targets = labels.float()
        weights = weights.float()
        refined, gates = refine_objectness(logits.float(), targets, weights,
                                           self.no_pos_gate, detach_prev)
        bce = F.binary_cross_entropy_with_logits(
            refined, targets[:, None].expand_as(refined), reduction='none')
        losses = dict(loss_obj=self.loss_weight * weight_reduce_loss(
            bce[:, 0], weights, reduction, avg_factor))
        for t in range(1, steps):
            losses[f'loss_res{t}'] = self.res_loss_weight * weight_reduce_loss(
                bce[:, t], weights * gates[:, t - 1], reduction, avg_factor)
        if self.record_stats:
            self.stats = self.objectness_stats(logits, targets, weights,
                                               gates)
        return losses

    @torch.no_grad()
    def _running_avg_factor(self, avg_factor) -> Tensor:
        """Update and return the running normaliser (clamped to >= 1).

        ``ema <- m * ema + (1 - m) * avg_factor``, started at the first
        batch's value. Device ops with Python scalars only: no host sync.
        """
        m = self.avg_factor_momentum
        ema = self.avg_factor_ema
        if isinstance(avg_factor, Tensor):
            value = avg_factor.detach().float().to(ema.device)
            new = torch.where(ema < 0, value, ema * m + value * (1.0 - m))
        else:
            value = float(avg_factor)
            new = (ema * m + value * (1.0 - m)).masked_fill(ema < 0, value)
        ema.copy_(new)
        return new.clamp(min=1.0)

    @staticmethod
    @torch.no_grad()
    def objectness_stats(logits: Tensor, labels: Tensor, weights: Tensor,
                         gates: Tensor) -> Dict[str, Tensor]:
        """Per-step objectness statistics of a batch (paper Fig. 2/4).

        Scores are those inference would give, ``sigmoid(o_0 + r_1 + ... +
        r_t)`` on every anchor. Ignored anchors are left out.

        Args:
            logits (Tensor): ``[o_0, r_1..r_T]``, (B, T+1, N).
            labels (Tensor): Binary targets, (B, N).
            weights (Tensor): Anchor weights, 0 for ignored, (B, N).
            gates (Tensor): Training gates ``S_1..S_T``, bool (B, T, N).

        Returns:
            dict[str, Tensor]: Device tensors, no host sync: ``pos_mean`` and
            ``neg_mean`` of shape (T+1, ) (NaN when the batch has no such
            anchor), ``gate_size`` (T, ) mean anchors per image in ``S_t``,
            ``gate_frac`` (T, ) the fraction of the non-ignored anchors in
            ``S_t``, ``minp`` (T, ) the score ``sigmoid(minp_t)`` that opens
            the gate, averaged over the images with positives (NaN when
            none has), ``num_pos`` and ``num_neg`` (scalars).
        """
        cum = logits.float().cumsum(dim=1)
        scores = cum.sigmoid()
        valid = weights > 0
        pos_mask = (labels > 0) & valid
        pos = pos_mask[:, None].float()
        neg = ((labels <= 0) & valid)[:, None].float()
        num_pos, num_neg = pos.sum(), neg.sum()
        # Positives are in every gate, so o_{t-1} on them is the cumulative
        # sum: minp_t is its minimum over the image's positives.
        has_pos = pos_mask.any(dim=1)
        big = torch.finfo(cum.dtype).max
        minp = cum[:, :-1].masked_fill(~pos_mask[:, None], big).amin(dim=2)
        minp = (minp.sigmoid() * has_pos[:, None]).sum(dim=0) / \
            has_pos.sum()
        return dict(
            pos_mean=(scores * pos).sum(dim=(0, 2)) / num_pos,
            neg_mean=(scores * neg).sum(dim=(0, 2)) / num_neg,
            gate_size=gates.float().sum(dim=(0, 2)) / logits.size(0),
            gate_frac=gates.float().sum(dim=(0, 2)) / valid.sum(),
            minp=minp,
            num_pos=num_pos,
            num_neg=num_neg)
