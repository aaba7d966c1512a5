from .coco_proposal_metric import CocoProposalMetric, eval_recalls

__all__ = ['CocoProposalMetric', 'eval_recalls']
