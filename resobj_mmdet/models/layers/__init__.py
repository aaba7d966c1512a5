from .residual_objectness import (ResidualObjectness, cumulative_objectness,
                                  flatten_objectness, levels_in_anchor_order)

__all__ = [
    'ResidualObjectness', 'cumulative_objectness', 'flatten_objectness',
    'levels_in_anchor_order'
]
