# Copyright (c) resobj-mmdet contributors.
"""Let mmengine checkpoints load under ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True`` and refuses
any pickled global that is not allowlisted. mmengine 0.10.7 calls
``torch.load`` without ``weights_only``, and its checkpoints pickle a few
non-tensor objects (the message hub's ``HistoryBuffer`` of logged scalars,
numpy arrays and scalars inside it), so ``--resume`` and ``mim test
--checkpoint`` fail with an ``UnpicklingError``.

Rather than turning ``weights_only`` off (which would let a checkpoint run
arbitrary code), this allowlists exactly the globals an mmengine/mmdet
checkpoint needs. Anything else is still refused by torch.
"""
import pickle
from typing import Any, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _numpy_globals() -> List[object]:
    """numpy globals used to pickle arrays, dtypes and scalars."""
    try:  # numpy >= 2 moved the private module
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core import multiarray
    found = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes by their concrete class (Float64DType...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('BoolDType', 'Float16DType', 'Float32DType',
                     'Float64DType', 'Int8DType', 'Int16DType', 'Int32DType',
                     'Int64DType', 'UInt8DType', 'UInt16DType', 'UInt32DType',
                     'UInt64DType'):
            if hasattr(dtypes, name):
                found.append(getattr(dtypes, name))
    return found


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods.

    A ``HistoryBuffer`` pickles its ``_statistics_methods`` dict (``min``,
    ``max``, ``current``, ``mean`` and any method added with
    ``register_statistics``) as ``getattr(HistoryBuffer, 'min')``. Allowlisting
    the builtin ``getattr`` would let a checkpoint fetch any attribute of any
    allowlisted object, so the checkpoint's ``getattr`` global is bound to this
    function, which resolves only those names.
    """
    allowed = set(HistoryBuffer._statistics_methods) | {
        'min', 'max', 'current', 'mean'
    }
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'resobj_mmdet: checkpoint asked for getattr({obj!r}, {name!r}); '
        'only HistoryBuffer statistics methods are allowed under '
        'weights_only loading')


MMENGINE_CHECKPOINT_GLOBALS: List[object] = [HistoryBuffer] + _numpy_globals()
# Pickle protocol 2 names the builtins module `__builtin__`.
RESTRICTED_GLOBALS = [(history_buffer_getattr, '__builtin__.getattr'),
                      (history_buffer_getattr, 'builtins.getattr')]


def register_safe_globals() -> bool:
    """Allowlist :data:`MMENGINE_CHECKPOINT_GLOBALS` for weights_only loads.

    Returns:
        bool: False when this torch has no allowlist (torch < 2.4, whose
        ``torch.load`` does not default to ``weights_only``), else True.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        return False
    add(MMENGINE_CHECKPOINT_GLOBALS + RESTRICTED_GLOBALS)
    return True
