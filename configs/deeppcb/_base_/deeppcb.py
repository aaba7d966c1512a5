# Data and runtime shared by the DeepPCB configs: 640x640 binarised scans of
# printed circuit boards with six balanced defect types (open, short,
# mousebite, spur, copper, pin-hole), every box small (median 34 px), about
# 3 % of an image defect: the extreme of foreground/background imbalance.
# Read from the repository's PCBData layout by DeepPCBDataset
# (resobj_mmdet/datasets/deeppcb.py), evaluated with COCO AP (per class and
# per size too) on a fixed validation split of the official trainval.txt
# (every fifth of its sorted lines: 800 train / 200 val images; the
# official test split is not used).
#
# data_root: `data/deeppcb/` (the `PCBData` directory of `git clone
# https://github.com/tangsanli5201/DeepPCB`), or the environment variable
# DEEPPCB_ROOT, e.g.
#   DEEPPCB_ROOT=/path/to/DeepPCB/PCBData/ mim train mmdet configs/deeppcb/<config>.py
#
# Native scale throughout, so that the defects keep their pixels: training
# on random 320x320 crops of the 640x640 scans (a quarter of the pixels a
# step; a crop without any defect is refused and mmdet's dataset draws
# another sample), testing on whole images.
# The optimizer and schedule come from each family's mmdet COCO recipe,
# not from here.
_base_ = 'mmdet::_base_/default_runtime.py'

dataset_type = 'DeepPCBDataset'
data_root = '{{$DEEPPCB_ROOT:data/deeppcb/}}'
crop_size = (320, 320)
train_batch_size = 4
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomCrop', crop_size=crop_size, allow_negative_crop=False),
    # A scan has no up or left: every flip is a valid view.
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # The scans are 640x640 already: a no-op that records scale_factor 1,
    # which the heads' rescaling reads.
    dict(type='Resize', scale=(640, 640), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    # `instances`: CocoMetric builds its ground truth from them
    # (ann_file=None), the boxes DeepPCBDataset parsed.
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'instances'))
]
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='trainval.txt',
        split='train',
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='trainval.txt',
        split='val',
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=None,
    metric='bbox',
    classwise=True,
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
custom_hooks = [dict(type='NumClassCheckHook')]
