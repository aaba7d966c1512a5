# FasterRCNN-ResObj (T = 2) on DeepPCB defects: the vanilla DeepPCB config
# with the RPN of configs/resobj/resobj-faster-rcnn_r50_fpn_1x_coco.py
# (residual objectness, no random sampler), under the same mmdet SGD recipe.
_base_ = './faster-rcnn_mobilenetv2_fpn_crop320-12e_deeppcb.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    rpn_head=dict(
        type='ResObjRPNHead',
        residual_objectness=dict(
            type='ResidualObjectness',
            num_steps=2,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        loss_objectness=dict(type='ResidualObjectnessLoss'),
        avg_factor_per_image=256),
    train_cfg=dict(
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler'))))
