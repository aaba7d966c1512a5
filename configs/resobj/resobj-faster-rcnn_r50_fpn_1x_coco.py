# FasterRCNN-ResObj, T = 2 (paper Table 3: 37.2 -> 38.4 AP): residual
# objectness in the RPN, whose random sampler is removed. The R-CNN stage and
# its own sampler are mmdet's.
# --tta: mmdet's RetinaNet TTA (flip x 1333x800, 666x400, 2000x1200, NMS
# 0.5: the R-CNN's own), the same test scale as Faster R-CNN's; mmdet ships
# no Faster R-CNN TTA file.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mmdet::retinanet/retinanet_tta.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    rpn_head=dict(
        type='ResObjRPNHead',
        # GroupNorm in the residual subnets keeps them stable (see
        # ResObjRPNHead); the paper's RetinaNet subnets have none.
        residual_objectness=dict(
            type='ResidualObjectness',
            num_steps=2,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        loss_objectness=dict(
            type='ResidualObjectnessLoss', loss_weight=1.0,
            res_loss_weight=1.0),
        # Normalise by 256 anchors per image, as mmdet's sampled RPN does
        # (None: by the number of positives; see ResObjRPNHead).
        avg_factor_per_image=256),
    train_cfg=dict(
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler'))))
