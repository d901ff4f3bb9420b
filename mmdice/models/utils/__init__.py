"""Helpers of the model layers."""
from .fold import activation_slopes, fold_batch_norm, fold_conv_module

__all__ = ['activation_slopes', 'fold_batch_norm', 'fold_conv_module']
