"""model-index.yml + metafile.yml: complete, consistent and found by
``mim search``, from the source checkout and from an installed wheel."""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import yaml

from helpers import REPO

METAFILES = ['configs/resobj/metafile.yml', 'configs/demo/metafile.yml',
             'configs/trees/metafile.yml', 'configs/bccd/metafile.yml',
             'configs/aquarium/metafile.yml',
             'configs/deeppcb/metafile.yml']


def mim_exe():
    return shutil.which('mim') or osp.join(osp.dirname(sys.executable), 'mim')


def load_models():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert index['Import'] == METAFILES
    models = []
    for meta in METAFILES:
        with open(osp.join(REPO, meta)) as f:
            data = yaml.safe_load(f)
        collections = {c['Name'] for c in data['Collections']}
        for m in data['Models']:
            assert m['In Collection'] in collections, m['Name']
            models.append(m)
    return models


def test_every_config_is_indexed_once():
    models = load_models()
    configs = [m['Config'] for m in models]
    assert len(configs) == len(set(configs))
    on_disk = sorted(
        osp.relpath(p, REPO)
        for sub in ('resobj', 'demo', 'trees', 'bccd', 'aquarium',
                    'deeppcb')
        for p in glob.glob(osp.join(REPO, 'configs', sub, '**', '*.py'),
                           recursive=True) if '_base_' not in p)
    assert sorted(configs) == on_disk
    for m in models:
        assert m['Name'] == osp.splitext(osp.basename(m['Config']))[0]
        # no weights until we publish some
        assert 'Weights' not in m
        for result in m.get('Results', []):
            for value in result['Metrics'].values():
                assert 0 < value < 100


def test_paper_numbers_are_labelled_as_the_papers():
    for m in load_models():
        if m['Config'].startswith('configs/resobj/') and 'Results' in m:
            assert m['Metadata']['Result Source'].startswith('paper')
        elif m['Config'].startswith('configs/resobj/'):
            assert 'not trained here' in m['Metadata']['Result Source']


def _search(env, *args):
    proc = subprocess.run([mim_exe(), 'search', 'resobj_mmdet', *args],
                          env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.mark.skipif(not osp.isfile(mim_exe()), reason='openmim missing')
def test_mim_search_from_the_source_checkout():
    # An editable install's distribution lives in site-packages, where mim
    # looks for <location>/resobj_mmdet/.mim; with the checkout first on
    # PYTHONPATH, its in-tree egg-info makes the checkout the location.
    env = dict(os.environ, PYTHONPATH=REPO)
    out = _search(env, '--valid-config')
    for m in load_models():
        assert m['Name'] in out, m['Name']
    # --model filters by collection
    table = _search(env, '--model', 'RetinaNet-ResObj', '--field', 'box_ap')
    assert 'resobj-retinanet_r50_fpn_1x_coco' in table
    assert 'yolov3' not in table


@pytest.mark.skipif(not osp.isfile(mim_exe()), reason='openmim missing')
def test_mim_search_from_an_installed_wheel(tmp_path):
    target = tmp_path / 'site'
    subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--no-deps',
         '--no-build-isolation', '--no-index', '-q', '--target',
         str(target), REPO],
        check=True, capture_output=True)
    assert (target / 'resobj_mmdet' / '.mim' / 'model-index.yml').is_file()
    assert (target / 'resobj_mmdet' / '.mim' / 'configs' / 'demo' /
            'resobj-retinanet_r18-w16_fpn_12e_shapes.py').is_file()
    env = dict(os.environ, PYTHONPATH=str(target))
    out = _search(env, '--valid-config')
    assert 'resobj-yolov3_d53_8xb8-ms-608-273e_coco' in out
    assert 'resobj-retinanet_mobilenetv2_fpn_16e_trees' in out
