# Copyright (c) resobj-mmdet contributors.
"""SSD-ResObj head: softmax + hard negative mining replaced by residual
objectness."""
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.model import bias_init_with_prob
from torch import Tensor

from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from .resobj_mixin import POSITIVE_CLS_LOSS, ResObjMixin, default_cls_prior


@MODELS.register_module()
class ResObjSSDHead(ResObjMixin, SSDHead):
    """SSD head with imbalance transfer and residual objectness.

    mmdet's SSD classifies every anchor into K+1 classes with a softmax and
    balances foreground and background by online hard negative mining
    (``train_cfg.neg_pos_ratio``: the 3 negatives per positive with the
    highest loss). SSD-ResObj replaces both, as FasterRCNN-ResObj replaces
    the RPN's sampler: the class convs predict P(class | object) for the K
    classes with a sigmoid loss on positive anchors only, and per level an
    objectness subnet plus ``T`` residual subnets (:class:`ResidualObjectness`)
    reading the level's feature (SSD has no tower; its class conv reads the
    feature too) learn foreground vs background over every anchor with
    :class:`ResidualObjectnessLoss`. There is no mining: a
    ``train_cfg.neg_pos_ratio`` left on raises an error. The box loss is
    SSD's smooth L1 (``loss_bbox``, beta ``train_cfg.smoothl1_beta``) on
    positives, normalised by the number of positives as SSD does.

    SSD's feature maps are wide (up to 1024 channels at 19x19 for SSD300),
    so the refinement subnets' hidden convs have ``feat_channels`` (256 by
    default) channels rather than the level's: the paper's C->C conv would
    cost more than SSD's whole head. Anchors per location differ by level;
    everything below takes them from the level.

    Args:
        num_classes (int): Number of object classes ``K``.
        in_channels (Sequence[int]): Channels of every level.
        residual_objectness (dict): Config of the per-level refinement
            modules; ``in_channels`` and ``num_anchors`` are set per level.
        loss_objectness (dict): Config of the objectness loss, over
            :data:`POSITIVE_NORMALISED_LOSS` (weights 0.5, running
            normaliser): a config states only what it changes.
        loss_cls (dict): Class loss on positives; must be a sigmoid loss.
        loss_bbox (dict, optional): Box loss; None: smooth L1 with SSD's
            ``train_cfg.smoothl1_beta`` (1.0 when absent).
        cls_prior_prob (float, optional): Prior of the class logit biases;
            None uses ``1/K`` (see :class:`ResObjHead`).
        train_cfg (dict, optional): SSD's; ``neg_pos_ratio`` must be None,
            0 or absent.
        **kwargs: :class:`SSDHead` arguments.
    """

    def __init__(self,
                 num_classes: int = 80,
                 in_channels: Sequence[int] = (512, 1024, 512, 256, 256,
                                               256),
                 residual_objectness: ConfigType = dict(
                     type='ResidualObjectness', num_steps=2,
                     feat_channels=256),
                 loss_objectness: ConfigType = dict(
                     type='ResidualObjectnessLoss'),
                 loss_cls: ConfigType = POSITIVE_CLS_LOSS,
                 loss_bbox: Optional[ConfigType] = None,
                 cls_prior_prob: Optional[float] = None,
                 train_cfg: Optional[ConfigType] = None,
                 **kwargs) -> None:
        ratio = (train_cfg or {}).get('neg_pos_ratio')
        if ratio:
            raise ValueError(
                'ResObjSSDHead: residual objectness trains on every anchor '
                'without hard negative mining; set `train_cfg.neg_pos_ratio` '
                f'to None (got {ratio!r})')
        self._check_sigmoid_cls(loss_cls)
        self._set_residual_objectness_cfg(residual_objectness)
        self.cls_prior_prob = default_cls_prior(num_classes) \
            if cls_prior_prob is None else cls_prior_prob
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            train_cfg=train_cfg,
            **kwargs)
        self.use_sigmoid_cls = True
        self.loss_cls = MODELS.build(loss_cls)
        if loss_bbox is None:
            loss_bbox = dict(
                type='SmoothL1Loss',
                beta=(train_cfg or {}).get('smoothl1_beta', 1.0),
                loss_weight=1.0)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_objectness = MODELS.build(
            self._positive_normalised_loss(loss_objectness))

    def _init_layers(self) -> None:
        """SSD's convs with K sigmoid outputs, and a refinement module per
        level."""
        self.cls_out_channels = self.num_classes  # sigmoid: no background
        super()._init_layers()
        self.res_objs = nn.ModuleList([
            self._build_residual_objectness(
                dict(in_channels=channels, num_anchors=num_anchors))
            for channels, num_anchors in zip(self.in_channels,
                                             self.num_base_priors)
        ])

    def init_weights(self) -> None:
        """SSD's initialisation; class biases from P(class | object); the
        refinement modules' own."""
        super().init_weights()
        bias = bias_init_with_prob(self.cls_prior_prob)
        for cls_conv in self.cls_convs:
            nn.init.constant_(cls_conv[-1].bias, bias)
        for res_obj in self.res_objs:
            res_obj.init_weights()

    def forward(self, x: Tuple[Tensor]) -> Tuple[List[Tensor], ...]:
        """Forward all levels.

        Args:
            x (tuple[Tensor]): Features, one (N, C_l, H_l, W_l) per level.

        Returns:
            tuple[list[Tensor]]: ``cls_scores`` (N, A_l*K, H, W) logits of
            P(class | object), ``bbox_preds`` (N, A_l*4, H, W) and
            ``obj_preds`` (N, (T+1)*A_l, H, W) ``[o_0, r_1..r_T]``.
        """
        cls_scores, bbox_preds, obj_preds = [], [], []
        for feat, reg_conv, cls_conv, res_obj in zip(x, self.reg_convs,
                                                     self.cls_convs,
                                                     self.res_objs):
            cls_scores.append(cls_conv(feat))
            bbox_preds.append(reg_conv(feat))
            obj_preds.append(res_obj(feat))
        return cls_scores, bbox_preds, obj_preds
