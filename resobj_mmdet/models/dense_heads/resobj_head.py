# Copyright (c) resobj-mmdet contributors.
"""RetinaNet-ResObj head (paper Fig. 3b)."""
from typing import Tuple

from torch import Tensor

from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from .resobj_mixin import TowerResObjMixin, joint_score_logit  # noqa: F401


@MODELS.register_module()
class ResObjHead(TowerResObjMixin, RetinaHead):
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
        See :class:`TowerResObjMixin` (the constructor of every head with
        class and box towers); ``**kwargs`` are :class:`RetinaHead`'s.
    """

    cls_conv_name = 'retina_cls'

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
        cls_feat, reg_feat = self._tower_feats(x)
        return (self.retina_cls(cls_feat), self.retina_reg(reg_feat),
                self.res_obj(cls_feat))
