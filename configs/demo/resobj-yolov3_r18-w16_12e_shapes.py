# YOLOv3-ResObj (T = 2) on the embedded shapes dataset: the vanilla YOLOv3
# demo with the head difference of
# configs/resobj/resobj-yolov3_d53_8xb8-ms-608-273e_coco.py.
_base_ = './yolov3_r18-w16_12e_shapes.py'
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
