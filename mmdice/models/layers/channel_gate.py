"""ChannelGate: the global fusion gate of DimFuse (DiCENet Sec. 3.2)."""
from typing import Optional

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmdice.registry import MODELS
from ..deploy import DeployMixin


@MODELS.register_module()
class ChannelGate(DeployMixin, BaseModule):
    """Global fusion gate of DimFuse (squeeze-and-excitation style).

    ``GAP -> 1x1 conv (C -> floor(C / reduction), no bias) -> ReLU ->
    1x1 conv (-> C', no bias) -> sigmoid``; no normalisation.

    Args:
        in_channels: channels C of the pooled input.
        out_channels: channels C' of the gate.
        reduction: channel reduction of the hidden layer (floor division).
        init_cfg: initialisation config.

    Shapes: (N, C, H, W) -> (N, C', 1, 1), values in (0, 1).
    """

    def __init__(self, in_channels: int, out_channels: int, reduction: int = 4,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        #: set by :meth:`switch_to_deploy`: the 1x1 convs on the pooled vector
        #: run as matrix products.
        self.deploy = False
        hidden_channels = in_channels // reduction
        if hidden_channels < 1:
            raise ValueError(f'in_channels ({in_channels}) must be at least reduction '
                             f'({reduction}) so that the gate has a hidden channel')
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = ConvModule(in_channels, hidden_channels, 1, bias=False,
                                 norm_cfg=None, act_cfg=dict(type='ReLU'))
        self.expand = ConvModule(hidden_channels, out_channels, 1, bias=False,
                                 norm_cfg=None, act_cfg=dict(type='Sigmoid'))

    def forward(self, x: Tensor) -> Tensor:
        if self.deploy:
            hidden = F.relu(F.linear(x.mean((2, 3)), self.reduce.conv.weight.flatten(1)))
            gate = torch.sigmoid(F.linear(hidden, self.expand.conv.weight.flatten(1)))
            return gate[:, :, None, None]
        return self.expand(self.reduce(self.pool(x)))

    def switch_to_deploy(self) -> None:
        """Run the 1x1 convs (no BatchNorm) as matrix products; idempotent."""
        self.deploy = True
