# Vanilla YOLOv3 on BCCD blood cells: the model of mmdet's
# yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py (ImageNet MobileNetV2,
# YOLOv3 neck and head with 96 channels, YOLOv3's losses and assigner) with
# anchors for 16-117 px cells, and that config's optimizer: SGD, momentum
# 0.9, weight decay 5e-4, gradient clipping at norm 35 (YOLOv3's own recipe
# clips), linear warm-up from 1e-4x, steps at 66 % and 86 % of training.
# mmdet has no YOLOv3 model base, so the model is stated here (as in
# configs/trees/). The ResObj twin inherits this file and changes only the
# head.
_base_ = [
    'mmdet::_base_/schedules/schedule_1x.py', './_base_/bccd.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    type='YOLOV3',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='MobileNetV2',
        out_indices=(2, 4, 6),
        # torchvision's ImageNet weights were trained with ReLU6 (mmdet's
        # COCO config swaps in LeakyReLU for its own checkpoint).
        init_cfg=dict(
            type='Pretrained', checkpoint='resobj://mobilenet_v2_imagenet')),
    neck=dict(
        type='YOLOV3Neck',
        num_scales=3,
        in_channels=[320, 96, 32],
        out_channels=[96, 96, 96]),
    bbox_head=dict(
        type='YOLOV3Head',
        num_classes=3,
        in_channels=[96, 96, 96],
        out_channels=[96, 96, 96],
        anchor_generator=dict(
            type='YOLOAnchorGenerator',
            base_sizes=[[(75, 75), (95, 95), (120, 120)],
                        [(40, 40), (50, 50), (60, 60)],
                        [(16, 16), (22, 22), (30, 30)]],
            strides=[32, 16, 8]),
        bbox_coder=dict(type='YOLOBBoxCoder'),
        featmap_strides=[32, 16, 8],
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0,
            reduction='sum'),
        loss_conf=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0,
            reduction='sum'),
        loss_xy=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=2.0,
            reduction='sum'),
        loss_wh=dict(type='MSELoss', loss_weight=2.0, reduction='sum')),
    train_cfg=dict(
        assigner=dict(
            type='GridAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0)),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        conf_thr=0.005,
        nms=dict(type='nms', iou_threshold=0.45),
        max_per_img=100))

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
