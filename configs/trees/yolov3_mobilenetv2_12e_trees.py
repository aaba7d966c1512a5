# Vanilla YOLOv3 on real aerial tree crowns: the model of mmdet's
# yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py (ImageNet MobileNetV2,
# YOLOv3 neck and head with 96 channels, YOLOv3's losses and assigner) with
# anchors for 8-106 px crowns, and that config's optimizer: SGD, momentum
# 0.9, weight decay 5e-4, gradient clipping at norm 35 (YOLOv3's own recipe
# clips), linear warm-up from 1e-4x, steps at 66 % and 86 % of training.
# The model is configs/_base_/models/yolov3_mobilenetv2.py (mmdet's, which
# mmdet keeps inside its COCO config). The ResObj twin inherits this file
# and changes only the head.
_base_ = [
    '../_base_/models/yolov3_mobilenetv2.py',
    'mmdet::_base_/schedules/schedule_1x.py', './_base_/trees.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        num_classes=1,
        anchor_generator=dict(
            base_sizes=[[(64, 64), (80, 80), (104, 104)],
                        [(36, 36), (44, 44), (52, 52)],
                        [(14, 14), (20, 20), (28, 28)]])))

train_batch_size = 4
train_dataloader = dict(batch_size=train_batch_size)
max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
# mmdet's optimizer (lr 0.003, momentum 0.9, weight decay 5e-4, clipping at
# norm 35) with its lr NOT scaled to the batch: YOLOv3's losses are sums over
# the batch, and its gradient norms (1e3-5e3 here, far above 35) are always
# clipped, so each step moves the weights by lr x 35 whatever the batch.
# Linear scaling (0.003 x 4 / 192 = 6.25e-5) would shrink every step 48-fold:
# a trial at the linearly scaled lr reached 0.004 mAP in 9 epochs
# (docs/real_images.md; docs/benchmarks/trees.md).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.003, momentum=0.9, weight_decay=0.0005),
    clip_grad=dict(max_norm=35, norm_type=2))
# mmdet's warm-up from 1e-4x (4000 iterations there, 500 here: the run has
# 888) and its steps at 66 % and 86 % of training (198 and 257 of 300).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.0001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[8, 10], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=train_batch_size)
find_unused_parameters = True
