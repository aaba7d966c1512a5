from .residual_objectness_loss import (ResidualObjectnessLoss,
                                       refine_objectness)

__all__ = ['ResidualObjectnessLoss', 'refine_objectness']
