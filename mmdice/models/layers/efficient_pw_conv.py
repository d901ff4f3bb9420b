"""EfficientPWConv: a grouped 3x3 projection gated by a global context vector.

The skip projection of the DiCENet segmentation decoder (EdgeNets
``nn_layers/efficient_pt.py``).
"""
import math
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor
from torch.nn import functional as F

from mmdice.ops.checks import check_positive_ints
from mmdice.registry import MODELS
from ..deploy import DeployMixin
from .activation import act_cfg_for
from .norm_act import ConvNormAct


@MODELS.register_module()
class EfficientPWConv(DeployMixin, BaseModule):
    """``expansion(x) * gate(x)`` with a grouped 3x3 expansion and a 1x1 gate.

    ``expansion`` is a 3x3 conv (groups = gcd(in, out)) + norm + activation;
    ``gate`` is Sigmoid(Conv1x1(in -> out, no bias)(GlobalAvgPool(x))), one
    weight per output channel and image.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        norm_cfg: norm layer of the expansion.
        act_cfg: activation of the expansion (PReLU gets one slope per channel).
        init_cfg: initialisation config.

    Shapes: (N, in, H, W) -> (N, out, H, W).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='PReLU'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        check_positive_ints(in_channels=in_channels, out_channels=out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.expansion = ConvNormAct(
            in_channels,
            out_channels,
            3,
            padding=1,
            groups=math.gcd(in_channels, out_channels),
            bias=False,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg_for(act_cfg, out_channels))
        self.gate = ConvNormAct(
            in_channels, out_channels, 1, bias=False, norm_cfg=None,
            act_cfg=dict(type='Sigmoid'))

    def forward(self, x: Tensor) -> Tensor:
        """(N, in, H, W) -> (N, out, H, W)."""
        return self.expansion(x) * self.gate(F.adaptive_avg_pool2d(x, 1))

    def switch_to_deploy(self) -> None:
        """Fold the expansion's BatchNorm into its conv, in place (the gate has
        none). Exact in eval mode, inference only, idempotent."""
        self.expansion.switch_to_deploy()
        self.gate.switch_to_deploy()
        self.deploy = True
