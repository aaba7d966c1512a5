"""resobj-mmdet: Residual Objectness for MMDetection 3.x."""
import glob
import os.path as osp

from setuptools import find_packages, setup


def mim_files():
    """What openmim reads from ``resobj_mmdet/.mim`` (``mim search``, and
    configs for ``mim train``): the model index, the metafiles and configs.
    In the repository ``.mim`` holds symlinks to the top-level files, so an
    editable install sees them live; a wheel gets copies."""
    root = osp.join(osp.dirname(osp.abspath(__file__)), 'resobj_mmdet')
    files = []
    for pattern in ('.mim/model-index.yml', '.mim/configs/**/*.py',
                    '.mim/configs/**/*.yml'):
        files += [
            osp.relpath(p, root)
            for p in glob.glob(osp.join(root, pattern), recursive=True)
        ]
    return sorted(files)


def version():
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'resobj_mmdet', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='resobj_mmdet',
    version=version(),
    description='Residual Objectness (Chen et al., Pattern Recognition 2022) '
    'as an MMDetection 3.x plugin',
    long_description=open('README.md').read() if osp.isfile('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['resobj_mmdet', 'resobj_mmdet.*']),
    package_data={'resobj_mmdet': mim_files()},
    python_requires='>=3.8',
    # torch is deliberately not listed: pip would replace a user's CUDA build.
    # mmcv must be built with ops (tools/setup_env.sh does it).
    install_requires=[
        'mmengine>=0.10.7,<0.11',
        'mmcv>=2.1.0,<2.2.0',
        'mmdet>=3.3.0,<3.4',
        'numpy<2',
        'opencv-python<4.12',
        # 2.0.10's loadRes fails on a dataset without 'info' (KeyError)
        'pycocotools!=2.0.10',
    ],
    extras_require=dict(
        # vermin: tests/test_packaging.py checks python_requires
        tests=['pytest', 'matplotlib', 'hypothesis', 'vermin'],
        # what mmdet's tools/analysis_tools import beyond mmdet itself
        analysis=['seaborn', 'psutil', 'matplotlib'],
        # openmim is not an extra: with its dependencies it pulls opendatalab
        # -> openxlab, which pins setuptools 60 and breaks torch;
        # tools/setup_env.sh installs it with --no-deps.
        # tools/deployment/deploy.py: versions that work together on Python
        # 3.11 (onnxruntime matches the ORT library inside mmdeploy's wheel).
        # tools/setup_env.sh installs them with --no-deps (WITH_DEPLOY=1).
        deploy=[
            'mmdeploy==1.3.1', 'onnx==1.14.1', 'onnxruntime==1.15.1',
            'protobuf==3.20.2', 'aenum', 'multiprocess', 'dill',
            'prettytable', 'grpcio', 'coloredlogs', 'flatbuffers'
        ]),
    license='Apache-2.0',
    zip_safe=False)
