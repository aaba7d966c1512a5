# Copyright (c) resobj-mmdet contributors.
"""RetinaNet-ResObj head (paper Fig. 3b)."""
from typing import Optional, Tuple

from torch import Tensor

from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from .resobj_mixin import ResObjMixin, joint_score_logit  # noqa: F401


@MODELS.register_module()
class ResObjHead(ResObjMixin, RetinaHead):
    """RetinaNet head with residual objectness instead of focal loss.

    Imbalance transfer: the class branch predicts P(class | object) and is
    trained with sigmoid BCE on positive anchors only (negatives give no class
    and no box loss); an objectness subnet on top of the class tower plus
    ``T`` residual subnets (:class:`ResidualObjectness`) learn foreground vs
    background over every non-ignored anchor with
    :class:`ResidualObjectnessLoss`. The inference score is
    ``sigmoid(cls) * sigmoid(o_T)``. Anchors, assigner, box coder and test
    post-processing are RetinaNet's.

    Args:
        num_classes (int): Number of object classes ``K``.
        in_channels (int): Input feature channels.
        residual_objectness (dict): Config of the refinement module; its
            ``in_channels``, ``num_anchors`` and (unless given)
            ``feat_channels`` are filled in by the head.
            Defaults to ``dict(type='ResidualObjectness', num_steps=2)``.
        loss_objectness (dict): Config of the objectness loss, over
            :data:`POSITIVE_NORMALISED_LOSS` (weights 0.5, running
            normaliser): a config states only what it changes.
        loss_cls (dict): Class loss, applied to positive anchors only. Must be
            a sigmoid loss. Defaults to sigmoid ``CrossEntropyLoss``.
        cls_prior_prob (float, optional): Prior of the class logit bias;
            None uses ``1/K`` (so P(class|obj) starts near uniform), as the
            authors' release does, and 0.99 for one class (P(class|obj) is
            1 by definition). Used only when ``init_cfg`` is None.
        init_cfg (dict, optional): Defaults to RetinaNet's Normal(0, 0.01)
            with the class bias from ``cls_prior_prob``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 residual_objectness: ConfigType = dict(
                     type='ResidualObjectness', num_steps=2),
                 loss_objectness: ConfigType = dict(
                     type='ResidualObjectnessLoss'),
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     loss_weight=1.0),
                 cls_prior_prob: Optional[float] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        init_cfg = self._imbalance_transfer_init_cfg(
            num_classes, loss_cls, cls_prior_prob, init_cfg, 'retina_cls')
        self._set_residual_objectness_cfg(residual_objectness)
        super().__init__(
            num_classes, in_channels, loss_cls=loss_cls, init_cfg=init_cfg,
            **kwargs)
        self.loss_objectness = MODELS.build(
            self._positive_normalised_loss(loss_objectness))

    def _init_layers(self) -> None:
        """Build RetinaNet's towers and the residual objectness module."""
        super()._init_layers()
        self.res_obj = self._build_tower_residual_objectness()

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Forward one feature level.

        Args:
            x (Tensor): Features of shape (N, C, H, W).

        Returns:
            tuple[Tensor]:
                - cls_score: (N, A*K, H, W) logits of P(class | object).
                - bbox_pred: (N, A*4, H, W) box deltas.
                - obj_pred: (N, (T+1)*A, H, W) ``[o_0, r_1..r_T]`` objectness logits,
                  step-major (see :class:`ResidualObjectness`).
        """
        cls_feat = x
        reg_feat = x
        for cls_conv in self.cls_convs:
            cls_feat = cls_conv(cls_feat)
        for reg_conv in self.reg_convs:
            reg_feat = reg_conv(reg_feat)
        return (self.retina_cls(cls_feat), self.retina_reg(reg_feat),
                self.res_obj(cls_feat))
