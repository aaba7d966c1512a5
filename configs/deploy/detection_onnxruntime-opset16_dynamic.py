# mmdeploy: two-stage detectors to ONNX Runtime, dynamic shapes, opset 16
# (see detection_onnxruntime-opset16_static.py).
_base_ = ['./detection_onnxruntime_dynamic.py']
onnx_config = dict(opset_version=16)
