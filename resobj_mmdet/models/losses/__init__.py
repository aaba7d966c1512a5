from .residual_objectness_loss import ResidualObjectnessLoss

__all__ = ['ResidualObjectnessLoss']
