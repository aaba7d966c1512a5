from .residual_clip_optim_wrapper import (ResObjAmpOptimWrapper,
                                          ResObjOptimWrapper,
                                          residual_parameters)

__all__ = [
    'ResObjOptimWrapper', 'ResObjAmpOptimWrapper', 'residual_parameters'
]
