"""Fusions of a DiCE unit other than DimFuse (the ablations of DiCENet Sec. 5.2)."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor

from mmdice.registry import MODELS
from ..deploy import DeployMixin
from .activation import act_cfg_for
from .channel_gate import ChannelGate
from .dim_fuse import build_local_fusion
from .norm_act import ConvNormAct


@MODELS.register_module()
class PointwiseFusion(DeployMixin, BaseModule):
    """Point-wise fusion: 1x1 conv + norm + act, optionally scaled by an SE gate.

    ``pointwise`` mixes all input channels (for a DimConv, its 3C interleaved
    channels: the paper's 3C x C' point-wise fusion, Sec. 3.2); with
    ``with_gate`` the result y becomes ``y * gate(y)`` (:class:`ChannelGate`
    C' -> C', the "point-wise + SE" fusion).

    Args:
        in_channels: input channels.
        out_channels: output channels C'.
        with_gate: scale the output by an SE gate of itself.
        gate_reduction: hidden-channel reduction of the gate.
        norm_cfg: normalisation config.
        act_cfg: activation config (PReLU gets one slope per channel).
        init_cfg: initialisation config.

    Shapes: (N, in_channels, H, W) -> (N, C', H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, with_gate: bool = False,
                 gate_reduction: int = 4, norm_cfg: dict = dict(type='BN', eps=1e-5),
                 act_cfg: dict = dict(type='PReLU'), init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.deploy = False
        self.pointwise = ConvNormAct(in_channels, out_channels, 1, norm_cfg=norm_cfg,
                                     act_cfg=act_cfg_for(act_cfg, out_channels))
        self.gate = (ChannelGate(out_channels, out_channels, reduction=gate_reduction)
                     if with_gate else None)

    def forward(self, x: Tensor) -> Tensor:
        out = self.pointwise(x)
        return out if self.gate is None else out * self.gate(out)

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorm into the 1x1 conv and switch the gate; idempotent."""
        if self.deploy:
            return
        self.pointwise.switch_to_deploy()
        if self.gate is not None:
            self.gate.switch_to_deploy()
        self.deploy = True


@MODELS.register_module()
class SEFusion(DeployMixin, BaseModule):
    """Squeeze-and-excitation fusion: ``y * gate(y)`` (the "SE" fusion).

    Built from DimFuse's parts: an SE gate (:class:`ChannelGate`) cannot
    change the channel count, so after a DimConv the three branches of each
    channel are first combined by DimFuse's local fusion
    (:func:`~mmdice.models.layers.dim_fuse.build_local_fusion`) into y; after
    a depth-wise conv y is the input itself.

    Args:
        channels: channels C of y (and of the output).
        with_local_fusion: whether the input is a DimConv's 3C channels.
        gate_reduction: hidden-channel reduction of the gate.
        norm_cfg: normalisation config of the local fusion.
        act_cfg: activation config of the local fusion.
        init_cfg: initialisation config.

    Deploy form: as in :class:`DimFuse`, a DiCE unit computes the local
    fusion in its fused op and sets ``local_fusion`` to None.

    Shapes: (N, 3C or C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, with_local_fusion: bool = True, gate_reduction: int = 4,
                 norm_cfg: dict = dict(type='BN', eps=1e-5),
                 act_cfg: dict = dict(type='PReLU'), init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.deploy = False
        self.local_fusion = (build_local_fusion(channels, norm_cfg, act_cfg)
                             if with_local_fusion else None)
        self.gate = ChannelGate(channels, channels, reduction=gate_reduction)

    def forward(self, x: Tensor) -> Tensor:
        fused = x if self.local_fusion is None else self.local_fusion(x)
        return fused * self.gate(fused)

    def switch_to_deploy(self) -> None:
        """Fold the local fusion's BatchNorm (unless the DiCE unit has taken
        it) and switch the gate; idempotent."""
        if self.deploy:
            return
        if self.local_fusion is not None:
            self.local_fusion.switch_to_deploy()
        self.gate.switch_to_deploy()
        self.deploy = True
