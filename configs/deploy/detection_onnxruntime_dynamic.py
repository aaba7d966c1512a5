# mmdeploy: any mmdet detector (ResObj included) to ONNX Runtime with dynamic
# batch and input size. ONNX opset 11. Two-stage detectors (Faster R-CNN):
# use detection_onnxruntime-opset16_dynamic.py.
_base_ = ['./detection_onnxruntime_static.py']
onnx_config = dict(
    input_shape=None,
    dynamic_axes=dict(
        input=dict({0: 'batch', 2: 'height', 3: 'width'}),
        dets=dict({0: 'batch', 1: 'num_dets'}),
        labels=dict({0: 'batch', 1: 'num_dets'})))
