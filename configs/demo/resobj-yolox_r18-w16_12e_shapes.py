# YOLOX-ResObj (T = 2) on the embedded shapes dataset: the vanilla YOLOX demo
# with the head difference of configs/resobj/resobj-yolox_s_8xb8-300e_coco.py.
_base_ = './yolox_r18-w16_12e_shapes.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='ResObjYOLOXHead',
        residual_objectness=dict(type='ResidualObjectness', num_steps=2),
        loss_obj=dict(
            _delete_=True,
            type='ResidualObjectnessLoss',
            loss_weight=1.0,
            res_loss_weight=1.0)))
