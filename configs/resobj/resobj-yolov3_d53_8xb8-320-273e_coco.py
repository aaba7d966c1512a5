# YOLOv3-ResObj, T = 2: YOLOv3 DarkNet-53 at 320 (paper Table 3: 28.2 -> 29.3 AP).
# YOLOv3's objectness o_0 is refined by two residual steps; class, xy
# and wh losses and YOLOv3's ignore rule are unchanged.
_base_ = [
    'mmdet::yolo/yolov3_d53_8xb8-320-273e_coco.py',
    './_base_/yolov3_tta.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='ResObjYOLOV3Head',
        residual_objectness=dict(type='ResidualObjectness', num_steps=2),
        loss_conf=dict(
            _delete_=True,
            type='ResidualObjectnessLoss',
            loss_weight=1.0,
            res_loss_weight=1.0,
            reduction='sum')))

# YOLOv3's recipe clips gradients by their global norm: clip the residual
# subnets apart, so that their gradients do not shrink every other update
# (also under --amp; docs/method.md, "Gradient clipping").
optim_wrapper = dict(constructor='ResObjOptimWrapperConstructor')
