# Vanilla RetinaNet (focal loss) on Aquarium in the short recipe a new user
# tries first (issue 41): ImageNet MobileNetV2 with mmdet's RetinaNet FPN
# of five levels (P3-P7, P6/P7 from C5: `on_input`) and COCO's anchors
# (from 32 px), a 96-channel neck and head (2 tower convs), images at long
# side 384, and mmdet's RetinaNet SGD (lr 0.01 at batch 16 scaled to 0.0025
# at batch 4, momentum 0.9, weight decay 1e-4, no clipping) for 12 epochs,
# the lr stepped at epochs 8 and 11, warm-up over 200 iterations.
_base_ = [
    '../_base_/models/retinanet_mobilenetv2_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py', './_base_/aquarium.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    neck=dict(add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(
        num_classes=7,
        anchor_generator=dict(
            octave_base_scale=4, strides=[8, 16, 32, 64, 128])))

img_scale = (384, 288)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=200),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[8, 11], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.0025))
auto_scale_lr = dict(enable=False, base_batch_size=4)
