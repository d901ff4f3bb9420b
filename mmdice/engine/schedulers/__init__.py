"""Parameter schedulers of mmdice."""
from .hybrid_lr import HybridLR, HybridParamScheduler

__all__ = ['HybridLR', 'HybridParamScheduler']
