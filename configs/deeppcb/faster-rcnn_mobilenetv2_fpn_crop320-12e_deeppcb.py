# Vanilla Faster R-CNN on DeepPCB defects, with an ImageNet MobileNetV2 and
# mmdet's faster-rcnn_r50_fpn_1x_coco.py recipe unchanged (schedule_1x: SGD,
# momentum 0.9, weight decay 1e-4, linear warm-up over 500 iterations, 12
# epochs stepped at 8 and 11, no gradient clipping), lr 0.02 at batch 16
# scaled linearly to batch 4. Native scale: 320x320 crops in training,
# whole 640x640 scans in testing (./_base_/deeppcb.py). The ResObj twin
# inherits this file and changes only the RPN head and sampler.
_base_ = [
    '../_base_/models/faster-rcnn_mobilenetv2_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py', './_base_/deeppcb.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

# The model is configs/_base_/models/faster-rcnn_mobilenetv2_fpn.py: the
# defects are 28-48 px, which its anchors from 16 px at stride 8 cover, and
# every one is pooled from stride 8 (RoI levels by scale: all under 112 px).
model = dict(roi_head=dict(bbox_head=dict(num_classes=6)))

train_cfg = dict(val_interval=3)
# mmdet's lr 0.02 at batch 16 (8 GPUs x 2), scaled linearly to batch 4.
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(enable=False, base_batch_size=4)
