"""Packaging claims that a test can check: ``python_requires`` against the
syntax and standard-library use of everything we ship (vermin, a static
analyser: it needs no interpreter of the lowest version)."""
import os
import os.path as osp
import re
import shutil
import site
import subprocess
import sys
import zipfile

import pytest

from helpers import DEMO_RESOBJ, REPO, tiny_shapes_cfg_options

SHIPPED = ['resobj_mmdet', 'tools', 'configs', 'setup.py']


def python_floor():
    """The ``python_requires='>=X.Y'`` floor of setup.py, as 'X.Y'."""
    text = open(osp.join(REPO, 'setup.py')).read()
    match = re.search(r"python_requires='>=(\d+\.\d+)'", text)
    assert match, 'setup.py: python_requires must read ">=X.Y"'
    return match.group(1)


def vermin(target, paths, cwd):
    pytest.importorskip('vermin', reason='vermin not installed (tests extra)')
    # --eval-annotations: annotations are code on the lowest Python too;
    # --backport typing: typing_extensions-style names are not violations.
    return subprocess.run(
        [sys.executable, '-c', 'import sys, vermin; sys.exit(vermin.main())',
         '--no-tips', '--violations',
         '--eval-annotations', '--backport', 'typing', f'-t={target}-',
         *paths],
        cwd=cwd, capture_output=True, text=True)


def test_code_runs_on_the_claimed_lowest_python():
    floor = python_floor()
    proc = vermin(floor, SHIPPED, REPO)
    assert proc.returncode == 0, (
        f'setup.py claims Python >= {floor}, but vermin finds code that '
        f'needs a newer one:\n{proc.stdout}{proc.stderr}')


def test_the_check_catches_newer_syntax(tmp_path):
    """The same check fails on code that the floor cannot run.

    Standard-library use, not new grammar: vermin parses with the running
    interpreter's ``ast``, so on Python 3.8 it cannot see a ``match``
    statement at all (the compat stack runs this suite on 3.8).
    """
    (tmp_path / 'new.py').write_text(
        'import itertools\n\n'
        'y = (z := 3)\n'
        'print(list(itertools.pairwise([1, 2, 3])), (5).bit_count())\n')
    proc = vermin(python_floor(), ['new.py'], str(tmp_path))
    assert proc.returncode != 0
    assert '3.10' in proc.stdout + proc.stderr


def _mim_exe():
    exe = shutil.which('mim') or osp.join(osp.dirname(sys.executable), 'mim')
    return exe if osp.isfile(exe) else None


@pytest.mark.skipif(_mim_exe() is None, reason='openmim missing')
def test_wheel_in_another_project(tmp_path, tiny_shapes):
    """What a user with mmdet does: build the wheel, install it with
    README's line, copy our config into their project and train, test and
    search from there."""
    dist = tmp_path / 'dist'
    subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '--no-index', '-q', '-w', str(dist), REPO],
        check=True, capture_output=True)
    (wheel, ) = dist.glob('resobj_mmdet-*.whl')
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert 'resobj_mmdet/.mim/model-index.yml' in names
    assert 'resobj_mmdet/.mim/configs/bccd/metafile.yml' in names

    # A scratch venv that sees the main environment's packages (mmdet, a
    # built mmcv) after its own, so the wheel's copy of resobj_mmdet wins
    # over the editable one. (--system-site-packages would expose the base
    # interpreter's, not this venv's.)
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)],
                   check=True)
    py = str(venv / 'bin' / 'python')
    own = subprocess.run(
        [py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        check=True, capture_output=True, text=True).stdout.strip()
    with open(osp.join(own, 'main_env.pth'), 'w') as f:
        f.write('\n'.join(site.getsitepackages()) + '\n')
    # README's line; --ignore-installed: leave the main env's copy alone.
    subprocess.run([py, '-m', 'pip', 'install', '--no-deps', '--no-index',
                    '--ignore-installed', '-q', str(wheel)],
                   check=True, capture_output=True)

    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PATH'] = str(venv / 'bin') + os.pathsep + env['PATH']
    project = tmp_path / 'my_project'
    project.mkdir()
    where = subprocess.run(
        [py, '-c', 'import resobj_mmdet; print(resobj_mmdet.__file__)'],
        cwd=project, env=env, check=True, capture_output=True,
        text=True).stdout
    assert where.startswith(own), where  # the wheel, not the checkout
    # The user copies our demo configs (the one they train and its bases)
    # from the installed package into their project: mmengine's `pkg::`
    # inheritance knows only OpenMMLab's own packages.
    shutil.copytree(
        osp.join(osp.dirname(where.strip()), '.mim', 'configs', 'demo'),
        project / 'configs' / 'demo')
    config = project / 'configs' / 'demo' / osp.basename(DEMO_RESOBJ)
    assert 'custom_imports' in config.read_text()

    mim = [py, '-m', 'mim']
    opts = tiny_shapes_cfg_options(tiny_shapes)
    work = str(project / 'work_dirs' / 'my_resobj_retinanet')
    train = subprocess.run(
        mim + ['train', 'mmdet', str(config), '--work-dir', work,
               '--cfg-options', *opts],
        cwd=project, env=env, capture_output=True, text=True)
    assert train.returncode == 0, (train.stdout + train.stderr)[-3000:]
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    test = subprocess.run(
        mim + ['test', 'mmdet', str(config), '--checkpoint', ckpt,
               '--work-dir', work, '--cfg-options', *opts],
        cwd=project, env=env, capture_output=True, text=True)
    assert test.returncode == 0, (test.stdout + test.stderr)[-3000:]
    assert 'coco/bbox_mAP' in test.stdout + test.stderr
    search = subprocess.run(mim + ['search', 'resobj_mmdet', '--valid-config'],
                            cwd=project, env=env, capture_output=True,
                            text=True)
    assert search.returncode == 0, (search.stdout + search.stderr)[-3000:]
    assert 'resobj-retinanet_mobilenetv2_fpn_20e_bccd' in search.stdout


@pytest.mark.skipif(sys.prefix == sys.base_prefix,
                    reason='not running in a virtual environment')
def test_setup_env_rerun_with_a_relative_venv_only_checks(tmp_path):
    # README: a second run of tools/setup_env.sh "only checks versions".
    # Its checks run from /, so a relative VENV (as users type it) must be
    # made absolute, or every check fails and it reinstalls, rebuilding
    # mmcv. This interpreter's environment is the one setup_env.sh built.
    os.symlink(sys.prefix, tmp_path / 'env')
    env = dict(os.environ, VENV='env', WITH_DEPLOY='0')
    run = subprocess.run(['bash', osp.join(REPO, 'tools', 'setup_env.sh')],
                         cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert 'already present: kept' in log
    assert '[setup] installing' not in log and 'building' not in log, log
    used = re.search(r'\(venv: (.+)\)', log).group(1)
    assert osp.isabs(used) and osp.samefile(used, sys.prefix)
