from .objectness_stats_hook import ObjectnessStatsHook

__all__ = ['ObjectnessStatsHook']
