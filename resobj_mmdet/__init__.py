# Copyright (c) resobj-mmdet contributors.
"""Residual Objectness (Chen et al., Pattern Recognition 2022) for MMDetection.

Importing the package registers its models and datasets in mmdet's
registries (configs do it through ``custom_imports``) and allowlists the
classes that mmengine checkpoints pickle, so that ``torch.load`` with
``weights_only=True`` (the default since torch 2.6) can resume and test.
"""
from .version import __version__
from .utils import register_safe_globals
# Importing the subpackages registers their modules in mmdet's registries.
from . import datasets, engine, evaluation, models  # noqa: F401

register_safe_globals()

__all__ = [
    '__version__', 'datasets', 'engine', 'evaluation', 'models',
    'register_safe_globals'
]
