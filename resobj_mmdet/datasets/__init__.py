from .bccd import BCCDDataset
from .synthetic_shapes import (CLASSES, ShapesDataset, ensure_shapes,
                               generate_shapes)
from .tree_crowns import TreeCrownsDataset, ensure_tree_crowns

__all__ = [
    'BCCDDataset', 'CLASSES', 'ShapesDataset', 'ensure_shapes',
    'generate_shapes', 'TreeCrownsDataset', 'ensure_tree_crowns'
]
