"""DimFuse: fuses the interleaved output of a DimConv (DiCENet Sec. 3.2)."""
import math
from typing import Optional

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmdice.ops import shuffle_gated_concat
from mmdice.registry import MODELS
from ..deploy import DeployMixin
from ..utils import activation_slopes
from .activation import act_cfg_for
from .channel_shuffle import shuffled_concat
from .norm_act import ConvNormAct


#: Activations :func:`~mmdice.models.utils.activation_slopes` describes by slopes.
PIECEWISE_LINEAR = (nn.PReLU, nn.LeakyReLU, nn.ReLU, nn.Identity)


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
        self.local_fusion = (ConvNormAct(3 * in_channels, in_channels, 1, groups=in_channels,
                                         norm_cfg=norm_cfg,
                                         act_cfg=act_cfg_for(act_cfg, in_channels))
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


#: First layers of a block (its point-wise conv, or DimFuse in its place: DiCENet Table 3).
FIRST_FUSIONS = ('pointwise', 'dimfuse')


def build_first_layer(in_channels: int, out_channels: int, first_fusion: str,
                      norm_cfg: dict, act_cfg: dict) -> nn.Module:
    """A block's first layer: 1x1 conv + norm + act (``'pointwise'``) or
    :class:`DimFuse` without local fusion (``'dimfuse'``).

    Shapes: (N, in_channels, H, W) -> (N, out_channels, H, W).
    """
    if first_fusion not in FIRST_FUSIONS:
        raise ValueError(f'first_fusion must be one of {FIRST_FUSIONS}, got {first_fusion!r}')
    if first_fusion == 'dimfuse':
        return DimFuse(in_channels, out_channels, with_local_fusion=False, norm_cfg=norm_cfg,
                       act_cfg=act_cfg)
    return ConvNormAct(in_channels, out_channels, 1, norm_cfg=norm_cfg,
                       act_cfg=act_cfg_for(act_cfg, out_channels))

