"""Training-loop components of mmdice (parameter schedulers, optimizer wrappers)."""
from .optimizers import BF16OptimWrapper
from .schedulers import HybridLR, HybridParamScheduler

__all__ = ['BF16OptimWrapper', 'HybridLR', 'HybridParamScheduler']
