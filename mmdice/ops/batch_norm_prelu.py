"""Fused BatchNorm + PReLU: ``prelu(batch_norm(x), slope)`` in one pass.

DiCENet follows nearly every convolution (and every DimConv) with BatchNorm
and a per-channel PReLU. Computed by ATen they read and write the tensor
twice in the forward, keep the BatchNorm output alive for the PReLU backward,
and ATen's CPU PReLU backward (a broadcast reduction for the slope gradient)
is as slow as a whole BatchNorm. ``torch.ops.mmdice.batch_norm_prelu``
normalises and activates in one pass, saves only its input, and its backward
takes two passes over (input, grad_output) per channel for all four gradients.

:func:`batch_norm_prelu` has :func:`torch.nn.functional.batch_norm`'s
arguments plus the PReLU ``slope`` and updates the running statistics the
same way. It runs the fused op for float32/float64 NCHW-contiguous CPU
tensors, eager and under ``torch.compile`` (a training step of DiCENet s=1.0
compiled with the op: 1022 ms, with inductor's own BatchNorm + PReLU: 1193 ms);
otherwise (other devices and dtypes, channels-last, ``torch.export`` and ONNX,
jit traces) it computes :func:`batch_norm_prelu_reference`.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import Check, require, shape_of
from .extension import BATCH_NORM_PRELU, EXT_AVAILABLE, use_fused_kernel

__all__ = ['batch_norm_prelu', 'batch_norm_prelu_reference', 'check_batch_norm_prelu_arguments']


def check_batch_norm_prelu_arguments(input: Tensor, weight: Optional[Tensor],
                                     bias: Optional[Tensor], slope: Tensor,
                                     mean: Optional[Tensor], var: Optional[Tensor],
                                     check: Check = require, op_form: bool = False) -> None:
    """The argument rules of BatchNorm + PReLU, each broken one reported through ``check``
    (:mod:`mmdice.ops.checks`).

    ``slope`` holds 1 or C slopes. With ``op_form`` those of
    ``torch.ops.mmdice.batch_norm_prelu`` (its fake kernel; the C++ check has
    the same rules): ``input`` (N, C, H, W), ``weight``, ``bias``, ``slope``
    and, both or neither, ``mean`` and ``var`` of shape (C,). Otherwise
    :func:`torch.nn.functional.batch_norm` checks the others.
    """
    if op_form:
        check(input.dim() == 4, lambda: f'input must be (N, C, H, W), got {tuple(input.shape)}')
    channels = input.shape[1] if input.dim() > 1 else 1
    check(isinstance(slope, Tensor) and slope.dim() == 1 and slope.numel() in (1, channels),
          lambda: f'slope must be a 1-D tensor of 1 or C slopes, got {shape_of(slope)}')
    if not op_form:
        return
    check((mean is None) == (var is None), lambda: 'give both mean and var, or neither')
    for name, tensor in (('weight', weight), ('bias', bias), ('slope', slope), ('mean', mean),
                         ('var', var)):
        if tensor is not None:
            check(tuple(tensor.shape) == (channels, ),
                  lambda name=name, tensor=tensor: f'{name} must have shape ({channels},), '
                  f'got {tuple(tensor.shape)}')


def batch_norm_prelu_reference(input: Tensor, running_mean: Optional[Tensor],
                               running_var: Optional[Tensor], weight: Optional[Tensor],
                               bias: Optional[Tensor], slope: Tensor, training: bool = False,
                               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``F.prelu(F.batch_norm(input, ...), slope)``: the stock operators."""
    check_batch_norm_prelu_arguments(input, weight, bias, slope, running_mean, running_var)
    return F.prelu(
        F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps),
        slope)


def batch_norm_prelu(input: Tensor, running_mean: Optional[Tensor],
                     running_var: Optional[Tensor], weight: Optional[Tensor],
                     bias: Optional[Tensor], slope: Tensor, training: bool = False,
                     momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``prelu(batch_norm(input), slope)`` of ``input`` (N, C, H, W).

    Arguments as :func:`torch.nn.functional.batch_norm` (batch statistics
    when ``training``, which updates given running statistics in place with
    ``momentum``; otherwise the running statistics), and ``slope``
    the PReLU slopes, (C,) or (1,). Returns (N, C, H, W).
    """
    check_batch_norm_prelu_arguments(input, weight, bias, slope, running_mean, running_var)
    if not use_fused_kernel(BATCH_NORM_PRELU, (input, ),
                            (running_mean, running_var, weight, bias, slope)):
        return batch_norm_prelu_reference(input, running_mean, running_var, weight, bias,
                                          slope, training, momentum, eps)
    channels = input.shape[1]
    count = input.numel() // channels
    if not training and (running_mean is None or running_var is None):
        raise ValueError('batch_norm_prelu: running_mean and running_var must be given when '
                         'not training')
    if training and count <= 1:
        raise ValueError(f'batch_norm_prelu: expected more than 1 value per channel when '
                         f'training, got input of shape {tuple(input.shape)}')
    weight = input.new_ones(channels) if weight is None else weight
    bias = input.new_zeros(channels) if bias is None else bias
    slope = slope.expand(channels)
    if not training:
        return torch.ops.mmdice.batch_norm_prelu(input, weight, bias, slope, running_mean,
                                                 running_var, eps)[0]
    output, mean, var = torch.ops.mmdice.batch_norm_prelu(input, weight, bias, slope, None,
                                                          None, eps)
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            running_mean.lerp_(mean, momentum)
            running_var.lerp_(var * (count / (count - 1)), momentum)
    return output


if EXT_AVAILABLE:

    @torch.library.register_fake('mmdice::batch_norm_prelu')
    def _batch_norm_prelu_fake(input, weight, bias, slope, mean, var, eps):
        check_batch_norm_prelu_arguments(input, weight, bias, slope, mean, var, torch._check,
                                         op_form=True)
        channels = input.shape[1]
        return (torch.empty_like(input, memory_format=torch.contiguous_format),
                input.new_empty(channels), input.new_empty(channels))

    @torch.library.register_fake('mmdice::batch_norm_prelu_backward')
    def _batch_norm_prelu_backward_fake(grad_output, input, weight, bias, slope, mean, var, eps,
                                        batch_stats, input_grad):
        torch._check(grad_output.shape == input.shape,
                     lambda: f'grad_output must have the input shape {tuple(input.shape)}, '
                     f'got {tuple(grad_output.shape)}')
        channels = input.shape[1]
        grad_input = torch.empty_like(input, memory_format=torch.contiguous_format) \
            if input_grad else None
        return (grad_input, input.new_empty(channels), input.new_empty(channels),
                input.new_empty(channels))

    def _setup_context(ctx, inputs, output):
        input, weight, bias, slope, mean, var, eps = inputs
        _, used_mean, used_var = output
        ctx.mark_non_differentiable(used_mean, used_var)
        ctx.save_for_backward(input, weight, bias, slope, used_mean, used_var)
        ctx.eps = eps
        ctx.batch_stats = mean is None

    def _backward(ctx, grad_output, _grad_mean, _grad_var):
        if torch.is_grad_enabled():
            raise NotImplementedError(
                'mmdice::batch_norm_prelu is differentiable once only; double backward '
                '(create_graph=True) needs batch_norm_prelu_reference')
        input, weight, bias, slope, mean, var = ctx.saved_tensors
        grads = torch.ops.mmdice.batch_norm_prelu_backward(
            grad_output, input, weight, bias, slope, mean, var, ctx.eps, ctx.batch_stats,
            ctx.needs_input_grad[0])
        return (*grads, None, None, None)

    torch.library.register_autograd('mmdice::batch_norm_prelu', _backward,
                                    setup_context=_setup_context)
