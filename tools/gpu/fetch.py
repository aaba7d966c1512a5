"""Prepare, here, everything the GPU machine lacks, as one carry folder.

The device (see the device tool's KINDS.md: Python 3.12, torch 2.11+cu130,
numpy 2.x, opencv-python-headless, matplotlib, scipy, pandas, rich...) has
no mmengine, mmcv, mmdet or pycocotools and no network. This downloads into
``.gpu_carry/wheels/`` (ignored by git) exactly the cp312 manylinux wheels of
what is missing and the mmcv 2.1.0 sdist (built on the device, with CUDA
ops, by ``build_mmcv.sh``), checks that the folder fits the carry limit
(64 MiB per call) and prints the ``carry`` list for the device's ``run``.

Usage::

    python tools/gpu/fetch.py            # download (idempotent), print carry
    python tools/gpu/fetch.py --check    # only check what is there
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CARRY = '.gpu_carry'
LIMIT = 64 * 2**20  # the device tool's carry limit per call
PYTHON = '3.12'
PLATFORM = 'manylinux2014_x86_64'
# Missing on the device image (its package list, 2026-11-17), pinned to the
# versions tested here. Pure-Python wheels are platform independent.
WHEELS = [
    'mmengine==0.10.7',
    'mmdet==3.3.0',
    'pycocotools==2.0.11',
    'terminaltables==3.1.10',
    'addict==2.4.0',
    'yapf==0.40.1',
    'termcolor==2.4.0',
    'platformdirs==4.2.2',
    'importlib-metadata==8.0.0',
    'shapely==2.0.6',
    'openmim==0.3.9',
    'model-index==0.1.11',
    'ordered-set==4.1.0',
]
SDISTS = ['mmcv==2.1.0']


def download(dest: str) -> None:
    os.makedirs(dest, exist_ok=True)
    base = [sys.executable, '-m', 'pip', 'download', '--no-deps',
            '--disable-pip-version-check', '-q', '-d', dest]
    for req in WHEELS:
        name = req.split('==')[0].replace('-', '_').lower()
        if any(f.lower().startswith(name) and f.endswith('.whl')
               for f in os.listdir(dest)):
            continue
        subprocess.run(
            base + ['--only-binary=:all:', '--python-version', PYTHON,
                    '--platform', PLATFORM, '--implementation', 'cp', req],
            check=True)
    for req in SDISTS:
        name = req.split('==')[0]
        if any(f.startswith(name) and f.endswith('.tar.gz')
               for f in os.listdir(dest)):
            continue
        subprocess.run(base + ['--no-binary=:all:', req], check=True)


def carry_list(root: str = ROOT) -> dict:
    """Files under .gpu_carry, their total size and whether it fits."""
    files, total = [], 0
    for dirpath, _, names in os.walk(osp.join(root, CARRY)):
        for name in names:
            path = osp.join(dirpath, name)
            files.append(osp.relpath(path, root))
            total += osp.getsize(path)
    return dict(carry=[CARRY], files=sorted(files), bytes=total,
                fits=total <= LIMIT)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args(argv)
    if not args.check:
        download(osp.join(ROOT, CARRY, 'wheels'))
    info = carry_list()
    print(json.dumps(info, indent=1))
    if not info['fits']:
        print(f'{CARRY} holds {info["bytes"] / 2**20:.1f} MiB, over the '
              f'{LIMIT // 2**20} MiB carry limit', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
