"""The GPU kit (tools/gpu/), run here in its scaled-down CPU dry mode."""
import json
import os.path as osp
import subprocess
import sys

from helpers import REPO


def test_fetch_check_lists_the_carry(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'tools', 'gpu'))
    import fetch
    info = fetch.carry_list(str(tmp_path))
    assert info == dict(carry=['.gpu_carry'], files=[], bytes=0, fits=True)
    wheels = {w.split('==')[0] for w in fetch.WHEELS}
    assert {'mmengine', 'mmdet', 'pycocotools'} <= wheels
    assert fetch.SDISTS == ['mmcv==2.1.0']


def test_dry_run_reports_every_check(tmp_path):
    out = tmp_path / 'report.md'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'gpu', 'validate.py'),
         '--device', 'cpu', '--dry', '--out', str(out), '--work-dir',
         str(tmp_path / 'work')],
        cwd=REPO, capture_output=True, text=True, timeout=1500)
    report = out.read_text()
    assert proc.returncode == 0, report + proc.stdout[-3000:] + \
        proc.stderr[-3000:]
    lines = [l for l in report.splitlines() if l.startswith('- **')]
    names = ' '.join(lines)
    # Every detector in the precision and sync checks, every other check.
    for head in ('retinanet', 'yolov3', 'faster-rcnn', 'atss', 'ssd',
                 'yolox'):
        assert f'precision resobj-{head}' in names, head
        assert f'syncs resobj-{head}' in names, head
    for check in ('env', 'pytest -m cuda', 'train', 'cross',
                  'overhead benchmark'):
        assert check in names, check
    assert not [l for l in lines if l.startswith('- **FAIL')]
    # The overhead check's profile comes back as one file beside the report.
    profile = (tmp_path / 'report_profile.txt').read_text()
    assert '## retinanet T=2: training step' in profile
    # Its table too, written family by family (survives a cut command).
    assert '| retinanet | T=2 |' in (tmp_path / 'report_table.md').read_text()
    assert '0 host syncs' in names


def test_families_split_the_checks():
    """``--families`` picks the detectors of every check (a long check is
    split over several device commands); ``--workers`` defaults to 8 on a
    GPU (the demos' single worker starved an H100) and to the config's
    value on the CPU."""
    sys.path.insert(0, osp.join(REPO, 'tools', 'gpu'))
    import validate
    args = validate.parse_args(['--device', 'cuda', '--families', 'yolov3',
                                'rpn'])
    assert [d[0] for d in args.detectors] == [
        'resobj-yolov3_r18-w16_12e_shapes.py']
    assert args.workers == min(8, __import__('os').cpu_count())
    args = validate.parse_args(['--device', 'cpu'])
    assert len(args.detectors) == 6 and args.workers is None
    assert validate.family_of('resobj-faster-rcnn_r18-w16_fpn_12e_'
                              'shapes.py') == 'faster-rcnn'
