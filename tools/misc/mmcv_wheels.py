"""OpenMMLab's prebuilt mmcv 2.1.0 wheel for a torch, if one exists.

``mim install mmcv==2.1.0`` is ``pip install`` with a find-links index
chosen from the importable torch: ``{base}/mmcv/dist/{cu118|cpu}/
torch{major}.{minor}.0/index.html`` (openmim 0.3.9,
``mim/commands/install.py``, ``get_mmcv_full_find_link``: the torch
version without its local part, made ``x.y.0``; ``cu`` and the CUDA
version without its dot, or ``cpu`` for a torch without CUDA; base
``https://download.openmmlab.com``, or ``$MMCV_BASE_URL`` as for mim).
OpenMMLab built mmcv 2.1.0 only for the (torch, CUDA) pairs of
:data:`BUILDS` (mmcv's ``docs/en/_static/version.json`` since commit
df2dadb, "Update version info (#2966)"), for CPython 3.8 to 3.11 on Linux
x86_64 and Windows; every other torch needs the source build.

:func:`find_links` is the choice, without the network; ``--probe`` also
fetches the index (bounded by ``--timeout``) and checks that it lists a
wheel for this Python, so that ``tools/setup_env.sh`` knows in seconds
whether pip can take a wheel or must build::

    python tools/misc/mmcv_wheels.py --probe   # prints the index URL, or
                                               # why not (exit 1)
"""
import argparse
import platform
import re
import sys
import urllib.request
from typing import Optional, Tuple

MMCV_VERSION = '2.1.0'
DEFAULT_BASE_URL = 'https://download.openmmlab.com'
# torch major.minor -> the builds of mmcv 2.1.0 (Linux), from mmcv's
# docs/en/_static/version.json.
BUILDS = {
    '2.1': ('cu121', 'cu118', 'cpu'),
    '2.0': ('cu118', 'cu117', 'cpu'),
    '1.13': ('cu117', 'cu116', 'cpu'),
    '1.12': ('cu116', 'cu113', 'cu102', 'cpu'),
    '1.11': ('cu115', 'cu113', 'cu102', 'cpu'),
    '1.10': ('cu113', 'cu111', 'cu102', 'cpu'),
    '1.9': ('cu111', 'cu102', 'cpu'),
    '1.8': ('cu111', 'cu102', 'cu101', 'cpu'),
}
PYTHONS = ((3, 8), (3, 9), (3, 10), (3, 11))
MACHINES = ('x86_64', 'amd64')


def find_links(torch_version: str, cuda_version: Optional[str],
               python_version: Tuple[int, int] = sys.version_info[:2],
               machine: str = platform.machine(),
               base_url: str = DEFAULT_BASE_URL
               ) -> Tuple[Optional[str], str]:
    """The find-links index of a prebuilt mmcv 2.1.0, or why there is none.

    Args:
        torch_version (str): ``torch.__version__``, e.g. ``'2.1.2+cu121'``.
        cuda_version (str, optional): ``torch.version.cuda``, e.g.
            ``'12.1'``; None for a CPU build.
        python_version (tuple): ``(major, minor)``.
        machine (str): ``platform.machine()``.
        base_url (str): The download server.

    Returns:
        tuple: ``(url, why)``: the index URL (None when no wheel can
        exist) and a sentence for the user.
    """
    match = re.match(r'(\d+)\.(\d+)', torch_version)
    if not match:
        return None, f'cannot read the torch version {torch_version!r}'
    major_minor = f'{match[1]}.{match[2]}'
    device = 'cpu' if not cuda_version else \
        'cu' + ''.join(cuda_version.split('.')[:2])
    builds = BUILDS.get(major_minor)
    if builds is None:
        known = ', '.join(sorted(BUILDS, key=lambda v: tuple(
            map(int, v.split('.')))))
        return None, (f'OpenMMLab built no mmcv {MMCV_VERSION} for torch '
                      f'{major_minor} (only for torch {known})')
    if device not in builds:
        return None, (f'OpenMMLab built mmcv {MMCV_VERSION} for torch '
                      f'{major_minor} with {", ".join(builds)}, not '
                      f'{device}')
    if tuple(python_version) not in PYTHONS:
        return None, (f'no mmcv {MMCV_VERSION} wheel for Python '
                      f'{python_version[0]}.{python_version[1]} (3.8 to '
                      '3.11 only)')
    if machine.lower() not in MACHINES:
        return None, f'no mmcv {MMCV_VERSION} wheel for {machine}'
    url = (f'{base_url.rstrip("/")}/mmcv/dist/{device}/torch{major_minor}.0/'
           'index.html')
    return url, f'prebuilt mmcv {MMCV_VERSION} for torch {major_minor} ' \
        f'{device}: {url}'


def wheel_name(python_version: Tuple[int, int]) -> str:
    """The start of the Linux wheel's file name for ``python_version``."""
    tag = f'cp{python_version[0]}{python_version[1]}'
    return f'mmcv-{MMCV_VERSION}-{tag}-{tag}-'


def probe(url: str, python_version: Tuple[int, int],
          timeout: float) -> Tuple[bool, str]:
    """Fetch the index (at most ``timeout`` seconds per connection step)
    and look for this Python's wheel in it."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            page = response.read().decode('utf-8', 'replace')
    except Exception as exc:  # URLError, timeout, HTTP errors, bad scheme
        return False, f'the index {url} cannot be reached ({exc})'
    if wheel_name(python_version) not in page:
        return False, (f'the index {url} lists no '
                       f'{wheel_name(python_version)}*.whl')
    return True, f'the index {url} lists {wheel_name(python_version)}*.whl'


def build_check(cuda_version: Optional[str], gpu: bool, force_cuda: bool,
                cuda_home: Optional[str]) -> Tuple[bool, str]:
    """Whether mmcv's source build can give this torch the ops it needs.

    mmcv's ``setup.py`` compiles the CUDA ops only where torch sees a GPU or
    ``FORCE_CUDA=1``, and then needs nvcc (``$CUDA_HOME/bin/nvcc``); without
    either it compiles the CPU ops.

    Args:
        cuda_version (str, optional): ``torch.version.cuda``.
        gpu (bool): ``torch.cuda.is_available()``.
        force_cuda (bool): ``FORCE_CUDA=1`` is set.
        cuda_home (str, optional): ``torch.utils.cpp_extension.CUDA_HOME``.

    Returns:
        tuple: ``(ok, message)``; not ok: the build would fail or give a
        CUDA torch an mmcv without CUDA ops on a machine with a GPU.
    """
    import os
    if cuda_version is None:
        return True, 'CPU torch: mmcv builds its CPU ops'
    if not (gpu or force_cuda):
        return True, ('torch is a CUDA build but sees no GPU: mmcv builds '
                      'its CPU ops only (FORCE_CUDA=1, with nvcc, builds the '
                      'CUDA ops for a machine that has one)')
    if cuda_home is None or not os.path.exists(
            os.path.join(cuda_home, 'bin', 'nvcc')):
        return False, (
            f'torch with CUDA {cuda_version} needs mmcv\'s CUDA ops and no '
            f'prebuilt mmcv {MMCV_VERSION} exists for it, but nvcc is not '
            'found (CUDA_HOME is unset or has no bin/nvcc). Install the CUDA '
            f'toolkit {cuda_version} and set CUDA_HOME, or use a torch for '
            f'which OpenMMLab built mmcv {MMCV_VERSION} (torch 2.1 with '
            'CUDA 11.8 or 12.1, see docs/get_started.md). Nothing was built.')
    return True, (f'mmcv builds its CUDA ops with {cuda_home}/bin/nvcc '
                  '(about 20 min or more)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--torch', default=None,
                        help='torch version (default: the importable one)')
    parser.add_argument('--cuda', default=None,
                        help="torch's CUDA version, 'none' for CPU "
                        '(default: the importable torch\'s)')
    parser.add_argument('--python', default=None,
                        help='major.minor (default: this interpreter)')
    parser.add_argument('--base-url', default=None,
                        help='default: $MMCV_BASE_URL, else '
                        f'{DEFAULT_BASE_URL}')
    parser.add_argument('--probe', action='store_true',
                        help='also fetch the index and look for the wheel')
    parser.add_argument('--timeout', type=float, default=15.0,
                        help='seconds per connection step of the probe')
    parser.add_argument('--build-check', action='store_true',
                        help='instead: can the source build give the '
                        'importable torch the ops it needs (exit 1: no)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    import os
    args = parse_args(argv)
    if args.build_check:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME
        ok, why = build_check(torch.version.cuda, torch.cuda.is_available(),
                              os.environ.get('FORCE_CUDA') == '1', CUDA_HOME)
        print(why, file=sys.stderr)
        return 0 if ok else 1
    torch_version, cuda = args.torch, args.cuda
    if torch_version is None or cuda is None:
        import torch
        torch_version = torch_version or torch.__version__
        cuda = torch.version.cuda if cuda is None else cuda
    if cuda in ('none', 'cpu', ''):
        cuda = None
    python = tuple(int(v) for v in args.python.split('.')) \
        if args.python else sys.version_info[:2]
    base_url = args.base_url or os.environ.get('MMCV_BASE_URL') or \
        DEFAULT_BASE_URL
    url, why = find_links(torch_version, cuda, python, base_url=base_url)
    if url is not None and args.probe:
        found, why = probe(url, python, args.timeout)
        url = url if found else None
    if url is None:
        print(why, file=sys.stderr)
        return 1
    print(url)
    print(why, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
