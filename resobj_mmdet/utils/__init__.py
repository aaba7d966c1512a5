from .checkpoint import MMENGINE_CHECKPOINT_GLOBALS, register_safe_globals

__all__ = ['MMENGINE_CHECKPOINT_GLOBALS', 'register_safe_globals']
