# mmdet's Faster R-CNN (mmdet::_base_/models/faster-rcnn_r50_fpn.py) on
# torchvision's ImageNet MobileNetV2 from the registry
# (resobj://mobilenet_v2_imagenet, see docs/real_images.md), for small
# objects on CPU: a narrow neck, RPN and RoI head (96 channels, 256-d fcs)
# on four levels, strides 8-64 (P6 by max-pooling; mmdet's stride-4 level
# would double the step's cost for objects of 16 px and larger), anchors
# from 16 px at stride 8, and fewer proposals and RoIs than COCO's
# 2000/1000/512. The configs/bccd/ and configs/deeppcb/ Faster R-CNNs
# inherit it and set their classes.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(2, 4, 6),  # strides 8, 16, 32
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='resobj://mobilenet_v2_imagenet')),
    neck=dict(in_channels=[32, 96, 320], out_channels=96, num_outs=4),
    rpn_head=dict(
        in_channels=96,
        feat_channels=96,
        anchor_generator=dict(scales=[2], strides=[8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=96, featmap_strides=[8, 16, 32]),
        bbox_head=dict(in_channels=96, fc_out_channels=256)),
    # CPU-sized: an image of these sets holds at most a few dozen objects.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=150),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=150)))
