"""mmdeploy export of the ResObj detectors and ONNX Runtime parity.

Skipped, with the reason, when the ``deploy`` extra is not installed
(``WITH_DEPLOY=1 bash tools/setup_env.sh``; ``.ci/run`` installs it).
"""
import os.path as osp
import sys

import pytest
import torch

from helpers import REPO

mmdeploy = pytest.importorskip(
    'mmdeploy',
    reason='deploy extra not installed: WITH_DEPLOY=1 bash '
    'tools/setup_env.sh')
pytest.importorskip('onnxruntime', reason='deploy extra not installed')

sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
import deploy  # noqa: E402

DEPLOY = osp.join(REPO, 'configs', 'deploy')
DEMO = osp.join(REPO, 'configs', 'demo')
CASES = {
    'retinanet': ('resobj-retinanet_r18-w16_fpn_12e_shapes.py', ''),
    'yolov3': ('resobj-yolov3_r18-w16_12e_shapes.py', ''),
    # Two-stage: opset 16 (RoiAlign with half-pixel coordinates).
    'faster-rcnn': ('resobj-faster-rcnn_r18-w16_fpn_12e_shapes.py',
                    '-opset16'),
}


def _configs(case, dynamic, tiny_shapes):
    from mmdeploy.utils import load_config
    config, opset = CASES[case]
    kind = 'dynamic' if dynamic else 'static'
    deploy_cfg, model_cfg = load_config(
        osp.join(DEPLOY, f'detection_onnxruntime{opset}_{kind}.py'),
        osp.join(DEMO, config))
    if not dynamic:
        deploy_cfg.onnx_config.input_shape = [128, 128]
    # Keep every box so that the compared scores are spread, not flat.
    model_cfg.model.test_cfg = _keep_all(model_cfg.model.test_cfg)
    deploy.align_postprocessing(deploy_cfg, model_cfg)
    for key in ('test_dataloader', 'val_dataloader'):
        model_cfg[key].dataset.data_root = tiny_shapes + '/'
    return deploy_cfg, model_cfg


def _keep_all(test_cfg):
    if 'rcnn' in test_cfg:
        test_cfg.rcnn.score_thr = 0.0
    else:
        test_cfg.score_thr = 0.0
    # mmdet's YOLOv3 ranks its nms_pre candidates by class score alone and
    # mmdeploy's by the joint score; with every candidate kept, both keep the
    # same set (at 128 px YOLOv3 has 1008 anchors x 3 classes > 1000).
    if 'nms_pre' in test_cfg:
        test_cfg.nms_pre = 100000
    return test_cfg


@pytest.mark.parametrize('dynamic', [False, True], ids=['static', 'dynamic'])
@pytest.mark.parametrize('case', list(CASES))
def test_export_matches_pytorch(case, dynamic, tiny_shapes, tmp_path):
    deploy_cfg, model_cfg = _configs(case, dynamic, tiny_shapes)
    images = [osp.join(tiny_shapes, 'val', f'{i:06d}.png') for i in (0, 1)]
    torch.manual_seed(0)  # random init, PyTorch's default: spread scores
    info = deploy.export_onnx(deploy_cfg, model_cfg, None, images,
                              str(tmp_path))
    assert osp.isfile(info['onnx'])
    # A dynamic export runs both images as one batch of 2.
    rows = deploy.parity(info['task_processor'], info['model'],
                         info['onnx'], images, deploy_cfg, k=10,
                         batch=2 if dynamic else 1)
    assert len(rows) == 2
    for row in rows:
        assert row['compared'] == 10 and row['unmatched'] == 0, row
        assert row['score_diff'] <= 1e-4, row
        # mmdeploy's RPN runs one NMS over all levels, mmdet's one per level:
        # on a near-tie the two keep a different one of two overlapping
        # proposals (seen: 0.35 px apart at the same R-CNN score).
        assert row['box_diff'] <= (0.5 if case == 'faster-rcnn' else 1e-2), row


def test_lite_detector_exports_folded(tiny_shapes, tmp_path):
    """A lite RetinaNet-ResObj exports with its T residual convs folded
    into the objectness logit conv, and still matches PyTorch."""
    deploy_cfg, model_cfg = _configs('retinanet', False, tiny_shapes)
    model_cfg.model.bbox_head.residual_objectness.res_convs = 0
    images = [osp.join(tiny_shapes, 'val', '000002.png')]
    torch.manual_seed(0)
    info = deploy.export_onnx(deploy_cfg, model_cfg, None, images,
                              str(tmp_path))
    assert info['folded'] == ['bbox_head.res_obj']
    # The T = 2 residual logit convs are one grouped conv (res_logit).
    assert info['convs_before'] - info['convs_after'] == 1
    (row, ) = deploy.parity(info['task_processor'], info['model'],
                            info['onnx'], images, deploy_cfg)
    assert row['unmatched'] == 0 and row['score_diff'] <= 1e-4


def test_torch_compat_is_scoped():
    import torch.onnx
    import torch.onnx.symbolic_opset9 as opset9
    import resobj_mmdet  # noqa: F401  (importing patches nothing)
    export, had = torch.onnx.export, hasattr(opset9, '_cast_Long')
    with deploy.torch_onnx_compat():
        assert hasattr(opset9, '_cast_Long')
    assert torch.onnx.export is export
    assert hasattr(opset9, '_cast_Long') == had
