"""The neck of DiCENet-SSD: extra down-sampling levels and a bottom-up decoder.

Follows the design of EdgeNets ``model/detection/ssd.py`` (spec section 7.1):
the extra levels are a depth-wise strided CBR followed by a 1x1 CBR, and each
coarser map is fused into the next finer one through an EfficientPyrPool.
"""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule, ModuleList, Sequential
from torch import Tensor
from torch.nn import functional as F

from mmdice.registry import MODELS
from ..deploy import DeployMixin
from ..layers import EfficientPyrPool, act_cfg_for
from ..layers.norm_act import ConvNormAct


def extra_level(in_channels: int, out_channels: int, padding: int, norm_cfg: dict,
                act_cfg: dict) -> Sequential:
    """The authors' SSD extra layer: depth-wise 3x3 stride-2 CBR, then 1x1 CBR.

    (N, in, H, W) -> (N, out, (H + 2 * padding - 3) // 2 + 1, same for W).
    """
    return Sequential(
        ConvNormAct(in_channels, in_channels, 3, stride=2, padding=padding, groups=in_channels,
                    bias=False, norm_cfg=norm_cfg, act_cfg=act_cfg_for(act_cfg, in_channels)),
        ConvNormAct(in_channels, out_channels, 1, bias=False, norm_cfg=norm_cfg,
                    act_cfg=act_cfg_for(act_cfg, out_channels)))


@MODELS.register_module()
class DiCESSDNeck(DeployMixin, BaseModule):
    """Extra levels plus bottom-up decoding for an SSD head.

    1. ``extra_levels[i]`` (:func:`extra_level`) extend the backbone maps
       (strides 8, 16, 32) down to 1x1: at 300 the maps are 38, 19, 10, then
       5, 3, 1; at 512 64, 32, 16, then 8, 4, 2, 1.
    2. Decoding, coarse to fine, over the ``num_decoded`` finest maps: map i is
       replaced by ``map_i + fuses[i](cat(up(decoded_{i+1}), map_i))``, where
       ``up`` is bilinear (``align_corners=True``, as the reference) to map
       i's size and ``fuses[i]`` is an EfficientPyrPool (in ->
       ``proj_channels[i]`` -> map i's channels). The residual (the reference
       has none) lets a narrow projection refine the backbone features rather
       than replace them, which keeps the decoder within the paper's FLOPs.
       The coarsest map of the decoding is the first undecoded one, as the
       reference's raw 3x3 map that feeds its 5x5 fusion.

    Args:
        in_channels: channels of the backbone maps, finest first
            (DiCENet s=2.4 levels 2, 3, 4: 278, 556, 1112).
        extra_channels: output channels of each extra level.
        extra_paddings: padding of each extra level's stride-2 depth-wise conv
            (1 halves a side rounding up; 0 turns 3x3 into 1x1).
        num_decoded: how many of the finest maps the decoder refines (4 in the
            reference: 38, 19, 10, 5 at 300).
        proj_channels: EfficientPyrPool projection width of each decoded map,
            finest first.
        pyramid_scales: EfficientPyrPool scales.
        norm_cfg: norm layer config.
        act_cfg: activation config (PReLU gets one slope per channel).
        deploy: build the deploy (inference) form directly, as
            :meth:`switch_to_deploy` leaves it.
        init_cfg: initialisation config.

    Shapes: a tuple of ``len(in_channels)`` maps (N, C_i, H_i, W_i) -> a tuple
    of ``len(in_channels) + len(extra_channels)`` maps, channels
    :attr:`out_channels`, finest first.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (278, 556, 1112),
                 extra_channels: Sequence[int] = (512, 256, 256),
                 extra_paddings: Sequence[int] = (1, 1, 0),
                 num_decoded: int = 4,
                 proj_channels: Sequence[int] = (32, 32, 32, 32),
                 pyramid_scales: Sequence[float] = (2.0, 1.5, 1.0, 0.5, 0.1),
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='PReLU'),
                 deploy: bool = False,
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
                     distribution='normal')):
        super().__init__(init_cfg)
        in_channels, extra_channels = tuple(in_channels), tuple(extra_channels)
        for name, values in (('in_channels', in_channels), ('extra_channels', extra_channels)):
            if not all(isinstance(value, int) and value > 0 for value in values):
                raise ValueError(f'{name} must be a sequence of positive ints, got {values!r}')
        if not in_channels:
            raise ValueError('in_channels must not be empty')
        if len(extra_paddings) != len(extra_channels) or \
                not all(padding in (0, 1) for padding in extra_paddings):
            raise ValueError(f'extra_paddings must give 0 or 1 for each of the '
                             f'{len(extra_channels)} extra levels, got {extra_paddings!r}')
        self.out_channels = in_channels + extra_channels
        if not isinstance(num_decoded, int) or not 0 <= num_decoded < len(self.out_channels):
            raise ValueError(f'num_decoded must be an int in [0, {len(self.out_channels)}), '
                             f'got {num_decoded!r}')
        if len(proj_channels) != num_decoded:
            raise ValueError(f'proj_channels must give one width per decoded map '
                             f'({num_decoded}), got {proj_channels!r}')
        self.in_channels = in_channels
        self.num_decoded = num_decoded

        self.extra_levels = ModuleList()
        previous = in_channels[-1]
        for channels, padding in zip(extra_channels, extra_paddings):
            self.extra_levels.append(extra_level(previous, channels, padding, norm_cfg, act_cfg))
            previous = channels
        self.fuses = ModuleList(
            EfficientPyrPool(self.out_channels[i + 1] + self.out_channels[i], proj,
                             self.out_channels[i], scales=pyramid_scales, norm_cfg=norm_cfg,
                             act_cfg=act_cfg)
            for i, proj in enumerate(proj_channels))
        self.deploy = False
        if deploy:
            self.switch_to_deploy()

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorms of the extra levels' and the fusions' convs into
        them, in place. Exact in eval mode, inference only, idempotent."""
        for level in self.extra_levels:
            for conv in level:
                conv.switch_to_deploy()
        for fuse in self.fuses:
            fuse.switch_to_deploy()
        self.deploy = True

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Backbone maps, finest first -> decoded and extra maps, finest first."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'DiCESSDNeck expects {len(self.in_channels)} backbone maps, '
                             f'got {len(inputs)}')
        maps = list(inputs)
        for level in self.extra_levels:
            maps.append(level(maps[-1]))
        for i in reversed(range(self.num_decoded)):
            coarser = F.interpolate(maps[i + 1], size=maps[i].shape[2:], mode='bilinear',
                                    align_corners=True)
            maps[i] = maps[i] + self.fuses[i](torch.cat([coarser, maps[i]], dim=1))
        return tuple(maps)
