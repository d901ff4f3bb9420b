"""ShuffleDiCEBlock: the stride-1 unit of DiCENet."""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseModule, Sequential
from torch import Tensor

from mmdice.ops.extension import graph_capture
from mmdice.registry import MODELS
from ..deploy import DeployMixin
from .channel_shuffle import channel_shuffle, memory_format_of, shuffled_concat
from .dice_unit import DiCEUnit
from .first_layer import build_first_layer
from .recompute import forward_with_cp


@MODELS.register_module()
class ShuffleDiCEBlock(DeployMixin, BaseModule):
    """ShuffleNetV2-style block whose right branch is a DiCE unit.

    The first ``round(0.5 * in_channels)`` input channels pass through
    untouched; the remaining ones go through ``branch`` = 1x1 conv + norm + act
    (-> out_channels - left channels) and a :class:`DiCEUnit`; the output is
    ``channel_shuffle(cat([left, branch]), 2)``. No 1x1 after the DiCE unit.

    Args:
        in_channels: input channels.
        out_channels: output channels (even, larger than the left part).
        build_size: (Hm, Wm) or an int, the feature size of the DiCE unit.
        spatial: the DiCE unit's spatial layer (see :class:`DiCEUnit`).
        fusion: the DiCE unit's fusion (see :class:`DiCEUnit`).
        first_fusion: the branch's first layer: ``'pointwise'`` (1x1 conv +
            norm + act) or ``'dimfuse'`` (:class:`DimFuse` without local
            fusion, DiCENet Table 3).
        norm_cfg: normalisation config.
        act_cfg: activation config (PReLU gets one slope per channel).
        with_cp: recompute the block in backward (torch.utils.checkpoint) to
            save memory when training.
        init_cfg: initialisation config.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 build_size: Union[int, Sequence[int]], spatial: str = 'dimconv',
                 fusion: str = 'dimfuse', first_fusion: str = 'pointwise',
                 norm_cfg: dict = dict(type='BN', eps=1e-5),
                 act_cfg: dict = dict(type='PReLU'), with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.left_channels = int(round(0.5 * in_channels))
        if out_channels % 2 or out_channels <= self.left_channels \
                or in_channels <= self.left_channels:
            raise ValueError(
                f'out_channels must be even and larger than round(in_channels / 2) = '
                f'{self.left_channels}, and in_channels at least 2; got in_channels='
                f'{in_channels}, out_channels={out_channels}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.with_cp = with_cp
        #: set by :meth:`switch_to_deploy`: concat + shuffle in one
        #: pass when eager (compiled and exported graphs keep cat + shuffle, which
        #: the compilers fuse).
        self.deploy = False
        branch_in = in_channels - self.left_channels
        branch_out = out_channels - self.left_channels
        self.branch = Sequential(
            build_first_layer(branch_in, branch_out, first_fusion, norm_cfg, act_cfg),
            DiCEUnit(branch_out, branch_out, build_size, spatial=spatial, fusion=fusion,
                     norm_cfg=norm_cfg, act_cfg=act_cfg))

    def switch_to_deploy(self) -> None:
        """Convert the branch's first layer and DiCE unit, in place. Exact in
        eval mode, inference only, idempotent."""
        if self.deploy:
            return
        for layer in self.branch:
            layer.switch_to_deploy()
        self.deploy = True

    def _inner_forward(self, x: Tensor) -> Tensor:
        left, right = x[:, :self.left_channels], x[:, self.left_channels:]
        if self.deploy and not graph_capture().compiling:
            return self._deploy_forward(left, right, memory_format_of(x))
        return channel_shuffle(torch.cat((left, self.branch(right)), dim=1), 2)

    def _deploy_forward(self, left: Tensor, right: Tensor,
                        memory_format: torch.memory_format) -> Tensor:
        """Eager deploy form: concat + shuffle without intermediate copies."""
        # A channel slice of a channels-last tensor is neither layout, and
        # convolutions return such inputs in NCHW: copy it (once) instead.
        right = self.branch[0](right.contiguous(memory_format=memory_format))
        if 2 * self.left_channels != self.out_channels:
            return shuffled_concat((left, self.branch[1](right)), 2)
        # Equal halves: output channel 2k is left channel k, 2k + 1 the branch's
        # channel k, written with the DiCE unit's last activation and gate product.
        return self.branch[1].shuffled_with(left, right)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H, W)."""
        return forward_with_cp(self, self._inner_forward, x)
