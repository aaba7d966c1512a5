# Vanilla YOLOv3 on BCCD blood cells: the model of mmdet's
# yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py (ImageNet MobileNetV2,
# YOLOv3 neck and head with 96 channels, YOLOv3's losses and assigner) with
# anchors for 16-117 px cells, and that config's optimizer: SGD, momentum
# 0.9, weight decay 5e-4, gradient clipping at norm 35 (YOLOv3's own recipe
# clips), linear warm-up from 1e-4x, steps at 66 % and 86 % of training.
# The model is configs/_base_/models/yolov3_mobilenetv2.py (mmdet's, which
# mmdet keeps inside its COCO config). The ResObj twin inherits this file
# and changes only the head.
_base_ = [
    '../_base_/models/yolov3_mobilenetv2.py',
    'mmdet::_base_/schedules/schedule_1x.py', './_base_/bccd.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        num_classes=3,
        anchor_generator=dict(
            base_sizes=[[(75, 75), (95, 95), (120, 120)],
                        [(40, 40), (50, 50), (60, 60)],
                        [(16, 16), (22, 22), (30, 30)]])))

max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
# mmdet's optimizer (lr 0.003, momentum 0.9, weight decay 5e-4, clipping at
# norm 35) with its lr NOT scaled to the batch, as in configs/trees/: the
# losses are sums over the batch and their gradient norms are far above 35,
# so every step is clipped and moves the weights by lr x 35 whatever the
# batch; linear scaling (x 4/192) would shrink every step 48-fold.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.003, momentum=0.9, weight_decay=0.0005),
    clip_grad=dict(max_norm=35, norm_type=2))
# mmdet's warm-up from 1e-4x (4000 iterations there, 500 here: the run has
# 1040) and its steps at 66 % and 86 % of training (198 and 257 of 300).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.0001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[13, 17], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=4)
find_unused_parameters = True
