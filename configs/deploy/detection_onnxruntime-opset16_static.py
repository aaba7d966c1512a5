# mmdeploy: two-stage detectors to ONNX Runtime, static shape, opset 16. At
# opset 11 mmdeploy emulates mmcv's aligned RoIAlign on ONNX RoiAlign-10,
# which drifts (boxes up to 75 px apart from PyTorch, vanilla Faster R-CNN
# too); RoiAlign-16 has the half-pixel mode and matches exactly.
_base_ = ['./detection_onnxruntime_static.py']
onnx_config = dict(opset_version=16)
