# YOLOv3-ResObj (T = 2) on real aerial tree crowns: the vanilla tree config
# with the head of configs/resobj/resobj-yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py,
# under the same mmdet YOLOv3 recipe.
_base_ = './yolov3_mobilenetv2_12e_trees.py'
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
