# SSD-ResObj (T = 2) on the embedded shapes dataset: the vanilla SSD demo with
# the difference of configs/resobj/resobj-ssd300_coco.py: sigmoid classes on
# positives, residual objectness, no hard negative mining.
_base_ = './ssd_r18-w16_12e_shapes.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='ResObjSSDHead',
        residual_objectness=dict(
            type='ResidualObjectness', num_steps=2, feat_channels=64),
        loss_objectness=dict(type='ResidualObjectnessLoss'),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(neg_pos_ratio=None))
