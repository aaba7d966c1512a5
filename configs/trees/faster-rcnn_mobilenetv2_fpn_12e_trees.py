# Vanilla Faster R-CNN on real aerial tree crowns, with an ImageNet
# MobileNetV2 and the optimizer of mmdet's faster-rcnn_r50_fpn_1x_coco.py
# (schedule_1x: SGD, momentum 0.9, weight decay 1e-4, linear warm-up, no
# gradient clipping, steps at epochs 8 and 11), lr 0.02 at batch 16 scaled
# linearly to batch 4. The ResObj twin inherits this file and changes only
# the RPN head and sampler.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py', './_base_/trees.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(1, 2, 4, 6),  # strides 4, 8, 16, 32
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='resobj://mobilenet_v2_imagenet')),
    # Narrow neck, RPN and RoI head (64 channels, 256-d fcs); mmdet's five
    # levels (P6 by max-pooling).
    neck=dict(in_channels=[24, 32, 96, 320], out_channels=64, num_outs=5),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        # Crowns are 8-106 px: anchors from 16 px at stride 4.
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=1)),
    # Fewer proposals and RoIs than COCO's 2000/1000/512, CPU-sized: a
    # 256-px tile holds at most ~60 crowns.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=150),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=150)))

# mmdet's 1x schedule as it is: 500 warm-up iterations, steps at epochs 8
# and 11 (12 epochs of 74 iterations).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
# mmdet's lr 0.02 at batch 16 (8 GPUs x 2), scaled linearly to batch 4.
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(enable=False, base_batch_size=4)
