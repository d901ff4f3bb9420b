"""StridedDiCE: the down-sampling unit of DiCENet (doubles the channels)."""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseModule, Sequential
from torch import Tensor, nn

from mmdice.ops.extension import graph_capture
from mmdice.registry import MODELS
from ..deploy import DeployMixin
from .activation import act_cfg_for
from .channel_shuffle import channel_shuffle, shuffled_concat
from .dice_unit import DiCEUnit
from .norm_act import ConvNormAct
from .recompute import forward_with_cp


@MODELS.register_module()
class StridedDiCE(DeployMixin, BaseModule):
    """Stride-2 DiCE unit: C channels at H x W -> 2C channels at H/2 x W/2.

    * ``left``: depth-wise 3x3 stride-2 conv + norm + act, then 1x1 conv + norm + act;
    * ``right``: 3x3 stride-2 average pooling (zero padding counted), a
      :class:`DiCEUnit` (C -> C) and a 1x1 conv + norm + act;
    * output: ``channel_shuffle(cat([left, right]), 2)``.

    Args:
        in_channels: input channels C.
        build_size: (Hm, Wm) or an int, the *output* (post-stride) feature size
            the DiCE unit is built for.
        spatial: the DiCE unit's spatial layer (see :class:`DiCEUnit`).
        fusion: the DiCE unit's fusion (see :class:`DiCEUnit`).
        norm_cfg: normalisation config.
        act_cfg: activation config (PReLU gets one slope per channel).
        with_cp: recompute the unit in backward (torch.utils.checkpoint) to
            save memory when training.
        init_cfg: initialisation config.
    """

    def __init__(self, in_channels: int, build_size: Union[int, Sequence[int]],
                 spatial: str = 'dimconv', fusion: str = 'dimfuse',
                 norm_cfg: dict = dict(type='BN', eps=1e-5),
                 act_cfg: dict = dict(type='PReLU'), with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels
        self.with_cp = with_cp
        #: set by :meth:`switch_to_deploy`: concat + shuffle in one
        #: pass when eager (compiled and exported graphs keep cat + shuffle, which
        #: the compilers fuse).
        self.deploy = False
        conv_act_cfg = act_cfg_for(act_cfg, in_channels)
        self.left = Sequential(
            ConvNormAct(in_channels, in_channels, 3, stride=2, padding=1, groups=in_channels,
                        norm_cfg=norm_cfg, act_cfg=conv_act_cfg),
            ConvNormAct(in_channels, in_channels, 1, norm_cfg=norm_cfg, act_cfg=conv_act_cfg))
        self.right = Sequential(
            nn.AvgPool2d(3, stride=2, padding=1),
            DiCEUnit(in_channels, in_channels, build_size, spatial=spatial, fusion=fusion,
                     norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvNormAct(in_channels, in_channels, 1, norm_cfg=norm_cfg, act_cfg=conv_act_cfg))

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorms of the convolutions into them and fuse the DiCE
        unit, in place. Exact in eval mode, inference only, idempotent."""
        if self.deploy:
            return
        for conv in (*self.left, self.right[2]):
            conv.switch_to_deploy()
        self.right[1].switch_to_deploy()
        self.deploy = True

    def _inner_forward(self, x: Tensor) -> Tensor:
        if self.deploy and not graph_capture().compiling:
            return shuffled_concat((self.left(x), self.right(x)), 2)
        return channel_shuffle(torch.cat((self.left(x), self.right(x)), dim=1), 2)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, 2C, ceil(H/2), ceil(W/2))."""
        return forward_with_cp(self, self._inner_forward, x)
