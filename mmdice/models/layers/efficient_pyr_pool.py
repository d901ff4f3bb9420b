"""EfficientPyrPool: the pyramid pooling block of the DiCENet decoder.

Reproduces EdgeNets ``nn_layers/efficient_pyramid_pool.py``: project to a few
channels, run one depth-wise 3x3 conv per scale on a resampled copy, merge.
"""
import math
from typing import Optional, Sequence

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn import functional as F

from mmdice.ops.checks import check_positive_ints
from mmdice.registry import MODELS
from ..deploy import DeployMixin
from .activation import act_cfg_for, build_act
from .channel_shuffle import channel_shuffle
from .norm_act import ConvNormAct, norm_act

# A scale's map is never smaller than this many pixels per side.
MIN_SCALED_SIZE = 5


def _scaled_size(size: int, scale: float) -> int:
    return max(MIN_SCALED_SIZE, int(math.ceil(size * scale)))


@MODELS.register_module()
class EfficientPyrPool(DeployMixin, BaseModule):
    """Efficient pyramid pooling.

    1. ``projection``: 1x1 conv in -> p + norm + act.
    2. For each scale r (descending), a depth-wise 3x3 conv ``scale_convs[i]``
       (no bias) at size (max(5, ceil(h*r)), max(5, ceil(w*r))): r < 1
       adaptive-avg-pools down, convolves and up-samples back bilinearly
       (``align_corners=True``); r > 1 up-samples bilinearly, convolves and
       adaptive-avg-pools back; r = 1 convolves in place.
    3. Concatenate the per-scale maps in scale order (5p channels),
       ``merge_norm`` + ``merge_act`` over those channels, shuffle them in
       len(scales) groups (so the maps of one projected channel are adjacent),
       then ``merge_conv``: 3x3 conv 5p -> p with p groups + norm + act.
    4. ``out_proj``: 1x1 conv p -> out + norm + act, only if ``out_channels``
       is given; otherwise the block ends at step 3 with p channels (the
       decoder's last block, whose 1x1 classifier is the head's ``conv_seg``).

    Args:
        in_channels: input channels.
        proj_channels: projection width p.
        out_channels: output channels of ``out_proj``; ``None`` omits it.
        scales: resampling factors, sorted descending internally.
        norm_cfg: norm layer config.
        act_cfg: activation config (PReLU gets one slope per channel).
        init_cfg: initialisation config.

    Shapes: (N, in, H, W) -> (N, out or p, H, W).
    """

    def __init__(self,
                 in_channels: int,
                 proj_channels: int,
                 out_channels: Optional[int] = None,
                 scales: Sequence[float] = (2.0, 1.5, 1.0, 0.5, 0.1),
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='PReLU'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        check_positive_ints(in_channels=in_channels, proj_channels=proj_channels)
        check_positive_ints(optional=True, out_channels=out_channels)
        if len(scales) == 0 or not all(
                isinstance(s, (int, float)) and s > 0 for s in scales):
            raise ValueError(f'scales must be a non-empty sequence of positive numbers, '
                             f'got {scales!r}')
        self.in_channels = in_channels
        self.proj_channels = proj_channels
        self.out_channels = out_channels
        self.scales = tuple(sorted((float(s) for s in scales), reverse=True))
        merged_channels = proj_channels * len(self.scales)

        self.projection = ConvNormAct(
            in_channels, proj_channels, 1, bias=False, norm_cfg=norm_cfg,
            act_cfg=act_cfg_for(act_cfg, proj_channels))
        self.scale_convs = nn.ModuleList(
            nn.Conv2d(proj_channels, proj_channels, 3, padding=1, groups=proj_channels,
                      bias=False) for _ in self.scales)
        self.merge_norm = build_norm_layer(norm_cfg, merged_channels)[1]
        self.merge_act = build_act(act_cfg, merged_channels)
        self.merge_conv = ConvNormAct(
            merged_channels, proj_channels, 3, padding=1, groups=proj_channels, bias=False,
            norm_cfg=norm_cfg, act_cfg=act_cfg_for(act_cfg, proj_channels))
        if out_channels is None:
            self.out_proj = None
        else:
            self.out_proj = ConvNormAct(
                proj_channels, out_channels, 1, bias=False, norm_cfg=norm_cfg,
                act_cfg=act_cfg_for(act_cfg, out_channels))

    def _scale_branch(self, x: Tensor, scale: float, conv: nn.Module) -> Tensor:
        height, width = x.shape[2:]
        if scale == 1.0:
            return conv(x)
        scaled = (_scaled_size(height, scale), _scaled_size(width, scale))
        if scale < 1.0:
            y = conv(F.adaptive_avg_pool2d(x, scaled))
            return F.interpolate(y, (height, width), mode='bilinear', align_corners=True)
        y = conv(F.interpolate(x, scaled, mode='bilinear', align_corners=True))
        return F.adaptive_avg_pool2d(y, (height, width))

    def forward(self, x: Tensor) -> Tensor:
        """(N, in, H, W) -> (N, out_channels or proj_channels, H, W)."""
        x = self.projection(x)
        merged = torch.cat([
            self._scale_branch(x, scale, conv) for scale, conv in zip(self.scales, self.scale_convs)
        ], dim=1)
        merged = channel_shuffle(norm_act(merged, self.merge_norm, self.merge_act),
                                 len(self.scales))
        x = self.merge_conv(merged)
        return x if self.out_proj is None else self.out_proj(x)

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorms of the projection, merge and output convs into
        them, in place (``merge_norm`` follows no conv and stays). Exact in
        eval mode, inference only, idempotent."""
        for conv in (self.projection, self.merge_conv, self.out_proj):
            if conv is not None:
                conv.switch_to_deploy()
        self.deploy = True
