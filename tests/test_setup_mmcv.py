"""tools/misc/mmcv_wheels.py: the choice between OpenMMLab's prebuilt mmcv
2.1.0 wheel and the source build, as tools/setup_env.sh makes it."""
import os.path as osp
import subprocess
import sys
import time

import pytest

from helpers import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
import mmcv_wheels  # noqa: E402
from mmcv_wheels import build_check, find_links, probe  # noqa: E402

SCRIPT = osp.join(REPO, 'tools', 'misc', 'mmcv_wheels.py')
BASE = 'https://download.openmmlab.com'


@pytest.mark.parametrize('torch_version, cuda, device, torch_dir', [
    ('2.1.2+cu121', '12.1', 'cu121', 'torch2.1.0'),  # mim: x.y.0
    ('2.1.0', '11.8', 'cu118', 'torch2.1.0'),
    ('2.1.2+cpu', None, 'cpu', 'torch2.1.0'),
    ('2.0.1', '11.7', 'cu117', 'torch2.0.0'),
    ('1.13.1+cu116', '11.6', 'cu116', 'torch1.13.0'),
])
def test_supported_torch_gets_mims_index(torch_version, cuda, device,
                                         torch_dir):
    url, why = find_links(torch_version, cuda, (3, 11), 'x86_64')
    assert url == f'{BASE}/mmcv/dist/{device}/{torch_dir}/index.html'
    assert url in why


@pytest.mark.parametrize('torch_version, cuda, python, machine, reason', [
    ('2.13.0+cpu', None, (3, 11), 'x86_64',
     'OpenMMLab built no mmcv 2.1.0 for torch 2.13 (only for torch 1.8, '),
    ('2.2.0', '12.1', (3, 11), 'x86_64', 'for torch 2.2'),
    ('2.1.2', '12.4', (3, 11), 'x86_64',
     'for torch 2.1 with cu121, cu118, cpu, not cu124'),
    ('2.0.0', '12.1', (3, 11), 'x86_64', 'not cu121'),
    ('2.1.2', '12.1', (3, 12), 'x86_64', 'for Python 3.12 (3.8 to 3.11'),
    ('2.1.2', None, (3, 11), 'aarch64', 'for aarch64'),
    ('nightly', None, (3, 11), 'x86_64', "cannot read the torch version"),
])
def test_other_combinations_fall_back_with_a_reason(torch_version, cuda,
                                                    python, machine, reason):
    url, why = find_links(torch_version, cuda, python, machine)
    assert url is None
    assert reason in why


def _index(tmp_path, names):
    page = tmp_path / 'index.html'
    page.write_text(''.join(f'<a href="../torch2.1.0/{n}">{n}</a><br/>\n'
                            for n in names))
    return page.as_uri()


def test_probe_looks_for_this_pythons_wheel_in_the_index(tmp_path):
    url = _index(tmp_path, ['mmcv-2.1.0-cp310-cp310-manylinux1_x86_64.whl',
                            'mmcv-2.1.0-cp311-cp311-manylinux1_x86_64.whl'])
    assert probe(url, (3, 11), 5.0) == (
        True, f'the index {url} lists mmcv-2.1.0-cp311-cp311-*.whl')
    found, why = probe(url, (3, 8), 5.0)
    assert not found and 'lists no mmcv-2.1.0-cp38-cp38-*.whl' in why


def test_unreachable_index_falls_back_within_the_bound():
    """What tools/misc/compat_env.sh meets here (no network but the
    package registries): torch 2.1's index cannot be reached, the probe
    says so in seconds and setup_env.sh builds from source."""
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, SCRIPT, '--probe', '--torch', '2.1.2', '--cuda',
         '12.1', '--python', '3.11', '--base-url', 'http://127.0.0.1:9',
         '--timeout', '3'], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stdout == ''
    assert 'http://127.0.0.1:9/mmcv/dist/cu121/torch2.1.0/index.html ' \
        'cannot be reached' in run.stderr
    assert time.monotonic() - start < 30


def test_this_torch_has_no_candidate_and_builds_from_source():
    """The path .ci/run takes (torch 2.13 on these machines): no index is
    tried; the command prints why and exits 1."""
    import torch
    run = subprocess.run([sys.executable, SCRIPT, '--probe'],
                         capture_output=True, text=True, timeout=60)
    url, why = find_links(torch.__version__, torch.version.cuda)
    assert run.returncode == (0 if url else 1)
    assert why.split(':')[0] in run.stderr


def test_build_check_stops_a_cuda_build_without_nvcc(tmp_path):
    ok, why = build_check(None, False, False, None)
    assert ok and 'CPU ops' in why
    ok, why = build_check('12.1', False, False, None)  # no GPU: CPU ops
    assert ok and 'sees no GPU' in why
    ok, why = build_check('12.1', True, False, None)
    assert not ok and 'nvcc is not found' in why and 'CUDA_HOME' in why
    ok, why = build_check('12.1', False, True, str(tmp_path))  # FORCE_CUDA
    assert not ok and 'Nothing was built' in why
    (tmp_path / 'bin').mkdir()
    (tmp_path / 'bin' / 'nvcc').write_text('')
    ok, why = build_check('12.1', True, False, str(tmp_path))
    assert ok and 'bin/nvcc' in why


def test_setup_env_tries_the_wheel_before_building():
    """setup_env.sh probes the index (bounded), installs only a binary from
    it, checks its ops (and CUDA ops for a CUDA torch), and checks nvcc
    before a source build."""
    text = open(osp.join(REPO, 'tools', 'setup_env.sh')).read()
    probe_at = text.index('mmcv_wheels.py" \\\n            --probe')
    assert text.index('--build-check') > probe_at
    assert text.index('"${PIP[@]}" --no-build-isolation "mmcv==2.1.0"') > \
        probe_at
    assert '--only-binary mmcv' in text and 'MMCV_CUDA_CHECK' in text
    assert mmcv_wheels.MMCV_VERSION == '2.1.0'
