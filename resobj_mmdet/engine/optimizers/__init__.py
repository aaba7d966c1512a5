from .residual_clip_optim_wrapper import (ResObjAmpOptimWrapper,
                                          ResObjOptimWrapper,
                                          ResObjOptimWrapperConstructor,
                                          residual_parameters)

__all__ = [
    'ResObjOptimWrapper', 'ResObjAmpOptimWrapper',
    'ResObjOptimWrapperConstructor', 'residual_parameters'
]
