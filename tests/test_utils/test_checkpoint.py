import io
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import resobj_mmdet  # noqa: F401  (allowlists on import)
from resobj_mmdet.utils import register_safe_globals

# torch < 2.4 has no allowlist for weights_only loads, and its torch.load
# (and so mmengine's) does not default to weights_only: nothing to allow.
pytestmark = pytest.mark.skipif(
    not register_safe_globals(),
    reason='torch.serialization.add_safe_globals needs torch >= 2.4')


def _roundtrip(obj):
    data = io.BytesIO()
    torch.save(obj, data)
    data.seek(0)
    return torch.load(data, weights_only=True)


def test_history_buffer_loads_weights_only():
    buf = HistoryBuffer()
    buf.update(1.5)
    buf.update(np.float64(2.0))
    loaded = _roundtrip(
        dict(message_hub=dict(log_scalars={'loss': buf}),
             arr=np.arange(3, dtype=np.float32), scalar=np.float64(0.5)))
    hub_buf = loaded['message_hub']['log_scalars']['loss']
    assert hub_buf.mean() == pytest.approx(1.75)
    assert hub_buf.statistics('max') == pytest.approx(2.0)
    assert loaded['arr'].tolist() == [0.0, 1.0, 2.0]
    assert loaded['scalar'] == 0.5


class EvilGlobal:

    def __reduce__(self):
        return (print, ('code ran', ))


class EvilGetattr:
    """Asks the restricted getattr for something other than a statistic."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def test_unexpected_global_still_refused(capsys):
    with pytest.raises(pickle.UnpicklingError, match='print'):
        _roundtrip({'x': EvilGlobal()})
    assert 'code ran' not in capsys.readouterr().out


def test_getattr_restricted_to_history_buffer_statistics():
    with pytest.raises(pickle.UnpicklingError, match='__init__'):
        _roundtrip({'x': EvilGetattr()})


class MakesDirectory:
    """A payload with a visible side effect if it were ever executed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os
        return (os.mkdir, (self.path, ))


def test_runner_checkpoint_loader_refuses_unexpected_global(tmp_path):
    """mmengine's checkpoint loader (what ``--resume``/``load_from`` and
    ``mim test --checkpoint`` use) keeps weights_only on: a checkpoint that
    pickles an unexpected global is refused, naming it, and runs nothing."""
    from mmengine.runner.checkpoint import load_checkpoint
    target = tmp_path / 'payload-ran'
    model = torch.nn.Linear(2, 2)
    ckpt = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(evil=MakesDirectory(str(target)))), ckpt)
    with pytest.raises(pickle.UnpicklingError) as err:
        load_checkpoint(model, str(ckpt), map_location='cpu')
    assert 'mkdir' in str(err.value) and 'weights_only' in str(err.value)
    assert not target.exists()
