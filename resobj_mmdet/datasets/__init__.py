from .synthetic_shapes import (CLASSES, ShapesDataset, ensure_shapes,
                               generate_shapes)

__all__ = ['CLASSES', 'ShapesDataset', 'ensure_shapes', 'generate_shapes']
