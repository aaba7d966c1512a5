# mmdet's RetinaNet (mmdet::_base_/models/retinanet_r50_fpn.py) on
# torchvision's ImageNet MobileNetV2 from the registry
# (resobj://mobilenet_v2_imagenet, see docs/real_images.md), for small
# objects: three levels (strides 8-32) with anchors from 16 px (octave base
# scale 2), and a narrow neck and head (96 channels, 2 tower convs). The
# configs/trees/ and configs/bccd/ RetinaNets inherit it and set their
# classes (and, for the trees, the width).
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(2, 4, 6),  # strides 8, 16, 32
        # As mmdet's ResNet recipe: stem frozen, BN statistics frozen.
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='resobj://mobilenet_v2_imagenet')),
    neck=dict(
        in_channels=[32, 96, 320],
        out_channels=96,
        start_level=0,
        add_extra_convs=False,
        num_outs=3),
    bbox_head=dict(
        in_channels=96,
        feat_channels=96,
        stacked_convs=2,
        anchor_generator=dict(octave_base_scale=2, strides=[8, 16, 32])))
