import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_SPLITS = dict(train=16, val=8)


@pytest.fixture(scope='session', autouse=True)
def _mmdet_scope():
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import resobj_mmdet  # noqa: F401


@pytest.fixture(scope='session')
def tiny_shapes(tmp_path_factory):
    """A small generated copy of the embedded dataset (train 16, val 8)."""
    from resobj_mmdet.datasets import ensure_shapes
    root = str(tmp_path_factory.mktemp('data') / 'shapes')
    ensure_shapes(root, splits=TINY_SPLITS)
    return root


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'cuda: needs a CUDA device (skipped without one); the GPU '
        'kit runs them with `pytest -m cuda` (tools/gpu/README.md)')
