# Data and runtime shared by the real-image configs: NEON aerial tree crowns
# (one class) from the `deepforest` wheel, tiled on first use into
# data_root (see resobj_mmdet/datasets/tree_crowns.py): train on one
# Yellowstone scene, validate on three other scenes (another Yellowstone
# place, a Florida and a California site). Tiles at the native 0.1 m/px
# (crowns ~10-100 px; 256x256 for training, 400x400 for validation): no
# resizing. The optimizer and schedule come from each family's mmdet COCO
# recipe, not from here.
_base_ = 'mmdet::_base_/default_runtime.py'

dataset_type = 'TreeCrownsDataset'
data_root = 'data/resobj_trees/'
classes = ('Tree', )
train_batch_size = 4
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    # Aerial views have no up or left: every flip is a valid view.
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # Native resolution (records the scale_factor mmdet's post-processing
    # expects).
    dict(type='Resize', scale_factor=1.0, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
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
        metainfo=dict(classes=classes),
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
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
        metainfo=dict(classes=classes),
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/val.json',
    metric='bbox',
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=12, max_keep_ckpts=1))
custom_hooks = [dict(type='NumClassCheckHook')]
