# Copyright (c) resobj-mmdet contributors.
"""YOLOv3-ResObj head: residual refinement of YOLOv3's objectness."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from torch import Tensor

from mmdet.models.dense_heads import YOLOV3Head
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList
from .resobj_mixin import ResObjMixin


@MODELS.register_module()
class ResObjYOLOV3Head(ResObjMixin, YOLOV3Head):
    """YOLOv3 head whose objectness is refined by residual objectness.

    YOLOv3 already predicts one objectness ("confidence") logit per anchor,
    ``o_0``, in channel 4 of its prediction map. Each level gets a
    :class:`ResidualObjectness` module without its own objectness subnet: its
    ``T`` residual subnets read the level's bridge feature and refine
    ``o_0``. Class, xy and wh losses are YOLOv3's; the objectness loss
    (``loss_conf``) and the residual losses come from
    :class:`ResidualObjectnessLoss` over YOLOv3's positive and negative
    anchors. YOLOv3's ignore rule holds: anchors that are neither positive nor
    negative (IoU with a GT above ``neg_iou_thr`` but not responsible) have
    weight 0 and never enter a loss or a gate. Prediction scores with ``o_T``.

    With ``num_steps=0`` the head is numerically YOLOv3: same forward
    prediction maps, same losses (``loss_conf`` reduced as YOLOv3's
    ``loss_conf`` is), same predictions.

    Args:
        num_classes (int): Number of classes.
        in_channels (Sequence[int]): Input channels per level.
        residual_objectness (dict): Config of the per-level refinement
            modules (``num_steps`` lives here). ``in_channels``,
            ``num_anchors`` and ``with_objectness_subnet=False`` are set by
            the head; ``feat_channels`` defaults to the level's channels and
            ``norm_cfg``/``act_cfg`` to the head's (BN + LeakyReLU).
        loss_conf (dict): Config of the :class:`ResidualObjectnessLoss`.
            Its ``reduction`` follows YOLOv3's ``loss_conf``: ``'sum'`` (the
            mmdet YOLOv3 configs) or ``'mean'`` (mean per level, summed over
            levels, as mmdet's ``YOLOV3Head`` reduces it).
        **kwargs: :class:`YOLOV3Head` arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 residual_objectness: ConfigType = dict(
                     type='ResidualObjectness', num_steps=2),
                 loss_conf: ConfigType = dict(
                     type='ResidualObjectnessLoss',
                     loss_weight=1.0,
                     res_loss_weight=1.0,
                     reduction='sum'),
                 **kwargs) -> None:
        self._check_residual_objectness_loss(loss_conf, 'loss_conf')
        self._set_residual_objectness_cfg(residual_objectness)
        super().__init__(
            num_classes, in_channels, loss_conf=loss_conf, **kwargs)

    def _init_layers(self) -> None:
        """YOLOv3's layers plus one refinement module per level."""
        super()._init_layers()
        self.res_objs = nn.ModuleList()
        for channels in self.out_channels:
            self.res_objs.append(
                self._build_residual_objectness(
                    dict(
                        in_channels=channels,
                        num_anchors=self.num_base_priors,
                        with_objectness_subnet=False),
                    feat_channels=channels,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg))

    def init_weights(self) -> None:
        """YOLOv3's initialisation, then the refinement modules' own."""
        super().init_weights()
        for res_obj in self.res_objs:
            res_obj.init_weights()

    def _objectness_logit(self, pred_map: Tensor) -> Tensor:
        """``o_0`` of shape (N, A, H, W) from a (N, A*attrib, H, W) map."""
        n, _, h, w = pred_map.shape
        return pred_map.view(n, self.num_base_priors, self.num_attrib, h,
                             w)[:, :, 4]

    def forward(self, x: Tuple[Tensor, ...]) -> tuple:
        """Forward all levels.

        Args:
            x (tuple[Tensor]): Neck features, one (N, C_l, H_l, W_l) per
                level.

        Returns:
            tuple:
                - pred_maps (tuple[Tensor]): YOLOv3's maps, each
                  (N, A*(5+K), H, W).
                - obj_preds (tuple[Tensor]): ``[o_0, r_1..r_T]`` objectness logits,
                  each (N, (T+1)*A, H, W), step-major.
        """
        assert len(x) == self.num_levels
        pred_maps, obj_preds = [], []
        for i in range(self.num_levels):
            feat = self.convs_bridge[i](x[i])
            pred_map = self.convs_pred[i](feat)
            pred_maps.append(pred_map)
            obj_preds.append(self.res_objs[i](
                feat, obj_logit=self._objectness_logit(pred_map)))
        return tuple(pred_maps), tuple(obj_preds)

    def loss_by_feat(self,
                     pred_maps: Sequence[Tensor],
                     obj_preds: Sequence[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> dict:
        """YOLOv3's cls/xy/wh losses plus objectness and residual losses.

        Args:
            pred_maps (Sequence[Tensor]): Per level, (N, A*(5+K), H, W).
            obj_preds (Sequence[Tensor]): Per level, (N, (T+1)*A, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): GT per image.
            batch_img_metas (list[dict]): Image meta information.
            batch_gt_instances_ignore (list, optional): Unused, as in
                YOLOv3.

        Returns:
            dict: ``loss_cls``, ``loss_xy``, ``loss_wh`` per level,
            ``loss_conf`` (objectness ``o_0``) and ``loss_res1..T``.
        """
        # Clipped too: a box centre outside the image would index outside
        # YOLOv3's responsibility grid (IndexError in mmdet's YOLOV3Head).
        batch_gt_instances = self._drop_degenerate_gts(
            batch_gt_instances, batch_img_metas, clip=True)
        num_imgs = len(batch_img_metas)
        device = pred_maps[0][0].device
        featmap_sizes = [
            pred_maps[i].shape[-2:] for i in range(self.num_levels)
        ]
        mlvl_anchors = self.prior_generator.grid_priors(
            featmap_sizes, device=device)
        anchor_list = [mlvl_anchors for _ in range(num_imgs)]
        responsible_flag_list = [
            self.responsible_flags(featmap_sizes,
                                   batch_gt_instances[img_id].bboxes, device)
            for img_id in range(num_imgs)
        ]
        target_maps_list, neg_maps_list = self.get_targets(
            anchor_list, responsible_flag_list, batch_gt_instances)

        losses_cls, losses_xy, losses_wh = multi_apply(
            self.loss_by_feat_single, pred_maps, target_maps_list)
        losses = dict(
            loss_cls=losses_cls, loss_xy=losses_xy, loss_wh=losses_wh)

        # Objectness over all levels at once (the gate is per image).
        labels = torch.cat([t[..., 4] for t in target_maps_list], dim=1)
        weights = []
        total = sum(t.size(1) for t in target_maps_list)
        for target_map, neg_map in zip(target_maps_list, neg_maps_list):
            # Positive or negative: 1; ignored: 0 (YOLOv3's ignore rule).
            w = (neg_map.float() + target_map[..., 4]).clamp(max=1.0)
            if self.loss_conf.reduction == 'mean':
                # YOLOv3 averages per level and sums the levels.
                w = w * (total / target_map.size(1))
            weights.append(w)
        obj_losses = self.objectness_losses(self.loss_conf, obj_preds, labels,
                                            torch.cat(weights, dim=1))
        losses['loss_conf'] = obj_losses.pop('loss_obj')
        losses.update(obj_losses)
        return losses

    def loss_by_feat_single(self, pred_map: Tensor,
                            target_map: Tensor) -> tuple:
        """YOLOv3's class, xy and wh losses of one level.

        Args:
            pred_map (Tensor): (N, A*(5+K), H, W) raw predictions.
            target_map (Tensor): (N, H*W*A, 5+K) targets.

        Returns:
            tuple[Tensor]: ``loss_cls``, ``loss_xy``, ``loss_wh``.
        """
        num_imgs = len(pred_map)
        pred_map = pred_map.permute(0, 2, 3,
                                    1).reshape(num_imgs, -1, self.num_attrib)
        pos_mask = target_map[..., 4].unsqueeze(dim=-1)
        loss_cls = self.loss_cls(
            pred_map[..., 5:], target_map[..., 5:], weight=pos_mask)
        loss_xy = self.loss_xy(
            pred_map[..., :2], target_map[..., :2], weight=pos_mask)
        loss_wh = self.loss_wh(
            pred_map[..., 2:4], target_map[..., 2:4], weight=pos_mask)
        return loss_cls, loss_xy, loss_wh

    def predict_by_feat(self,
                        pred_maps: Sequence[Tensor],
                        obj_preds: Sequence[Tensor],
                        batch_img_metas: Optional[List[dict]],
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True,
                        step: Optional[int] = None) -> InstanceList:
        """YOLOv3's post-processing with ``o_step`` as the objectness.

        Args:
            pred_maps (Sequence[Tensor]): Per level, (N, A*(5+K), H, W).
            obj_preds (Sequence[Tensor]): Per level, (N, (T+1)*A, H, W).
            batch_img_metas (list[dict]): Image meta information.
            cfg (ConfigDict, optional): Test config; defaults to test_cfg.
            rescale (bool): Rescale boxes to the original image size.
            with_nms (bool): Apply NMS.
            step (int, optional): Refinement step used as objectness; -1
                is ``o_T``. None (default): the test config's
                ``objectness_step``, -1 when it has none.

        Returns:
            list[:obj:`InstanceData`]: Per image ``scores``, ``labels`` and
            ``bboxes``.
        """
        a = self.num_base_priors
        refined = []
        for pred_map, obj in zip(pred_maps,
                                 self.step_objectness(
                                     obj_preds,
                                     self._inference_step(step, cfg),
                                     self._gate_setting(cfg))):
            n, _, h, w = pred_map.shape
            pred = pred_map.reshape(n, a, self.num_attrib, h, w).clone()
            pred[:, :, 4] = obj
            refined.append(pred.reshape(n, -1, h, w))
        # YOLOv3's own post-processing (ResObjMixin's takes a RetinaNet-style
        # (cls, bbox, obj) triple).
        return YOLOV3Head.predict_by_feat(
            self,
            refined,
            batch_img_metas=batch_img_metas,
            cfg=cfg,
            rescale=rescale,
            with_nms=with_nms)
