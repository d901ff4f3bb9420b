"""Helpers of the models: BatchNorm folding and FLOP counting."""
from .complexity import (PAPER_OPERATORS, classifier_paper_flops, count_complexity,
                         dim_conv_flop_jit, register_dim_conv_handles)
from .fold import activation_slopes, fold_batch_norm, fold_conv_module

__all__ = [
    'activation_slopes', 'fold_batch_norm', 'fold_conv_module', 'PAPER_OPERATORS',
    'classifier_paper_flops', 'count_complexity', 'dim_conv_flop_jit',
    'register_dim_conv_handles'
]
