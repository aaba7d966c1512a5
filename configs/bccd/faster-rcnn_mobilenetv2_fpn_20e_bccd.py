# Vanilla Faster R-CNN on BCCD blood cells, with an ImageNet MobileNetV2 and
# the optimizer of mmdet's faster-rcnn_r50_fpn_1x_coco.py (schedule_1x: SGD,
# momentum 0.9, weight decay 1e-4, linear warm-up over 500 iterations, no
# gradient clipping), lr 0.02 at batch 16 scaled linearly to batch 4. The
# ResObj twin inherits this file and changes only the RPN head and sampler.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py', './_base_/bccd.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(2, 4, 6),  # strides 8, 16, 32
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='resobj://mobilenet_v2_imagenet')),
    # Narrow neck, RPN and RoI head (96 channels, 256-d fcs) on four levels,
    # strides 8-64 (P6 by max-pooling): mmdet's stride-4 level would double
    # the step's cost for cells that are 16 px and larger.
    neck=dict(in_channels=[32, 96, 320], out_channels=96, num_outs=4),
    rpn_head=dict(
        in_channels=96,
        feat_channels=96,
        # Cells are 16-117 px at 320x240: anchors from 16 px at stride 8.
        anchor_generator=dict(scales=[2], strides=[8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=96, featmap_strides=[8, 16, 32]),
        bbox_head=dict(in_channels=96, fc_out_channels=256, num_classes=3)),
    # Fewer proposals and RoIs than COCO's 2000/1000/512, CPU-sized: an
    # image holds at most ~40 cells.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=150),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=150)))

# mmdet's 1x schedule (warm-up included, 500 iterations) stretched to 20
# epochs of 52 iterations, its steps at 8/12 and 11/12 of training. Fifteen
# epochs would put the first step at epoch 10, right where the warm-up ends
# (iteration 500 is in epoch 10): no epoch at the full lr.
max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[13, 18], gamma=0.1)
]
# mmdet's lr 0.02 at batch 16 (8 GPUs x 2), scaled linearly to batch 4.
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(enable=False, base_batch_size=4)
