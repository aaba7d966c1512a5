from .residual_objectness import (ResidualObjectness, cumulative_objectness,
                                  flatten_objectness)

__all__ = ['ResidualObjectness', 'cumulative_objectness', 'flatten_objectness']
