"""Write ``heads.pth``: state dicts and outputs of the heads of ``cases``.

Run once with the per-step layout of ``ResidualObjectness`` (commit
bc998ce: one conv tower and one logit conv per residual step), so that the
tests can check that the fused layout loads those checkpoints and
reproduces their losses, gradients and predictions. Re-running it with
the fused code would write checkpoints in the fused layout, which the tests
would then no longer compare against the old code.

Usage (from the repository root)::

    PYTHONPATH=tests/data/legacy_layout python tests/data/legacy_layout/make_fixture.py
"""
import os.path as osp
import subprocess

import torch

import cases


def main():
    from mmdet.utils import register_all_modules
    register_all_modules()
    import resobj_mmdet  # noqa: F401
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=root,
                            capture_output=True, text=True).stdout.strip()
    fixture = dict(commit=commit, cases={})
    for name in cases.CASES:
        head = cases.build(name)
        state = {k: v.clone() for k, v in head.state_dict().items()}
        result = cases.run(head, name)
        fixture['cases'][name] = cases.pack(
            cases.flatten(dict(state_dict=state, **result)))
        print(name, {k: round(float(v), 5)
                     for k, v in result['losses'].items()})
    out = osp.join(osp.dirname(osp.abspath(__file__)), 'heads.pth')
    torch.save(fixture, out)
    print('written', out, osp.getsize(out), 'bytes')


if __name__ == '__main__':
    main()
