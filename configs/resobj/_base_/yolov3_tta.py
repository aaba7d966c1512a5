# Test-time augmentation for the YOLOv3 configs (`--tta`): horizontal flip x
# YOLOv3's three published test sizes (320, 416, 608; keep-ratio resize as its
# test pipeline), merged by mmdet's DetTTAModel with YOLOv3's NMS (IoU 0.45).
# mmdet ships no YOLOv3 TTA file; this follows its retinanet_tta.py.
tta_model = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.45), max_per_img=100))

tta_img_scales = [(608, 608), (416, 416), (320, 320)]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=s, keep_ratio=True)
             for s in tta_img_scales],
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
