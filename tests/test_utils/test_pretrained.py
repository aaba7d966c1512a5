"""torchvision MobileNetV2 -> mmdet MobileNetV2 conversion."""
import json
import os.path as osp

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from mmdet.models.backbones import MobileNetV2
from resobj_mmdet.utils import convert_mobilenet_v2
from resobj_mmdet.utils import pretrained

# Key names and shapes of torchvision's mobilenet_v2-b0353104.pth (the real
# file's state dict, values dropped).
SHAPES = osp.join(
    osp.dirname(osp.dirname(__file__)), 'data',
    'mobilenet_v2_torchvision_shapes.json')


def _torchvision_state():
    with open(SHAPES) as f:
        shapes = json.load(f)
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=gen) if s else torch.tensor(7)
            for k, s in shapes.items()}


def test_converted_weights_load_strictly_into_mmdet_mobilenetv2():
    tv = _torchvision_state()
    converted = convert_mobilenet_v2(tv)
    assert not any(k.startswith('classifier') for k in converted)
    assert len(converted) == len(tv) - 2
    model = MobileNetV2(out_indices=(2, 4, 6))
    model.load_state_dict(converted, strict=True)
    # Values travel with their names (not just shapes that happen to fit).
    assert torch.equal(model.conv1.conv.weight, tv['features.0.0.weight'])
    assert torch.equal(model.layer1[0].depthwise_conv.conv.weight,
                       tv['features.1.conv.0.0.weight'])
    assert torch.equal(model.layer1[0].linear_conv.bn.running_var,
                       tv['features.1.conv.2.running_var'])
    assert torch.equal(model.layer2[0].expand_conv.conv.weight,
                       tv['features.2.conv.0.0.weight'])
    assert torch.equal(model.layer7[0].linear_conv.conv.weight,
                       tv['features.17.conv.2.weight'])
    assert torch.equal(model.conv2.bn.bias, tv['features.18.1.bias'])


def test_unknown_key_is_named():
    tv = _torchvision_state()
    tv['features.19.0.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match=r'features\.19\.0\.weight'):
        convert_mobilenet_v2(tv)


def test_resobj_scheme_is_registered(monkeypatch, tmp_path):
    path = str(tmp_path / 'converted.pth')
    torch.save(convert_mobilenet_v2(_torchvision_state()), path)
    monkeypatch.setattr(pretrained, 'converted_checkpoint',
                        lambda name: path)
    state = CheckpointLoader.load_checkpoint('resobj://mobilenet_v2_imagenet')
    assert 'conv1.conv.weight' in state


def test_unknown_checkpoint_name_is_refused_before_any_fetch(tmp_path):
    with pytest.raises(KeyError, match='resobj://resnet50: unknown'):
        pretrained.converted_checkpoint('resnet50', str(tmp_path))
    assert not list(tmp_path.iterdir())
