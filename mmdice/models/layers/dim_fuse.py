"""DimFuse: fuses the interleaved output of a DimConv (DiCENet Sec. 3.2)."""
import math
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdice.ops import shuffle_gated_concat
from mmdice.registry import MODELS
from ..deploy import DeployMixin
from ..utils import activation_slopes
from .activation import act_cfg_for
from .channel_gate import ChannelGate
from .channel_shuffle import shuffled_concat
from .norm_act import ConvNormAct


#: Activations :func:`~mmdice.models.utils.activation_slopes` describes by slopes.
PIECEWISE_LINEAR = (nn.PReLU, nn.LeakyReLU, nn.ReLU, nn.Identity)


def build_local_fusion(channels: int, norm_cfg: dict, act_cfg: dict) -> ConvNormAct:
    """DimFuse's local fusion: grouped 1x1 conv 3C -> C (groups=C, a learned
    weighted sum of each channel's three DimConv branches) + norm + act.

    Shapes: (N, 3C, H, W) -> (N, C, H, W).
    """
    return ConvNormAct(3 * channels, channels, 1, groups=channels, norm_cfg=norm_cfg,
                       act_cfg=act_cfg_for(act_cfg, channels))


@MODELS.register_module()
class DimFuse(DeployMixin, BaseModule):
    """Dimension-wise fusion of a DiCE unit.

    Input: the 3C interleaved channels of a DimConv (channel ``3c + g`` is
    branch g = depth/height/width of channel c). Steps:

    1. ``local_fusion``: grouped 1x1 conv 3C -> C (groups=C, i.e. a learned
       weighted sum of the three branches of each channel) + norm + act -> Y_G;
    2. ``gate``: :class:`ChannelGate` of Y_G -> (N, C', 1, 1);
    3. ``spatial_fusion``: 3x3 conv C -> C' (groups=gcd(C, C')) + norm + act of Y_G;
    4. output = spatial_fusion(Y_G) * gate(Y_G). No residual connection.

    Args:
        in_channels: channels C of the DimConv input (the fused input has 3C).
        out_channels: output channels C'.
        with_local_fusion: whether the input is a DimConv's 3C channels; False
            fuses a C-channel input directly (step 1 skipped), e.g. after a
            depth-wise conv or in place of a point-wise conv (DiCENet Table 3).
        gate_reduction: hidden-channel reduction of the gate.
        norm_cfg: normalisation config.
        act_cfg: activation config (PReLU gets one slope per channel).
        init_cfg: initialisation config.

    Deploy form (:meth:`switch_to_deploy`): BatchNorms folded into the
    fusions' convs, the gate run as matrix products. Inside a DiCE unit, whose
    fused op computes step 1, ``local_fusion`` is None and the input is Y_G.

    Shapes: (N, 3C, H, W) -> (N, C', H, W); without ``local_fusion``
    (N, C, H, W) -> (N, C', H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, with_local_fusion: bool = True,
                 gate_reduction: int = 4,
                 norm_cfg: dict = dict(type='BN', eps=1e-5),
                 act_cfg: dict = dict(type='PReLU'), init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.deploy = False
        self.local_fusion = (build_local_fusion(in_channels, norm_cfg, act_cfg)
                             if with_local_fusion else None)
        self.gate = ChannelGate(in_channels, out_channels, reduction=gate_reduction)
        self.spatial_fusion = ConvNormAct(in_channels, out_channels, 3, padding=1,
                                          groups=math.gcd(in_channels, out_channels),
                                          norm_cfg=norm_cfg,
                                          act_cfg=act_cfg_for(act_cfg, out_channels))

    def _local_fusion(self, x: Tensor) -> Tensor:
        """Y_G: ``x`` itself when the DiCE unit has computed it."""
        return x if self.local_fusion is None else self.local_fusion(x)

    def forward(self, x: Tensor) -> Tensor:
        fused = self._local_fusion(x)
        return self.spatial_fusion(fused) * self.gate(fused)

    def shuffled_with(self, left: Tensor, x: Tensor) -> Tensor:
        """``channel_shuffle(cat(left, self(x)), 2)`` with the spatial fusion's
        activation, the gate product, the concat and the shuffle in one pass
        (:func:`~mmdice.ops.shuffle_gated_concat`) when the spatial fusion is a
        conv (BatchNorm folded) followed by a piecewise-linear activation.

        Shapes: ``left`` (N, C', H, W), ``x`` as for :meth:`forward`; returns (N, 2C', H, W).
        """
        fused = self._local_fusion(x)
        spatial = self.spatial_fusion
        activation = spatial.activate if spatial.with_activation else None
        if spatial.with_norm or spatial.order != ('conv', 'norm', 'act') \
                or not isinstance(activation, PIECEWISE_LINEAR + (type(None), )):
            return shuffled_concat((left, spatial(fused) * self.gate(fused)), 2)
        slopes = activation_slopes(activation, self.out_channels).to(left)
        return shuffle_gated_concat(left, spatial.conv(fused), slopes, self.gate(fused))

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorms of ``local_fusion`` (unless the DiCE unit has
        taken it) and ``spatial_fusion`` into their convs and switch the gate;
        a no-op once deployed."""
        if self.deploy:
            return
        if self.local_fusion is not None:
            self.local_fusion.switch_to_deploy()
        self.spatial_fusion.switch_to_deploy()
        self.gate.switch_to_deploy()
        self.deploy = True
