# Table 2c, T = 2 (35.4 AP): RetinaNet-ResObj at the 600-pixel ablation scale.
_base_ = './retinanet_r50_fpn_600-1x_coco.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='ResObjHead',
        residual_objectness=dict(
            type='ResidualObjectness',
            num_steps=2,
            residual_input='objectness',
            detach_residual=True),
        loss_objectness=dict(type='ResidualObjectnessLoss'),
        loss_cls=dict(
            _delete_=True,
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0)))
