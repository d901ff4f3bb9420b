"""Training-loop components of mmdice (parameter schedulers)."""
from .schedulers import HybridLR, HybridParamScheduler

__all__ = ['HybridLR', 'HybridParamScheduler']
