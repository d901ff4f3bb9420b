"""High-level APIs of mmdice, used by the tools and the benchmarks."""
from .model import TensorModeWrapper, build_model_from_config

__all__ = ['build_model_from_config', 'TensorModeWrapper']
