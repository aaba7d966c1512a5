# Data and runtime shared by the BCCD configs: blood-cell detection in
# 640x480 light-microscope images, three imbalanced classes (RBC, WBC,
# Platelets), read from the Pascal VOC files of a clone of
# https://github.com/Shenggan/BCCD_Dataset by BCCDDataset
# (resobj_mmdet/datasets/bccd.py), evaluated with COCO AP (per class too).
#
# data_root: `data/BCCD_Dataset/` (`git clone
# https://github.com/Shenggan/BCCD_Dataset data/BCCD_Dataset`), or the
# environment variable BCCD_ROOT, e.g.
#   BCCD_ROOT=/path/to/BCCD_Dataset/ mim train mmdet configs/bccd/<config>.py
#
# Images are trained and tested at half resolution (320x240): platelets are
# then 16-25 px, RBC ~50 px, WBC ~95 px. The optimizer and schedule come
# from each family's mmdet COCO recipe, not from here.
_base_ = 'mmdet::_base_/default_runtime.py'

dataset_type = 'BCCDDataset'
data_root = '{{$BCCD_ROOT:data/BCCD_Dataset/}}'
img_scale = (320, 240)
train_batch_size = 4
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # A microscope slide has no up or left: every flip is a valid view.
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    # `instances`: CocoMetric builds its ground truth from them
    # (ann_file=None), the boxes BCCDDataset parsed.
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
        ann_file='BCCD/ImageSets/Main/train.txt',
        data_prefix=dict(sub_data_root='BCCD/'),
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
        ann_file='BCCD/ImageSets/Main/val.txt',
        data_prefix=dict(sub_data_root='BCCD/'),
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
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
custom_hooks = [dict(type='NumClassCheckHook')]
