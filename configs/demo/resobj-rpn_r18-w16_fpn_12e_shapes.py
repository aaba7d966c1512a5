# RPN-ResObj (T = 2, no random sampler) on the embedded shapes dataset: the
# vanilla RPN demo with the difference of
# configs/resobj/resobj-rpn_r50_fpn_1x_coco.py.
_base_ = './rpn_r18-w16_fpn_12e_shapes.py'
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
            res_loss_weight=1.0)),
    train_cfg=dict(
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler'))))
