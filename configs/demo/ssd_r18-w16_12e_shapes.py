# Vanilla SSD on the embedded shapes dataset: the head, assigner, hard
# negative mining (neg_pos_ratio=3) and test settings of
# mmdet::ssd/ssd300_coco.py on the demos' backbone (ResNet-18, 16 base
# channels, from scratch), data and schedule: SSDNeck adds one extra level,
# four levels at strides 8-64 with SSD anchors for 8-96 px objects at 256 px.
# The ResObj twin inherits this file and changes only the head and mining.
# mmdet 3.3.0's SSDHead cannot predict (open-mmlab/mmdetection#11780):
# SSDHeadCompat is it, with the missing attribute.
_base_ = './_base_/shapes_12e.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='SSDNeck',
        in_channels=(32, 64, 128),
        out_channels=(32, 64, 128, 64),
        level_strides=(2, ),
        level_paddings=(1, ),
        l2_norm_scale=None),
    bbox_head=dict(
        # mmdet's SSDHead with the one attribute mmdet 3.3.0 needs to predict
        # (resobj_mmdet/models/dense_heads/ssd_head_compat.py).
        type='SSDHeadCompat',
        in_channels=(32, 64, 128, 64),
        num_classes=4,
        anchor_generator=dict(
            type='SSDAnchorGenerator',
            scale_major=False,
            input_size=256,
            strides=[8, 16, 32, 64],
            ratios=[[2], [2, 3], [2, 3], [2]],
            min_sizes=[12, 28, 56, 112],
            max_sizes=[28, 56, 112, 224]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.,
            ignore_iof_thr=-1,
            gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        smoothl1_beta=1.,
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.45),
        min_bbox_size=0,
        score_thr=0.02,
        max_per_img=200))

# --tta merges the flipped and rescaled predictions with SSD's own NMS (IoU
# 0.45).
tta_model = dict(tta_cfg=dict(nms=dict(iou_threshold=0.45)))
