# YOLOX-S-ResObj, T = 2 (not in the paper): YOLOX's objectness o_0 refined by
# two residual steps. YOLOX already trains its classes on positives only, so
# with num_steps=0 this is YOLOX (tested). SimOTA, class, IoU and L1 losses
# are YOLOX's.
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'
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
