"""Folding BatchNorm layers into affine terms for the deploy form."""
from typing import Optional, Tuple

import torch
from mmcv.cnn import ConvModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def fold_batch_norm(norm: nn.Module) -> Tuple[Tensor, Tensor]:
    """(scale, shift) with ``norm(x) == x * scale + shift`` in eval mode, per channel.

    Computed and returned in float64 with the layer's own eps (released
    checkpoints have dead channels whose running variance is ~1e-45, so eps
    decides there); callers cast once, after combining terms.
    """
    if not isinstance(norm, _BatchNorm) or not norm.track_running_stats \
            or norm.running_var is None:
        raise ValueError(f'only BatchNorm layers with running statistics fold into a deploy '
                         f'form, got {type(norm).__name__}')
    var = norm.running_var.double()
    mean = norm.running_mean.double()
    weight = norm.weight.double() if norm.weight is not None else torch.ones_like(var)
    bias = norm.bias.double() if norm.bias is not None else torch.zeros_like(var)
    scale = weight / torch.sqrt(var + norm.eps)
    return scale, bias - mean * scale


def activation_slopes(activation: Optional[nn.Module], channels: int) -> Tensor:
    """Negative-side slopes (channels,) of a piecewise-linear activation.

    PReLU (one or ``channels`` slopes), LeakyReLU, ReLU (0) and no activation
    (``None`` or Identity: 1) are supported; others raise ValueError.
    """
    if activation is None or isinstance(activation, nn.Identity):
        return torch.ones(channels)
    if isinstance(activation, nn.PReLU):
        slopes = activation.weight.detach().reshape(-1)
        if slopes.numel() not in (1, channels):
            raise ValueError(f'PReLU has {slopes.numel()} slopes for {channels} channels')
        return slopes.expand(channels).clone()
    if isinstance(activation, nn.LeakyReLU):
        return torch.full((channels, ), float(activation.negative_slope))
    if isinstance(activation, nn.ReLU):
        return torch.zeros(channels)
    raise ValueError(f'the deploy form needs a PReLU, LeakyReLU, ReLU or no activation, '
                     f'got {type(activation).__name__}')


def fold_conv_module(module: ConvModule) -> bool:
    """Fold the BatchNorm of a conv -> norm -> act ``ConvModule`` into its conv, in place.

    The conv gets the bias, the norm is removed. Returns whether it folded
    (False for modules without a BatchNorm right after the conv, e.g. an
    already folded one).
    """
    if not module.with_norm or not isinstance(module.norm, _BatchNorm) \
            or module.order.index('norm') != module.order.index('conv') + 1:
        return False
    conv = module.conv
    scale, shift = fold_batch_norm(module.norm)
    with torch.no_grad():
        weight = conv.weight.double() * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
        bias = shift
        if conv.bias is not None:
            bias = bias + conv.bias.double() * scale
        conv.weight.copy_(weight.to(conv.weight.dtype))
        conv.bias = nn.Parameter(bias.to(conv.weight.dtype))
    delattr(module, module.norm_name)
    module.norm_name = None
    module.with_norm = False
    module.turn_on_efficient_conv_bn_eval(False)
    return True
