# Data and runtime shared by the Aquarium configs: Roboflow's Aquarium
# (CC BY 4.0), photographs of two public aquariums, seven classes with a
# 25:1 skew (fish ... starfish), many small boxes (42 % under 32x32 px at
# long side 512), about 18 % of an image foreground: COCO's kind of
# imbalance. Read from its YOLO export by AquariumDataset
# (resobj_mmdet/datasets/aquarium.py), evaluated with COCO AP (per class
# and per size too) on the `valid` split (the official test split is not
# used).
#
# data_root: `data/aquarium/` (the `dataset/aquarium_pretrain` directory of
# `git clone https://github.com/sumit2011/underwater-object-detection`), or
# the environment variable AQUARIUM_ROOT, e.g.
#   AQUARIUM_ROOT=/path/to/aquarium_pretrain/ mim train mmdet configs/aquarium/<config>.py
#
# `img_scale` is the (long, short) side of keep-ratio resizing: a config
# that changes it restates the pipelines (mmengine does not re-evaluate
# them). The optimizer and schedule come from each family's mmdet COCO
# recipe, not from here.
_base_ = 'mmdet::_base_/default_runtime.py'

dataset_type = 'AquariumDataset'
data_root = '{{$AQUARIUM_ROOT:data/aquarium/}}'
img_scale = (512, 384)
train_batch_size = 4
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # Photographs have an up: horizontal flips only (mmdet's COCO recipe).
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    # `instances`: CocoMetric builds its ground truth from them
    # (ann_file=None), the boxes AquariumDataset parsed.
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
        ann_file='train/labels/',
        data_prefix=dict(img='train/images/'),
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
        ann_file='valid/labels/',
        data_prefix=dict(img='valid/images/'),
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
