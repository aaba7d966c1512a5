from .aquarium import AquariumDataset
from .bccd import BCCDDataset
from .deeppcb import DeepPCBDataset
from .synthetic_shapes import (CLASSES, ShapesDataset, ensure_shapes,
                               generate_shapes)
from .tree_crowns import TreeCrownsDataset, ensure_tree_crowns

__all__ = [
    'AquariumDataset', 'BCCDDataset', 'CLASSES', 'DeepPCBDataset',
    'ShapesDataset', 'ensure_shapes', 'generate_shapes', 'TreeCrownsDataset',
    'ensure_tree_crowns'
]
