# Copyright (c) resobj-mmdet contributors.
"""Loss of residual objectness (paper Algorithm 1), shared by every head."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS

NO_POS_GATES = ('all', 'none')


@MODELS.register_module()
class ResidualObjectnessLoss(nn.Module):
    """Objectness + gated residual objectness BCE losses.

    With cumulative logits ``o_0..o_T`` for every anchor of a batch, it
    computes (Algorithm 1)::

        L_obj   = BCE(o_0, l)                over every non-ignored anchor
        S_t     = {i : o_{t-1,i} >= min_{j in pos(img)} o_{t-1,j}} per image
        L_res_t = BCE(o_t, l)                over S_t (non-ignored)

    ``S_t`` always holds every positive anchor and the negatives scored at
    least as high as the weakest positive of the same image (the "hard"
    negatives). The gate is computed on detached ``o_{t-1}`` logits (sigmoid
    is monotonic, so comparing logits equals comparing scores and avoids
    fp16 saturation ties). Everything is vectorised over images, anchors and
    steps, with no host-device synchronisation.

    Images without any positive anchor have no minimum positive score. With
    ``no_pos_gate='all'`` (default) every non-ignored anchor of such an image
    is in the gate (no positive to rank against, so every negative counts
    as hard): pure-background images keep training the residual subnets, which
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
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 res_loss_weight: float = 1.0,
                 no_pos_gate: str = 'all',
                 reduction: str = 'mean') -> None:
        super().__init__()
        if no_pos_gate not in NO_POS_GATES:
            raise ValueError(f'ResidualObjectnessLoss: unknown `no_pos_gate` '
                             f'{no_pos_gate!r}; expected one of '
                             f'{NO_POS_GATES}')
        if reduction not in ('mean', 'sum'):
            raise ValueError('ResidualObjectnessLoss: `reduction` must be '
                             f"'mean' or 'sum', got {reduction!r}")
        self.loss_weight = loss_weight
        self.res_loss_weight = res_loss_weight
        self.no_pos_gate = no_pos_gate
        self.reduction = reduction

    @staticmethod
    def gates(logits: Tensor, labels: Tensor, weights: Tensor,
              no_pos_gate: str = 'all') -> Tensor:
        """Per-step training gates ``S_1..S_T``.

        Args:
            logits (Tensor): Cumulative logits, shape (B, T+1, N).
            labels (Tensor): Binary objectness targets, shape (B, N).
            weights (Tensor): Per-anchor weights, 0 for ignored, (B, N).
            no_pos_gate (str): Behaviour for images without positives.

        Returns:
            Tensor: Bool mask of shape (B, T, N); ``[:, t-1]`` is ``S_t``.
        """
        valid = weights > 0
        pos = (labels > 0) & valid
        prev = logits[:, :-1].detach()
        inf = torch.finfo(prev.dtype).max
        # Minimum positive logit per image and step; +max where no positive.
        minp = torch.where(pos[:, None], prev,
                           prev.new_tensor(inf)).amin(dim=2, keepdim=True)
        if no_pos_gate == 'all':
            no_pos = ~pos.any(dim=1)
            minp = torch.where(no_pos[:, None, None],
                               minp.new_tensor(-inf), minp)
        return (prev >= minp) & valid[:, None]

    def forward(self,
                logits: Tensor,
                labels: Tensor,
                weights: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None
                ) -> Dict[str, Tensor]:
        """Compute the objectness and per-step residual losses.

        Args:
            logits (Tensor): Cumulative objectness logits ``o_0..o_T`` of
                shape (B, T+1, N) for B images and N anchors (all levels).
            labels (Tensor): Binary objectness targets (1 = foreground) of
                shape (B, N).
            weights (Tensor, optional): Per-anchor loss weights of shape
                (B, N); 0 marks ignored anchors, which never enter a loss or a
                gate. Defaults to all ones.
            avg_factor (float, optional): Normaliser of the ``'mean'``
                reduction (clamped to >= 1). None averages over elements.
            reduction_override (str, optional): ``'mean'`` or ``'sum'`` for
                this call instead of ``self.reduction``.

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
            weights = labels.new_ones((b, n), dtype=torch.float32)
        elif tuple(weights.shape) != (b, n):
            raise ValueError('ResidualObjectnessLoss: `weights` must have '
                             f'shape {(b, n)}, got {tuple(weights.shape)}')
        # Losses in fp32 whatever the autocast/AMP dtype of the head.
        logits = logits.float()
        weights = weights.float()
        targets = labels.float()
        if reduction_override not in (None, 'mean', 'sum'):
            raise ValueError('ResidualObjectnessLoss: `reduction_override` '
                             f"must be 'mean' or 'sum', got "
                             f'{reduction_override!r}')
        reduction = reduction_override or self.reduction
        if reduction == 'sum':
            avg_factor = None
        elif isinstance(avg_factor, Tensor):
            avg_factor = avg_factor.float().clamp(min=1.0)
        elif avg_factor is not None:
            avg_factor = max(float(avg_factor), 1.0)

        bce = F.binary_cross_entropy_with_logits(
            logits, targets[:, None].expand_as(logits), reduction='none')
        losses = dict(loss_obj=self.loss_weight * weight_reduce_loss(
            bce[:, 0], weights, reduction, avg_factor))
        if steps > 1:
            gate = self.gates(logits, targets, weights, self.no_pos_gate)
            res_weights = gate.float() * weights[:, None]
            for t in range(1, steps):
                losses[f'loss_res{t}'] = self.res_loss_weight * \
                    weight_reduce_loss(bce[:, t], res_weights[:, t - 1],
                                       reduction, avg_factor)
        return losses
