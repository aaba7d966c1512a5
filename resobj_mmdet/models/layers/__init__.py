from .residual_objectness import ResidualObjectness, flatten_objectness

__all__ = ['ResidualObjectness', 'flatten_objectness']
