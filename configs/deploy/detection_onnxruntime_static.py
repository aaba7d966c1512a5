# mmdeploy: any mmdet detector (ResObj included) to ONNX Runtime, static
# input shape (width, height). ONNX opset 11; post-processing (score 0.05,
# IoU 0.5, pre_top_k 5000, keep_top_k 100) as mmdeploy's mmdet configs.
# mmdeploy configs carry no model, so no custom_imports: tools/deployment/
# deploy.py imports resobj_mmdet through the model config.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['dets', 'labels'],
    input_shape=[256, 256],
    optimize=True)
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.05,
        confidence_threshold=0.005,  # YOLOv3 / YOLOX
        iou_threshold=0.5,
        max_output_boxes_per_class=200,
        pre_top_k=5000,
        keep_top_k=100,
        background_label_id=-1))
backend_config = dict(type='onnxruntime')
