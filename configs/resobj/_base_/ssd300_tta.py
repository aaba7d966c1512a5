# Test-time augmentation for SSD300 (`--tta`): horizontal flip only. SSD's
# priors are laid out for a fixed 300x300 input (its test pipeline resizes
# without keeping the ratio), so other scales would change the anchor grid
# the head was trained on. Merged by mmdet's DetTTAModel with SSD's NMS.
tta_model = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.45), max_per_img=200))

tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(300, 300), keep_ratio=False)],
            [dict(type='RandomFlip', prob=1.),
             dict(type='RandomFlip', prob=0.)],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [
                dict(
                    type='PackDetInputs',
                    meta_keys=('img_id', 'img_path', 'ori_shape',
                               'img_shape', 'scale_factor', 'flip',
                               'flip_direction'))
            ]
        ])
]
